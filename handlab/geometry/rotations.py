"""Rotations (quaternions, axis-angle, 6D, matrices) and Procrustes alignment.

Taught in chapter 00 (``notebooks/00_tour.py``); used by the hand model, the 3D models and the
PA-MPJPE metric.

>>> matrix_to_axis_angle(axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.5]))).tolist()
[0.0, 0.0, 0.5]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from handlab._checks import Array, check_finite, check_shape
from handlab.geometry._common import _as_tensor, _visible

__all__ = [
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "procrustes",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
]


# ---------------------------------------------------------------------------------------------
# Rotations. Quaternions are (w, x, y, z). Formulas follow pytorch3d's ``rotation_conversions``
# (robust quaternion extraction by the best-conditioned of four candidates; Taylor expansions
# near angle 0), written with masks so gradients stay finite at 0 and pi.


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0 (not NaN) where x <= 0."""
    out = torch.zeros_like(x)
    pos = x > 0
    out[pos] = torch.sqrt(x[pos])
    return out


def quaternion_to_matrix(quaternion: Array) -> torch.Tensor:
    """Unit (or unnormalised) quaternions (..., 4) ``(w, x, y, z)`` -> rotations (..., 3, 3).

    >>> quaternion_to_matrix(torch.tensor([0.0, 0.0, 0.0, 1.0])).round().tolist()
    [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    quaternion = _as_tensor("quaternion", quaternion)
    check_shape("quaternion", quaternion, ("...", 4))
    w, x, y, z = quaternion.unbind(-1)
    s = 2.0 / (quaternion * quaternion).sum(-1)
    m = [
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(quaternion.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> unit quaternions (..., 4) ``(w, x, y, z)`` with ``w >= 0``.

    >>> matrix_to_quaternion(torch.eye(3)).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    matrix = _as_tensor("matrix", matrix)
    check_shape("matrix", matrix, ("...", 3, 3))
    m = matrix.reshape(matrix.shape[:-2] + (9,)).unbind(-1)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    q_abs = _sqrt_positive(
        torch.stack(
            [
                1 + m00 + m11 + m22,  # 4 w^2
                1 + m00 - m11 - m22,  # 4 x^2
                1 - m00 + m11 - m22,  # 4 y^2
                1 - m00 - m11 + m22,  # 4 z^2
            ],
            dim=-1,
        )
    )
    rows = [
        [q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01],
        [m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20],
        [m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21],
        [m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2],
    ]
    cands = torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)  # (..., 4, 4)
    cands = cands / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = F.one_hot(q_abs.argmax(dim=-1), num_classes=4).to(cands)  # (..., 4)
    q = (cands * best[..., None]).sum(dim=-2)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_matrix(axis_angle: Array) -> torch.Tensor:
    """Axis-angle vectors (..., 3) (direction = axis, norm = angle in radians) -> (..., 3, 3).

    Exact and differentiable at angle 0 (a Taylor branch) and at pi.

    >>> axis_angle_to_matrix(torch.tensor([0.0, 0.0, torch.pi / 2])).round().tolist()
    [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    axis_angle = _as_tensor("axis_angle", axis_angle)
    check_shape("axis_angle", axis_angle, ("...", 3))
    angle2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = angle2 < 1e-8
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle2), angle2))
    # sin(a/2)/a = 1/2 - a^2/48 + ...; cos(a/2) = 1 - a^2/8 + ...
    sin_half_over = torch.where(small, 0.5 - angle2 / 48, torch.sin(angle / 2) / angle)
    cos_half = torch.where(small, 1 - angle2 / 8, torch.cos(angle / 2))
    return quaternion_to_matrix(torch.cat([cos_half, axis_angle * sin_half_over], dim=-1))


def matrix_to_axis_angle(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> axis-angle (..., 3) with angle in [0, pi].

    >>> matrix_to_axis_angle(axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.1]))).tolist()
    [0.3..., -0.2..., 0.1...]
    """
    q = matrix_to_quaternion(matrix)
    sin_half2 = (q[..., 1:] ** 2).sum(-1, keepdim=True)
    small = sin_half2 < 1e-12
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_half2), sin_half2))
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    # axis * angle = v * angle / |v|; near 0, angle / |v| -> 2 / w (1 + |v|^2 / (6 w^2)).
    w = q[..., :1]
    factor = torch.where(small, 2 / w * (1 + sin_half2 / (6 * w * w)), angle / sin_half)
    return q[..., 1:] * factor


def rot6d_to_matrix(rot6d: Array) -> torch.Tensor:
    """6D rotation (..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al., CVPR 2019).

    handlab, like pytorch3d, stores the first two ROWS of the matrix (the paper uses columns).

    >>> rot6d_to_matrix(torch.tensor([2.0, 0, 0, 1, 3, 0])).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    rot6d = _as_tensor("rot6d", rot6d)
    check_shape("rot6d", rot6d, ("...", 6))
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def matrix_to_rot6d(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> 6D (..., 6): the first two rows, flattened.

    >>> matrix_to_rot6d(torch.eye(3)).tolist()
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    matrix = _as_tensor("matrix", matrix)
    check_shape("matrix", matrix, ("...", 3, 3))
    return matrix[..., :2, :].reshape(matrix.shape[:-2] + (6,))


# ---------------------------------------------------------------------------------------------
# Procrustes


def procrustes(
    pred: Array, target: Array, *, scale: bool = True, visibility: Array | None = None
) -> torch.Tensor:
    """Align ``pred`` to ``target`` by the best similarity (or rigid) transform, batched.

    Umeyama (1991): centre both, ``H = X0^T Y0 = U S V^T``, rotation ``R = U D V^T`` with
    ``D = diag(1, .., sign det(U V^T))`` (no reflections), scale ``tr(DS) / |X0|^2``.

    Args:
        pred, target: (..., J, C) points, C = 2 or 3 (mm for PA-MPJPE).
        scale: fit the scale too (PA-MPJPE); False gives a rigid fit (rotation + translation).
        visibility: optional (..., J); only joints with weight > 0 determine the fit (all joints
            are transformed).

    Returns:
        aligned pred (..., J, C).

    >>> t = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    >>> R = axis_angle_to_matrix(torch.tensor([0.1, 0.2, 0.3]))
    >>> torch.allclose(procrustes(2 * t @ R.T + 5, t), t, atol=1e-5)
    True
    """
    pred = _as_tensor("pred", pred)
    target = _as_tensor("target", target).to(pred)
    check_shape("pred", pred, ("...", None, None))
    if pred.shape != target.shape:
        raise ValueError(
            f"target: expected the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}"
        )
    check_finite("pred", pred)
    check_finite("target", target)
    w = _visible(visibility, pred).to(pred)
    if visibility is not None and bool((w.sum(-1) == 0).any()):
        raise ValueError("visibility: expected at least one visible joint per sample, got none")
    w = w[..., None]  # (..., J, 1)
    mu_p = (w * pred).sum(-2, keepdim=True) / w.sum(-2, keepdim=True)
    mu_t = (w * target).sum(-2, keepdim=True) / w.sum(-2, keepdim=True)
    X0, Y0 = pred - mu_p, target - mu_t  # (..., J, C)
    H = (w * X0).transpose(-1, -2) @ Y0  # (..., C, C)
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(U @ Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = (U * D[..., None, :]) @ Vh  # (..., C, C), aligned = X0 @ R
    s = torch.ones_like(d)[..., None, None]
    if scale:
        var = (w * X0 * X0).sum((-1, -2))
        s = ((D * S).sum(-1) / var.clamp(min=torch.finfo(pred.dtype).tiny))[..., None, None]
    return s * X0 @ R + mu_t
