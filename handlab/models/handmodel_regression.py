"""Image to hand-model regression (Boukhayma, de Bem & Torr, "3D Hand Shape and Pose from Images in
the Wild", CVPR 2019; seminar seed 002).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

An image encoder regresses the parameters of a hand model, and the hand model, not the network,
produces the joints: the prediction is always a valid hand (bone lengths, joint limits). The paper
regresses MANO's pose and shape and a weak-perspective camera from a ResNet-50, and trains with 2D
keypoints of images in the wild (its point: no 3D labels needed), 3D joints where they exist, and
regularisers on pose and shape. Here the hand model is handlab's own
(:class:`handlab.hand_model.HandModel`, MANO's pose layout), so:

- ``pose`` (B, 16, 3) rad: the global rotation free (axis-angle), every finger component mapped
  into its :data:`POSE_LIMITS` by a sigmoid, so the limits hold by construction;
- ``shape`` (B, 10) in [-3, 3] (tanh);
- ``camera`` (B, 3): weak perspective ``uv = s * xy + t`` (s in px/mm, t in px).

``xyz`` = the hand model's joints (wrist at the origin: root-relative by construction, mm);
``keypoints`` = their weak-perspective projection (input px). The loss is the visibility-weighted
2D reprojection error, plus the root-relative 3D error where the batch has ``xyz`` (weight
``w3d``; set it to 0 for the paper's 2D-only training), plus a small shape prior. Right hands
(as MANO's right model); mirror left hands first.

>>> model = create_handmodel_regression(input_size=64)
>>> out = model(torch.rand(2, 3, 64, 64))
>>> out["keypoints"].shape, out["xyz"].shape, out["pose"].shape
(torch.Size([2, 21, 2]), torch.Size([2, 21, 3]), torch.Size([2, 16, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab.hand_model import POSE_LIMITS, SHAPE_LIMIT, HandModel
from handlab.models._common import (
    ImageNormalize,
    check_batch,
    check_fixed_size,
    check_keypoint_batch,
    check_resnet,
    check_size,
    resnet_trunk,
)
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["HandModelRegression", "HandModelRegressionConfig", "create_handmodel_regression"]

_TYPICAL_SPAN_MM = 250.0  # the crop side covers about this many mm of hand (framing 1.3-2x)


@dataclass(frozen=True)
class HandModelRegressionConfig:
    # The paper's ResNet-50; ResNet-18 keeps CPU recipes fast.
    backbone: str = "resnet18"
    input_size: int = 128
    # Weight of the root-relative 3D joint loss (mm / 100); 0 trains from 2D keypoints alone.
    w3d: float = 1.0
    # Weight of the shape prior |shape|^2 (the paper's shape regulariser).
    w_shape: float = 1e-3
    num_joints: int = 21


class HandModelRegression(PoseModel):
    """``images (B, 3, S, S)`` in [0, 1] -> ``pose``, ``shape``, ``camera`` and, through the hand
    model, ``xyz`` (B, 21, 3) mm root-relative and ``keypoints`` (B, 21, 2) input pixels."""

    is_3d = True

    def __init__(self, config: HandModelRegressionConfig) -> None:
        super().__init__()
        check_resnet(config.backbone)
        if config.num_joints != 21:
            raise ValueError(f"num_joints: the hand model has 21 joints, got {config.num_joints}")
        self.config = config
        self.normalize = ImageNormalize()
        trunk, channels = resnet_trunk(config.backbone)
        self.backbone = nn.Sequential(trunk, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        # 48 pose + 10 shape + 3 camera numbers; a near-zero start is the open hand at the centre.
        self.fc = nn.Linear(channels, 48 + 10 + 3)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.zeros_(self.fc.bias)
        self.hand = HandModel()
        lim = POSE_LIMITS.clone()
        lim[0] = 0.0  # the global row is not squashed (see _pose)
        self.register_buffer("lo", lim[..., 0], persistent=False)
        self.register_buffer("hi", lim[..., 1], persistent=False)
        # Start each finger component at its rest angle 0 (sigmoid^-1 of its place in [lo, hi]).
        span = (self.hi - self.lo).clamp(min=1e-6)
        rest = ((0.0 - self.lo) / span).clamp(1e-3, 1 - 1e-3)
        self.register_buffer("rest_logit", torch.logit(rest), persistent=False)

    def _pose(self, raw: torch.Tensor) -> torch.Tensor:
        raw = raw.view(-1, 16, 3)
        fingers = self.lo + (self.hi - self.lo) * torch.sigmoid(raw + self.rest_logit)
        return torch.cat([raw[:, :1], fingers[:, 1:]], dim=1)  # (B, 16, 3)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_size(images, multiple=32)
        check_fixed_size(images, self.config.input_size)
        raw = self.fc(self.backbone(self.normalize(images)))  # (B, 61)
        outputs = {
            "pose": self._pose(raw[:, :48]),
            "shape": SHAPE_LIMIT * torch.tanh(raw[:, 48:58]),
            "camera": raw[:, 58:],
        }
        outputs.update(self.decode(outputs))
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``pose``, ``shape``, ``camera`` -> ``xyz`` (B, 21, 3) mm (root-relative) and
        ``keypoints`` (B, 21, 2) px by weak perspective; differentiable (the hand model's
        forward kinematics)."""
        size = self.config.input_size
        xyz = self.hand(outputs["pose"], outputs["shape"])  # (B, 21, 3), wrist at the origin
        camera = outputs["camera"]
        scale = size / _TYPICAL_SPAN_MM * torch.exp(camera[:, :1])  # (B, 1) px per mm
        centre = (camera[:, 1:] + 0.5) * size - 0.5  # (B, 2) px, the wrist's projection
        # The wrist sits below the crop centre in a typical framing; the FC learns the offset.
        keypoints = scale[:, None] * xyz[..., :2] + centre[:, None]  # (B, 21, 2)
        return {"xyz": xyz, "keypoints": keypoints}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """2D reprojection (image units, visibility-weighted) + ``w3d`` x root-relative 3D
        (decimetres) where ``batch`` has ``xyz`` + ``w_shape`` x the shape prior. Needs
        ``batch["keypoints"]`` (B, 21, 2) px and ``batch["visibility"]`` (B, 21)."""
        check_keypoint_batch(batch, 21)
        size = self.config.input_size
        vis = batch["visibility"]
        err2d = ((outputs["keypoints"] - batch["keypoints"]) / size).pow(2).sum(-1)  # (B, J)
        l2d = (err2d * vis).sum() / vis.sum().clamp(min=1.0)
        l_shape = outputs["shape"].pow(2).mean()
        loss = l2d + self.config.w_shape * l_shape
        logs = {"reprojection": float(l2d.detach()), "shape_prior": float(l_shape.detach())}
        if "xyz" in batch and self.config.w3d > 0:
            check_batch(batch, {"xyz": (None, 21, 3)})
            rel = batch["xyz"] - batch["xyz"][:, :1]
            l3d = ((outputs["xyz"] - rel) / 100.0).pow(2).sum(-1).mean()
            loss = loss + self.config.w3d * l3d
            logs["joints_3d"] = float(l3d.detach())
            logs["mpjpe_mm"] = float((outputs["xyz"] - rel).norm(dim=-1).mean().detach())
        return loss, logs


@register_model("handmodel_regression")
def create_handmodel_regression(**config: object) -> HandModelRegression:
    """Build a :class:`HandModelRegression` from :class:`HandModelRegressionConfig` keywords."""
    return HandModelRegression(HandModelRegressionConfig(**config))
