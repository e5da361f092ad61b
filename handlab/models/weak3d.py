"""Weakly supervised 3D with a depth regulariser (Cai, Ge, Cai & Yuan, "Weakly-supervised 3D Hand
Pose Estimation from Monocular RGB Images", ECCV 2018; seminar seed 002).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

3D labels are expensive; depth maps come free with an RGB-D camera. Cai et al. train a 2D heatmap
network and a 3D regression branch, and add a *depth regulariser*: a decoder that renders a depth
map from a 3D pose. On samples with 3D labels the decoder learns to render (from the true pose);
on samples with only 2D keypoints and a depth map, the rendered depth of the *predicted* pose is
compared with the observed one, and that error trains the 3D branch through the (here frozen for
that term) decoder. The paper's ablation trains with a fraction of 3D labels with and without the
depth term.

Here:

- ``heatmaps`` (B, 21, H/4, W/4) from a SimpleBaseline head, ``keypoints`` decoded from them;
- ``xyz`` (B, 21, 3) mm root-relative from an MLP on the pooled trunk features and the soft-argmax
  keypoints (the paper's 3D branch reads heatmaps and features);
- ``depth_render`` (B, 1, 32, 32): the decoder's depth map of the predicted pose, in decimetres
  relative to the hand's median depth (the background at +1).

Which samples count as 3D-labelled: ``label_fraction`` of them, chosen by a hash of the sample's
2D keypoints, so the same samples are labelled at every epoch (a fixed labelled subset, as in the
paper's ablation) whatever the batch order. ``w_depth = 0`` is the ablation without the regulariser.

>>> model = create_weak3d(input_size=64, head_width=16)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["xyz"].shape, out["depth_render"].shape
(torch.Size([2, 21, 3]), torch.Size([2, 1, 32, 32]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from handlab.models import _heatmaps as hc
from handlab.models._common import ImageNormalize, check_batch, check_size, resnet_trunk
from handlab.models.base import PoseModel
from handlab.models.registry import register_model
from handlab.models.simplebaseline import DeconvHead, deconv_layers

__all__ = ["DepthDecoder", "Weak3D", "Weak3DConfig", "create_weak3d", "depth_target", "labelled"]

DEPTH_SIZE = 32  # the regulariser's depth maps are 32 x 32, the paper's resolution order


@dataclass(frozen=True)
class Weak3DConfig:
    backbone: str = "resnet18"
    input_size: int = 128
    head_width: int = 64
    sigma: float = 2.0
    decoder: str = "quarter"
    hidden: int = 256  # the 3D branch's MLP width
    # Share of samples whose 3D labels are used (the paper's ablation: 10 %).
    label_fraction: float = 1.0
    # Weight of the depth-regulariser term on every sample; 0 is the ablation without it.
    w_depth: float = 1.0
    w_3d: float = 1.0
    num_joints: int = 21


class DepthDecoder(nn.Module):
    """(B, 21, 3) dm root-relative pose + (B, 21, 2) keypoints in image units -> (B, 1, 32, 32)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.fc = nn.Sequential(nn.Linear(21 * 5, 256), nn.ReLU(), nn.Linear(256, width * 16))
        self.up = deconv_layers(width, width, 3)  # 4 -> 32
        self.out = nn.Conv2d(width, 1, kernel_size=3, padding=1)

    def forward(self, xyz_dm: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        code = torch.cat([xyz_dm.flatten(1), uv.flatten(1)], dim=1)  # (B, 105)
        x = self.fc(code).view(-1, self.width, 4, 4)
        return self.out(self.up(x))  # (B, 1, 32, 32)


def depth_target(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Observed depth (B, 1, H, W) mm + hand mask -> the regulariser's target (B, 1, 32, 32):
    decimetres relative to the median hand depth, background +1.

    >>> d = torch.full((1, 1, 64, 64), 900.0)
    >>> m = torch.zeros(1, 1, 64, 64)
    >>> m[..., 16:48, 16:48] = 1
    >>> d[m > 0] = 500.0
    >>> t = depth_target(d, m)
    >>> float(t[0, 0, 16, 16]), float(t[0, 0, 0, 0])
    (0.0, 1.0)
    """
    small_d = nn.functional.interpolate(depth, size=(DEPTH_SIZE, DEPTH_SIZE), mode="nearest")
    small_m = nn.functional.interpolate(mask, size=(DEPTH_SIZE, DEPTH_SIZE), mode="nearest") > 0.5
    out = torch.ones_like(small_d)
    for i in range(len(depth)):
        hand = small_d[i][small_m[i]]
        if hand.numel():
            rel = ((small_d[i] - hand.median()) / 100.0).clamp(-1.0, 1.0)
            out[i] = torch.where(small_m[i], rel, torch.ones_like(rel))
    return out


def labelled(keypoints: torch.Tensor, fraction: float) -> torch.Tensor:
    """(B,) bool: whether each sample's 3D label may be used, a fixed function of the sample.

    A hash of its 2D keypoints (quantised to 1/16 px) compared with ``fraction``: the same
    samples are labelled in every epoch and batch order.

    >>> k = torch.rand(1000, 21, 2, generator=torch.Generator().manual_seed(0)) * 100
    >>> abs(float(labelled(k, 0.1).float().mean()) - 0.1) < 0.03
    True
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label_fraction: expected a share in [0, 1], got {fraction}")
    code = (keypoints.detach().flatten(1) * 16).round().to(torch.int64)  # (B, 42)
    primes = torch.arange(1, code.shape[1] + 1, device=code.device) * 2654435761
    h = ((code * primes).sum(1) % 1_000_003).double() / 1_000_003
    return h < fraction


class Weak3D(hc.SoftDecodeMixin, PoseModel):
    """``images (B, 3, H, W)`` in [0, 1] -> ``heatmaps``, ``keypoints`` (B, 21, 2) px, ``xyz``
    (B, 21, 3) mm root-relative and ``depth_render`` (B, 1, 32, 32)."""

    is_3d = True

    def __init__(self, config: Weak3DConfig) -> None:
        super().__init__()
        hc.check_method(config.decoder)
        labelled(torch.zeros(1, 21, 2), config.label_fraction)  # validates the share
        self.config = config
        self.num_joints = config.num_joints
        self.normalize = ImageNormalize()
        self.backbone, c = resnet_trunk(config.backbone)
        self.head = DeconvHead(c, config.head_width, config.num_joints, layers=3)
        self.stride = 4
        self.lift = nn.Sequential(
            nn.Linear(c + 2 * config.num_joints, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, 3 * config.num_joints),
        )
        self.depth_decoder = DepthDecoder()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=32)
        features = self.backbone(self.normalize(images))  # (B, C, h, w)
        heatmaps = self.head(features)
        keypoints, scores = hc.decode_argmax(
            heatmaps, stride=self.stride, sigma=self.config.sigma, method=self.config.decoder
        )
        uv = hc.soft_argmax(heatmaps, stride=self.stride) / images.shape[-1]  # (B, J, 2) units
        code = torch.cat([features.mean((-1, -2)), uv.flatten(1)], dim=1)
        raw = self.lift(code).view(-1, self.num_joints, 3)  # (B, J, 3) dm
        outputs = {"heatmaps": heatmaps, "scores": scores, "raw_xyz": raw, "uv": uv}
        outputs.update(self.decode(outputs))
        outputs["keypoints"] = keypoints
        outputs["depth_render"] = self.depth_decoder(outputs["xyz"] / 100.0, uv)
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: heatmaps -> ``keypoints``; ``raw_xyz`` (dm) -> ``xyz`` mm, re-rooted."""
        decoded = super().decode(outputs)
        if "raw_xyz" in outputs:
            raw = outputs["raw_xyz"] * 100.0
            decoded["xyz"] = raw - raw[:, :1]
        return decoded

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Heatmaps on every sample; 3D L2 (dm) and the decoder's rendering of the true pose on
        the labelled share; the depth term (the rendered predicted pose vs the observed depth,
        decoder frozen) on every sample. Needs ``keypoints``, ``visibility``, ``xyz``, ``depth``
        (B, 1, H, W) mm and ``mask`` (B, 1, H, W)."""
        check_batch(
            batch,
            {
                "keypoints": (None, 21, 2),
                "visibility": (None, 21),
                "xyz": (None, 21, 3),
                "depth": (None, 1, None, None),
                "mask": (None, 1, None, None),
            },
        )
        cfg = self.config
        l_heat = hc.heatmap_loss(outputs["heatmaps"], batch, stride=self.stride, sigma=cfg.sigma)
        target = depth_target(batch["depth"], batch["mask"])
        lab = labelled(batch["keypoints"], cfg.label_fraction).to(l_heat.device)
        rel = (batch["xyz"] - batch["xyz"][:, :1]) / 100.0  # (B, J, 3) dm
        loss = l_heat
        logs = {"heatmap": float(l_heat.detach()), "labelled": float(lab.float().mean())}
        if bool(lab.any()):
            l3d = (outputs["xyz"][lab] / 100.0 - rel[lab]).pow(2).sum(-1).mean()
            size = batch["keypoints"].new_tensor(outputs["heatmaps"].shape[-1] * self.stride)
            gt_uv = (batch["keypoints"][lab] + 0.5) / size
            rendered = self.depth_decoder(rel[lab], gt_uv)  # trains the decoder on true poses
            l_render = (rendered - target[lab]).abs().mean()
            loss = loss + cfg.w_3d * l3d + l_render
            logs.update(joints_3d=float(l3d.detach()), render=float(l_render.detach()))
        if cfg.w_depth > 0:
            frozen = {k: v.detach() for k, v in self.depth_decoder.named_parameters()}
            frozen.update(dict(self.depth_decoder.named_buffers()))
            pred_render = functional_call(
                self.depth_decoder, frozen, (outputs["xyz"] / 100.0, outputs["uv"])
            )
            l_depth = (pred_render - target).abs().mean()
            loss = loss + cfg.w_depth * l_depth
            logs["depth"] = float(l_depth.detach())
        logs["mpjpe_mm"] = float((outputs["xyz"] - rel * 100).norm(dim=-1).mean().detach())
        return loss, logs


@register_model("weak3d")
def create_weak3d(**config: object) -> Weak3D:
    """Build a :class:`Weak3D` from :class:`Weak3DConfig` keywords."""
    return Weak3D(Weak3DConfig(**config))
