"""SimpleBaseline / PoseResNet (Xiao, Wu & Wei, "Simple Baselines for Human Pose Estimation and
Tracking", ECCV 2018; seminar seed 000): a ResNet trunk, three 4x4 transposed convolutions and a
1x1 convolution to one heatmap per joint at output stride 4.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``).

Targets are unit-peak Gaussians (sigma 2 heatmap pixels) weighted by visibility, the loss is the
mean over joints of ``0.5 * MSE`` (the paper's ``JointsMSELoss``), ``forward`` decodes by argmax
plus a quarter-pixel shift towards the higher neighbour, and ``flip_test`` averages the heatmaps of
the image and of its mirror image.

>>> model = create_simplebaseline(head_width=32)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["heatmaps"].shape, out["keypoints"].shape
(torch.Size([2, 21, 16, 16]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from handlab.models import _heatmaps as hc
from handlab.models._common import ImageNormalize, check_keypoint_batch, check_size, resnet_trunk
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

if TYPE_CHECKING:
    from handlab.models.integral import IntegralConfig

__all__ = [
    "DeconvHead",
    "ResNetDeconv",
    "SimpleBaseline",
    "SimpleBaselineConfig",
    "create_simplebaseline",
    "deconv_layers",
]


@dataclass(frozen=True)
class SimpleBaselineConfig:
    # ResNet-18 trains in minutes on a CPU at 128 px; the paper's resnet50..152 are options.
    backbone: str = "resnet18"
    # Training resolution (square): 128 px keeps chapter 01 fast; the network takes any
    # multiple of 32 (the trunk's stride) and heatmaps come out at input / 4.
    input_size: int = 128
    # The paper's 256 filters per deconvolution; 64-128 make faster CPU recipes.
    head_width: int = 256
    # Three deconvolutions take stride 32 back to stride 4 (the paper's choice).
    head_layers: int = 3
    # Gaussian target sigma in heatmap pixels (the paper's 2 at 64x48 heatmaps).
    sigma: float = 2.0
    # Average with the mirrored image's heatmaps at test time (paper: +~1 AP); off by default
    # because it doubles the cost and attribution wants one forward path.
    flip_test: bool = False
    # The codec's decoder for ``keypoints``: the SimpleBaseline paper's quarter-pixel rule;
    # "taylor" (DARK) is exact on clean peaks. ``decode`` always uses the local soft-argmax.
    decoder: str = "quarter"
    num_joints: int = 21


def deconv_layers(in_channels: int, width: int, layers: int) -> nn.Sequential:
    """``layers`` x [ConvTranspose2d(4, stride 2, pad 1), BN, ReLU]: (B, C, h, w) ->
    (B, width, h * 2**layers, w * 2**layers)."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [
            nn.ConvTranspose2d(in_channels if i == 0 else width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*blocks)


class DeconvHead(nn.Module):
    """:func:`deconv_layers`, then a 1x1 conv to ``out`` maps.

    (B, C, h, w) -> (B, out, h * 2**layers, w * 2**layers).
    """

    def __init__(self, in_channels: int, width: int, out: int, layers: int = 3) -> None:
        super().__init__()
        self.deconv = deconv_layers(in_channels, width, layers)
        self.final = nn.Conv2d(width if layers else in_channels, out, kernel_size=1)
        # The paper initialises the output layer with std 0.001 and zero bias.
        nn.init.normal_(self.final.weight, std=0.001)
        nn.init.zeros_(self.final.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(features))


class ResNetDeconv(PoseModel):
    """The network SimpleBaseline and integral regression share: ``normalize``, a ResNet
    ``backbone`` and a :class:`DeconvHead` to one map per joint at ``stride`` 32 / 2^head_layers.

    Subclasses add the decoder and the loss; ``config`` needs ``backbone``, ``head_width``,
    ``head_layers`` (0-3) and ``num_joints``.
    """

    def __init__(self, config: SimpleBaselineConfig | IntegralConfig) -> None:
        super().__init__()
        if config.head_layers not in (0, 1, 2, 3):
            raise ValueError(f"head_layers: expected 0-3 (stride 32-4), got {config.head_layers}")
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        self.backbone, channels = resnet_trunk(config.backbone)
        self.head = DeconvHead(channels, config.head_width, config.num_joints, config.head_layers)
        self.stride = 32 // 2**config.head_layers


class SimpleBaseline(hc.SoftDecodeMixin, ResNetDeconv):
    """PoseResNet: ``images (B, 3, H, W)`` in [0, 1], H and W multiples of 32.

    ``forward`` returns ``heatmaps`` (B, 21, H/4, W/4), ``keypoints`` (B, 21, 2) input pixels
    (x, y) from the codec's ``config.decoder`` (argmax + quarter pixel by default) and ``scores``
    (B, 21), each map's maximum; ``decode`` is the differentiable
    local soft-argmax around each peak.
    """

    def __init__(self, config: SimpleBaselineConfig) -> None:
        hc.check_method(config.decoder)
        super().__init__(config)
        self.multiple = 32  # the trunk's total stride

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Raw heatmaps (B, J, H/s, W/s) for normalised-inside images (no flip averaging)."""
        return self.head(self.backbone(self.normalize(images)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=self.multiple)
        heatmaps = self.heatmaps(images)  # (B, J, h, w)
        if self.config.flip_test:
            # The flipped image's heatmaps, mirrored back: one hand, one skeleton, so no joint
            # swap; with handlab.codecs' cell-centre convention the cells mirror exactly.
            mirrored = self.heatmaps(images.flip(-1)).flip(-1)  # (B, J, h, w)
            heatmaps = 0.5 * (heatmaps + mirrored)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )  # (B, J, 2), (B, J)
        return {"heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Visibility-weighted heatmap MSE. Needs ``batch["keypoints"]`` (B, 21, 2) px and
        ``batch["visibility"]`` (B, 21)."""
        heatmaps = outputs["heatmaps"]
        check_keypoint_batch(batch, self.num_joints)
        loss = hc.heatmap_loss(heatmaps, batch, stride=self.stride, sigma=self.config.sigma)
        return loss, {"heatmap": float(loss.detach())}


@register_model("simplebaseline")
def create_simplebaseline(**config: object) -> SimpleBaseline:
    """Build a :class:`SimpleBaseline` from :class:`SimpleBaselineConfig` keywords."""
    return SimpleBaseline(SimpleBaselineConfig(**config))
