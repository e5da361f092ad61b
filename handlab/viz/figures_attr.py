"""Attribution figures of chapters 08 and 09 (drawing only; the README's recipes that compute
attributions to draw live in :mod:`handlab.figures`).

Taught in chapters 08 (``notebooks/08_poseig.py``) and 09 (``notebooks/09_indices.py``).
matplotlib only; plotting functions return the ``Figure`` and never call ``show``. The module
never selects a backend (a notebook keeps its inline one; headless runs fall back to Agg).

- :func:`plot_paths`: points of integration paths (straight with each baseline, progressive blur).
- :func:`plot_completeness`: the relative completeness gap against the number of steps.
- :func:`plot_overlays`: one image with several attribution maps (methods, models) side by side.
- :func:`plot_relation`: the J x J relation index with the joint groups marked.
- :func:`plot_group_indices`: FI / LI / DI per joint group for several models (bars).

>>> fig = plot_overlays(torch.rand(3, 16, 16), {"a": torch.rand(16, 16), "b": torch.rand(16, 16)})
>>> len(fig.axes)
3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from handlab._checks import check_shape, check_tensor
from handlab.skeleton import GROUPS, JOINT_NAMES, NUM_JOINTS

__all__ = [
    "plot_completeness",
    "plot_group_indices",
    "plot_overlays",
    "plot_paths",
    "plot_relation",
]

GROUP_ORDER = ("wrist", "MCP", "PIP", "DIP", "TIP")


def _rgb(image: torch.Tensor) -> np.ndarray:
    check_tensor("image", image)
    check_shape("image", image, (3, None, None))
    return image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def plot_paths(
    paths: Mapping[str, object], nodes: Sequence[float] = (0, 0.25, 0.5, 0.75, 1)
) -> Figure:
    """One row per path, one column per node ``s``: the path's point for the first image.

    Args:
        paths: name -> a :class:`~handlab.attribution.paths.StraightPath` or
            :class:`~handlab.attribution.paths.BlurPath` over RGB images (B, 3, H, W).
        nodes: the values of ``s`` in [0, 1] to show.

    >>> from handlab.attribution.paths import BlurPath
    >>> len(plot_paths({"blur": BlurPath(torch.rand(1, 3, 32, 32), folds=4)}, (0, 1)).axes)
    2
    """
    if not paths:
        raise ValueError("paths: expected at least one path")
    if not nodes or any(not 0 <= float(s) <= 1 for s in nodes):
        raise ValueError(f"nodes: expected values in [0, 1], got {list(nodes)}")
    s = torch.tensor([float(v) for v in nodes], dtype=torch.float64)
    fig, axes = plt.subplots(
        len(paths), len(nodes), figsize=(1.7 * len(nodes), 1.7 * len(paths)), squeeze=False
    )
    for r, (name, path) in enumerate(paths.items()):
        row = axes[r]
        points, _ = path.points(s)  # (n, B, 3, H, W)
        for ax, si, point in zip(row, nodes, points, strict=True):
            ax.imshow(_rgb(point[0]))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"s = {si:g}", fontsize=8)
        row[0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def plot_completeness(
    table: pd.DataFrame, y: str = "rel_delta", title: str = "Completeness gap"
) -> Figure:
    """A completeness gap against steps, one line per (path, method), log-log.

    Args:
        table: columns ``path``, ``method``, ``steps`` and ``y``, e.g. ``rel_delta``
            (|delta| / |F(x) - F(x')|) or ``abs_delta`` (|delta|, likelihood units).

    >>> t = pd.DataFrame({"path": ["p"] * 2, "method": ["m"] * 2, "steps": [2, 4],
    ...                   "rel_delta": [0.1, 0.01]})
    >>> len(plot_completeness(t).axes[0].lines)
    1
    """
    missing = {"path", "method", "steps", y} - set(table.columns)
    if missing:
        raise ValueError(f"table: expected columns path, method, steps, {y}; missing {missing}")
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for (path, method), part in table.groupby(["path", "method"], sort=False):
        part = part.sort_values("steps")
        ax.plot(part["steps"], part[y].abs().clip(lower=1e-12), marker="o",
                label=f"{path}, {method}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("steps (path points)")
    ax.set_ylabel(y)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig


def plot_overlays(
    image: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    *,
    points: Mapping[str, torch.Tensor] | None = None,
    target: torch.Tensor | None = None,
    cols: int = 4,
) -> Figure:
    """The image, then each map (H, W) in [0, 1] overlaid on it, titled by its key.

    Args:
        image: (3, H, W) in [0, 1]; maps: title -> (H, W); points: title -> (2,) px (x, y), a
            predicted joint drawn as a cyan dot; target: (2,) px, the ground truth (white cross).
    """
    rgb = _rgb(image)
    if not maps:
        raise ValueError("maps: expected at least one map")
    for name, m in maps.items():
        check_shape(f"maps[{name!r}]", m, tuple(rgb.shape[:2]))
    cols = min(cols, len(maps) + 1)
    rows = int(np.ceil((len(maps) + 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.5 * rows), squeeze=False)
    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title("image", fontsize=8)
    for ax, (name, m) in zip(axes.flat[1:], maps.items(), strict=False):
        ax.imshow(rgb)
        ax.imshow(m.detach().float().cpu().numpy(), cmap="inferno", alpha=0.65, vmin=0, vmax=1)
        if points is not None and name in points:
            ax.scatter(*[float(v) for v in points[name]], s=18, c="cyan", edgecolors="black")
        ax.set_title(name, fontsize=8)
    if target is not None:
        for ax in axes.flat[: len(maps) + 1]:
            ax.scatter(*[float(v) for v in target], s=30, c="white", marker="x")
    for ax in axes.flat[len(maps) + 1 :]:
        ax.remove()
    for ax in fig.axes:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_relation(ri: torch.Tensor, title: str = "Relation index RI[source, target]") -> Figure:
    """A (21, 21) relation index (NaN allowed) as an image, the groups' borders marked.

    >>> len(plot_relation(torch.ones(21, 21)).axes)
    2
    """
    check_tensor("ri", ri)
    check_shape("ri", ri, (NUM_JOINTS, NUM_JOINTS))
    fig, ax = plt.subplots(figsize=(7, 6), constrained_layout=True)
    im = ax.imshow(ri.detach().double().cpu().numpy(), cmap="viridis")
    fig.colorbar(im, ax=ax, label="RI (1 = chance)")
    ax.set_xticks(range(NUM_JOINTS), JOINT_NAMES, rotation=90, fontsize=6)
    ax.set_yticks(range(NUM_JOINTS), JOINT_NAMES, fontsize=6)
    ax.set_xlabel("target joint (whose region)")
    ax.set_ylabel("source joint (whose prediction)")
    for j in GROUPS["MCP"]:
        ax.axvline(j, color="white", alpha=0.35, linewidth=4)
    ax.set_title(title)
    return fig


def plot_group_indices(table: pd.DataFrame, indices: Sequence[str] = ("FI", "LI", "DI")) -> Figure:
    """Bars of each index per joint group (wrist..TIP), one colour per model.

    Args:
        table: :func:`handlab.attribution.compare_models` output with ``by="group"`` (columns
            model, group, index, value).

    >>> t = pd.DataFrame({"model": ["a", "a"], "group": ["wrist", "TIP"], "index": ["FI", "FI"],
    ...                   "value": [1.0, 2.0]})
    >>> len(plot_group_indices(t, indices=["FI"]).axes)
    1
    """
    missing = {"model", "group", "index", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"table: expected a compare_models(by='group') table; missing {missing}")
    unknown = [i for i in indices if i not in set(table["index"])]
    if unknown or not indices:
        raise ValueError(f"indices: expected some of {sorted(set(table['index']))}, got {indices}")
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, len(indices), figsize=(4.2 * len(indices), 3.4), squeeze=False)
    width = 0.8 / len(models)
    x = np.arange(len(GROUP_ORDER))
    for ax, index in zip(axes[0], indices, strict=True):
        part = table[table["index"] == index]
        for k, model in enumerate(models):
            rows = part[part["model"] == model].set_index("group")["value"]
            values = [rows.get(g, np.nan) for g in GROUP_ORDER]
            ax.bar(x + (k - (len(models) - 1) / 2) * width, values, width, label=model)
        if index in ("FI", "LI"):
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")  # chance level
        ax.set_xticks(x, GROUP_ORDER)
        ax.set_title(index)
        ax.grid(alpha=0.3, axis="y")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
