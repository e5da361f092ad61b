"""Matplotlib plots for training and comparing models: training curves, PCK curves, an
accuracy/cost scatter and a grid of predictions drawn on images.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``: training curves, predictions) and
chapter 02 (``notebooks/02_compare_2d.py``: PCK curves and costs of the 2D families).

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> table = pd.DataFrame({"a": [0.1, 0.5, 0.9], "b": [0.0, 0.3, 0.8]}, index=[0, 10, 20])
>>> fig = plot_pck_curves(table)
>>> [line.get_label() for line in fig.axes[0].get_lines()]
['a', 'b']
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from handlab._checks import check_shape, check_tensor
from handlab.skeleton import NUM_JOINTS
from handlab.viz.draw import draw_skeleton

__all__ = ["plot_pck_curves", "plot_tradeoff", "plot_training_curves", "prediction_grid"]

_CURVE_COLUMNS = ("step", "lr", "train_loss", "train_epe", "val_epe_px")


def _check_frame(name: str, table: object, columns: tuple[str, ...] = ()) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name}: expected a pandas.DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ValueError(f"{name}: expected at least one row, got an empty table")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: expected columns {list(columns)}, missing {missing}")


def plot_training_curves(curves: pd.DataFrame, *, title: str = "") -> Figure:
    """Three panels against the training step: the training loss (log scale), the training and
    validation EPE (px) and the learning rate.

    Args:
        curves: one row per validation, as :func:`handlab.zoo.curves` returns it: columns
            ``step``, ``lr``, ``train_loss``, ``train_epe`` and ``val_epe_px``.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> c = pd.DataFrame({"step": [1, 2], "lr": [1e-3, 1e-4], "train_loss": [0.1, 0.05],
    ...                   "train_epe": [9.0, 5.0], "val_epe_px": [10.0, 6.0]})
    >>> fig = plot_training_curves(c)
    >>> len(fig.axes), fig.axes[1].get_lines()[1].get_ydata().tolist()
    (3, [10.0, 6.0])
    >>> plt.close(fig)
    """
    _check_frame("curves", curves, _CURVE_COLUMNS)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    steps = curves["step"].to_numpy()
    axes[0].plot(steps, curves["train_loss"], marker="o")
    axes[0].set(yscale="log", title="training loss", xlabel="step")
    axes[1].plot(steps, curves["train_epe"], marker="o", label="train (running mean)")
    axes[1].plot(steps, curves["val_epe_px"], marker="s", label="validation")
    axes[1].set(title="EPE (px)", xlabel="step")
    axes[1].legend()
    axes[2].plot(steps, curves["lr"], marker="o")
    axes[2].set(title="learning rate", xlabel="step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_pck_curves(table: pd.DataFrame, *, title: str = "PCK", unit: str = "px") -> Figure:
    """PCK against the threshold, one line per column of ``table`` (index: thresholds in
    ``unit``, values: fractions in [0, 1]); the legend keeps the column order."""
    _check_frame("table", table)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    thresholds = table.index.to_numpy(dtype=float)
    for name in table.columns:
        ax.plot(thresholds, table[name].to_numpy(dtype=float), label=str(name))
    ax.set(xlabel=f"threshold ({unit})", ylabel="PCK", ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_tradeoff(table: pd.DataFrame, x: str, y: str, *, title: str = "") -> Figure:
    """Scatter of column ``y`` against column ``x``, each point labelled by its index (one row
    per model), e.g. EPE against milliseconds per image.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> t = pd.DataFrame({"ms": [1.0, 2.0], "epe": [5.0, 3.0]}, index=["fast", "slow"])
    >>> fig = plot_tradeoff(t, "ms", "epe")
    >>> [a.get_text() for a in fig.axes[0].texts]
    ['fast', 'slow']
    >>> plt.close(fig)
    """
    _check_frame("table", table, (x, y))
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(table[x], table[y])
    for name, row in table.iterrows():
        ax.annotate(str(name), (row[x], row[y]), textcoords="offset points", xytext=(4, 4))
    ax.set(xlabel=x, ylabel=y, title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def prediction_grid(
    images: torch.Tensor,
    keypoints: torch.Tensor,
    predictions: Mapping[str, torch.Tensor],
    visibility: torch.Tensor | None = None,
    *,
    max_samples: int = 4,
) -> Figure:
    """One row per model, one column per sample: the image, the ground truth (thin white
    skeleton) and the model's prediction (per-finger colours), titled with the sample's EPE.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        keypoints: (N, 21, 2) ground truth, input pixels (x, y).
        predictions: model name -> (N, 21, 2) predicted keypoints, input pixels.
        visibility: optional (N, 21); the EPE counts visible joints only.
        max_samples: columns to draw (the first samples).

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> gt = torch.rand(2, 21, 2) * 31
    >>> fig = prediction_grid(torch.rand(2, 3, 32, 32), gt, {"m": gt + 3.0})
    >>> len(fig.axes), fig.axes[0].get_title()
    (2, 'm: EPE 4.2 px')
    >>> plt.close(fig)
    """
    check_tensor("images", images)
    check_shape("images", images, (None, 3, None, None))
    n = images.shape[0]
    check_shape("keypoints", keypoints, (n, NUM_JOINTS, 2))
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError("predictions: expected a non-empty dict of name -> (N, 21, 2) tensors")
    for name, pred in predictions.items():
        check_shape(f"predictions[{name!r}]", pred, (n, NUM_JOINTS, 2))
    vis = torch.ones(n, NUM_JOINTS) if visibility is None else visibility.detach().cpu()
    check_shape("visibility", vis, (n, NUM_JOINTS))
    if not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"max_samples: expected an int >= 1, got {max_samples!r}")
    cols = min(n, max_samples)
    rows = len(predictions)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.5 * rows), squeeze=False)
    gt = keypoints.detach().cpu()
    for r, (name, pred) in enumerate(predictions.items()):
        pred = pred.detach().cpu()
        for i in range(cols):
            ax = axes[r, i]
            ax.imshow(images[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            draw_skeleton(ax, gt[i], vis[i], color="white", linewidth=0.8, markersize=4)
            draw_skeleton(ax, pred[i], vis[i], linewidth=1.5, markersize=10)
            seen = vis[i] > 0
            err = (pred[i] - gt[i]).norm(dim=-1)[seen]
            epe = float(err.mean()) if bool(seen.any()) else np.nan
            ax.set_title(f"{name}: EPE {epe:.1f} px", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig
