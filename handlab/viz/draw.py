"""Matplotlib drawing of hands: skeletons, sample panels, heatmap overlays (Agg-safe).

Taught in chapter 00 (``notebooks/00_tour.py``).

Pixel centres sit at integer coordinates, which is also what ``imshow`` does by default, so
keypoints drawn with :func:`draw_skeleton` land on the pixels they name. Bones and joints are
coloured per finger (:data:`FINGER_COLORS`); invisible joints are hollow circles and bones that
touch one are dashed.

>>> import torch
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots()
>>> artists = draw_skeleton(ax, torch.rand(21, 2) * 64)
>>> len(artists["bones"].get_segments()), len(artists["joints"].get_offsets())
(20, 21)
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from handlab._checks import Array, check_shape, to_numpy
from handlab.skeleton import BONES, FINGERS, NUM_JOINTS

__all__ = ["FINGER_COLORS", "draw_skeleton", "joint_colors", "overlay_heatmap", "show_sample"]


# One hue per finger (colour-blind-safe Okabe-Ito palette); the wrist is black.
FINGER_COLORS: dict[str, str] = {
    "wrist": "#000000",
    "thumb": "#D55E00",
    "index": "#E69F00",
    "middle": "#009E73",
    "ring": "#0072B2",
    "little": "#CC79A7",
}


def joint_colors() -> list[str]:
    """The colour of each canonical joint (its finger's; the wrist's is black).

    >>> joint_colors()[0], joint_colors()[8] == FINGER_COLORS["index"]
    ('#000000', True)
    """
    finger_of = {j: name for name, joints in FINGERS.items() for j in joints}
    return [FINGER_COLORS[finger_of.get(j, "wrist")] for j in range(NUM_JOINTS)]


def _image_hwc(image: Array) -> np.ndarray:
    """(3, H, W) / (1, H, W) tensor or (H, W[, 3]) array -> (H, W[, 3]) float array for imshow."""
    img = to_numpy("image", image, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"image: expected (3, H, W), (H, W, 3) or (H, W), got {img.shape}")
    return np.clip(img, 0.0, 1.0) if img.ndim == 3 else img


def draw_skeleton(
    ax: Axes,
    keypoints: Array,
    visibility: Array | None = None,
    *,
    color: str | None = None,
    linewidth: float = 2.0,
    markersize: float = 20.0,
    label: str | None = None,
) -> dict[str, Any]:
    """Draw 21 joints and 20 bones on ``ax`` (pixel coordinates, image axes).

    Args:
        ax: a matplotlib Axes (usually showing the image).
        keypoints: (21, 2) pixels (x, y).
        visibility: optional (21,); joints with 0 are hollow, bones touching them dashed.
        color: one colour for the whole hand (e.g. predictions vs ground truth) instead of the
            per-finger colours.
        label: legend label, attached to the filled joints.

    Returns:
        dict of the artists: ``bones`` (solid LineCollection), ``hidden_bones`` (dashed),
        ``joints`` (filled, visible) and ``hidden`` (hollow, invisible) PathCollections.
    """
    kp = to_numpy("keypoints", keypoints, dtype=np.float64)
    check_shape("keypoints", kp, (NUM_JOINTS, 2))
    vis = np.ones(NUM_JOINTS, dtype=bool)
    if visibility is not None:
        v = to_numpy("visibility", visibility)
        check_shape("visibility", v, (NUM_JOINTS,))
        vis = v > 0
    colors = np.array([color] * NUM_JOINTS if color is not None else joint_colors())
    seen = [i for i, (a, b) in enumerate(BONES) if vis[a] and vis[b]]
    unseen = [i for i in range(len(BONES)) if i not in seen]
    segs = np.array([[kp[a], kp[b]] for a, b in BONES])  # (20, 2, 2)
    bone_colors = colors[[b for _, b in BONES]]  # a bone takes its child's finger colour
    bones = LineCollection(segs[seen], colors=bone_colors[seen], linewidths=linewidth)
    hidden_bones = LineCollection(
        segs[unseen], colors=bone_colors[unseen], linewidths=linewidth * 0.6, linestyles="--"
    )
    ax.add_collection(bones)
    ax.add_collection(hidden_bones)
    joints = ax.scatter(
        kp[vis, 0], kp[vis, 1], s=markersize, c=colors[vis], zorder=3, label=label, linewidths=0
    )
    hidden = ax.scatter(
        kp[~vis, 0],
        kp[~vis, 1],
        s=markersize,
        facecolors="none",
        edgecolors=colors[~vis],
        zorder=3,
        linewidths=1.2,
    )
    return {"bones": bones, "hidden_bones": hidden_bones, "joints": joints, "hidden": hidden}


_PANELS = ("image", "depth", "mask", "keypoints")


def show_sample(sample: dict[str, Any], *, axes: Sequence[Axes] | None = None) -> Figure:
    """One row of panels from a sample dict: image (+ skeleton), depth, mask, skeleton alone.

    Args:
        sample: keys (all optional, at least one of the first four) ``image`` (3, H, W) in
            [0, 1], ``depth`` (1, H, W) mm (0 = no measurement, left blank), ``mask``
            (1, H, W), ``keypoints`` (21, 2) px, ``visibility`` (21,).
        axes: Axes to draw into, one per present panel; a new figure otherwise.

    Returns:
        the Figure (``plt.close(fig)`` it when done in a loop).

    >>> import torch
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = show_sample({"image": torch.rand(3, 32, 32), "mask": torch.ones(1, 32, 32)})
    >>> [ax.get_title() for ax in fig.axes]
    ['image', 'mask']
    >>> plt.close(fig)
    """
    if not isinstance(sample, dict):
        raise TypeError(f"sample: expected a dict, got {type(sample).__name__}")
    panels = [k for k in _PANELS if k in sample]
    if not panels:
        raise ValueError(f"sample: expected at least one of {_PANELS}, got keys {sorted(sample)}")
    if axes is None:
        fig, grid = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), squeeze=False)
        axes = list(grid[0])
    elif len(axes) != len(panels):
        raise ValueError(f"axes: expected {len(panels)} Axes for panels {panels}, got {len(axes)}")
    fig = axes[0].figure
    vis = sample.get("visibility")
    for ax, key in zip(axes, panels, strict=True):
        if key == "image":
            ax.imshow(_image_hwc(sample["image"]))
        elif key == "depth":
            depth = to_numpy("depth", sample["depth"], dtype=np.float32)
            depth = np.squeeze(depth, 0) if depth.ndim == 3 else depth
            shown = ax.imshow(np.ma.masked_less_equal(depth, 0), cmap="viridis")
            fig.colorbar(shown, ax=ax, fraction=0.046, label="mm")
        elif key == "mask":
            mask = to_numpy("mask", sample["mask"])
            ax.imshow(np.squeeze(mask, 0) if mask.ndim == 3 else mask, cmap="gray", vmin=0, vmax=1)
        if "keypoints" in sample and key in ("image", "keypoints"):
            draw_skeleton(ax, sample["keypoints"], vis)
        if key == "keypoints":
            ax.set_aspect("equal")
            if "image" in sample:  # same frame as the image panel
                h, w = _image_hwc(sample["image"]).shape[:2]
                ax.set_xlim(-0.5, w - 0.5)
                ax.set_ylim(h - 0.5, -0.5)
            else:
                ax.autoscale_view()
                ax.invert_yaxis()  # image axes: y down
        ax.set_title(key)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def overlay_heatmap(
    ax: Axes | None, image: Array, heatmap: Array, alpha: float = 0.5, *, cmap: str = "jet"
) -> Figure:
    """Show ``image`` with a heatmap stretched over it (a stride-s map covers s x s pixels).

    Args:
        ax: Axes to draw into, or None for a new figure.
        image: (3, H, W) in [0, 1] (or (H, W, 3) / (H, W)).
        heatmap: (h, w) any real values; drawn with extent ``(-0.5, W - 0.5, H - 0.5, -0.5)`` so
            heatmap cell centres land on the input pixels they stand for.
        alpha: heatmap opacity in [0, 1].

    Returns:
        the Figure; the heatmap is ``ax.images[-1]``.

    >>> import torch
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = overlay_heatmap(None, torch.rand(3, 16, 16), torch.rand(4, 4))
    >>> fig.axes[0].images[-1].get_extent()
    [-0.5, 15.5, 15.5, -0.5]
    >>> plt.close(fig)
    """
    img = _image_hwc(image)
    hm = to_numpy("heatmap", heatmap, dtype=np.float32)
    check_shape("heatmap", hm, (None, None))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3.5))
    h, w = img.shape[:2]
    ax.imshow(img, cmap=None if img.ndim == 3 else "gray")
    ax.imshow(hm, cmap=cmap, alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_xticks([])
    ax.set_yticks([])
    return ax.figure
