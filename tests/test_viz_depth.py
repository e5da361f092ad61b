"""Anchor maps, voxel traces, volume projections and the two depth explorers (chapters 04-05)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from handlab.models import create
from handlab.models.a2j import anchor_positions
from handlab.models.voxels import voxelize
from handlab.viz.depth import (
    AnchorExplorer,
    VolumeExplorer,
    anchor_map,
    occupancy_trace,
    plot_anchor_weights,
    plot_volume_projections,
)


def test_anchor_map_puts_each_anchor_on_its_pixel_block():
    anchors = anchor_positions(48, 32, stride=4)  # A2J's cell-by-cell order
    values = torch.randperm(len(anchors)).float() + 1
    grid = anchor_map(values, anchors, (48, 32), stride=4)
    assert grid.shape == (12, 8)
    for (x, y), v in zip(anchors.tolist(), values.tolist(), strict=True):
        assert grid[int(y // 4), int(x // 4)] == v
    shuffled = torch.randperm(len(anchors))  # the order of the anchors does not matter
    np.testing.assert_array_equal(anchor_map(values[shuffled], anchors[shuffled], (48, 32)), grid)


def test_anchor_map_errors():
    anchors = anchor_positions(16, 16)
    with pytest.raises(ValueError, match="anchors: expected shape"):
        anchor_map(torch.ones(3), anchors, (16, 16))
    with pytest.raises(ValueError, match="stride"):
        anchor_map(torch.ones(len(anchors)), anchors, (16, 16), stride=3)
    with pytest.raises(ValueError, match="inside"):
        anchor_map(torch.ones(len(anchors)), anchors + 16, (16, 16))


def test_plot_anchor_weights_shows_the_weight_grid_and_the_top_offsets():
    anchors = anchor_positions(32, 32)
    weights = torch.softmax(torch.randn(len(anchors)), 0)
    depth = torch.zeros(32, 32)
    depth[8:24, 8:24] = 400.0
    fig = plot_anchor_weights(
        None, depth, weights, anchors, offsets=torch.randn(len(anchors), 2), top=5,
        keypoint=torch.tensor([10.0, 12.0]), prediction=torch.tensor([11.0, 12.0]),
    )  # fmt: skip
    ax = fig.axes[0]
    shown = np.ma.filled(ax.images[-1].get_array(), 0)
    np.testing.assert_allclose(shown, anchor_map(weights, anchors, (32, 32)), rtol=1e-6)
    assert len(ax.collections[0].get_offsets()) == 5  # quiver arrows
    plt.close(fig)


def test_occupancy_trace_has_one_marker_per_occupied_voxel():
    K = torch.tensor([[100.0, 0.0, 31.5], [0.0, 100.0, 31.5], [0.0, 0.0, 1.0]])
    depth = torch.zeros(1, 1, 64, 64)
    depth[..., 20:44, 24:40] = 400.0 + torch.arange(16.0)
    volume = voxelize(depth, K, torch.tensor([[0.0, 0.0, 410.0]]), grid=16, cube_mm=250.0)
    trace = occupancy_trace(volume[0, 0])
    assert len(trace.x) == int(volume.sum())
    z, y, x = (torch.tensor(np.array(c)) for c in (trace.z, trace.y, trace.x))
    assert bool((volume[0, 0][z, y, x] == 1).all())


def test_volume_projections_are_max_projections():
    h = torch.rand(4, 5, 6)
    fig = plot_volume_projections(h, marks={"a": torch.tensor([1.0, 2.0, 3.0])})
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), h.amax(0).numpy())
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), h.amax(1).numpy())
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), h.amax(2).T.numpy())
    plt.close(fig)
    with pytest.raises(ValueError, match="marks"):
        plot_volume_projections(h, marks={"a": torch.zeros(2)})


def test_anchor_explorer_follows_its_sliders():
    model = create("a2j", head_width=8, head_layers=0).eval()
    depth = torch.zeros(3, 1, 32, 32)
    depth[..., 8:24, 8:24] = 400.0
    with torch.no_grad():
        out = model(depth)
    ex = AnchorExplorer(depth, out, keypoints=torch.rand(3, 21, 2) * 31)
    assert ex.rendered == {"sample": 0, "joint": 0}
    ex.sample.value = 2
    ex.joint.value = 20
    assert ex.rendered == {"sample": 2, "joint": 20}
    assert ex.joint.max == 20 and ex.sample.max == 2
    with pytest.raises(ValueError, match="anchor_weights"):
        AnchorExplorer(depth, {"keypoints": out["keypoints"]})
    with pytest.raises(ValueError, match="depth: expected 3 samples"):
        AnchorExplorer(depth[:2], out)


def test_volume_explorer_follows_its_sliders():
    marks = {"gt": torch.rand(2, 3) * 3}
    ex = VolumeExplorer(torch.rand(2, 4, 4, 4), marks)
    assert ex.rendered == {"joint": 0, "z": 2}
    ex.joint.value = 1
    ex.z.value = 0
    assert ex.rendered == {"joint": 1, "z": 0}
    with pytest.raises(ValueError, match="marks"):
        VolumeExplorer(torch.rand(2, 4, 4, 4), {"gt": torch.rand(3, 3)})
