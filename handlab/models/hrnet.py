"""A small HRNet-style network (Sun, Xiao, Liu & Wang, "Deep High-Resolution Representation
Learning for Human Pose Estimation", CVPR 2019), to test seminar seed 000's remark that a ResNet's
32x downsampling loses the resolution a pose needs.

Taught in chapter 02 (``notebooks/02_compare_2d.py``, the families compared).

The network never goes below the stride-4 resolution of its output: a two-convolution stem reaches
stride 4, then parallel branches at strides 4, 8, 16 (widths w, 2w, 4w) are added one per stage,
and after every stage each branch receives the sum of all branches resampled to its resolution
(HRNet's exchange unit). Heatmaps come from the stride-4 branch. The default is HRNet-W32's
layout shrunk to w = 16 with 2 basic blocks per branch and three stages (HRNet-W32 uses 4 stages,
4 blocks and bottleneck blocks in the first): small enough for a CPU.

>>> model = create_hrnet_small(width=8)
>>> model(torch.rand(2, 3, 64, 64))["heatmaps"].shape
torch.Size([2, 21, 16, 16])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from handlab.models import _heatmaps as hc
from handlab.models._common import ImageNormalize, check_keypoint_batch, check_size
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["HRNetConfig", "HRNetSmall", "create_hrnet_small"]


@dataclass(frozen=True)
class HRNetConfig:
    width: int = 16  # w of the stride-4 branch (HRNet-W32 uses 32); branch k has w * 2**k
    branches: int = 3  # strides 4, 8, 16 (HRNet: 4 branches down to stride 32)
    blocks: int = 2  # basic blocks per branch per stage (HRNet: 4)
    sigma: float = 2.0  # SimpleBaseline's target, so chapter 02 compares like with like
    input_size: int = 128  # training resolution; any multiple of 4 * 2**(branches - 1)
    # The codec's decoder for ``keypoints``: the SimpleBaseline paper's quarter-pixel rule;
    # "taylor" (DARK) is exact on clean peaks. ``decode`` always uses the local soft-argmax.
    decoder: str = "quarter"
    num_joints: int = 21


def _bn_conv(cin: int, cout: int, kernel: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, *([nn.ReLU(inplace=True)] if relu else []))


class _Exchange(nn.Module):
    """HRNet's exchange unit: branch i gets the sum over j of branch j resampled to i's stride
    (upsampling: 1x1 conv then nearest; downsampling: strided 3x3 convs). The last stage feeds
    only the stride-4 output (HRNet's ``multi_scale_output=False``): ``outputs`` = 1."""

    def __init__(self, widths: list[int], outputs: int) -> None:
        super().__init__()
        self.paths = nn.ModuleList()
        for i, wi in enumerate(widths[:outputs]):
            row = nn.ModuleList()
            for j, wj in enumerate(widths):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    up = nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")
                    row.append(nn.Sequential(_bn_conv(wj, wi, 1, 1, relu=False), up))
                else:
                    steps = [_bn_conv(wj, wj, 3, 2, relu=True) for _ in range(i - j - 1)]
                    row.append(nn.Sequential(*steps, _bn_conv(wj, wi, 3, 2, relu=False)))
            self.paths.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.relu(sum(p(x) for p, x in zip(row, xs, strict=True))) for row in self.paths]


class HRNetSmall(hc.SoftDecodeMixin, PoseModel):
    """``images (B, 3, H, W)`` in [0, 1] -> ``heatmaps`` (B, 21, H/4, W/4) and ``keypoints``
    (B, 21, 2) input pixels (argmax + quarter pixel); ``decode`` is the local soft-argmax."""

    stride = 4

    def __init__(self, config: HRNetConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        self.config = config
        self.num_joints = config.num_joints
        self.multiple = 4 * 2 ** (config.branches - 1)
        w = config.width
        widths = [w * 2**k for k in range(config.branches)]
        self.normalize = ImageNormalize()
        self.stem = nn.Sequential(_bn_conv(3, 2 * w, 3, 2, True), _bn_conv(2 * w, w, 3, 2, True))
        self.grow = nn.ModuleList()  # new branch k from branch k - 1 (HRNet's transition)
        self.blocks = nn.ModuleList()  # per stage, per branch: a run of basic blocks
        self.exchange = nn.ModuleList()
        for stage in range(config.branches):
            if stage:
                self.grow.append(_bn_conv(widths[stage - 1], widths[stage], 3, 2, True))
            runs = [
                nn.Sequential(*[BasicBlock(widths[k], widths[k]) for _ in range(config.blocks)])
                for k in range(stage + 1)
            ]
            self.blocks.append(nn.ModuleList(runs))
            last = stage == config.branches - 1
            self.exchange.append(_Exchange(widths[: stage + 1], 1 if last else stage + 1))
        self.final = nn.Conv2d(w, config.num_joints, kernel_size=1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=self.multiple)
        xs = [self.stem(self.normalize(images))]  # [(B, w, H/4, W/4)]
        for stage, (runs, exchange) in enumerate(zip(self.blocks, self.exchange, strict=True)):
            if stage:
                xs.append(self.grow[stage - 1](xs[-1]))  # (B, w 2^k, H/4/2^k, W/4/2^k)
            xs = exchange([run(x) for run, x in zip(runs, xs, strict=True)])
        heatmaps = self.final(xs[0])  # (B, J, H/4, W/4)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        return {"heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Visibility-weighted heatmap MSE (as SimpleBaseline). Needs ``batch["keypoints"]``
        (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        loss = hc.heatmap_loss(
            outputs["heatmaps"], batch, stride=self.stride, sigma=self.config.sigma
        )
        return loss, {"heatmap": float(loss.detach())}


@register_model("hrnet_small")
def create_hrnet_small(**config: object) -> HRNetSmall:
    """Build an :class:`HRNetSmall` from :class:`HRNetConfig` keywords."""
    return HRNetSmall(HRNetConfig(**config))
