"""IKNet-style inverse kinematics (Zhou et al., "Monocular Real-time Hand Shape and Motion Capture
using Multi-modal Data", CVPR 2020, minimal-hand; seminar seed 002): an MLP from 3D joints to the
joint rotations of handlab's articulated hand (:class:`handlab.hand_model.HandModel`).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

Input features follow minimal-hand: the joints normalised by the wrist -> middle-MCP length and
the 20 unit bone directions. Outputs are the hand model's pose ``(B, 16, 3)`` axis-angle:
minimal-hand predicts quaternions; here the global rotation uses the continuous 6D representation
(Zhou et al., CVPR 2019) and each finger component is ``lo + (hi - lo) * sigmoid(raw)`` inside
:data:`handlab.hand_model.POSE_LIMITS`, so every output pose respects the joint limits by
construction (the limits are boxes on those components). ``xyz`` is the hand model's forward
kinematics of that pose at shape 0, so the joints IKNet returns are always a valid hand.

The model's contract in its own terms: ``forward(xyz (B, 21, 3) mm)`` (any frame; the root is
subtracted) returns ``raw`` (B, 6 + 45), ``pose`` (B, 16, 3) rad and ``xyz`` (B, 21, 3) mm
root-relative (the FK of ``pose``); there is no 2D output, so no ``keypoints``. ``decode`` maps
``raw`` to ``pose`` and ``xyz``.

>>> model = create_iknet(hidden=32)
>>> out = model(torch.randn(2, 21, 3) * 40)
>>> out["pose"].shape, out["xyz"].shape
(torch.Size([2, 16, 3]), torch.Size([2, 21, 3]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handlab._checks import check_finite, check_shape, check_tensor
from handlab.geometry import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from handlab.hand_model import POSE_LIMITS, HandModel
from handlab.models._common import check_batch
from handlab.models.base import PoseModel
from handlab.models.registry import register_model
from handlab.skeleton import BONES

__all__ = ["IKNet", "IKNetConfig", "create_iknet", "iknet_features"]

_PARENTS = torch.tensor([p for p, _ in BONES])
_CHILDREN = torch.tensor([c for _, c in BONES])


def iknet_features(xyz: torch.Tensor) -> torch.Tensor:
    """(B, 21, 3) mm -> (B, 123): root-relative joints / |wrist -> middle MCP| and unit bones.

    >>> xyz = torch.randn(1, 21, 3)
    >>> torch.allclose(iknet_features(5 * xyz + 3), iknet_features(xyz), atol=1e-5)
    True
    """
    rel = xyz - xyz[:, :1]  # (B, 21, 3)
    scale = rel[:, 9].norm(dim=-1).clamp(min=1e-6)  # (B,) wrist -> middle MCP
    bones = nn.functional.normalize(rel[:, _CHILDREN] - rel[:, _PARENTS], dim=-1)  # (B, 20, 3)
    return torch.cat([(rel / scale[:, None, None]).flatten(1), bones.flatten(1)], dim=1)


@dataclass(frozen=True)
class IKNetConfig:
    hidden: int = 256  # width of every hidden layer: small and fast on a CPU
    layers: int = 6  # hidden FC layers, each Linear + BN + activation (minimal-hand: 7 in all)
    # minimal-hand uses sigmoid activations; ReLU is the handlab default, sigmoid an option.
    activation: str = "relu"


class IKNet(PoseModel):
    """``xyz`` (B, 21, 3) mm -> ``pose`` (B, 16, 3) rad within the joint limits, FK ``xyz``."""

    input_kind = "xyz"
    is_3d = True

    def __init__(self, config: IKNetConfig) -> None:
        super().__init__()
        if config.activation not in ("relu", "sigmoid"):
            raise ValueError(f"activation: expected 'relu' or 'sigmoid', got {config.activation!r}")
        self.config = config
        act = nn.ReLU if config.activation == "relu" else nn.Sigmoid
        blocks: list[nn.Module] = []
        for i in range(config.layers):
            cin = 123 if i == 0 else config.hidden
            blocks += [nn.Linear(cin, config.hidden), nn.BatchNorm1d(config.hidden), act()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(config.hidden, 6 + 15 * 3))
        self.hand = HandModel()
        limits = POSE_LIMITS[1:].clone()  # (15, 3, 2) rad, the hand model's (not state)
        self.register_buffer("limits", limits, persistent=False)

    def check_input(self, xyz: torch.Tensor) -> None:
        check_tensor("xyz", xyz)
        check_shape("xyz", xyz, (None, 21, 3))
        check_finite("xyz", xyz)

    def forward(self, xyz: torch.Tensor) -> dict[str, torch.Tensor]:
        """``xyz`` (B, 21, 3) mm -> ``raw`` (B, 51), ``pose`` (B, 16, 3), ``xyz`` (B, 21, 3)."""
        self.check_input(xyz)
        outputs = {"raw": self.mlp(iknet_features(xyz))}
        outputs.update(self.decode(outputs))
        return outputs

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: ``raw`` (B, 51) -> ``pose`` (B, 16, 3) rad and ``xyz`` (B, 21, 3) mm."""
        raw = outputs["raw"]
        # The 6D representation is centred on the identity so a fresh network starts upright.
        identity6d = raw.new_tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        glob = matrix_to_axis_angle(rot6d_to_matrix(raw[:, :6] + identity6d))  # (B, 3)
        lo, hi = self.limits[..., 0], self.limits[..., 1]  # (15, 3) each
        fingers = lo + (hi - lo) * torch.sigmoid(raw[:, 6:].view(-1, 15, 3))  # (B, 15, 3)
        pose = torch.cat([glob[:, None], fingers], dim=1)  # (B, 16, 3)
        return {"pose": pose, "xyz": self.hand(pose)}

    def loss(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Squared joint error of the FK (in cm^2, root-relative) plus, when ``batch["pose"]``
        (B, 16, 3) is given, minimal-hand's rotational supervision as a squared rotation-matrix
        difference. Needs ``batch["xyz"]`` (B, 21, 3) mm."""
        check_batch(batch, {"xyz": (None, 21, 3)})
        rel = batch["xyz"] - batch["xyz"][:, :1]
        err = outputs["xyz"] - rel  # (B, 21, 3) mm
        l_xyz = (err / 10.0).pow(2).sum(-1).mean()
        logs = {"xyz": float(l_xyz.detach()), "mpjpe_mm": float(err.detach().norm(dim=-1).mean())}
        loss = l_xyz
        if "pose" in batch:
            check_batch(batch, {"pose": (None, 16, 3)})
            diff = axis_angle_to_matrix(outputs["pose"]) - axis_angle_to_matrix(batch["pose"])
            l_rot = diff.pow(2).sum((-1, -2)).mean()
            loss = loss + l_rot
            logs["rotation"] = float(l_rot.detach())
        return loss, logs


@register_model("iknet")
def create_iknet(**config: object) -> IKNet:
    """Build an :class:`IKNet` from :class:`IKNetConfig` keywords."""
    return IKNet(IKNetConfig(**config))
