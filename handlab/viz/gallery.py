"""A gallery of synthetic samples: image with keypoints, depth, mask (``make figures``).

Taught in chapter 00 (``notebooks/00_tour.py``). Draws the skeleton with matplotlib directly
(bones coloured per finger; hidden joints hollow), so it needs nothing else from ``handlab.viz``.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "g.png"
>>> synth_gallery(path, n=1, seed=0, size=64).exists()
True
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from handlab._checks import check_range
from handlab.skeleton import BONES
from handlab.synth import generate

__all__ = ["synth_gallery"]

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


def synth_gallery(
    path: str | Path, *, n: int = 8, seed: int = 0, size: int = 128, occluders: float = 0.5
) -> Path:
    """Write a PNG grid of ``n`` samples: image, image + keypoints, depth (mm), mask.

    Returns the path written.
    """
    check_range("n", n, lo=1, hi=64)
    out = generate(n, seed=seed, size=size, occluders=occluders)
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.05 * n), squeeze=False)
    titles = ("image", "keypoints (hollow: hidden)", "depth (mm)", "mask")
    for i in range(n):
        image = out["image"][i].permute(1, 2, 0).numpy()
        depth = out["depth"][i, 0]
        row = axes[i]
        row[0].imshow(image)
        row[1].imshow(image)
        _draw_hand(row[1], out["keypoints"][i], out["visibility"][i])
        near = float(depth[depth > 0].min())
        im = row[2].imshow(depth.numpy(), cmap="viridis_r", vmin=near, vmax=near + 400)
        fig.colorbar(im, ax=row[2], fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
        row[3].imshow(out["mask"][i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        for ax, title in zip(row, titles, strict=True):
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.suptitle(f"handlab.synth.generate(n={n}, seed={seed}, size={size})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
