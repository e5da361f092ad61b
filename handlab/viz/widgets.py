"""ipywidgets explorers for the chapters. The logic lives here, not in the notebooks, so it is
unit-tested without a browser: setting a widget's ``.value`` fires its observers.

Taught in chapter 00 (sample explorer); later chapters add attribution explorers.

>>> import torch
>>> data = {"image": torch.rand(2, 3, 32, 32), "keypoints": torch.rand(2, 21, 2) * 31,
...         "visibility": torch.ones(2, 21)}
>>> ex = SampleExplorer(data)
>>> ex.sample.value = 1
>>> ex.rendered["index"]
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["Explorer", "SampleExplorer", "show_figure"]


def _in_kernel() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def show_figure(output: Any, fig: Any) -> None:
    """Show the matplotlib ``fig`` in the ipywidgets ``output`` (cleared first), then close it.

    Outside a kernel (tests, scripts) there is nothing to display into: it is only closed.
    """
    import matplotlib.pyplot as plt

    if _in_kernel():
        output.clear_output(wait=True)
        with output:
            plt.show()
    plt.close(fig)


class Explorer:
    """What every explorer shares: controls whose changes call :meth:`render`, an ``output`` below
    them, ``.widget`` (the box to display) and ``rendered`` (what the last draw showed, which the
    tests read). A subclass makes its controls, calls :meth:`_start`, and draws in ``render``."""

    rendered: dict[str, Any]

    def _start(self, controls: Sequence[Any], rows: Sequence[Any]) -> None:
        """Redraw on every change of ``controls``; ``.widget``: ``rows`` above the output."""
        import ipywidgets as W

        self.output = W.Output()
        self.rendered = {}
        for w in controls:
            w.observe(lambda _change: self.render(), names="value")
        self.widget = W.VBox([*rows, self.output])
        self.render()

    def render(self) -> None:
        """Draw the current selection into ``output`` and record it in ``rendered``."""
        raise NotImplementedError


class SampleExplorer(Explorer):
    """Browse a batch of samples (the generator's or a loader's keys): a sample slider and
    toggles for depth, mask and keypoints; ``.widget`` is the box to display.

    Args:
        data: dict of batched tensors with at least ``image`` (N, 3, H, W) in [0, 1]; optional
            ``depth`` (N, 1, H, W) mm, ``mask`` (N, 1, H, W), ``keypoints`` (N, 21, 2) px,
            ``visibility`` (N, 21).
    """

    def __init__(self, data: dict[str, torch.Tensor]) -> None:
        import ipywidgets as W

        if "image" not in data:
            raise ValueError(f"data: expected an 'image' key, got keys {sorted(data)}")
        self.data = data
        n = int(data["image"].shape[0])
        self.sample = W.IntSlider(value=0, min=0, max=n - 1, description="sample")
        self.panels = W.SelectMultiple(
            options=[k for k in ("image", "depth", "mask") if k in data],
            value=("image",),
            description="panels",
        )
        self.show_keypoints = W.Checkbox(value="keypoints" in data, description="keypoints")
        controls = (self.sample, self.panels, self.show_keypoints)
        self._start(controls, [W.HBox([self.sample, self.show_keypoints]), self.panels])

    def render(self) -> None:
        """Redraw the current sample (called by every widget change)."""
        import matplotlib.pyplot as plt

        i = self.sample.value
        panels = list(self.panels.value) or ["image"]
        fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), squeeze=False)
        for ax, key in zip(axes[0], panels, strict=True):
            x = self.data[key][i]
            if key == "image":
                ax.imshow(x.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            else:
                ax.imshow(x[0].cpu().numpy(), cmap="viridis" if key == "depth" else "gray")
            ax.set_title(key)
            ax.axis("off")
            if self.show_keypoints.value and "keypoints" in self.data:
                kp = self.data["keypoints"][i].cpu()
                vis = self.data.get("visibility", torch.ones(kp.shape[0]))[i].cpu() > 0
                ax.scatter(kp[vis, 0], kp[vis, 1], s=8, c="yellow")
                ax.scatter(kp[~vis, 0], kp[~vis, 1], s=8, facecolors="none", edgecolors="red")
        show_figure(self.output, fig)
        self.rendered = {"index": i, "panels": panels, "keypoints": self.show_keypoints.value}
