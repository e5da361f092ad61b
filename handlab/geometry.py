"""Camera geometry, crops, rotations and Procrustes alignment: the shared 3D vocabulary.

Taught in chapter 00 (``notebooks/00_tour.py``).

Conventions used everywhere in handlab:

- ``xyz`` (..., J, 3) are millimetres in the camera frame (x right, y down, z forward).
- ``K`` (..., 3, 3) is the pinhole intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
- ``keypoints`` / ``uv`` (..., J, 2) are pixels ``(x, y)``. **Integer coordinates are pixel
  centres**: the pixel in column 0 covers ``x`` in ``[-0.5, 0.5)``, an image of width ``W`` spans
  ``[-0.5, W - 0.5]``. Every resize, crop and heatmap stride in handlab follows this rule.
- ``uvd`` (..., J, 3) are ``(u px, v px, depth mm)``.

>>> K = torch.tensor([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
>>> project(torch.tensor([[10.0, -20.0, 500.0]]), K).tolist()
[[74.0, 44.0]]
"""

from __future__ import annotations

import numpy as np
import torch

from handlab._checks import check_finite, check_shape, check_tensor

__all__ = ["project", "project_uvd", "unproject"]

Array = torch.Tensor | np.ndarray


def _as_tensor(name: str, x: Array) -> torch.Tensor:
    check_tensor(name, x)
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.float()


def _check_K(K: torch.Tensor) -> None:
    check_shape("K", K, ("...", 3, 3))
    check_finite("K", K)


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
    xyz = _as_tensor("xyz", xyz)
    K = _as_tensor("K", K).to(xyz)
    check_shape("xyz", xyz, ("...", None, 3))
    _check_K(K)
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
    uvd = _as_tensor("uvd", uvd)
    K = _as_tensor("K", K).to(uvd)
    check_shape("uvd", uvd, ("...", None, 3))
    _check_K(K)
    Kx = K[..., None, :, :]
    z = uvd[..., 2:3]
    yn = (uvd[..., 1:2] - Kx[..., 1, 2:3]) / Kx[..., 1, 1:2]
    xn = (uvd[..., 0:1] - Kx[..., 0, 2:3] - Kx[..., 0, 1:2] * yn) / Kx[..., 0, 0:1]
    return torch.cat([xn * z, yn * z, z], dim=-1)
