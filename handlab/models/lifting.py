"""2D -> 3D lifting with Zimmermann & Brox's canonical frame and viewpoint ("Learning to Estimate
3D Hand Pose from Single RGB Images", ICCV 2017; seminar seed 002): the PosePrior stage.

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

3D joints are factored into a *canonical* pose (root at the origin, scaled so that the reference
bone, middle MCP -> middle PIP, has length 1, rotated so that the middle MCP lies on the +y axis
and the little MCP in the x-y plane, z = 0) and a *viewpoint* rotation ``R``, so that
``xyz - xyz[root] = scale * canonical @ R``. The network sees only normalised 2D keypoints and
predicts both parts; the absolute scale is not observable from 2D, so ``xyz`` uses the config's
nominal reference-bone length ``bone_length_mm`` (44 mm, the hand model's at shape 0).

Z&B mirror right hands to left ones; ``mirror`` (B,) flips the canonical z axis for those samples
(handlab's generator draws right hands only, so the default is no mirroring).

The model's contract in its own terms: ``forward(keypoints (B, 21, 2) px)`` returns ``xyz``
(B, 21, 3) mm root-relative, ``canonical`` (B, 21, 3), ``rotation`` (B, 3, 3) and the input
``keypoints`` unchanged (so every model's output has that key); ``decode`` rebuilds ``xyz``.

>>> xyz = torch.randn(2, 21, 3) * 30
>>> canonical, rotation, scale = canonical_frame(xyz)
>>> torch.allclose(from_canonical(canonical, rotation, scale), xyz - xyz[:, :1], atol=1e-4)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab._checks import check_finite, check_shape, check_tensor
from handlab.geometry import axis_angle_to_matrix
from handlab.models._common import check_batch
from handlab.models.base import PoseModel
from handlab.models.registry import register_model

__all__ = ["LiftingConfig", "LiftingNet", "canonical_frame", "create_lifting", "from_canonical"]

ROOT, REF_START, REF_END, LITTLE_MCP = 0, 9, 10, 17  # wrist; middle MCP -> PIP; little MCP


def _mirror_sign(mirror: torch.Tensor | bool | None, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, 3) multipliers that flip z where ``mirror`` is true."""
    sign = torch.ones(like.shape[0], 1, 3, dtype=like.dtype, device=like.device)
    if mirror is None or mirror is False:
        return sign
    flags = torch.as_tensor(mirror, device=like.device).reshape(-1)
    if flags.numel() not in (1, like.shape[0]):
        raise ValueError(f"mirror: expected one flag or {like.shape[0]}, got {flags.numel()}")
    flags = flags.expand(like.shape[0])
    sign[:, 0, 2] = torch.where(flags.bool(), -1.0, 1.0)
    return sign


def canonical_frame(
    xyz: torch.Tensor, *, mirror: torch.Tensor | bool | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Z&B's canonical frame of 3D joints.

    Args:
        xyz: (B, 21, 3) mm, any frame (the root is subtracted).
        mirror: optional (B,) bool, or one bool: mirror those hands (canonical z -> -z).

    Returns:
        ``canonical`` (B, 21, 3) unitless, ``rotation`` (B, 3, 3) whose rows are the canonical
        axes in the input frame, ``scale`` (B,) mm (the reference bone's length), such that
        ``from_canonical(canonical, rotation, scale, mirror=mirror) == xyz - xyz[:, :1]``.
    """
    check_shape("xyz", xyz, (None, 21, 3))
    check_finite("xyz", xyz)
    rel = xyz - xyz[:, ROOT : ROOT + 1]  # (B, 21, 3)
    scale = (rel[:, REF_END] - rel[:, REF_START]).norm(dim=-1)  # (B,)
    if bool((scale < 1e-6).any()):
        raise ValueError("xyz: expected a reference bone (joints 9 -> 10) of non-zero length")
    y = nn.functional.normalize(rel[:, REF_START], dim=-1)  # (B, 3) middle MCP direction
    little = rel[:, LITTLE_MCP]
    x = nn.functional.normalize(little - (little * y).sum(-1, keepdim=True) * y, dim=-1)
    z = torch.linalg.cross(x, y, dim=-1)
    rotation = torch.stack([x, y, z], dim=1)  # (B, 3, 3), rows = canonical axes
    canonical = (rel / scale[:, None, None]) @ rotation.transpose(1, 2)  # (B, 21, 3)
    return canonical * _mirror_sign(mirror, canonical), rotation, scale


def from_canonical(
    canonical: torch.Tensor,
    rotation: torch.Tensor,
    scale: torch.Tensor | float,
    *,
    mirror: torch.Tensor | bool | None = None,
) -> torch.Tensor:
    """Inverse of :func:`canonical_frame`: (B, 21, 3), (B, 3, 3), (B,) mm -> xyz (B, 21, 3) mm,
    root-relative. Differentiable."""
    check_shape("canonical", canonical, (None, 21, 3))
    check_shape("rotation", rotation, (canonical.shape[0], 3, 3))
    scale = torch.as_tensor(scale, dtype=canonical.dtype, device=canonical.device)
    scale = scale.reshape(-1).expand(canonical.shape[0])[:, None, None]  # (B, 1, 1)
    return scale * (canonical * _mirror_sign(mirror, canonical)) @ rotation  # (B, 21, 3)


def normalize_keypoints(keypoints: torch.Tensor) -> torch.Tensor:
    """Translation- and scale-free 2D input: root subtracted, divided by the RMS distance of the
    joints to the root (so the network sees hand shape, not where or how big the hand is).

    >>> k = torch.rand(1, 21, 2)
    >>> torch.allclose(normalize_keypoints(3 * k + 7), normalize_keypoints(k), atol=1e-5)
    True
    """
    rel = keypoints - keypoints[:, ROOT : ROOT + 1]  # (B, 21, 2)
    rms = rel.pow(2).sum(-1).mean(-1).sqrt().clamp(min=1e-6)  # (B,)
    return rel / rms[:, None, None]


@dataclass(frozen=True)
class LiftingConfig:
    hidden: int = 512  # Z&B's PosePrior uses 512-wide FC layers
    layers: int = 2  # hidden FC layers per stream (Z&B: 2 after the conv encoder)
    dropout: float = 0.2  # Z&B drop 20 % in the FC layers
    # Nominal reference bone (middle MCP -> PIP) in mm for ``xyz``: the hand model's middle
    # proximal phalanx at shape 0. The true scale is not observable from 2D input.
    bone_length_mm: float = 44.0


def _mlp(cin: int, hidden: int, layers: int, dropout: float, out: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(cin if i == 0 else hidden, hidden), nn.ReLU(True), nn.Dropout(dropout)]
    return nn.Sequential(*blocks, nn.Linear(hidden, out))


class LiftingNet(PoseModel):
    """PosePrior-style lifting: two MLP streams on normalised 2D keypoints, one for the canonical
    pose (20 joints x 3; the root is 0 by definition) and one for the viewpoint (axis-angle)."""

    input_kind = "keypoints"
    is_3d = True

    def __init__(self, config: LiftingConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.pose_stream = _mlp(42, c.hidden, c.layers, c.dropout, 20 * 3)
        self.view_stream = _mlp(42, c.hidden, c.layers, c.dropout, 3)

    def check_input(self, keypoints: torch.Tensor) -> None:
        check_tensor("keypoints", keypoints)
        check_shape("keypoints", keypoints, (None, 21, 2))
        check_finite("keypoints", keypoints)

    def forward(self, keypoints: torch.Tensor) -> dict[str, torch.Tensor]:
        """``keypoints`` (B, 21, 2) pixels -> ``xyz`` (B, 21, 3) mm root-relative and parts."""
        self.check_input(keypoints)
        flat = normalize_keypoints(keypoints).flatten(1)  # (B, 42)
        joints = self.pose_stream(flat).view(-1, 20, 3)  # (B, 20, 3)
        canonical = torch.cat([joints.new_zeros(joints.shape[0], 1, 3), joints], dim=1)
        rotation = axis_angle_to_matrix(self.view_stream(flat))  # (B, 3, 3)
        outputs = {"canonical": canonical, "rotation": rotation, "keypoints": keypoints}
        outputs.update(self.decode(outputs))
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``canonical`` and ``rotation`` -> ``xyz`` (B, 21, 3) mm."""
        xyz = from_canonical(outputs["canonical"], outputs["rotation"], self.config.bone_length_mm)
        return {"xyz": xyz}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Z&B's PosePrior loss: squared L2 on the canonical pose plus on the rotation matrix.
        Needs ``batch["xyz"]`` (B, 21, 3) mm (the input ``keypoints`` went to ``forward``)."""
        check_batch(batch, {"xyz": (None, 21, 3)})
        canonical, rotation, scale = canonical_frame(batch["xyz"])
        l_pose = ((outputs["canonical"] - canonical) ** 2).sum(-1).mean()
        l_view = ((outputs["rotation"] - rotation) ** 2).sum((-1, -2)).mean()
        # Root-relative error in mm with the true scale: what the two parts are worth together.
        xyz = from_canonical(outputs["canonical"], outputs["rotation"], scale)
        rel = batch["xyz"] - batch["xyz"][:, :1]
        mpjpe = (xyz - rel).norm(dim=-1).mean()
        loss = l_pose + l_view
        return loss, {
            "canonical": float(l_pose.detach()),
            "viewpoint": float(l_view.detach()),
            "mpjpe_mm": float(mpjpe.detach()),
        }


@register_model("lifting")
def create_lifting(**config: object) -> LiftingNet:
    """Build a :class:`LiftingNet` from :class:`LiftingConfig` keywords."""
    return LiftingNet(LiftingConfig(**config))
