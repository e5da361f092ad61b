"""Tests for handlab.metrics: hand-computed cases, naive reference loops, scipy, visibility."""

import numpy as np
import pandas as pd
import pytest
import torch

from handlab import metrics


def _pair(n: int = 6, c: int = 2, scale: float = 8.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(n, 21, c, generator=g, dtype=torch.float64) * 100
    pred = gt + torch.randn(n, 21, c, generator=g, dtype=torch.float64) * scale
    vis = (torch.rand(n, 21, generator=g) > 0.25).float()
    return pred, gt, vis


def test_hand_computed_epe_pck_and_masking():
    gt = torch.zeros(2, 3, 2)
    pred = torch.tensor([[[3.0, 4.0], [0.0, 1.0], [100.0, 0.0]], [[0.0, 2.0], [6.0, 8.0], [0, 0]]])
    vis = torch.tensor([[1, 1, 0], [1, 1, 1]])
    # visible errors: 5, 1, (100 hidden), 2, 10, 0 -> mean 18 / 5
    assert metrics.epe(pred, gt, vis) == pytest.approx(18 / 5)
    assert metrics.epe(pred, gt) == pytest.approx(118 / 6)
    # invisible joints may hold NaN and never count
    nan_pred = pred.clone()
    nan_pred[0, 2] = float("nan")
    assert metrics.epe(nan_pred, gt, vis) == pytest.approx(18 / 5)
    # per keypoint: joint0 {5, 2}, joint1 {1, 10}, joint2 {0}; t = 2 -> (1/2 + 1/2 + 1) / 3
    assert metrics.pck(pred, gt, 2.0, vis) == pytest.approx(2 / 3)
    assert metrics.pck(pred, gt, 2.0, vis, average="pooled") == pytest.approx(3 / 5)
    assert metrics.pck(pred, gt, 2.0, vis, strict=True) == pytest.approx((0 + 0.5 + 1) / 3)
    # numpy in, same answer
    assert metrics.epe(pred.numpy(), gt.numpy(), vis.numpy()) == pytest.approx(18 / 5)


def test_pck_normalised_by_box_size():
    gt = torch.zeros(2, 21, 2)
    pred = gt + torch.tensor([10.0, 0.0])
    box = torch.tensor([40.0, 60.0])  # 10 / 40 = 0.25 fails @0.2, 10 / 60 = 0.167 passes
    assert metrics.pck(pred, gt, 0.2, normalize=box, strict=True) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="normalize"):
        metrics.pck(pred, gt, 0.2, normalize=torch.tensor([1.0, 0.0]))


def _naive_zb_auc(pred, gt, vis, lo, hi, steps):
    """Z&B EvalUtil, written as loops: per-keypoint PCK(<=t), mean over keypoints, trapz."""
    d = np.linalg.norm(pred - gt, axis=-1)
    thresholds = np.linspace(lo, hi, steps)
    curve = []
    for t in thresholds:
        per_kp = []
        for j in range(d.shape[1]):
            dj = [d[i, j] for i in range(d.shape[0]) if vis[i, j] > 0]
            if dj:
                per_kp.append(np.mean([x <= t for x in dj]))
        curve.append(np.mean(per_kp))
    area = sum(
        (curve[i] + curve[i + 1]) / 2 * (thresholds[i + 1] - thresholds[i])
        for i in range(steps - 1)
    )
    return area / (hi - lo)


def _naive_mmpose_auc(pred, gt, vis, norm_factor=30.0, num_thrs=20):
    """mmpose keypoint_auc, written as loops (strict <, per keypoint, left Riemann mean)."""
    d = np.linalg.norm(pred - gt, axis=-1) / norm_factor
    total = 0.0
    for i in range(num_thrs):
        thr = i / num_thrs
        accs = []
        for j in range(d.shape[1]):
            dj = d[vis[:, j] > 0, j]
            if dj.size:
                accs.append((dj < thr).sum() / dj.size)
        total += np.mean(accs) / num_thrs
    return total


def test_auc_conventions_match_reference_loops():
    pred, gt, vis = _pair(scale=12.0)
    p, g, v = pred.numpy(), gt.numpy(), vis.numpy()
    assert metrics.auc(pred, gt, 0, 30, 20, "zb", vis) == pytest.approx(
        _naive_zb_auc(p, g, v, 0, 30, 20)
    )
    assert metrics.auc(pred, gt, 20, 50, 16, "zb", vis) == pytest.approx(
        _naive_zb_auc(p, g, v, 20, 50, 16)
    )
    assert metrics.auc(pred, gt, convention="freihand", visibility=vis) == pytest.approx(
        _naive_zb_auc(p, g, v, 0, 50, 100)
    )
    assert metrics.auc(pred, gt, convention="mmpose", visibility=vis) == pytest.approx(
        _naive_mmpose_auc(p, g, v)
    )
    # the conventions genuinely differ on the same data
    zb = metrics.auc(pred, gt, 0, 30, 20, "zb", vis)
    assert abs(zb - metrics.auc(pred, gt, convention="mmpose", visibility=vis)) > 1e-3


def test_auc_analytic_uniform_errors():
    # errors spread uniformly on (0, 50): the PCK curve is the identity, so the AUC is 1/2
    gt = torch.zeros(1000, 1, 3, dtype=torch.float64)
    pred = gt.clone()
    pred[:, 0, 0] = (torch.arange(1000, dtype=torch.float64) + 0.5) / 1000 * 50
    assert metrics.auc(pred, gt, convention="freihand") == pytest.approx(0.5, abs=1e-3)
    assert metrics.auc(pred, gt, 20, 50, 16, "zb") == pytest.approx((0.4 + 1.0) / 2, abs=1e-3)


def test_pck_curve_keypoint_vs_pooled_with_unbalanced_visibility():
    gt = torch.zeros(4, 2, 2)
    pred = gt.clone()
    pred[:, 1, 0] = 10.0  # joint 1 always wrong
    vis = torch.tensor([[1, 1], [1, 0], [1, 0], [1, 0]])
    t = [1.0]
    assert metrics.pck_curve(pred, gt, t, vis).tolist() == [0.5]  # (1 + 0) / 2
    assert metrics.pck_curve(pred, gt, t, vis, average="pooled").tolist() == [0.8]  # 4 / 5


def test_mpjpe_variants():
    from scipy.spatial import procrustes as scipy_procrustes

    pred, gt, _ = _pair(c=3, scale=5.0, seed=2)
    assert metrics.mpjpe(pred, gt) == pytest.approx(float((pred - gt).norm(dim=-1).mean()))
    shifted = pred + torch.tensor([30.0, -10.0, 5.0], dtype=torch.float64)
    assert metrics.root_relative_mpjpe(shifted, gt) == pytest.approx(
        metrics.root_relative_mpjpe(pred, gt)
    )
    assert metrics.mpjpe(shifted, gt) > metrics.mpjpe(pred, gt) + 10
    # PA-MPJPE against scipy: scipy aligns in the target's standardised frame
    errors = []
    for b in range(pred.shape[0]):
        mtx1, mtx2, _ = scipy_procrustes(gt[b].numpy(), pred[b].numpy())
        norm = np.linalg.norm(gt[b].numpy() - gt[b].numpy().mean(0))
        errors.append(np.linalg.norm((mtx2 - mtx1) * norm, axis=-1))
    assert metrics.pa_mpjpe(pred, gt) == pytest.approx(float(np.mean(errors)), rel=1e-6)
    assert metrics.pa_mpjpe(pred, gt) < metrics.root_relative_mpjpe(pred, gt)


def test_root_relative_drops_samples_without_root():
    gt = torch.zeros(2, 3, 3)
    pred = gt.clone()
    pred[1] += torch.tensor([0.0, 0.0, 7.0])
    pred[1, 2] += 100.0
    vis = torch.ones(2, 3)
    vis[1, 0] = 0  # sample 1 has no root: it cannot be root-aligned
    assert metrics.root_relative_mpjpe(pred, gt, vis) == 0.0


def test_tables_names_groups_and_visibility():
    pred, gt, vis = _pair(n=5)
    vis[:, 8] = 0  # index tip never visible
    table = metrics.per_joint_table(pred, gt, vis, unit="px", pck_at=5.0)
    assert isinstance(table, pd.DataFrame) and len(table) == 21
    assert table.index[8] == "index_tip" and table.loc["index_tip", "count"] == 0
    assert np.isnan(table.loc["index_tip", "mean_px"])
    d = (pred - gt).norm(dim=-1)
    j = 5
    m = vis[:, j] > 0
    assert table.iloc[j]["mean_px"] == pytest.approx(float(d[m, j].mean()))
    assert table.iloc[j]["max_px"] == pytest.approx(float(d[m, j].max()))
    assert table.iloc[j]["pck@5px"] == pytest.approx(float((d[m, j] <= 5).double().mean()))
    assert table.loc["wrist", "group"] == "wrist" and table.loc["thumb_cmc", "group"] == "MCP"
    groups = metrics.per_group_table(pred, gt, vis)
    assert list(groups.index) == ["wrist", "MCP", "PIP", "DIP", "TIP"]
    tips = [4, 8, 12, 16, 20]
    tm = vis[:, tips] > 0
    assert groups.loc["TIP", "mean_px"] == pytest.approx(float(d[:, tips][tm].mean()))
    assert groups.loc["TIP", "count"] == int(tm.sum())
    fingers = metrics.per_group_table(pred, gt, vis, unit="mm", by="finger")
    assert list(fingers.index) == ["wrist", "thumb", "index", "middle", "ring", "little"]
    assert "mean_mm" in fingers.columns


def test_evaluate_dicts_are_consistent():
    pred, gt, vis = _pair()
    out2 = metrics.evaluate_2d(pred, gt, vis, box_size=torch.full((6,), 100.0))
    assert out2["epe_px"] == pytest.approx(metrics.epe(pred, gt, vis))
    assert out2["pck@10px"] == pytest.approx(metrics.pck(pred, gt, 10.0, vis))
    assert 0 < out2["auc_0-30px"] < 1 and 0 < out2["pck@0.2box"] <= 1
    pred3, gt3, vis3 = _pair(c=3, scale=15.0)
    out3 = metrics.evaluate_3d(pred3, gt3, vis3)
    assert out3["pa_mpjpe_mm"] == pytest.approx(metrics.pa_mpjpe(pred3, gt3, vis3))
    assert out3["rr_mpjpe_mm"] == pytest.approx(metrics.root_relative_mpjpe(pred3, gt3, vis3))
    assert 0 < out3["auc_20-50mm"] <= 1 and out3["auc_0-50mm"] < out3["auc_20-50mm"]


def test_metric_errors():
    gt = torch.zeros(2, 21, 2)
    with pytest.raises(ValueError, match="gt: expected the shape of pred"):
        metrics.epe(gt[:, :20], gt)
    with pytest.raises(ValueError, match="visibility: expected shape"):
        metrics.epe(gt, gt, torch.ones(2, 20))
    with pytest.raises(ValueError, match="visibility: expected at least one"):
        metrics.epe(gt, gt, torch.zeros(2, 21))
    with pytest.raises(ValueError, match="pred"):
        metrics.epe(gt + float("nan"), gt)
    with pytest.raises(TypeError, match="pred"):
        metrics.epe([[0.0]], gt)
    with pytest.raises(ValueError, match="convention"):
        metrics.auc(gt, gt, convention="coco")
    with pytest.raises(ValueError, match="steps"):
        metrics.auc(gt, gt, 10, 5, 20)
    with pytest.raises(ValueError, match="average"):
        metrics.pck(gt, gt, 1.0, average="median")
    with pytest.raises(ValueError, match="21 joints"):
        metrics.per_joint_table(gt[:, :5], gt[:, :5])
    with pytest.raises(ValueError, match="unit"):
        metrics.per_group_table(gt, gt, unit="cm")
    with pytest.raises(ValueError, match="root"):
        metrics.root_relative_mpjpe(gt, gt, root=30)
