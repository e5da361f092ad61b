"""Convolutional Pose Machines (Wei, Ramakrishna, Kanade & Sheikh, CVPR 2016), at seminar seed
001's size: 3 stages, 128 features, 5x5 kernels, 22 belief maps (21 joints + background) at
stride 8 (16x16 for 128 px input), Gaussian targets with sigma 1 and intermediate supervision.

Taught in chapter 02 (``notebooks/02_compare_2d.py``, the families compared).

Each stage after the first sees the shared image features *and* the previous stage's belief maps,
so later stages can use the context of other joints (the paper's "implicit spatial model"). As in
OpenPose, all stages share one feature trunk, and the trunk uses batch normalisation so that a
CPU recipe trains in minutes; the paper's separate stage-1 image path and VGG trunk are omitted.

>>> model = create_cpm(features=16)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["stages"].shape, out["heatmaps"].shape
(torch.Size([2, 3, 22, 8, 8]), torch.Size([2, 21, 8, 8]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab.models import _heatmaps as hc
from handlab.models._common import ImageNormalize, check_keypoint_batch, check_size, heatmap_mse
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["CPMConfig", "ConvolutionalPoseMachine", "create_cpm"]


@dataclass(frozen=True)
class CPMConfig:
    stages: int = 3  # seed 001's 3 stages (the paper used 6)
    features: int = 128  # seed 001: 128 features per map
    kernel: int = 5  # seed 001: 5x5 kernels (the paper: 7x7 and 11x11)
    sigma: float = 1.0  # seed 001: sigma 1 on 16x16 maps
    input_size: int = 128  # seed 001's 128 px crops; any multiple of 8 works
    # The codec's decoder for ``keypoints``: the SimpleBaseline paper's quarter-pixel rule;
    # "taylor" (DARK) is exact on clean peaks. ``decode`` always uses the local soft-argmax.
    decoder: str = "quarter"
    num_joints: int = 21


def _conv(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.BatchNorm2d(cout), nn.ReLU(True)]


class ConvolutionalPoseMachine(hc.SoftDecodeMixin, PoseModel):
    """``images (B, 3, H, W)`` in [0, 1] (multiples of 8) -> ``stages`` (B, T, J+1, H/8, W/8),
    ``heatmaps`` (B, J, H/8, W/8) (last stage, joints only) and ``keypoints`` (B, J, 2) px."""

    stride = 8

    def __init__(self, config: CPMConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        self.config = config
        self.num_joints = config.num_joints
        f, k, maps = config.features, config.kernel, config.num_joints + 1
        self.normalize = ImageNormalize()
        self.trunk = nn.Sequential(
            *_conv(3, 64, k), nn.MaxPool2d(2),  # stride 2
            *_conv(64, f, k), nn.MaxPool2d(2),  # stride 4
            *_conv(f, f, k), nn.MaxPool2d(2),  # stride 8
            *_conv(f, f, k),
        )  # fmt: skip
        first = nn.Sequential(*_conv(f, f, k), nn.Conv2d(f, maps, 1))
        later = [
            nn.Sequential(
                *_conv(f + maps, f, k), *_conv(f, f, k), *_conv(f, f, k), nn.Conv2d(f, maps, 1)
            )
            for _ in range(config.stages - 1)
        ]
        self.stages = nn.ModuleList([first, *later])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=self.stride)
        features = self.trunk(self.normalize(images))  # (B, F, h, w)
        beliefs = [self.stages[0](features)]  # [(B, J+1, h, w)]
        for stage in self.stages[1:]:
            beliefs.append(stage(torch.cat([features, beliefs[-1]], dim=1)))
        stages = torch.stack(beliefs, dim=1)  # (B, T, J+1, h, w)
        heatmaps = stages[:, -1, : self.num_joints]  # (B, J, h, w)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        return {"stages": stages, "heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Intermediate supervision: the sum over stages of the heatmap MSE on all 22 maps.
        The background target is ``1 - max_j target_j``. Needs ``batch["keypoints"]``
        (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, self.num_joints)
        stages = outputs["stages"]  # (B, T, J+1, h, w)
        targets, weights = hc.encode(batch, stages.shape[-2:], self.stride, self.config.sigma)
        background = 1.0 - targets.amax(dim=1, keepdim=True)  # (B, 1, h, w)
        targets = torch.cat([targets, background], dim=1)  # (B, J+1, h, w)
        weights = torch.cat([weights, torch.ones_like(weights[:, :1])], dim=1)  # (B, J+1)
        per_stage = [heatmap_mse(stages[:, t], targets, weights) for t in range(stages.shape[1])]
        loss = torch.stack(per_stage).sum()
        return loss, {f"stage{t + 1}": float(v.detach()) for t, v in enumerate(per_stage)}


@register_model("cpm")
def create_cpm(**config: object) -> ConvolutionalPoseMachine:
    """Build a :class:`ConvolutionalPoseMachine` from :class:`CPMConfig` keywords."""
    return ConvolutionalPoseMachine(CPMConfig(**config))
