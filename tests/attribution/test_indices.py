import numpy as np
import pandas as pd
import pytest
import torch
from scipy import ndimage

from handlab.attribution.indices import (
    aggregate,
    diffusion_index,
    foreground_index,
    gini,
    index_table,
    joint_masks,
    localization_index,
    relation_index,
    relation_table,
)
from handlab.skeleton import GROUPS

H = W = 32


def _gauss(x, y, sigma=8.0):
    # an independent peak-1 Gaussian cut at 3 sigma (numpy, not the codec)
    ys, xs = np.mgrid[0:H, 0:W]
    g = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.where(g >= np.exp(-4.5), g, 0.0)


def test_gini_matches_the_mean_absolute_difference():
    rng = np.random.default_rng(0)
    a = rng.random(50) ** 3
    naive = np.abs(a[:, None] - a[None, :]).sum() / (2 * len(a) ** 2 * a.mean())
    assert abs(float(gini(torch.tensor(a))) - naive) < 1e-9
    # negative values are shifted to start at 0
    assert abs(float(gini(torch.tensor(a - 0.5))) - float(gini(torch.tensor(a - a.min())))) < 1e-9


def test_uniform_map_is_chance():
    maps = torch.ones(2, 3, H, W)
    mask = torch.zeros(2, H, W)
    mask[:, 5:20, 8:12] = 1
    kp = torch.tensor([[5.0, 5.0], [16.0, 16.0], [30.0, 2.0]]).expand(2, 3, 2)
    torch.testing.assert_close(
        diffusion_index(maps), torch.full((2, 3), 100.0, dtype=torch.float64)
    )
    torch.testing.assert_close(foreground_index(maps, mask), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(localization_index(maps, kp), torch.ones(2, 3, dtype=torch.float64))
    torch.testing.assert_close(relation_index(maps, kp), torch.ones(2, 3, 3, dtype=torch.float64))


def test_delta_map_on_the_joint():
    maps = torch.zeros(1, 1, H, W)
    maps[0, 0, 10, 20] = 1.0  # (x, y) = (20, 10)
    kp = torch.tensor([[[20.0, 10.0]]])
    g = _gauss(20, 10)
    assert abs(float(localization_index(maps, kp)) - H * W / g.sum()) < 1e-9
    assert abs(float(diffusion_index(maps)) - 100 / (H * W)) < 1e-6
    mask = torch.zeros(1, H, W)
    mask[0, 8:12, 18:22] = 1
    dilated = ndimage.binary_dilation(mask[0].numpy() > 0, structure=np.ones((5, 5)))
    assert abs(float(foreground_index(maps, mask)) - H * W / dilated.sum()) < 1e-9
    far = torch.zeros(1, H, W)
    far[0, 25:, :5] = 1
    assert float(foreground_index(maps, far)) == 0.0


def test_all_mass_on_the_joint_heatmap():
    g = _gauss(12.3, 20.7)
    maps = torch.tensor(g)[None, None]
    li = float(localization_index(maps, torch.tensor([[[12.3, 20.7]]])))
    assert abs(li - H * W * (g**2).sum() / g.sum() ** 2) < 1e-6  # float32 keypoints
    assert li > 1.5  # well above chance
    torch.testing.assert_close(
        joint_masks(torch.tensor([[[12.3, 20.7]]]), (H, W))[0, 0], torch.tensor(g)
    )


def test_relation_index_rows_and_undefined_cases():
    kp = torch.tensor([[[5.0, 5.0], [26.0, 26.0], [100.0, 5.0]]])  # joint 2 outside the image
    maps = torch.zeros(1, 3, H, W)
    maps[0, 0, 26, 26] = 1  # joint 0 looks at joint 1
    maps[0, 1] = torch.tensor(_gauss(26, 26))
    ri = relation_index(maps, kp)
    assert float(ri[0, 0, 1]) > 1 and float(ri[0, 0, 0]) == 0
    assert bool(torch.isnan(ri[0, :, 2]).all())  # no mask for the joint outside the image
    assert bool(torch.isnan(ri[0, 2]).all())  # an all-zero map has no distribution
    assert bool(torch.isnan(diffusion_index(maps)[0, 2]))
    table = relation_table(maps, kp, visibility=torch.tensor([[1.0, 0.5, 0.0]]))
    assert len(table) == 9
    row = table[(table.source == 0) & (table.target == 1)].iloc[0]
    assert row.RI == pytest.approx(float(ri[0, 0, 1])) and row.weight == 0.5


def test_index_table_and_visibility_weighted_aggregation():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 21, H, W, generator=g)
    kp = torch.rand(3, 21, 2, generator=g) * 31
    mask = torch.zeros(3, H, W)
    mask[:, 4:28, 6:26] = 1
    vis = torch.ones(3, 21)
    vis[0, 8] = 0  # index tip invisible in sample 0
    vis[1, 8] = 0.5
    table = index_table(maps, mask=mask, keypoints=kp, visibility=vis, sample_ids=[10, 11, 12])
    assert list(table.columns) == [
        "sample", "joint", "joint_name", "group", "finger", "visibility", "DI", "FI", "LI"
    ]  # fmt: skip
    assert len(table) == 63 and table["sample"].tolist()[:2] == [10, 10]
    li = localization_index(maps, kp).numpy()
    per_joint = aggregate(table, "joint")
    # invisible joint excluded (not a zero), half-visible one half-weighted
    want = (0.5 * li[1, 8] + li[2, 8]) / 1.5
    assert per_joint.loc[per_joint.joint == 8, "LI"].item() == pytest.approx(want)
    assert per_joint.loc[per_joint.joint == 8, "n_LI"].item() == 2
    groups = aggregate(table, "group")
    assert groups.group.tolist() == ["wrist", "MCP", "PIP", "DIP", "TIP"]
    fi = foreground_index(maps, mask).numpy()
    w = vis.numpy()[:, list(GROUPS["MCP"])]
    want_fi = (w * fi[:, list(GROUPS["MCP"])]).sum() / w.sum()
    assert groups.loc[groups.group == "MCP", "FI"].item() == pytest.approx(want_fi)
    fingers = aggregate(table, "finger")
    assert fingers.finger.tolist() == ["thumb", "index", "middle", "ring", "little"]
    assert fingers.n_DI.tolist() == [12, 11, 12, 12, 12]  # the wrist has no finger


def test_index_errors():
    maps = torch.ones(1, 2, 8, 8)
    with pytest.raises(ValueError, match="maps: expected shape"):
        diffusion_index(torch.ones(8, 8))
    with pytest.raises(TypeError, match="maps"):
        diffusion_index([[1.0]])
    with pytest.raises(ValueError, match="mask: expected shape"):
        foreground_index(maps, torch.ones(1, 4, 4))
    with pytest.raises(ValueError, match="dilation"):
        foreground_index(maps, torch.ones(1, 8, 8), dilation=-1)
    with pytest.raises(ValueError, match="keypoints: expected shape"):
        localization_index(maps, torch.ones(1, 3, 2))
    with pytest.raises(ValueError, match="visibility: expected shape"):
        index_table(maps, visibility=torch.ones(1, 3))
    with pytest.raises(ValueError, match="sample_ids"):
        index_table(maps, sample_ids=[1, 2])
    with pytest.raises(ValueError, match="by: expected a column"):
        aggregate(index_table(maps), "hand")
    with pytest.raises(ValueError, match="table: expected columns"):
        aggregate(pd.DataFrame({"joint": [0]}), "joint")
