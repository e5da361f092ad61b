"""The one model contract every handlab model follows (RGB and depth alike).

- ``forward(images)`` takes images exactly as the generator and the loaders return them:
  RGB ``(B, 3, H, W)`` float in [0, 1], or depth ``(B, 1, H, W)`` in mm for depth models. Any
  normalisation happens inside the model, so attribution paths and baselines live in image space.
- It returns a ``dict`` of tensors with at least ``"keypoints"`` ``(B, J, 2)`` in input pixels
  (x, y); 3D models add ``"xyz"`` ``(B, J, 3)`` mm, root-relative (joint 0 at the origin); raw
  outputs keep their own names (``"heatmaps"``, ``"stages"``, ``"location_maps"``, ...).
- ``decode(outputs)`` maps those raw outputs to ``{"keypoints": ..., ("xyz": ...)}``
  *differentiably* (attribution needs gradients through it). ``forward``'s ``"keypoints"`` may use
  a sharper non-differentiable decoder; both must agree closely (the contract test checks).
"""

from __future__ import annotations

import torch
from torch import nn

from handlab._checks import check_finite, check_shape

__all__ = ["PoseModel", "check_images"]


def check_images(
    images: object, *, channels: int, min_size: int = 32, name: str = "images"
) -> None:
    """Validate a model input batch ``(B, C, H, W)``: type, channels, size, finiteness."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor (B, {channels}, H, W), got {type(images).__name__}"
        )
    check_shape(name, images, (None, channels, None, None))
    h, w = images.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f"{name}: expected H and W >= {min_size}, got ({h}, {w})")
    check_finite(name, images)


class PoseModel(nn.Module):
    """Base class: subclasses set the class attributes and implement ``forward`` and ``decode``."""

    input_kind: str = "rgb"  # "rgb": (B, 3, H, W) in [0, 1]; "depth": (B, 1, H, W) mm
    is_3d: bool = False
    num_joints: int = 21

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable decode of raw outputs to ``keypoints`` (B, J, 2) px (and ``xyz``)."""
        raise NotImplementedError

    def check_input(self, images: torch.Tensor) -> None:
        check_images(images, channels=3 if self.input_kind == "rgb" else 1)
