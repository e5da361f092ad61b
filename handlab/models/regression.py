"""Direct coordinate regression (seminar seed 001): a ResNet-34 trunk *without* average pooling,
flattened, then one fully connected layer to 42 numbers, trained with an L2 loss.

Taught in chapter 02 (``notebooks/02_compare_2d.py``, the families compared).

Seed 001's report also tried Inception-v3 and Inception-ResNet-v2 (its best network), stock, with
global average pooling; both are options here (``backbone="inception_v3"`` from torchvision,
``"inception_resnet_v2"`` from timm, random weights). The flattened trunk ties the network to one
input size: other sizes raise a ``ValueError``. The seed's four networks at one equal budget:
``benchmarks/seed001_ranking.py`` (its table, restated in chapter 02).

>>> model = create_regression(backbone="resnet18", input_size=64)
>>> model(torch.rand(2, 3, 64, 64))["keypoints"].shape
torch.Size([2, 21, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from handlab.models._common import (
    RESNETS,
    CoordsDecodeMixin,
    ImageNormalize,
    check_fixed_size,
    check_keypoint_batch,
    check_size,
    resnet_trunk,
    to_image_units,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["DirectRegression", "RegressionConfig", "create_regression"]


@dataclass(frozen=True)
class RegressionConfig:
    # Seed 001's ResNet-34; any key of RESNETS, "inception_v3" (seed 001's weakest model) or
    # "inception_resnet_v2" (its best).
    backbone: str = "resnet34"
    # Square input; seed 001 used 128 px crops. The FC layer's size depends on it.
    input_size: int = 128
    num_joints: int = 21


class DirectRegression(CoordsDecodeMixin, PoseModel):
    """``images (B, 3, S, S)`` in [0, 1] -> ``keypoints`` (B, 21, 2) input pixels (x, y).

    The FC output ``coords`` (B, 42) is in units of the image size centred on the image centre
    (0 = centre, +-0.5 = the borders), so a zero-initialised layer starts at the centre.
    """

    def __init__(self, config: RegressionConfig) -> None:
        super().__init__()
        self.config = config
        self.num_joints = config.num_joints
        self.input_size = config.input_size  # the contract's fixed side: the FC head needs it
        self.normalize = ImageNormalize()
        size = config.input_size
        if config.backbone == "inception_v3":
            # Stock Inception-v3 with its global average pooling (seed 001); >= 75 px input.
            if size < 75:
                raise ValueError(f"input_size: expected >= 75 for inception_v3, got {size}")
            net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
            net.fc = nn.Identity()
            self.backbone, features = net, 2048
        elif config.backbone == "inception_resnet_v2":
            if size < 75:
                raise ValueError(f"input_size: expected >= 75 for inception_resnet_v2, got {size}")
            import timm  # imported late: only this backbone needs it

            # Stock, with global average pooling, as seed 001 used it; never downloaded.
            net = timm.create_model("inception_resnet_v2", pretrained=False, num_classes=0)
            self.backbone, features = net, net.num_features
        else:
            if size % 32:
                raise ValueError(f"input_size: expected a multiple of 32, got {size}")
            if config.backbone not in RESNETS:
                choices = [*sorted(RESNETS), "inception_resnet_v2", "inception_v3"]
                raise ValueError(f"backbone: expected one of {choices}, got {config.backbone!r}")
            trunk, channels = resnet_trunk(config.backbone)
            self.backbone = nn.Sequential(trunk, nn.Flatten())
            features = channels * (size // 32) ** 2
        self.fc = nn.Linear(features, 2 * config.num_joints)
        nn.init.zeros_(self.fc.bias)
        nn.init.normal_(self.fc.weight, std=0.001)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=1)
        check_fixed_size(images, self.config.input_size, why="for this FC head")
        coords = self.fc(self.backbone(self.normalize(images)))  # (B, 2J)
        outputs = {"coords": coords}
        outputs.update(self.decode(outputs))
        return outputs

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """L2 on coordinates in image-size units, visibility-weighted. Needs ``batch["keypoints"]``
        (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        size = self.config.input_size
        target = to_image_units(batch["keypoints"], size)  # (B, J, 2)
        pred = outputs["coords"].view(-1, self.num_joints, 2)  # (B, J, 2)
        err = ((pred - target) ** 2).sum(-1)  # (B, J)
        loss = (err * batch["visibility"]).mean()
        epe = ((outputs["keypoints"] - batch["keypoints"]).norm(dim=-1)).mean()
        return loss, {"l2": float(loss.detach()), "epe_px": float(epe.detach())}


@register_model("regression")
def create_regression(**config: object) -> DirectRegression:
    """Build a :class:`DirectRegression` from :class:`RegressionConfig` keywords."""
    return DirectRegression(RegressionConfig(**config))
