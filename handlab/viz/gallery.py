"""A gallery of synthetic samples: image, image with keypoints, depth, mask (``make figures``).

Taught in chapter 00 (``notebooks/00_tour.py``). Draws the skeleton with matplotlib directly
(bones coloured per finger; hidden joints hollow), so it needs nothing else from ``handlab.viz``.
The README's figure is :func:`handlab.figures.synth_gallery` (it generates the samples).

>>> from handlab.synth import generate
>>> fig = plot_gallery(generate(2, seed=0, size=64))
>>> len(fig.axes)  # 4 panels and a colour bar per sample
10
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from handlab._checks import check_range
from handlab.skeleton import BONES

__all__ = ["plot_gallery"]

FINGER_COLORS = ("#e6194b", "#f58231", "#3cb44b", "#4363d8", "#911eb4")


def _draw_hand(ax: plt.Axes, keypoints: torch.Tensor, visibility: torch.Tensor) -> None:
    """Skeleton of one hand: keypoints (21, 2) px (x, y), visibility (21,) 0/1."""
    for child in range(1, 21):
        parent = BONES[child - 1][0]
        color = FINGER_COLORS[(child - 1) // 4]
        xs = [float(keypoints[parent, 0]), float(keypoints[child, 0])]
        ys = [float(keypoints[parent, 1]), float(keypoints[child, 1])]
        ax.plot(xs, ys, color=color, linewidth=1.2)
    for j in range(21):
        color = "white" if j == 0 else FINGER_COLORS[(j - 1) // 4]
        visible = bool(visibility[j] > 0.5)
        ax.scatter(
            float(keypoints[j, 0]),
            float(keypoints[j, 1]),
            s=10,
            facecolors=color if visible else "none",
            edgecolors=color,
            linewidths=0.8,
            zorder=3,
        )


def plot_gallery(samples: dict[str, torch.Tensor], *, title: str | None = None) -> Figure:
    """One row per sample: image, image + keypoints, depth (mm), mask.

    Args:
        samples: :func:`handlab.synth.generate` output: ``image`` (n, 3, S, S) in [0, 1],
            ``keypoints`` (n, 21, 2) px, ``visibility`` (n, 21), ``depth`` (n, 1, S, S) mm,
            ``mask`` (n, 1, S, S); 1 <= n <= 64.
        title: the figure's title.
    """
    missing = {"image", "keypoints", "visibility", "depth", "mask"} - set(samples)
    if missing:
        raise ValueError(f"samples: expected generate()'s keys, missing {sorted(missing)}")
    n, size = samples["image"].shape[0], samples["image"].shape[-1]
    check_range("n", n, lo=1, hi=64)
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.05 * n), squeeze=False)
    titles = ("image", "keypoints (hollow: hidden)", "depth (mm)", "mask")
    for i in range(n):
        image = samples["image"][i].permute(1, 2, 0).numpy()
        depth = samples["depth"][i, 0]
        row = axes[i]
        row[0].imshow(image)
        row[1].imshow(image)
        _draw_hand(row[1], samples["keypoints"][i], samples["visibility"][i])
        near = float(depth[depth > 0].min())
        im = row[2].imshow(depth.numpy(), cmap="viridis_r", vmin=near, vmax=near + 400)
        fig.colorbar(im, ax=row[2], fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
        row[3].imshow(samples["mask"][i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        for ax, name in zip(row, titles, strict=True):
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
