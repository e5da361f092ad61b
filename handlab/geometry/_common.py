"""Checks shared by the geometry modules: tensors from array-likes, intrinsics, visibility.

Taught in chapter 00 (``notebooks/00_tour.py``) with the rest of :mod:`handlab.geometry`.
"""

from __future__ import annotations

import torch

from handlab._checks import Array, check_finite, check_shape, check_tensor


def _as_tensor(name: str, x: Array) -> torch.Tensor:
    check_tensor(name, x)
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.float()


def _check_K(K: torch.Tensor) -> None:
    check_shape("K", K, ("...", 3, 3))
    check_finite("K", K)


def _visible(visibility: Array | None, points: torch.Tensor) -> torch.Tensor:
    """Bool (..., J): ``visibility > 0`` checked against ``points`` (..., J, C), else all True."""
    if visibility is None:
        return torch.ones(points.shape[:-1], dtype=torch.bool, device=points.device)
    visibility = _as_tensor("visibility", visibility)
    check_shape("visibility", visibility, tuple(points.shape[:-1]))
    return visibility > 0
