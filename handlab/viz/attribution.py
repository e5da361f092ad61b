"""Attribution figures: PoseIG maps per joint and the parameter randomisation curves.

Taught in chapters 08 (``notebooks/08_poseig.py``) and 10 (``notebooks/10_sanity_checks.py``).
matplotlib only; every function returns the ``Figure`` and never calls ``show``.

>>> import pandas as pd
>>> df = pd.DataFrame({"step": [0, 1, 0, 1], "unit": ["", "fc", "", "fc"],
...                    "metric": ["ssim", "ssim", "DI", "DI"], "value": [1.0, 0.2, 40.0, 60.0]})
>>> len(plot_randomization(df).axes)
2
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from handlab.attribution.randomization import METRICS

__all__ = ["plot_maps", "plot_randomization"]


def plot_randomization(table: pd.DataFrame, title: str = "Model parameter randomisation") -> Figure:
    """Similarity to the original maps (left) and index means (right) per randomisation step.

    Args:
        table: :func:`handlab.attribution.randomization_test` output (step, unit, randomized,
            metric, value).
    """
    missing = {"step", "unit", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"table: expected a randomization_test table, missing {sorted(missing)}")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for metric, part in table.groupby("metric", sort=False):
        ax = left if metric in METRICS else right
        style = "--" if metric == "constant_maps" else "-"  # a share, not a similarity
        ax.plot(part["step"], part["value"], style, marker="o", label=metric)
    left.axhline(0.2, color="grey", lw=1, ls=":", label="criterion 0.2")
    steps = table.drop_duplicates("step").sort_values("step")
    labels = ["original", *(_short_unit(u) for u in steps["unit"].iloc[1:])]
    for ax, ylabel in ((left, "similarity to original maps"), (right, "index mean")):
        ax.set_xticks(steps["step"], labels, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("randomised unit (cumulative unless independent)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    left.set_ylim(-0.2, 1.05)
    fig.suptitle(title)
    return fig


def _short_unit(unit: str, keep: int = 3) -> str:
    """A tick label for a unit name: each side of a "first..last" range cut to its last ``keep``
    dotted parts (``model.backbone.7.0.conv2`` -> ``7.0.conv2``).

    >>> _short_unit("model.backbone.7.0.conv2..model.backbone.7.1.conv2")
    '7.0.conv2..7.1.conv2'
    """
    return "..".join(".".join(side.split(".")[-keep:]) for side in str(unit).split(".."))


def plot_maps(
    image: torch.Tensor,
    maps: torch.Tensor,
    joints: list[int] | None = None,
    names: list[str] | None = None,
) -> Figure:
    """The image and one PoseIG map per joint overlaid on it.

    Args:
        image: (3, H, W) in [0, 1]; maps: (J, H, W) in [0, 1]; joints: which to show (default all,
            at most 21); names: one title per joint.

    >>> fig = plot_maps(torch.rand(3, 16, 16), torch.rand(2, 16, 16))
    >>> len(fig.axes)
    3
    """
    if image.ndim != 3 or maps.ndim != 3 or tuple(image.shape[1:]) != tuple(maps.shape[1:]):
        raise ValueError(
            "image, maps: expected (3, H, W) and (J, H, W), "
            f"got {tuple(image.shape)}, {tuple(maps.shape)}"
        )
    joints = list(range(min(maps.shape[0], 21))) if joints is None else joints
    cols = min(len(joints) + 1, 6)
    rows = int(np.ceil((len(joints) + 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    rgb = image.detach().permute(1, 2, 0).clamp(0, 1).numpy()
    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title("image", fontsize=8)
    for ax, j in zip(axes.flat[1:], joints, strict=False):
        ax.imshow(rgb)
        ax.imshow(maps[j].detach().numpy(), cmap="inferno", alpha=0.6, vmin=0, vmax=1)
        ax.set_title(names[j] if names else f"joint {j}", fontsize=8)
    for ax in axes.flat[len(joints) + 1 :]:
        ax.remove()
    for ax in fig.axes:
        ax.set_axis_off()
    return fig
