"""Figures and an explorer for the sanity checks and the zoo comparison (drawing only; the
README's randomisation curve is computed by :func:`handlab.figures.randomization_curve`).

Taught in chapters 10 (``notebooks/10_sanity_checks.py``) and 11 (``notebooks/11_compare_zoo.py``).

- :func:`plot_map_grid`: one image, one joint, one map per key (randomisation steps, or models)
  side by side: seed 000's Fig. C (maps as layers are randomised) and chapter 11's small
  multiples.
- :class:`MapExplorer`: ipywidgets to browse maps by key, joint and sample.

>>> fig = plot_map_grid(torch.rand(3, 16, 16), {"a": torch.rand(16, 16), "b": torch.rand(16, 16)})
>>> [ax.get_title() for ax in fig.axes]
['image', 'a', 'b']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from handlab.viz.widgets import Explorer, show_figure

__all__ = ["CHAIN", "MapExplorer", "plot_map_grid"]

# The index finger's chain plus the wrist: one joint of every group (wrist/MCP/PIP/DIP/TIP).
CHAIN = (0, 5, 6, 7, 8)


def plot_map_grid(
    image: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    *,
    keypoint: torch.Tensor | None = None,
    title: str | None = None,
    cols: int = 6,
) -> Figure:
    """The image, then one map per key overlaid on it (same colour scale, [0, 1]).

    Args:
        image: (3, H, W) in [0, 1]; maps: name -> (H, W) in [0, 1]; keypoint: (2,) px (x, y),
            drawn as a cross on every panel; cols: panels per row.
    """
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image: expected (3, H, W), got {tuple(image.shape)}")
    bad = {k: tuple(v.shape) for k, v in maps.items() if tuple(v.shape) != tuple(image.shape[1:])}
    if not maps or bad:
        raise ValueError(f"maps: expected name -> (H, W) = {tuple(image.shape[1:])}, got {bad}")
    n = len(maps) + 1
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.3 * rows), squeeze=False)
    rgb = image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    axes[0, 0].imshow(rgb)
    axes[0, 0].set_title("image", fontsize=8)
    for ax, (name, m) in zip(axes.flat[1:], maps.items(), strict=False):
        ax.imshow(rgb)
        ax.imshow(m.detach().cpu().numpy(), cmap="inferno", alpha=0.65, vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
    if keypoint is not None:
        for ax in axes.flat[:n]:
            ax.scatter([float(keypoint[0])], [float(keypoint[1])], marker="x", c="cyan", s=25)
    for ax in axes.flat[n:]:
        ax.remove()
    for ax in fig.axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


class MapExplorer(Explorer):
    """Browse PoseIG maps: a key dropdown (a model or a randomisation step), a joint dropdown
    and a sample slider; ``.widget`` is the box to display.

    Args:
        images: (N, 3, H, W) in [0, 1]; maps: key -> (N, J, H, W) in [0, 1];
        joint_names: J labels for the joint dropdown.

    >>> ex = MapExplorer(torch.rand(2, 3, 8, 8), {"a": torch.rand(2, 2, 8, 8)}, ["x", "y"])
    >>> ex.joint.value = 1
    >>> ex.rendered
    {'key': 'a', 'joint': 1, 'sample': 0}
    """

    def __init__(
        self,
        images: torch.Tensor,
        maps: Mapping[str, torch.Tensor],
        joint_names: Sequence[str],
    ) -> None:
        import ipywidgets as W

        n, j = images.shape[0], len(joint_names)
        bad = {k: tuple(v.shape) for k, v in maps.items() if tuple(v.shape[:2]) != (n, j)}
        if not maps or bad:
            raise ValueError(f"maps: expected key -> ({n}, {j}, H, W) tensors, got {bad or maps}")
        self.images, self.maps = images, dict(maps)
        self.key = W.Dropdown(options=list(self.maps), description="maps of")
        self.joint = W.Dropdown(options=[(s, i) for i, s in enumerate(joint_names)], value=0)
        self.joint.description = "joint"
        self.sample = W.IntSlider(value=0, min=0, max=n - 1, description="sample")
        rows = [W.HBox([self.key, self.joint]), self.sample]
        self._start((self.key, self.joint, self.sample), rows)

    def render(self) -> None:
        """Redraw the chosen map (called by every widget change)."""
        key, j, i = self.key.value, self.joint.value, self.sample.value
        fig = plot_map_grid(self.images[i], {f"{key}, {self.joint.label}": self.maps[key][i, j]})
        show_figure(self.output, fig)
        self.rendered = {"key": key, "joint": j, "sample": i}
