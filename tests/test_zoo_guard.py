"""The zoo guard and the collapse measures: analytic cases, a collapsed model fails, a trained
one passes. (The guard over every shipped model is in test_zoo.py, on its re-evaluation.)"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from _tiny_model import TINY, TinyPose, ToyHands, build_tiny

from handlab.models import registry
from handlab.training import collapse, loop
from handlab.training import data as train_data
from handlab.training.evaluation import predict
from handlab.zoo import guard


def _predictions(n: int = 6, noise: float = 0.0, constant: bool = False) -> dict:
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(n, 21, 2, generator=g) * 100  # (N, 21, 2) px
    xyz = torch.randn(n, 21, 3, generator=g) * 40  # (N, 21, 3) mm
    xyz = xyz - xyz[:, :1]
    pred_kp = kp + noise * torch.randn(n, 21, 2, generator=g)
    pred_xyz = xyz + noise * torch.randn(n, 21, 3, generator=g)
    if constant:
        pred_kp, pred_xyz = pred_kp[:1].expand_as(kp), pred_xyz[:1].expand_as(xyz)
    return {
        "keypoints": kp,
        "pred_keypoints": pred_kp,
        "visibility": torch.ones(n, 21),
        "xyz": xyz,
        "pred_xyz": pred_xyz,
    }


def test_mean_pose_errors_match_a_naive_loop():
    p = _predictions()
    p["visibility"][0, 3] = 0.0  # an invisible joint is left out of both the mean and the error
    base = collapse.mean_pose_errors(p)
    kp, vis = p["keypoints"], p["visibility"]
    dists, xyz_dists = [], []
    for j in range(21):
        seen = [i for i in range(len(kp)) if vis[i, j] > 0]
        mean = sum(kp[i, j] for i in seen) / len(seen)
        dists += [float((kp[i, j] - mean).norm()) for i in seen]
        mean3 = p["xyz"][:, j].mean(0)
        xyz_dists += [float((p["xyz"][i, j] - mean3).norm()) for i in range(len(kp))]
    assert base["epe_px"] == pytest.approx(sum(dists) / len(dists), rel=1e-5)
    assert base["rr_mpjpe_mm"] == pytest.approx(sum(xyz_dists) / len(xyz_dists), rel=1e-5)


def test_spread_is_zero_for_a_constant_prediction_and_one_for_the_labels():
    assert collapse.prediction_spread(_predictions(constant=True)) == {"keypoints": 0, "xyz": 0}
    exact = collapse.prediction_spread(_predictions())
    assert exact["keypoints"] == pytest.approx(1.0) and exact["xyz"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        collapse.prediction_spread(_predictions(n=1))
    with pytest.raises(TypeError, match="predict"):
        collapse.mean_pose_errors([1, 2])


def test_heatmap_contrast_is_zero_for_flat_maps():
    maps = torch.zeros(3, 21, 8, 8)
    assert float(collapse.heatmap_contrast(maps).max()) == 0.0
    maps[:, :, 2, 5] = 2.0
    assert collapse.heatmap_contrast(maps).tolist() == [2.0] * 21
    volumes = torch.rand(2, 21, 4, 4, 4)  # V2V's (B, J, d, h, w) volumes are maps too
    assert bool((collapse.heatmap_contrast(volumes) > 0).all())
    with pytest.raises(ValueError, match="heatmaps"):
        collapse.heatmap_contrast(torch.zeros(21, 8))


def test_guard_passes_a_good_prediction_and_names_each_failure_of_a_collapsed_one():
    good = guard.check_predictions(_predictions(noise=1.0), torch.ones(21))
    assert good.passed and good.ratios["epe_px"] < 0.1 and good.ratios["rr_mpjpe_mm"] < 0.1
    flat = torch.ones(21)
    flat[4] = 0.0
    bad = guard.check_predictions(_predictions(constant=True), flat)
    assert not bad.passed
    text = " | ".join(bad.failures)
    for expected in ("epe_px", "rr_mpjpe_mm", "keypoints spread", "xyz spread", "joints [4]"):
        assert expected in text
    depth_like = guard.check_predictions(_predictions(constant=True), checked=("rr_mpjpe_mm",))
    assert not any(f.startswith("epe_px") for f in depth_like.failures)
    assert depth_like.ratios["epe_px"] > guard.ERROR_RATIO  # measured and reported all the same
    record = bad.to_dict()
    assert record["passed"] is False and record["ratios"]["epe_px"] > guard.ERROR_RATIO


class _Collapsed(TinyPose):
    """The tiny model with a head that ignores its input: one pose for every image."""

    def __init__(self) -> None:
        super().__init__(size=32, with_xyz=True)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.normal_(self.head.bias, std=0.5, generator=torch.Generator().manual_seed(0))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = super().forward(images)
        out["heatmaps"] = torch.zeros(images.shape[0], 21, 8, 8)  # flat maps
        return out


def test_guard_fails_a_collapsed_model(monkeypatch):
    toy = lambda spec, split, size: ToyHands(split, size)  # noqa: E731
    monkeypatch.setattr(train_data, "open_split", toy)
    model = _Collapsed().eval()
    model.card = {"eval": {"data": "toy", "split": "test", "size": 32, "limit": 16}}
    report = guard.check(model, n_images=4)
    assert not report.passed
    assert report.spread == {"keypoints": 0.0, "xyz": 0.0}
    assert report.contrast == [0.0] * 21
    assert report.ratios["epe_px"] > 0.5
    # the same predictions, computed by the caller, give the same report
    p = predict(model, ToyHands("test", 32), limit=16)
    assert guard.check(model, predictions=p, n_images=4) == report
    with pytest.raises(ValueError, match="card"):
        guard.check(TinyPose())


def test_guard_passes_predictions_that_follow_the_input():
    # The toy's keypoints move with the image (its root-relative xyz do not: 2D only here).
    p = predict(TinyPose(size=32).eval(), ToyHands("test", 32), limit=16)
    g = torch.Generator().manual_seed(1)
    p["pred_keypoints"] = p["keypoints"] + 0.3 * torch.randn(p["keypoints"].shape, generator=g)
    report = guard.check_predictions(p)
    assert report.passed and set(report.errors) == {"epe_px"}
    assert report.spread["keypoints"] == pytest.approx(1.0, abs=0.1)


def test_fit_warns_when_validation_predictions_stop_varying(monkeypatch, tmp_path):
    monkeypatch.setitem(registry._BUILDERS, TINY, build_tiny)
    toy = lambda spec, split, size: ToyHands(split, size)  # noqa: E731
    monkeypatch.setattr(loop, "open_split", toy)
    monkeypatch.setattr(train_data, "open_split", toy)
    config = loop.TrainConfig(
        model=TINY, size=32, steps=2, batch_size=4, lr=0.0, val_every=2, ckpt_every=2,
        val_limit=8, test_limit=8, seed=0,
    )  # fmt: skip
    # lr 0: the freshly initialised head answers ~the same pose for every image
    with pytest.warns(RuntimeWarning, match=r"step 2: validation predictions barely vary"):
        loop.fit(config, tmp_path / "run", progress=False)
    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["val_spread"]["keypoints"] < collapse.SPREAD_FLOOR  # recorded with the curves
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loop._warn_if_collapsed({"keypoints": 0.9, "xyz": 0.5}, step=3)  # varies: no warning


def test_real_trained_imports_are_held_to_variation_not_to_the_synthetic_error():
    from handlab import zoo
    from handlab.zoo.guard import imported_from_real_photos

    assert imported_from_real_photos(zoo.load("mediapipe_hand_lite").card)
    assert not imported_from_real_photos(zoo.load("simplebaseline_r18").card)
