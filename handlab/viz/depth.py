"""Drawing the depth models' insides: A2J's anchor weights, V2V's voxels and 3D heatmaps, and
two explorers (ipywidgets) over them.

Taught in chapter 04 (``notebooks/04_a2j.py``: anchors) and chapter 05 (``notebooks/05_v2v.py``:
voxels and volumes).

Conventions follow the models: A2J anchors are ``(x, y)`` pixel positions on a regular grid every
``stride`` px (:func:`handlab.models.a2j.anchor_positions`, any order); volumes are indexed
``[z, y, x]`` and voxel coordinates are ``(x, y, z)`` with integers at voxel centres
(:mod:`handlab.models.voxels`).

>>> from handlab.models.a2j import anchor_positions
>>> anchors = anchor_positions(32, 32, stride=4)  # 64 anchors, cell by cell
>>> grid = anchor_map(torch.arange(64.0), anchors, (32, 32), stride=4)
>>> grid.shape, float(grid[0, 4])  # anchor 16 is the first of the second 16 px cell
((8, 8), 16.0)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from handlab._checks import Array, check_shape, to_numpy
from handlab.viz.widgets import Explorer, show_figure

__all__ = [
    "AnchorExplorer",
    "VolumeExplorer",
    "anchor_map",
    "occupancy_trace",
    "plot_anchor_weights",
    "plot_volume_projections",
]


def anchor_map(
    values: Array, anchors: Array, size: tuple[int, int], *, stride: int = 4
) -> np.ndarray:
    """Place per-anchor values on the anchor grid.

    Args:
        values: (N,) one value per anchor (e.g. one joint's softmax weights).
        anchors: (N, 2) px ``(x, y)``, each at the centre of a ``stride`` x ``stride`` block.
        size: ``(H, W)`` of the input in pixels.
        stride: px between anchors.

    Returns:
        (H / stride, W / stride) array; cell ``[i, k]`` holds the anchor at pixel block
        ``(k, i)``; cells without an anchor are 0. Drawn with extent ``(-0.5, W - 0.5, H - 0.5,
        -0.5)`` each cell covers its block (:func:`handlab.viz.draw.overlay_heatmap`).
    """
    v, a = (
        to_numpy("values", values, finite=True, dtype=np.float64),
        to_numpy("anchors", anchors, finite=True, dtype=np.float64),
    )
    check_shape("values", v, (None,))
    check_shape("anchors", a, (v.shape[0], 2))
    H, W = size
    if stride < 1 or H % stride or W % stride:
        raise ValueError(f"stride: expected a divisor of the size {size}, got {stride}")
    col = np.rint((a - (stride - 1) / 2) / stride).astype(int)  # (N, 2) (column, row)
    h, w = H // stride, W // stride
    if (col < 0).any() or (col[:, 0] >= w).any() or (col[:, 1] >= h).any():
        raise ValueError(f"anchors: expected positions inside the {W} x {H} image, got outside")
    grid = np.zeros((h, w))
    grid[col[:, 1], col[:, 0]] = v
    return grid


def plot_anchor_weights(
    ax: Axes | None,
    depth: Array,
    weights: Array,
    anchors: Array,
    *,
    stride: int = 4,
    keypoint: Array | None = None,
    prediction: Array | None = None,
    offsets: Array | None = None,
    top: int = 8,
    title: str | None = None,
) -> Figure:
    """One joint's A2J anchor weights over the depth crop.

    Args:
        ax: Axes to draw into, or None for a new figure.
        depth: (H, W) or (1, H, W) mm; pixels <= 0 (background) drawn white.
        weights: (N,) that joint's softmax weights over the anchors.
        anchors: (N, 2) px.
        keypoint: optional (2,) px, the ground truth (white cross).
        prediction: optional (2,) px, the model's estimate (red dot).
        offsets: optional (N, 2) px, that joint's in-plane offsets: arrows from the ``top``
            heaviest anchors to where each one votes (anchor + offset).
        top: how many anchors get an arrow.

    Returns:
        the Figure; the weight map is ``ax.images[-1]``.
    """
    d = to_numpy("depth", depth, finite=True, dtype=np.float64)
    d = d[0] if d.ndim == 3 else d
    check_shape("depth", d, (None, None))
    w, a = (
        to_numpy("weights", weights, finite=True, dtype=np.float64),
        to_numpy("anchors", anchors, finite=True, dtype=np.float64),
    )
    grid = anchor_map(w, a, d.shape, stride=stride)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    H, W = d.shape
    ax.imshow(np.ma.masked_less_equal(d, 0), cmap="gray")
    shown = ax.imshow(
        np.ma.masked_less_equal(grid, 0),
        cmap="magma",
        alpha=0.7,
        extent=(-0.5, W - 0.5, H - 0.5, -0.5),
    )
    ax.figure.colorbar(shown, ax=ax, fraction=0.046, label="anchor weight")
    if offsets is not None:
        o = to_numpy("offsets", offsets, finite=True, dtype=np.float64)
        check_shape("offsets", o, (a.shape[0], 2))
        best = np.argsort(-w)[:top]
        ax.quiver(
            a[best, 0], a[best, 1], o[best, 0], o[best, 1],
            angles="xy", scale_units="xy", scale=1, color="cyan", width=0.006,
        )  # fmt: skip
    if keypoint is not None:
        k = to_numpy("keypoint", keypoint, finite=True, dtype=np.float64)
        ax.scatter([k[0]], [k[1]], marker="x", s=60, c="white", label="ground truth")
    if prediction is not None:
        p = to_numpy("prediction", prediction, finite=True, dtype=np.float64)
        ax.scatter([p[0]], [p[1]], s=30, c="red", label="A2J")
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax.figure


def occupancy_trace(
    volume: Array, *, name: str = "occupied voxels", color: str = "rgba(31,119,180,0.75)"
) -> go.Scatter3d:
    """A ``go.Scatter3d`` of the occupied voxel centres of one binary volume (G, G, G) indexed
    ``[z, y, x]``, in voxel coordinates ``(x, y, z)``.

    >>> v = torch.zeros(4, 4, 4)
    >>> v[1, 2, 3] = 1.0
    >>> t = occupancy_trace(v)
    >>> t.x.tolist(), t.y.tolist(), t.z.tolist()
    ([3], [2], [1])
    """
    vol = to_numpy("volume", volume, finite=True, dtype=np.float64)
    check_shape("volume", vol, (None, None, None))
    z, y, x = np.nonzero(vol > 0)
    return go.Scatter3d(
        x=x, y=y, z=z, mode="markers", marker={"size": 3.5, "color": color}, name=name,
        hoverinfo="skip",
    )  # fmt: skip


def plot_volume_projections(
    heatmap: Array, *, marks: dict[str, Array] | None = None, title: str | None = None
) -> Figure:
    """Maximum projections of one 3D heatmap (D, H, W) ``[z, y, x]`` along z, y and x, with
    optional points ``marks`` (name -> (3,) voxel ``(x, y, z)``), e.g. each decoder's answer.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = plot_volume_projections(torch.rand(4, 5, 6), marks={"gt": torch.tensor([1.0, 2, 3])})
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['x-y (max over z)', 'x-z (max over y)', 'z-y (max over x)']
    >>> plt.close(fig)
    """
    h = to_numpy("heatmap", heatmap, finite=True, dtype=np.float64)
    check_shape("heatmap", h, (None, None, None))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    views = (
        ("x-y (max over z)", h.max(0), (0, 1)),  # rows y, cols x
        ("x-z (max over y)", h.max(1), (0, 2)),  # rows z, cols x
        ("z-y (max over x)", h.max(2).T, (2, 1)),  # rows y, cols z
    )
    markers = ["x", "o", "s", "^", "D"]
    # one colour per mark, readable on viridis and on the legend's white (white marks were not)
    colors = ["#d62728", "#ff7f0e", "#ffffff", "#e377c2", "#17becf"]
    for ax, (label, image, (cx, cy)) in zip(axes, views, strict=True):
        ax.imshow(image, cmap="viridis", origin="upper")
        for m, (name, point) in enumerate((marks or {}).items()):
            p = to_numpy(f"marks[{name!r}]", point, finite=True, dtype=np.float64)
            check_shape(f"marks[{name!r}]", p, (3,))
            style = {"marker": markers[m % 5], "s": 50, "linewidths": 1.8, "label": name}
            if markers[m % 5] == "x":
                style["c"] = colors[m % 5]
            else:  # filled, with a black outline: visible on viridis and on white
                style.update(facecolors=colors[m % 5], edgecolors="black")
            ax.scatter([p[cx]], [p[cy]], **style)
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    if marks:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


class AnchorExplorer(Explorer):
    """Browse A2J's anchor weights: a sample slider and a joint slider; ``.widget`` to display.

    Args:
        depth: (N, 1, H, W) mm, the model's input.
        outputs: the model's outputs on ``depth``: ``anchor_weights`` (N, J, A), ``anchors``
            (N, A, 2), ``offsets`` (N, J, A, 2) and ``keypoints`` (N, J, 2).
        keypoints: optional (N, J, 2) px ground truth.
        stride: the model's anchor stride (px).

    >>> from handlab.models import create
    >>> model = create("a2j", head_width=8, head_layers=0).eval()
    >>> depth = torch.zeros(2, 1, 32, 32)
    >>> depth[..., 8:24, 8:24] = 400.0
    >>> with torch.no_grad():
    ...     ex = AnchorExplorer(depth, model(depth))
    >>> ex.joint.value = 8
    >>> ex.rendered
    {'sample': 0, 'joint': 8}
    """

    def __init__(
        self,
        depth: torch.Tensor,
        outputs: dict[str, torch.Tensor],
        keypoints: torch.Tensor | None = None,
        *,
        stride: int = 4,
    ) -> None:
        import ipywidgets as W

        check_shape("depth", depth, (None, 1, None, None))
        for key in ("anchor_weights", "anchors", "offsets", "keypoints"):
            if key not in outputs:
                raise ValueError(
                    f"outputs: expected A2J outputs with {key!r}, got {sorted(outputs)}"
                )
        n, J = outputs["anchor_weights"].shape[:2]
        if depth.shape[0] != n:
            raise ValueError(f"depth: expected {n} samples (as outputs), got {depth.shape[0]}")
        self.depth, self.outputs, self.gt, self.stride = depth, outputs, keypoints, stride
        self.sample = W.IntSlider(value=0, min=0, max=n - 1, description="sample")
        self.joint = W.IntSlider(value=0, min=0, max=J - 1, description="joint")
        self._start((self.sample, self.joint), [W.HBox([self.sample, self.joint])])

    def render(self) -> None:
        """Redraw the current sample and joint (called by every slider change)."""
        i, j = self.sample.value, self.joint.value
        out = self.outputs
        fig = plot_anchor_weights(
            None,
            self.depth[i, 0],
            out["anchor_weights"][i, j],
            out["anchors"][i],
            stride=self.stride,
            keypoint=None if self.gt is None else self.gt[i, j],
            prediction=out["keypoints"][i, j],
            offsets=out["offsets"][i, j],
            title=f"sample {i}, joint {j}",
        )
        show_figure(self.output, fig)
        self.rendered = {"sample": i, "joint": j}


class VolumeExplorer(Explorer):
    """Browse per-joint 3D heatmaps slice by slice: a joint slider and a z-slice slider.

    Args:
        heatmaps: (J, D, H, W) one sample's volumes ``[z, y, x]``.
        marks: optional name -> (J, 3) voxel ``(x, y, z)`` per joint (ground truth, decoders).

    >>> ex = VolumeExplorer(torch.rand(3, 4, 5, 6))
    >>> ex.z.value = 3
    >>> ex.rendered
    {'joint': 0, 'z': 3}
    """

    def __init__(self, heatmaps: torch.Tensor, marks: dict[str, torch.Tensor] | None = None):
        import ipywidgets as W

        check_shape("heatmaps", heatmaps, (None, None, None, None))
        J, D = heatmaps.shape[:2]
        for name, m in (marks or {}).items():
            check_shape(f"marks[{name!r}]", m, (J, 3))
        self.heatmaps, self.marks = heatmaps, marks or {}
        self.joint = W.IntSlider(value=0, min=0, max=J - 1, description="joint")
        self.z = W.IntSlider(value=D // 2, min=0, max=D - 1, description="z slice")
        self._start((self.joint, self.z), [W.HBox([self.joint, self.z])])

    def render(self) -> None:
        """Redraw the current joint's slice (called by every slider change)."""
        j, z = self.joint.value, self.z.value
        volume = self.heatmaps[j].detach().cpu().float()
        fig, ax = plt.subplots(figsize=(3.6, 3.4))
        ax.imshow(volume[z].numpy(), cmap="viridis", vmin=float(volume.min()),
                  vmax=float(volume.max()))  # fmt: skip
        for name, m in self.marks.items():
            x, y, mz = (float(c) for c in m[j])
            if abs(mz - z) <= 1.0:  # a mark is drawn on the slices it lies within
                ax.scatter([x], [y], s=40, facecolors="none", edgecolors="white")
                ax.annotate(name, (x, y), color="white", fontsize=8)
        ax.set_title(f"joint {j}, z = {z}")
        ax.set_xticks([])
        ax.set_yticks([])
        show_figure(self.output, fig)
        self.rendered = {"joint": j, "z": z}
