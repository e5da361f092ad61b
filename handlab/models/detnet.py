"""DetNet-style 3D joints from RGB (Zhou et al., "Monocular Real-time Hand Shape and Motion Capture
using Multi-modal Data", CVPR 2020, minimal-hand; seminar seed 002).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

A ResNet trunk to stride 16, two 4x4 transposed convolutions back to stride 4 (32x32 maps at 128 px
input, minimal-hand's resolution), the CoordConv grid appended, then three cascaded heads:
2D ``heatmaps`` (J), ``delta_maps`` (20 unit bone directions, 3 each) and ``location_maps``
(J x 3: every cell's guess of each joint's root-relative xyz, in units of ``xyz_unit_mm``). A
joint's ``xyz`` is its location map *read at its heatmap's argmax*, as in minimal-hand; the read
is an index, so gradients flow to the location maps (and so to the image) exactly where the
prediction comes from. Losses are minimal-hand's: heatmap L2, and L2 on the delta and location
maps weighted by the ground-truth heatmaps.

>>> model = create_detnet(head_width=16)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["heatmaps"].shape, out["location_maps"].shape, out["xyz"].shape
(torch.Size([2, 21, 16, 16]), torch.Size([2, 21, 3, 16, 16]), torch.Size([2, 21, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab.models import _heatmaps as hc
from handlab.models._common import (
    ImageNormalize,
    check_batch,
    check_size,
    coordinate_grid,
    resnet_trunk,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model
from handlab.models.simplebaseline import deconv_layers
from handlab.skeleton import BONES

__all__ = ["DetNet", "DetNetConfig", "create_detnet", "read_at_peaks"]

_PARENTS = [p for p, _ in BONES]
_CHILDREN = [c for _, c in BONES]


@dataclass(frozen=True)
class DetNetConfig:
    backbone: str = "resnet18"  # minimal-hand uses ResNet-50; resnet18 keeps CPU training short
    head_width: int = 128  # channels of the deconvolutions and of each head's hidden layer
    sigma: float = 2.0  # heatmap target sigma in heatmap pixels (at stride 4)
    # Location maps hold xyz / xyz_unit_mm: decimetres keep the regressed values near 1.
    xyz_unit_mm: float = 100.0
    input_size: int = 128  # minimal-hand's 128 px crops; any multiple of 16 works
    # The codec's decoder for ``keypoints``: the SimpleBaseline paper's quarter-pixel rule;
    # "taylor" (DARK) is exact on clean peaks. ``decode`` always uses the local soft-argmax.
    decoder: str = "quarter"
    num_joints: int = 21


def read_at_peaks(heatmaps: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """Read per-joint maps at each joint's heatmap argmax.

    Args:
        heatmaps: (B, J, h, w).
        maps: (B, J, C, h, w).

    Returns:
        (B, J, C): ``maps[b, j, :, y*, x*]`` where ``(y*, x*)`` is the argmax of ``heatmaps[b, j]``.

    >>> hm = torch.zeros(1, 1, 2, 3)
    >>> hm[0, 0, 1, 2] = 1.0
    >>> read_at_peaks(hm, torch.arange(6.0).view(1, 1, 1, 2, 3)).tolist()
    [[[5.0]]]
    """
    b, j, c = maps.shape[:3]
    index = heatmaps.flatten(2).argmax(-1)  # (B, J)
    flat = maps.flatten(3)  # (B, J, C, h*w)
    return flat.gather(3, index[:, :, None, None].expand(b, j, c, 1))[..., 0]  # (B, J, C)


def _head(cin: int, width: int, out: int) -> nn.Sequential:
    final = nn.Conv2d(width, out, 1)
    # Start every map near 0, as SimpleBaseline's output layer (std 0.001, zero bias).
    nn.init.normal_(final.weight, std=0.001)
    nn.init.zeros_(final.bias)
    return nn.Sequential(
        nn.Conv2d(cin, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        final,
    )


class DetNet(PoseModel):
    """``images (B, 3, H, W)`` in [0, 1] (multiples of 16) -> ``heatmaps`` (B, 21, H/4, W/4),
    ``delta_maps`` (B, 20, 3, H/4, W/4), ``location_maps`` (B, 21, 3, H/4, W/4),
    ``keypoints`` (B, 21, 2) px, ``xyz`` (B, 21, 3) mm root-relative, ``bones`` (B, 20, 3)."""

    is_3d = True
    stride = 4

    def __init__(self, config: DetNetConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        self.config = config
        j = self.num_joints  # 21: the bones (delta maps) are the canonical skeleton's
        w = config.head_width
        self.normalize = ImageNormalize()
        self.backbone, channels = resnet_trunk(config.backbone, stages=3)  # stride 16
        self.up = deconv_layers(channels, w, layers=2)  # stride 4, BN + ReLU features
        self.heat_head = _head(w + 2, w, j)
        self.delta_head = _head(w + 2 + j, w, 3 * len(BONES))
        self.location_head = _head(w + 2 + j + 3 * len(BONES), w, 3 * j)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=16)
        features = self.up(self.backbone(self.normalize(images)))  # (B, w, h, w')
        b, _, h, w = features.shape
        features = torch.cat([features, coordinate_grid(b, h, w, features.device)], dim=1)
        heatmaps = self.heat_head(features)  # (B, J, h, w)
        delta = self.delta_head(torch.cat([features, heatmaps], dim=1))  # (B, 60, h, w)
        location = self.location_head(torch.cat([features, heatmaps, delta], dim=1))
        outputs = {
            "heatmaps": heatmaps,
            "delta_maps": delta.view(b, len(BONES), 3, h, w),
            "location_maps": location.view(b, self.num_joints, 3, h, w),
        }
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        outputs.update(keypoints=keypoints, scores=scores, xyz=self._xyz(outputs))
        bone_heat = heatmaps[:, _CHILDREN]  # a bone is read at its child joint's peak
        outputs["bones"] = read_at_peaks(bone_heat, outputs["delta_maps"])  # (B, 20, 3)
        return outputs

    def _xyz(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        xyz = read_at_peaks(outputs["heatmaps"], outputs["location_maps"])  # (B, J, 3)
        return (xyz - xyz[:, :1]) * self.config.xyz_unit_mm  # root-relative mm

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``keypoints`` (B, J, 2) px by the local soft-argmax of the heatmaps,
        ``xyz`` (B, J, 3) mm read from the location maps at the heatmap peaks."""
        return {
            "keypoints": hc.decode_soft(
                outputs["heatmaps"], stride=self.stride, sigma=self.config.sigma
            ),
            "xyz": self._xyz(outputs),
        }

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """minimal-hand's losses, each summed over cells and averaged over samples and joints:
        ``|H - H_gt|^2`` (visibility-weighted), ``|H_gt (D - D_gt)|^2``, ``|H_gt (L - L_gt)|^2``.
        Needs ``batch["keypoints"]`` (B, 21, 2) px, ``batch["visibility"]`` (B, 21) and
        ``batch["xyz"]`` (B, 21, 3) mm."""
        check_batch(
            batch,
            {"keypoints": (None, 21, 2), "visibility": (None, 21), "xyz": (None, 21, 3)},
        )
        heatmaps = outputs["heatmaps"]
        target, weight = hc.encode(batch, heatmaps.shape[-2:], self.stride, self.config.sigma)
        per_joint = (heatmaps - target).pow(2).sum((-1, -2))  # (B, J)
        l_heat = (per_joint * weight).mean()
        rel = (batch["xyz"] - batch["xyz"][:, :1]) / self.config.xyz_unit_mm  # (B, J, 3)
        loc_err = target[:, :, None] * (outputs["location_maps"] - rel[..., None, None])
        l_loc = loc_err.pow(2).sum((-1, -2, -3)).mean()
        bones = nn.functional.normalize(rel[:, _CHILDREN] - rel[:, _PARENTS], dim=-1)  # (B, 20, 3)
        delta_err = target[:, _CHILDREN, None] * (outputs["delta_maps"] - bones[..., None, None])
        l_delta = delta_err.pow(2).sum((-1, -2, -3)).mean()
        mpjpe = (outputs["xyz"] - rel * self.config.xyz_unit_mm).norm(dim=-1).mean()
        loss = l_heat + l_loc + l_delta
        logs = {
            "heatmap": float(l_heat.detach()),
            "location": float(l_loc.detach()),
            "delta": float(l_delta.detach()),
        }
        return loss, {**logs, "mpjpe_mm": float(mpjpe.detach())}


@register_model("detnet")
def create_detnet(**config: object) -> DetNet:
    """Build a :class:`DetNet` from :class:`DetNetConfig` keywords."""
    return DetNet(DetNetConfig(**config))
