"""Tests for handlab.viz.draw and handlab.viz.hand3d: the artists and traces drawn, headless."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba

from handlab import geometry
from handlab.skeleton import BONES
from handlab.viz import draw, hand3d


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def _keypoints(seed: int = 0) -> torch.Tensor:
    return torch.rand(21, 2, generator=torch.Generator().manual_seed(seed)) * 60 + 2


def test_draw_skeleton_artists_and_coordinates(ax):
    kp = _keypoints()
    vis = torch.ones(21)
    vis[[4, 8]] = 0  # thumb tip, index tip hidden
    art = draw.draw_skeleton(ax, kp, vis, label="gt")
    np.testing.assert_allclose(art["joints"].get_offsets(), kp[vis > 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(art["hidden"].get_offsets(), kp[[4, 8]].numpy(), rtol=1e-6)
    assert len(art["bones"].get_segments()) == 18 and len(art["hidden_bones"].get_segments()) == 2
    hidden_segments = np.array(art["hidden_bones"].get_segments())
    np.testing.assert_allclose(hidden_segments[0], kp[[3, 4]].numpy(), rtol=1e-6)  # bone (3, 4)
    # hollow: no face colour, the finger's colour on the edge
    assert art["hidden"].get_facecolor().shape[0] == 0 or art["hidden"].get_facecolor()[0][3] == 0
    edge = art["hidden"].get_edgecolor()
    np.testing.assert_allclose(edge[0], to_rgba(draw.FINGER_COLORS["thumb"]))
    np.testing.assert_allclose(edge[1], to_rgba(draw.FINGER_COLORS["index"]))
    # per-finger colours on the filled joints: wrist black, then thumb
    face = art["joints"].get_facecolor()
    np.testing.assert_allclose(face[0], to_rgba("#000000"))
    np.testing.assert_allclose(face[1], to_rgba(draw.FINGER_COLORS["thumb"]))
    assert art["joints"].get_label() == "gt"
    assert len(ax.collections) == 4


def test_draw_skeleton_single_colour_and_all_visible(ax):
    kp = _keypoints(1)
    art = draw.draw_skeleton(ax, kp.numpy(), color="red", linewidth=3.0)
    assert len(art["bones"].get_segments()) == len(BONES) == 20
    assert len(art["hidden"].get_offsets()) == 0
    assert all(np.allclose(c, to_rgba("red")) for c in art["bones"].get_colors())
    assert art["bones"].get_linewidths()[0] == 3.0


def test_draw_skeleton_errors(ax):
    with pytest.raises(ValueError, match="keypoints: expected shape"):
        draw.draw_skeleton(ax, torch.zeros(20, 2))
    with pytest.raises(ValueError, match="visibility: expected shape"):
        draw.draw_skeleton(ax, torch.zeros(21, 2), torch.ones(5))
    with pytest.raises(TypeError, match="keypoints"):
        draw.draw_skeleton(ax, [[0, 0]] * 21)


def test_show_sample_panels():
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(1, 32, 40, generator=g) * 500
    depth[0, :5] = 0
    sample = {
        "image": torch.rand(3, 32, 40, generator=g),
        "depth": depth,
        "mask": (depth > 200).float(),
        "keypoints": _keypoints() * 0.5,
        "visibility": torch.ones(21),
    }
    fig = draw.show_sample(sample)
    try:
        titles = [a.get_title() for a in fig.axes if a.get_title()]
        assert titles == ["image", "depth", "mask", "keypoints"]
        image_ax, depth_ax, mask_ax, kp_ax = (a for a in fig.axes if a.get_title())
        np.testing.assert_allclose(image_ax.images[0].get_array(), sample["image"].permute(1, 2, 0))
        shown = depth_ax.images[0].get_array()
        assert shown.mask[:5].all() and not shown.mask[5:].any()  # 0 mm = no measurement
        assert len(image_ax.collections) == 4 and len(kp_ax.collections) == 4
        assert len(mask_ax.collections) == 0
        assert kp_ax.get_ylim() == (31.5, -0.5)  # image axes, y down
        assert len(fig.axes) == 5  # four panels and the depth colour bar
    finally:
        plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    out = draw.show_sample({"image": sample["image"], "keypoints": sample["keypoints"]}, axes=axes)
    assert out is fig and axes[1].get_title() == "keypoints"
    plt.close(fig)
    with pytest.raises(ValueError, match="axes: expected 2"):
        draw.show_sample({"image": sample["image"], "mask": sample["mask"]}, axes=[axes[0]])
    with pytest.raises(ValueError, match="sample: expected at least one"):
        draw.show_sample({"visibility": torch.ones(21)})
    with pytest.raises(TypeError, match="sample"):
        draw.show_sample([1, 2])


def test_overlay_heatmap_extent_and_alpha(ax):
    image = torch.rand(3, 64, 48)
    heatmap = torch.zeros(16, 12)
    heatmap[3, 5] = 1.0
    fig = draw.overlay_heatmap(ax, image, heatmap, alpha=0.3)
    assert fig is ax.figure and len(ax.images) == 2
    hm = ax.images[-1]
    assert hm.get_alpha() == 0.3
    assert list(hm.get_extent()) == [-0.5, 47.5, 63.5, -0.5]
    np.testing.assert_array_equal(hm.get_array(), heatmap.numpy())
    with pytest.raises(ValueError, match="alpha"):
        draw.overlay_heatmap(ax, image, heatmap, alpha=2.0)
    with pytest.raises(ValueError, match="heatmap: expected shape"):
        draw.overlay_heatmap(ax, image, torch.zeros(1, 16, 12))


def test_hand_figure_traces():
    g = torch.Generator().manual_seed(2)
    xyz = torch.rand(21, 3, generator=g) * 60 + torch.tensor([0.0, 0.0, 400.0])
    vis = torch.ones(21)
    vis[[0, 20]] = 0
    K = torch.tensor([[200.0, 0, 16], [0, 200.0, 16], [0, 0, 1]])
    depth = torch.full((1, 32, 32), 420.0)
    points = geometry.depth_to_points(depth, K, stride=2)
    fig = hand3d.hand_figure(xyz, visibility=vis, points=points, title="t")
    names = [t.name for t in fig.data]
    assert names == [
        "wrist-thumb",
        "wrist-index",
        "wrist-middle",
        "wrist-ring",
        "wrist-little",
        "joints",
        "hidden joints",
        "points",
    ]
    little = fig.data[4]
    np.testing.assert_allclose(little.x, xyz[[0, 17, 18, 19, 20], 0].numpy(), rtol=1e-6)
    assert little.line.color == draw.FINGER_COLORS["little"]
    hidden = fig.data[6]
    assert list(hidden.text) == ["wrist", "little_tip"] and hidden.marker.symbol == "circle-open"
    assert len(fig.data[5].x) == 19
    assert len(fig.data[7].x) == 16 * 16
    np.testing.assert_allclose(fig.data[7].z, 420.0)
    assert fig.layout.title.text == "t"
    thin = hand3d.hand_figure(xyz, points=points, max_points=10)
    assert len(thin.data[-1].x) == 10 and len(thin.data) == 7
    with pytest.raises(ValueError, match="xyz: expected shape"):
        hand3d.hand_figure(torch.zeros(21, 2))
    with pytest.raises(ValueError, match="points: expected shape"):
        hand3d.hand_figure(xyz, points=torch.zeros(5, 2))
