"""Pinhole camera geometry: projection, back-projection and depth maps to point clouds.

Taught in chapter 00 (``notebooks/00_tour.py``); the conventions are :mod:`handlab.geometry`'s
(``xyz`` mm in the camera frame, ``K`` the intrinsics, pixel centres at integers).

>>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
>>> unproject(project_uvd(torch.tensor([[1.0, 2.0, 10.0]]), K), K).tolist()
[[1.0, 2.0, 10.0]]
"""

from __future__ import annotations

import torch

from handlab._checks import Array, check_shape
from handlab.geometry._common import _as_tensor, _check_K

__all__ = ["depth_to_points", "project", "project_uvd", "unproject"]


def _points_and_K(name: str, points: Array, K: Array) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked float tensors: ``points`` (..., J, 3) and ``K`` (..., 3, 3) in the points' dtype."""
    points = _as_tensor(name, points)
    K = _as_tensor("K", K).to(points)
    check_shape(name, points, ("...", None, 3))
    _check_K(K)
    return points, K


def project_uvd(xyz: Array, K: Array) -> torch.Tensor:
    """Project camera-frame points to pixels and keep their depth.

    Args:
        xyz: (..., J, 3) mm, camera frame; z must be positive.
        K: (3, 3) or (..., 3, 3) intrinsics, broadcast over the leading dims of ``xyz``.

    Returns:
        uvd (..., J, 3): ``(u px, v px, z mm)`` with ``u = fx x / z + cx``, ``v = fy y / z + cy``.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> project_uvd(torch.tensor([[1.0, 2.0, 10.0]]), K).tolist()
    [[20.0, 40.0, 10.0]]
    """
    xyz, K = _points_and_K("xyz", xyz, K)
    z = xyz[..., 2:3]
    # x' = K @ (x / z); written per entry so skew (K[0, 1]) is honoured and gradients stay simple.
    xn = xyz[..., 0:1] / z
    yn = xyz[..., 1:2] / z
    Kx = K[..., None, :, :]  # (..., 1, 3, 3) broadcasts over joints
    u = Kx[..., 0, 0:1] * xn + Kx[..., 0, 1:2] * yn + Kx[..., 0, 2:3]
    v = Kx[..., 1, 1:2] * yn + Kx[..., 1, 2:3]
    return torch.cat([u, v, z], dim=-1)


def project(xyz: Array, K: Array) -> torch.Tensor:
    """Project camera-frame points (..., J, 3) mm to pixels (..., J, 2) ``(x, y)``.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> project(torch.tensor([[1.0, 2.0, 10.0]]), K).tolist()
    [[20.0, 40.0]]
    """
    return project_uvd(xyz, K)[..., :2]


def unproject(uvd: Array, K: Array) -> torch.Tensor:
    """Inverse of :func:`project_uvd`: ``(u px, v px, depth mm)`` (..., J, 3) -> xyz (..., J, 3) mm.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> unproject(torch.tensor([[20.0, 40.0, 10.0]]), K).tolist()
    [[1.0, 2.0, 10.0]]
    """
    uvd, K = _points_and_K("uvd", uvd, K)
    Kx = K[..., None, :, :]
    z = uvd[..., 2:3]
    yn = (uvd[..., 1:2] - Kx[..., 1, 2:3]) / Kx[..., 1, 1:2]
    xn = (uvd[..., 0:1] - Kx[..., 0, 2:3] - Kx[..., 0, 1:2] * yn) / Kx[..., 0, 0:1]
    return torch.cat([xn * z, yn * z, z], dim=-1)


def depth_to_points(
    depth: Array, K: Array, mask: Array | None = None, stride: int = 2
) -> torch.Tensor:
    """Back-project a depth map to a point cloud, one point per ``stride``-th pixel centre.

    Args:
        depth: (H, W) or (1, H, W) mm; values <= 0 mean "no measurement" and are dropped.
        K: (3, 3) intrinsics of the depth image.
        mask: optional (H, W) or (1, H, W); pixels where it is 0 are dropped.
        stride: keep every ``stride``-th row and column (2 quarters the point count).

    Returns:
        xyz (N, 3) mm, camera frame, in row-major pixel order.

    >>> K = torch.tensor([[100.0, 0, 1], [0, 100.0, 1], [0, 0, 1]])
    >>> depth_to_points(torch.full((3, 3), 200.0), K, stride=2).tolist()
    [[-2.0, -2.0, 200.0], [2.0, -2.0, 200.0], [-2.0, 2.0, 200.0], [2.0, 2.0, 200.0]]
    """
    depth = _as_tensor("depth", depth)
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    check_shape("depth", depth, (None, None))
    K = _as_tensor("K", K).to(depth)
    check_shape("K", K, (3, 3))
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: expected a positive int, got {stride!r}")
    keep = torch.isfinite(depth) & (depth > 0)
    if mask is not None:
        mask = _as_tensor("mask", mask)
        mask = mask[0] if mask.ndim == 3 and mask.shape[0] == 1 else mask
        check_shape("mask", mask, tuple(depth.shape))
        keep &= mask != 0
    rows = torch.arange(0, depth.shape[0], stride, device=depth.device)
    cols = torch.arange(0, depth.shape[1], stride, device=depth.device)
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    sel = keep[v, u]
    uvd = torch.stack([u[sel].to(depth), v[sel].to(depth), depth[v, u][sel]], dim=-1)
    return unproject(uvd, K)
