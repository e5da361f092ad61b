"""Integral regression (Sun, Xiao, Liang & Wei, "Integral Human Pose Regression", ECCV 2018):
the SimpleBaseline network, but each joint's map is a logit map whose softmax is read as a
probability, the keypoint is its expected position (soft-argmax), and the loss is L1 on the
coordinates, so the model is trained end to end through the decoder.

Taught in chapter 02 (``notebooks/02_compare_2d.py``, the families compared).

>>> model = create_integral(head_width=32)
>>> model(torch.rand(2, 3, 64, 64))["keypoints"].shape
torch.Size([2, 21, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from handlab.models import _heatmaps as hc
from handlab.models._common import check_keypoint_batch, check_size
from handlab.models.registry import register_model
from handlab.models.simplebaseline import ResNetDeconv

__all__ = ["IntegralConfig", "IntegralRegression", "create_integral"]


@dataclass(frozen=True)
class IntegralConfig:
    # Same trunk and head as SimpleBaseline so chapter 02 compares decoders, not networks.
    backbone: str = "resnet18"
    input_size: int = 128  # training resolution; any multiple of 32 works
    head_width: int = 256  # Sun et al. reuse SimpleBaseline's 256-filter head
    head_layers: int = 3  # stride 4 logit maps
    num_joints: int = 21


class IntegralRegression(ResNetDeconv):
    """``images (B, 3, H, W)`` in [0, 1] (multiples of 32) -> ``heatmaps`` (B, 21, H/4, W/4)
    logits and ``keypoints`` (B, 21, 2) input pixels, the soft-argmax of each logit map.

    The network is SimpleBaseline's (:class:`~handlab.models.simplebaseline.ResNetDeconv`)."""

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=32)
        heatmaps = self.head(self.backbone(self.normalize(images)))  # (B, J, h, w) logits
        outputs = {"heatmaps": heatmaps}
        outputs.update(self.decode(outputs))
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``heatmaps`` logits (B, J, h, w) -> ``keypoints`` (B, J, 2) px."""
        return {"keypoints": hc.soft_argmax(outputs["heatmaps"], stride=self.stride)}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Visibility-weighted L1 on coordinates in heatmap-cell units (Sun et al.'s L1 on
        normalised coordinates). Needs ``batch["keypoints"]`` (B, 21, 2) px and
        ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        diff = (outputs["keypoints"] - batch["keypoints"]).abs().sum(-1)  # (B, J) px
        loss = (diff * batch["visibility"]).mean() / self.stride
        epe = (outputs["keypoints"] - batch["keypoints"]).norm(dim=-1).mean()
        return loss, {"l1": float(loss.detach()), "epe_px": float(epe.detach())}


@register_model("integral")
def create_integral(**config: object) -> IntegralRegression:
    """Build an :class:`IntegralRegression` from :class:`IntegralConfig` keywords."""
    return IntegralRegression(IntegralConfig(**config))
