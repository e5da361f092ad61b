"""An articulated hand in torch: anthropometric bones, a MANO-like pose, limits, kinematics.

Taught in chapter 00 (``notebooks/00_tour.py``).

The hand frame (right hand, mm): the wrist (joint 0) at the origin, ``+y`` along the fingers,
``+x`` towards the thumb (radial), ``+z`` out of the palm (palmar). Bone lengths at shape 0 are
the adult averages of ``/work/shared/reference/synthetic-hands.md`` (:data:`BONE_TABLE`).

Pose ``(B, 16, 3)`` axis-angle, radians, MANO order: row 0 the global rotation of the hand frame
about the wrist, rows 1-15 the finger joints, :data:`POSE_JOINTS`::

    1-3 index MCP, PIP, DIP    4-6 middle    7-9 little    10-12 ring    13-15 thumb CMC, MCP, IP

Each finger row is an axis-angle in that joint's local frame, whose axes are ``x`` flexion
(positive bends towards the palm), ``y`` twist about the bone, ``z`` abduction (positive towards
the little finger). :data:`POSE_LIMITS` bounds each component; for the small angles of one joint
the components are close to Euler angles, which is why box limits on them are meaningful.

Shape ``(B, 10)``, unitless, each in ``[-3, 3]`` (:data:`SHAPE_NAMES`): linear scale factors
``1 + step * s`` on the whole hand, palm length and width, finger lengths and thickness.

>>> model = HandModel()
>>> xyz = model(torch.zeros(1, 16, 3))
>>> xyz.shape, round(float(xyz[0, 12, 1]), 1)  # middle fingertip, straight up the y axis
(torch.Size([1, 21, 3]), 173.0)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from handlab._checks import check_finite, check_shape, check_tensor
from handlab.geometry import axis_angle_to_matrix

__all__ = [
    "BONE_TABLE",
    "POSE_JOINTS",
    "POSE_LIMITS",
    "POSE_ROWS",
    "SHAPE_LIMIT",
    "SHAPE_NAMES",
    "HandModel",
    "bone_lengths",
    "clamp_pose",
    "limit_penalty",
]

FINGERS = ("thumb", "index", "middle", "ring", "little")  # canonical order (handlab.skeleton)
POSE_JOINTS: tuple[str, ...] = ("global",) + tuple(
    f"{f}_{p}"
    for f in ("index", "middle", "little", "ring", "thumb")
    for p in (("cmc", "mcp", "ip") if f == "thumb" else ("mcp", "pip", "dip"))
)
# Pose rows of each canonical finger's three joints (MANO order lists index, middle, little, ring,
# thumb).
POSE_ROWS: dict[str, tuple[int, int, int]] = {
    "thumb": (13, 14, 15),
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "ring": (10, 11, 12),
    "little": (7, 8, 9),
}

# Proximal, middle, distal bone (mm); for the thumb: metacarpal, proximal, distal.
BONE_TABLE: dict[str, tuple[float, float, float]] = {
    "thumb": (46.0, 32.0, 22.0),
    "index": (39.0, 22.0, 16.0),
    "middle": (44.0, 26.0, 17.0),
    "ring": (41.0, 26.0, 17.0),
    "little": (33.0, 18.0, 16.0),
}
# First joint of each finger (thumb CMC, finger MCPs) in the hand frame at shape 0, mm.
_BASE = {
    "thumb": (19.0, 24.0, 6.0),
    "index": (24.0, 83.0, 0.0),
    "middle": (5.0, 86.0, 0.0),
    "ring": (-13.0, 81.0, 0.0),
    "little": (-29.0, 72.0, 0.0),
}
# Radius (mm) of the first, second and third bone's capsule; fingers taper ~10 -> 7 mm.
_RADII = {
    "thumb": (12.0, 10.0, 9.0),
    "index": (9.5, 8.5, 7.5),
    "middle": (9.8, 8.7, 7.6),
    "ring": (9.2, 8.3, 7.3),
    "little": (8.2, 7.4, 6.6),
}
# In-plane splay of each straight finger at pose 0, degrees about z (positive: towards little).
_SPLAY = {"index": -6.0, "middle": 0.0, "ring": 6.0, "little": 13.0}

SHAPE_NAMES: tuple[str, ...] = (
    "scale",
    "palm_length",
    "palm_width",
    "finger_length",
    "thumb_length",
    "index_length",
    "middle_length",
    "ring_length",
    "little_length",
    "thickness",
)
_SHAPE_STEP = torch.tensor([0.05, 0.03, 0.03, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02, 0.05])
SHAPE_LIMIT = 3.0  # |shape| <= 3: scale in [0.85, 1.15] as the reference notes suggest

_D = math.pi / 180.0
# (lo, hi) degrees for the (flexion x, twist y, abduction z) components of each finger joint.
_FINGER_LIMITS = (
    ((-20, 90), (-8, 8), (-20, 20)),  # MCP
    ((0, 110), (-5, 5), (-5, 5)),  # PIP
    ((0, 80), (-5, 5), (-5, 5)),  # DIP
)
_THUMB_LIMITS = (
    ((-15, 50), (-20, 20), (-25, 45)),  # CMC
    ((-10, 55), (-8, 8), (-10, 10)),  # MCP
    ((-15, 80), (-5, 5), (-5, 5)),  # IP
)


def _limits() -> torch.Tensor:
    lim = torch.zeros(16, 3, 2)
    lim[0, :, 0] = -math.inf  # the global rotation is free
    lim[0, :, 1] = math.inf
    for finger, rows in POSE_ROWS.items():
        table = _THUMB_LIMITS if finger == "thumb" else _FINGER_LIMITS
        for row, joint_limits in zip(rows, table, strict=True):
            lim[row] = torch.tensor(joint_limits, dtype=torch.float32) * _D
    return lim


POSE_LIMITS: torch.Tensor = _limits()
"""(16, 3, 2) radians: ``[row, axis, (lo, hi)]``; row 0 (global rotation) is unbounded."""


def _check_pose(pose: object, name: str = "pose") -> torch.Tensor:
    check_tensor(name, pose)
    pose = torch.as_tensor(pose)
    check_shape(name, pose, (None, 16, 3))
    check_finite(name, pose)
    return pose if pose.is_floating_point() else pose.float()


def _check_shape_params(shape: object, batch: int, like: torch.Tensor) -> torch.Tensor:
    if shape is None:
        return like.new_zeros(batch, 10)
    check_tensor("shape", shape)
    shape = torch.as_tensor(shape).to(like)
    check_shape("shape", shape, (batch, 10))
    check_finite("shape", shape)
    return shape


def clamp_pose(pose: torch.Tensor) -> torch.Tensor:
    """Clamp every finger component of ``pose`` (B, 16, 3) rad into :data:`POSE_LIMITS`.

    The global rotation (row 0) is returned unchanged.

    >>> clamp_pose(torch.full((1, 16, 3), 3.0))[0, 1].tolist()  # index MCP
    [1.5707..., 0.1396..., 0.3490...]
    """
    pose = _check_pose(pose)
    lim = POSE_LIMITS.to(pose)
    return torch.maximum(torch.minimum(pose, lim[..., 1]), lim[..., 0])


def limit_penalty(pose: torch.Tensor) -> torch.Tensor:
    """Differentiable squared excess over :data:`POSE_LIMITS`, summed per sample: (B,) rad^2.

    Zero inside the limits; fitting adds it to its loss.

    >>> limit_penalty(torch.zeros(2, 16, 3)).tolist()
    [0.0, 0.0]
    """
    pose = _check_pose(pose)
    lim = POSE_LIMITS.to(pose)
    # where(isfinite) keeps the unbounded global row out (inf - x would give nan gradients).
    lo = torch.where(torch.isfinite(lim[..., 0]), lim[..., 0] - pose, torch.zeros_like(pose))
    hi = torch.where(torch.isfinite(lim[..., 1]), pose - lim[..., 1], torch.zeros_like(pose))
    return (lo.clamp(min=0) ** 2 + hi.clamp(min=0) ** 2).sum(dim=(1, 2))


def _factors(shape: torch.Tensor) -> torch.Tensor:
    return 1.0 + shape * _SHAPE_STEP.to(shape)  # (B, 10)


def _finger_factor(fac: torch.Tensor, f: int) -> torch.Tensor:
    # overall scale x finger length x this finger's length (the thumb ignores "finger_length")
    common = fac[:, 0] if f == 0 else fac[:, 0] * fac[:, 3]
    return common * fac[:, 4 + f]  # (B,)


def _bases(fac: torch.Tensor) -> torch.Tensor:
    """(B, 5, 3) mm: the first joint of each finger in the hand frame, scaled by the shape."""
    base = torch.tensor([_BASE[f] for f in FINGERS]).to(fac)  # (5, 3)
    sx = fac[:, 0] * fac[:, 2]  # palm width
    sy = fac[:, 0] * fac[:, 1]  # palm length
    scale = torch.stack([sx, sy, fac[:, 0]], dim=-1)  # (B, 3)
    return base[None] * scale[:, None]  # (B, 5, 3)


def bone_lengths(shape: torch.Tensor | None = None) -> torch.Tensor:
    """Bone lengths (B, 20) mm in :data:`handlab.skeleton.BONES` order (bone k ends at joint k+1).

    >>> bone_lengths(torch.zeros(1, 10))[0, 4:8].tolist()  # wrist->index MCP, then index bones
    [86.40..., 39.0, 22.0, 16.0]
    """
    if shape is None:
        shape = torch.zeros(1, 10)
    check_tensor("shape", shape)
    check_shape("shape", shape, (None, 10))
    check_finite("shape", shape)
    fac = _factors(shape.float() if not shape.is_floating_point() else shape)
    first = _bases(fac).norm(dim=-1)  # (B, 5) wrist -> CMC / MCP
    out = []
    for f, finger in enumerate(FINGERS):
        table = torch.tensor(BONE_TABLE[finger]).to(fac)  # (3,)
        bones = table[None] * _finger_factor(fac, f)[:, None]  # (B, 3)
        out.append(torch.cat([first[:, f : f + 1], bones], dim=1))
    return torch.cat(out, dim=1)  # (B, 20), joints 1..20 in canonical order


def _rest_frames() -> torch.Tensor:
    """(5, 3, 3): each finger's first-joint frame at pose 0, columns = (flex x, bone y, abd z)."""
    frames = []
    for finger in FINGERS:
        if finger == "thumb":
            # The thumb metacarpal points radially and slightly palmar; it flexes across the palm.
            y = torch.tensor([0.55, 0.8, 0.25])
            y = y / y.norm()
            w = torch.tensor([-0.55, 0.0, 0.85])
            z = w - (w @ y) * y
            z = z / z.norm()
            x = torch.linalg.cross(y, z)
            frames.append(torch.stack([x, y, z], dim=1))
        else:
            a = _SPLAY[finger] * _D
            c, s = math.cos(a), math.sin(a)
            frames.append(torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]))
    return torch.stack(frames)


_REST = _rest_frames()


class HandModel(nn.Module):
    """Forward kinematics: pose (B, 16, 3) rad + shape (B, 10) -> xyz (B, 21, 3) mm, hand frame.

    Batched, differentiable in pose and shape (fitting and IK optimise through it); no learned
    parameters. :meth:`capsules` gives the surface the renderer draws.

    >>> HandModel()(torch.zeros(2, 16, 3)).shape
    torch.Size([2, 21, 3])
    """

    def forward(
        self, pose: torch.Tensor, shape: torch.Tensor | None = None
    ) -> torch.Tensor:  # (B, 21, 3)
        joints, _ = self._kinematics(pose, shape)
        return joints

    def _kinematics(
        self, pose: torch.Tensor, shape: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joints (B, 21, 3) mm and bone frames (B, 5, 3, 3, 3) [finger, bone, rotation]."""
        if isinstance(pose, torch.Tensor) and torch.is_autocast_enabled(pose.device.type):
            # Chained rotations lose too much in bfloat16 (IKNet's training diverged to NaN
            # under CPU autocast): the kinematic chain always runs in float32.
            with torch.autocast(pose.device.type, enabled=False):
                return self._kinematics(pose.float(), None if shape is None else shape.float())
        pose = _check_pose(pose)
        b = pose.shape[0]
        fac = _factors(_check_shape_params(shape, b, pose))  # (B, 10)
        rot = axis_angle_to_matrix(pose)  # (B, 16, 3, 3)
        glob = rot[:, 0]  # (B, 3, 3)
        bases = _bases(fac)  # (B, 5, 3)
        rest = _REST.to(pose)
        joints = [pose.new_zeros(b, 3)]
        frames = []
        for f, finger in enumerate(FINGERS):
            frame = glob @ rest[f]  # (B, 3, 3)
            point = (glob @ bases[:, f, :, None])[..., 0]  # (B, 3)
            joints.append(point)
            lengths = (
                torch.tensor(BONE_TABLE[finger]).to(pose)[None] * _finger_factor(fac, f)[:, None]
            )  # (B, 3)
            bone_frames = []
            for k, row in enumerate(POSE_ROWS[finger]):
                frame = frame @ rot[:, row]
                bone_frames.append(frame)
                point = point + frame[..., 1] * lengths[:, k : k + 1]  # along the local y axis
                joints.append(point)
            frames.append(torch.stack(bone_frames, dim=1))
        return torch.stack(joints, dim=1), torch.stack(frames, dim=1)

    def capsules(
        self, pose: torch.Tensor, shape: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The hand surface as capsules, hand frame.

        Returns:
            ``start`` (B, P, 3) mm, ``end`` (B, P, 3) mm, ``radius`` (B, P) mm, and ``nail``
            (B, 5, 3) unit vectors: the dorsal direction of each distal bone (for nails).
            Capsules 0-14 are the finger bones (finger-major, canonical order); the rest are the
            palm, the thenar pad, the wrist and a forearm stub.

        >>> start, end, radius, nail = HandModel().capsules(torch.zeros(1, 16, 3))
        >>> start.shape, radius.shape
        (torch.Size([1, 22, 3]), torch.Size([1, 22]))
        """
        surface = self.surface(pose, shape)
        return surface["start"], surface["end"], surface["radius"], surface["nail"]

    def surface(self, pose: torch.Tensor, shape: torch.Tensor | None = None) -> dict:
        """Joints and capsules in one kinematics pass: a dict with ``xyz`` (B, 21, 3) and the
        four outputs of :meth:`capsules` (``start``, ``end``, ``radius``, ``nail``).

        >>> sorted(HandModel().surface(torch.zeros(1, 16, 3)))
        ['end', 'nail', 'radius', 'start', 'xyz']
        """
        pose = _check_pose(pose)
        joints, frames = self._kinematics(pose, shape)
        b = pose.shape[0]
        fac = _factors(_check_shape_params(shape, b, pose))
        glob = axis_angle_to_matrix(pose[:, 0])  # (B, 3, 3)
        thick = fac[:, 0:1] * fac[:, 9:10]  # (B, 1)
        starts, ends = [], []
        for f in range(5):
            chain = joints[:, [4 * f + 1, 4 * f + 2, 4 * f + 3, 4 * f + 4]]  # (B, 4, 3)
            starts.append(chain[:, :3])
            ends.append(chain[:, 1:])
        start = torch.cat(starts, dim=1)  # (B, 15, 3)
        end = torch.cat(ends, dim=1).clone()
        radius = torch.tensor([r for f in FINGERS for r in _RADII[f]]).to(pose)[None] * thick
        # The fingertip keypoint lies on the skin: pull each distal capsule's end in by 0.8 r.
        tip_dir = end[:, 2::3] - start[:, 2::3]
        tip_dir = tip_dir / tip_dir.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        end[:, 2::3] = end[:, 2::3] - 0.8 * radius[:, 2::3, None] * tip_dir
        # Palm: a metacarpal capsule per finger, a thenar pad, the wrist and a forearm stub (mm,
        # hand frame at shape 0), scaled like the palm and rotated rigidly with the hand.
        palm_start = torch.tensor(
            [[14, 14, 0], [3, 14, 0], [-9, 14, 0], [-19, 14, 0], [13, 22, 4], [-14, 6, 0]]
            + [[0, 0, 0]],
            dtype=torch.float32,
        )
        palm_end = torch.tensor(
            [[23, 78, 0], [5, 81, 0], [-12, 76, 0], [-26, 67, 0], [18, 52, 4], [14, 6, 0]]
            + [[0, -120, 0]],
            dtype=torch.float32,
        )
        palm_r = torch.tensor([12.0, 12.0, 11.5, 10.5, 13.0, 15.0, 24.0])
        scale = torch.stack([fac[:, 0] * fac[:, 2], fac[:, 0] * fac[:, 1], fac[:, 0]], -1)
        ps = (glob[:, None] @ (palm_start.to(pose)[None] * scale[:, None])[..., None])[..., 0]
        pe = (glob[:, None] @ (palm_end.to(pose)[None] * scale[:, None])[..., None])[..., 0]
        start = torch.cat([start, ps], dim=1)  # (B, 22, 3)
        end = torch.cat([end, pe], dim=1)
        radius = torch.cat([radius, palm_r.to(pose)[None] * thick], dim=1)
        nail = -frames[:, :, 2, :, 2]  # (B, 5, 3): minus the distal bone's palmar z axis
        return {"xyz": joints, "start": start, "end": end, "radius": radius, "nail": nail}
