"""Fit handlab's articulated hand (:class:`handlab.hand_model.HandModel`, pose + shape) to
predicted 2D and/or 3D joints by optimisation (Boukhayma, Bem & Torr, "3D Hand Shape and Pose
from Images in the Wild", CVPR 2019; seminar seed 002's weighting ``L = L2D + 100 L3D + 10 Lreg``).

Taught in chapter 03 (``notebooks/03_2d_to_3d.py``, 2D -> 3D).

Units, so that the seed's weights balance: ``L2D`` is the mean squared reprojection error in
pixels, ``L3D`` the mean squared root-relative joint error in centimetres (mm / 10), ``Lreg`` the
hand model's :func:`~handlab.hand_model.limit_penalty` (rad^2) plus ``0.01 |shape|^2``.
At a typical crop (f ~ 500 px at 500 mm) 1 cm is ~10 px, so 100 L3D and L2D weigh alike.

The optimiser is Adam with a projection after every step (pose clamped into the joint limits,
shape into ``[-3, 3]``), so fitted poses always respect the limits. The global rotation starts from
a Kabsch alignment of the rigid palm joints (wrist, thumb CMC, the four MCPs) to the targets; with
2D only, the targets are the keypoints back-projected at the depth that gives the rest hand's
palm its 2D length (weak perspective).

>>> from handlab.hand_model import HandModel
>>> pose = torch.zeros(1, 16, 3)
>>> pose[0, 0] = torch.tensor([0.3, -0.2, 0.5])
>>> pose[0, 4, 0] = 0.8  # middle MCP flexion
>>> fit = fit_hand_model(xyz=HandModel()(pose), steps=150)
>>> float((fit["xyz"] - HandModel()(pose)).norm(dim=-1).mean()) < 1.0
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from handlab._checks import check_finite, check_range, check_shape, check_tensor
from handlab.geometry import matrix_to_axis_angle, project, unproject
from handlab.hand_model import SHAPE_LIMIT, HandModel, clamp_pose, limit_penalty

__all__ = ["fit_hand_model", "kabsch"]

PALM = (0, 1, 5, 9, 13, 17)  # rigid under the global rotation: wrist, thumb CMC, MCPs


def kabsch(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rotation (B, 3, 3) minimising ``sum |R a_i - b_i|^2`` for points (B, N, 3) that are already
    centred (no translation, no scale; Kabsch 1976, with the reflection fix).

    >>> from handlab.geometry import axis_angle_to_matrix
    >>> a = torch.randn(1, 6, 3)
    >>> R = axis_angle_to_matrix(torch.tensor([[0.4, 0.1, -0.7]]))
    >>> torch.allclose(kabsch(a, a @ R.transpose(1, 2)), R, atol=1e-5)
    True
    """
    H = source.transpose(1, 2) @ target  # (B, 3, 3)
    U, _, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(Vh.transpose(1, 2) @ U.transpose(1, 2)))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], dim=-1))
    return Vh.transpose(1, 2) @ D @ U.transpose(1, 2)


def _check_inputs(
    keypoints: torch.Tensor | None, xyz: torch.Tensor | None, K: torch.Tensor | None
) -> int:
    if keypoints is None and xyz is None:
        raise ValueError("keypoints, xyz: expected at least one target, got neither")
    if keypoints is not None and K is None:
        raise ValueError("K: expected intrinsics (B, 3, 3) to fit 2D keypoints, got None")
    batch = None
    for name, x, shape in (("keypoints", keypoints, (21, 2)), ("xyz", xyz, (21, 3))):
        if x is None:
            continue
        check_tensor(name, x)
        check_shape(name, x, (None, *shape))
        check_finite(name, x)
        if batch is not None and x.shape[0] != batch:
            raise ValueError(f"{name}: expected batch size {batch}, got {x.shape[0]}")
        batch = x.shape[0]
    if K is not None:
        check_tensor("K", K)
        check_shape("K", K, (batch, 3, 3))
        check_finite("K", K)
    return int(batch)


def _root_from_2d(keypoints: torch.Tensor, rel: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Translation (B, 3) mm that best projects root-relative joints ``rel`` (B, 21, 3) onto
    ``keypoints`` (B, 21, 2): ``(u - cx)(Z + tz) = fx (X + tx)`` (and the same in v) is linear in
    ``t``, so it is one least-squares solve (42 equations, 3 unknowns).

    >>> K = torch.tensor([[[500.0, 0, 64], [0, 500, 64], [0, 0, 1]]])
    >>> rel = torch.randn(1, 21, 3) * 30
    >>> t = torch.tensor([[10.0, -5.0, 450.0]])
    >>> torch.allclose(_root_from_2d(project(rel + t[:, None], K), rel, K), t, atol=1e-2)
    True
    """
    fx, fy = K[:, 0, 0, None], K[:, 1, 1, None]  # (B, 1)
    du, dv = keypoints[..., 0] - K[:, 0, 2, None], keypoints[..., 1] - K[:, 1, 2, None]  # (B, 21)
    zero = torch.zeros_like(du)
    A = torch.cat(
        [
            torch.stack([fx.expand_as(du), zero, -du], -1),
            torch.stack([zero, fy.expand_as(dv), -dv], -1),
        ],
        dim=1,
    )  # (B, 42, 3)
    b = torch.cat([du * rel[..., 2] - fx * rel[..., 0], dv * rel[..., 2] - fy * rel[..., 1]], 1)
    return torch.linalg.lstsq(A.double(), b.double()[..., None]).solution[..., 0].to(rel.dtype)


def _initial_global(
    hand: HandModel,
    keypoints: torch.Tensor | None,
    xyz: torch.Tensor | None,
    K: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global axis-angle (B, 3) and root translation (B, 3) mm from a palm Kabsch alignment.

    The rotation aligns the rest palm to the 3D palm when ``xyz`` is given, else to the
    keypoints back-projected as a flat hand. The translation is ``xyz``'s root where that root is
    in front of the camera (z > 0). Root-relative predictions put the root at z = 0, which cannot
    be projected: with keypoints, their translation is the least-squares one that projects the
    3D joints onto the keypoints (:func:`_root_from_2d`), or, where that is not in front of the
    camera either (degenerate joints), the back-projected wrist of the flat hand.
    """
    like = xyz if xyz is not None else keypoints
    rest = hand(like.new_zeros(like.shape[0], 16, 3))[:, PALM]  # (B, 6, 3), wrist at the origin
    root = None
    if keypoints is not None:
        # Depth at which the rest palm (wrist -> middle MCP) has the keypoints' 2D length.
        length_2d = (keypoints[:, 9] - keypoints[:, 0]).norm(dim=-1).clamp(min=1e-3)  # (B,)
        depth = K[:, 0, 0] * rest[:, 3].norm(dim=-1) / length_2d  # (B,) mm
        uvd = torch.cat([keypoints, depth[:, None, None].expand(-1, 21, 1)], dim=-1)
        points = unproject(uvd, K)  # (B, 21, 3) mm, a flat hand at that depth
        root = points[:, :1]
        target = points[:, PALM] - root
    if xyz is not None:
        rel = xyz - xyz[:, :1]
        if root is not None:
            solved = _root_from_2d(keypoints, rel, K)[:, None]  # (B, 1, 3)
            root = torch.where(solved[..., 2:] > 1.0, solved, root)
            root = torch.where(xyz[:, :1, 2:] > 0, xyz[:, :1], root)
        else:
            root = xyz[:, :1]
        target = rel[:, PALM]
    rotation = kabsch(rest, target)  # (B, 3, 3)
    return matrix_to_axis_angle(rotation), root[:, 0]


def fit_hand_model(
    keypoints: torch.Tensor | None = None,
    xyz: torch.Tensor | None = None,
    K: torch.Tensor | None = None,
    *,
    steps: int = 300,
    weights: Sequence[float] = (1.0, 100.0, 10.0),
    lr: float = 0.05,
    visibility: torch.Tensor | None = None,
    fit_shape: bool = True,
) -> dict[str, torch.Tensor]:
    """Fit pose, shape and root translation of :class:`~handlab.hand_model.HandModel` to joints.

    Args:
        keypoints: optional (B, 21, 2) pixels; needs ``K`` (B, 3, 3).
        xyz: optional (B, 21, 3) mm, camera frame or root-relative as 3D models predict them
            (only root-relative positions enter ``L3D``; the root fixes the translation when
            there are no keypoints, and with keypoints a root at z <= 0 is replaced by the 2D
            estimate).
        K: (B, 3, 3) intrinsics for the 2D term.
        steps: Adam steps (each followed by the projection into the limits).
        weights: ``(w2d, w3d, wreg)``, seed 002's ``(1, 100, 10)`` by default.
        lr: Adam step size (radians and shape units; the translation uses ``10 * lr`` mm).
        visibility: optional (B, 21) weights for the 2D term.
        fit_shape: optimise the 10 shape parameters too (else shape stays 0).

    Returns:
        dict with ``pose`` (B, 16, 3) rad within the limits, ``shape`` (B, 10),
        ``translation`` (B, 3) mm, ``xyz`` (B, 21, 3) mm camera frame (FK + translation),
        ``keypoints`` (B, 21, 2) px when ``K`` is given, and ``loss`` (B,) the final objective.
    """
    batch = _check_inputs(keypoints, xyz, K)
    check_range("steps", steps, lo=0)
    if len(weights) != 3:
        raise ValueError(f"weights: expected (w2d, w3d, wreg), got {tuple(weights)}")
    w2d, w3d, wreg = (float(w) for w in weights)
    like = xyz if xyz is not None else keypoints
    if visibility is None:
        visibility = like.new_ones(batch, 21)
    check_shape("visibility", visibility, (batch, 21))
    hand = HandModel()
    with torch.no_grad():
        glob, root = _initial_global(hand, keypoints, xyz, K)
    pose = like.new_zeros(batch, 16, 3)
    pose[:, 0] = glob
    pose.requires_grad_(True)
    shape = like.new_zeros(batch, 10).requires_grad_(fit_shape)
    translation = root.clone().requires_grad_(keypoints is not None)
    groups = [{"params": [pose], "lr": lr}]
    groups += [{"params": [shape], "lr": lr}] if fit_shape else []
    groups += [{"params": [translation], "lr": 10 * lr}] if keypoints is not None else []
    optimizer = torch.optim.Adam(groups)

    def objective() -> torch.Tensor:  # (B,)
        joints = hand(pose, shape)  # (B, 21, 3) root at 0
        total = wreg * (limit_penalty(pose) + 0.01 * shape.pow(2).sum(-1))
        if xyz is not None:
            rel = xyz - xyz[:, :1]
            total = total + w3d * ((joints - rel) / 10.0).pow(2).sum(-1).mean(-1)
        if keypoints is not None:
            uv = project(joints + translation[:, None], K)  # (B, 21, 2)
            err = (uv - keypoints).pow(2).sum(-1) * visibility
            total = total + w2d * err.sum(-1) / visibility.sum(-1).clamp(min=1.0)
        return total

    for _ in range(steps):
        optimizer.zero_grad()
        objective().sum().backward()
        optimizer.step()
        with torch.no_grad():  # projection: the fitted pose never leaves the limits
            pose.copy_(clamp_pose(pose))
            shape.clamp_(-SHAPE_LIMIT, SHAPE_LIMIT)
    with torch.no_grad():
        joints = hand(pose, shape) + translation[:, None]
        out = {
            "pose": pose.detach().clone(),
            "shape": shape.detach().clone(),
            "translation": translation.detach().clone(),
            "xyz": joints,
            "loss": objective(),
        }
        if K is not None:
            out["keypoints"] = project(joints, K)
    return out
