"""An ipywidgets explorer of PoseIG maps: sample, joint, path and number of steps.

Taught in chapter 08 (``notebooks/08_poseig.py``). The logic lives here so it is unit-tested
without a browser: setting a widget's ``.value`` fires its observers and recomputes.

PoseIG explains all joints from each forward, so a result is cached per (sample, path, steps):
changing the joint only redraws. ``rendered`` records what was last drawn, with the joint's
likelihood, its completeness gap and the map's localisation index.

>>> from torch import nn
>>> class Centroid(nn.Module):  # two joints, both at the intensity centroid
...     def forward(self, images):
...         w = images.sum(1)
...         ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
...         k = torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], -1)
...         return {"keypoints": (k / w.sum((1, 2))[:, None])[:, None].expand(-1, 2, 2)}
...     def decode(self, outputs):
...         return outputs
>>> data = {"image": torch.rand(2, 3, 32, 32), "keypoints": torch.full((2, 2, 2), 15.5)}
>>> ex = PoseIGExplorer(Centroid(), data, steps=(2, 4))
>>> ex.joint.value = 1
>>> ex.rendered["joint"], ex.rendered["steps"], len(ex.cache)
(1, 2, 1)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from handlab.attribution.engine import DEFAULT_MAX_BATCH, poseig
from handlab.attribution.indices import localization_index
from handlab.skeleton import JOINT_NAMES, NUM_JOINTS
from handlab.viz.widgets import Explorer, show_figure

__all__ = ["PATHS", "PoseIGExplorer"]

# label -> (path, baseline) for poseig
PATHS: dict[str, tuple[str, str]] = {
    "blur (PoseIG)": ("blur", "black"),
    "straight, black": ("straight", "black"),
    "straight, mean": ("straight", "mean"),
    "straight, blurred": ("straight", "blur"),
    "straight, uniform noise": ("straight", "uniform"),
}


class PoseIGExplorer(Explorer):
    """Browse PoseIG maps of a model over a batch: ``.widget`` is the box to display.

    Args:
        model: a handlab pose model (2D likelihoods against the ground truth).
        data: ``image`` (N, 3, H, W) in [0, 1], ``keypoints`` (N, J, 2) px (ground truth).
        steps: the choices of path points (the blur path uses as many folds); the first is
            the initial value.
        max_batch: images per forward inside the engine.
    """

    def __init__(
        self,
        model: nn.Module,
        data: dict[str, torch.Tensor],
        *,
        steps: tuple[int, ...] = (8, 16, 32, 50),
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        import ipywidgets as W

        for key in ("image", "keypoints"):
            if key not in data:
                raise ValueError(f"data: expected the key {key!r}, got keys {sorted(data)}")
        if not steps or any(not isinstance(s, int) or s < 1 for s in steps):
            raise ValueError(f"steps: expected ints >= 1, got {steps!r}")
        self.model, self.data, self.max_batch = model, data, max_batch
        n, joints = int(data["image"].shape[0]), int(data["keypoints"].shape[1])
        names = JOINT_NAMES if joints == NUM_JOINTS else [f"joint {j}" for j in range(joints)]
        self.sample = W.IntSlider(value=0, min=0, max=n - 1, description="sample")
        self.joint = W.Dropdown(options=[(nm, j) for j, nm in enumerate(names)], value=0,
                                description="joint")  # fmt: skip
        self.path = W.Dropdown(options=list(PATHS), value=next(iter(PATHS)), description="path")
        self.steps = W.Dropdown(options=list(steps), value=steps[0], description="steps")
        self.cache: dict[tuple[int, str, int], Any] = {}
        self._start(
            (self.sample, self.joint, self.path, self.steps),
            [W.HBox([self.sample, self.joint]), W.HBox([self.path, self.steps])],
        )

    def result(self):
        """The PoseIG result (all joints) of the current sample, path and steps (cached)."""
        key = (self.sample.value, self.path.value, self.steps.value)
        if key not in self.cache:
            i, (path, baseline), steps = key[0], PATHS[key[1]], key[2]
            self.cache[key] = poseig(
                self.model, self.data["image"][i : i + 1], self.data["keypoints"][i : i + 1],
                path=path, baseline=baseline, steps=steps, folds=steps, max_batch=self.max_batch,
            )  # fmt: skip
        return self.cache[key]

    def render(self) -> None:
        """Recompute if needed and redraw (called by every widget change)."""
        import matplotlib.pyplot as plt

        res, i, j = self.result(), self.sample.value, self.joint.value
        target = self.data["keypoints"][i : i + 1, j : j + 1].float()  # (1, 1, 2) px
        li = float(localization_index(res.maps[:, j : j + 1], target)[0, 0])
        fig, ax = plt.subplots(figsize=(3.6, 3.6))
        ax.imshow(self.data["image"][i].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        ax.imshow(res.maps[0, j].numpy(), cmap="inferno", alpha=0.65, vmin=0, vmax=1)
        ax.scatter(float(target[0, 0, 0]), float(target[0, 0, 1]), c="white", marker="x")
        ax.set_title(
            f"{self.joint.label}: F = {float(res.likelihood[0, j]):.3f}, "
            f"delta = {float(res.delta[0, j]):.1e}, LI = {li:.2f}",
            fontsize=8,
        )
        ax.set_axis_off()
        show_figure(self.output, fig)
        self.rendered = {
            "sample": i,
            "joint": j,
            "path": self.path.value,
            "steps": self.steps.value,
            "likelihood": float(res.likelihood[0, j]),
            "delta": float(res.delta[0, j]),
            "LI": li,
            "map": res.maps[0, j],
        }
