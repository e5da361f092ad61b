"""Figures for occlusion: HandOccNet's intermediate feature maps and errors by occlusion bucket.

Taught in chapter 06 (``notebooks/06_handoccnet.py``); :func:`plot_buckets` also in chapter 07.
:class:`StageExplorer` browses the stages frame by frame (a slider; with a live kernel the figure
follows it).

Feature maps are drawn as the per-cell L2 norm over channels (how much signal a cell carries), the
way HandOccNet's paper shows ``F_p``, ``F_FIT`` and ``F_SET`` (its figure of stages (a)-(d)).

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> token_norms(torch.ones(1, 4, 3), (2, 2)).shape  # (B, N, C) tokens -> (B, h, w)
torch.Size([1, 2, 2])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from handlab._checks import check_shape, check_tensor
from handlab.viz.draw import draw_skeleton
from handlab.viz.widgets import Explorer, show_figure

__all__ = ["STAGE_PANELS", "StageExplorer", "plot_buckets", "plot_stages", "token_norms"]

# Panels of plot_stages: stage key -> title (the symbols of the paper and of seed 003).
STAGE_PANELS: dict[str, str] = {
    "necessity": "necessity map M",
    "primary": "|F_p| = |F * M|",
    "secondary": "|F_s| = |F * (1 - M)|",
    "injected": "|F_FIT| (after FIT)",
    "enhanced": "|F_SET| (after SET)",
}


def token_norms(tokens: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Per-cell L2 norm of tokens: ``tokens`` (B, h * w, C) in row-major cell order -> (B, h, w).

    >>> token_norms(torch.tensor([[[3.0, 4.0], [0.0, 1.0]]]), (1, 2)).tolist()
    [[[5.0, 1.0]]]
    """
    check_tensor("tokens", tokens)
    h, w = hw
    check_shape("tokens", tokens, (None, h * w, None))
    return tokens.detach().float().norm(dim=-1).reshape(-1, h, w)


def _image(image: torch.Tensor) -> np.ndarray:
    check_shape("image", image, (3, None, None))
    return image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def plot_stages(
    image: torch.Tensor,
    stages: Mapping[str, torch.Tensor],
    *,
    index: int = 0,
    keypoints: torch.Tensor | None = None,
    visibility: torch.Tensor | None = None,
    occluder_mask: torch.Tensor | None = None,
) -> Figure:
    """One row of panels: the image, then each stage of :data:`STAGE_PANELS` over it.

    Args:
        image: (3, H, W) in [0, 1], the sample ``index`` of the batch ``stages`` came from.
        stages: :meth:`handlab.models.handoccnet.HandOccNet.stages` output (batched).
        index: which sample of the batch.
        keypoints: optional (21, 2) px, drawn on the first panel (ground truth).
        visibility: optional (21,), hollow joints where 0.
        occluder_mask: optional (1, H, W) or (H, W), outlined in white on every panel.

    Returns:
        the figure (maps bilinear-free: each cell is a block of ``H / h`` pixels).
    """
    missing = [k for k in ("features", *STAGE_PANELS) if k not in stages]
    if missing:
        raise ValueError(f"stages: expected HandOccNet.stages output, missing keys {missing}")
    rgb = _image(image)
    size_h, size_w = rgb.shape[:2]
    _, _, h, w = stages["features"].shape
    maps = {"necessity": stages["necessity"][index, 0].detach().float()}
    for key in list(STAGE_PANELS)[1:]:
        maps[key] = token_norms(stages[key][index : index + 1], (h, w))[0]
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.6 * (1 + len(maps)), 2.9))
    axes[0].imshow(rgb)
    axes[0].set_title("image")
    if keypoints is not None:
        draw_skeleton(axes[0], keypoints, visibility, markersize=8, linewidth=1.2)
    extent = (-0.5, size_w - 0.5, size_h - 0.5, -0.5)  # cells cover the image exactly
    for ax, (key, values) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(rgb, alpha=0.35)
        vmax = 1.0 if key == "necessity" else None
        shown = ax.imshow(values.cpu().numpy(), extent=extent, alpha=0.65, vmin=0, vmax=vmax)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        ax.set_title(STAGE_PANELS[key], fontsize=9)
    if occluder_mask is not None:
        mask = occluder_mask.detach().float().reshape(size_h, size_w).cpu().numpy()
        for ax in axes:
            ax.contour(mask, levels=[0.5], colors="white", linewidths=0.8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_buckets(
    table: pd.DataFrame, *, title: str = "", unit: str = "px", ax: Any = None
) -> Figure:
    """Grouped bars of a :func:`handlab.occlusion.bucket_table`: one group per bucket (and
    ``all``), one bar per model; the ``joints`` row gives the counts in the tick labels.

    >>> t = pd.DataFrame({"all": [2.0, 10.0], "0-25%": [1.0, 5.0]}, index=["m", "joints"])
    >>> fig = plot_buckets(t, unit="mm")
    >>> [float(b.get_height()) for b in fig.axes[0].patches]
    [2.0, 1.0]
    >>> plt.close(fig)
    """
    if not isinstance(table, pd.DataFrame) or "joints" not in table.index:
        raise TypeError("table: expected a handlab.occlusion.bucket_table DataFrame")
    models = [m for m in table.index if m != "joints"]
    if not models:
        raise ValueError("table: expected at least one model row besides 'joints'")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.2))
    else:
        fig = ax.figure
    cols = list(table.columns)
    x = np.arange(len(cols))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        ax.bar(x + (k - (len(models) - 1) / 2) * width, table.loc[model, cols], width, label=model)
    ax.set_xticks(x, [f"{c}\n({table.loc['joints', c]:.0f})" for c in cols])
    ax.set_ylabel(f"mean error ({unit})")
    ax.set_xlabel("joint occlusion (joints)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class StageExplorer(Explorer):
    """Browse HandOccNet's stages over a batch of frames: a frame slider; ``.widget`` is the box
    to display. Each change runs ``model.stages`` on that frame and redraws :func:`plot_stages`;
    ``rendered`` records the frame and the mean of its necessity map.

    Args:
        model: a :class:`~handlab.models.handoccnet.HandOccNet` (anything with ``stages``).
        data: dict with ``image`` (N, 3, H, W) in [0, 1] and optionally ``keypoints`` (N, 21, 2)
            px, ``visibility`` (N, 21), ``occluder_mask`` (N, 1, H, W).
    """

    def __init__(self, model: Any, data: Mapping[str, torch.Tensor]) -> None:
        import ipywidgets as W

        if not callable(getattr(model, "stages", None)):
            raise TypeError(
                f"model: expected a HandOccNet (with .stages), got {type(model).__name__}"
            )
        if "image" not in data:
            raise ValueError(f"data: expected an 'image' key, got keys {sorted(data)}")
        self.model, self.data = model, data
        n = int(data["image"].shape[0])
        self.frame = W.IntSlider(value=0, min=0, max=n - 1, description="frame")
        self._start([self.frame], [self.frame])

    def render(self) -> None:
        """Run the model on the current frame and redraw its stages."""
        i = self.frame.value
        with torch.no_grad():
            stages = self.model.stages(self.data["image"][i : i + 1])
        extra = {
            k: self.data[k][i]
            for k in ("keypoints", "visibility", "occluder_mask")
            if k in self.data
        }
        fig = plot_stages(self.data["image"][i], stages, **extra)
        show_figure(self.output, fig)
        self.rendered = {"index": i, "necessity_mean": float(stages["necessity"].mean())}
