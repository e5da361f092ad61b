"""Tests for handlab.geometry."""

import numpy as np
import pytest
import torch

from handlab import geometry


def _K(batch: int = 0) -> torch.Tensor:
    K = torch.tensor([[500.0, 0.0, 60.0], [0.0, 480.0, 70.0], [0.0, 0.0, 1.0]])
    return K if batch == 0 else K.expand(batch, 3, 3).clone()


def _xyz(batch: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 21, 3, generator=g) * 40 + torch.tensor([10.0, -5.0, 450.0])


def test_project_matches_naive_matrix_product():
    xyz, K = _xyz(), _K()
    uv = geometry.project(xyz, K)
    hom = xyz @ K.T  # (B, J, 3)
    np.testing.assert_allclose(uv, hom[..., :2] / hom[..., 2:], rtol=1e-6, atol=1e-4)


def test_project_batched_K_and_numpy():
    xyz = _xyz()
    K = _K(4)
    K[1, 0, 0] = 300.0
    uv = geometry.project(xyz.numpy(), K.numpy())
    assert isinstance(uv, torch.Tensor) and uv.shape == (4, 21, 2)
    torch.testing.assert_close(uv[1], geometry.project(xyz[1], K[1]))
    assert not torch.allclose(uv[1], geometry.project(xyz[1], _K()))


def test_unproject_inverts_project_uvd():
    xyz, K = _xyz(), _K(4)
    K[:, 0, 1] = 3.0  # skew is honoured both ways
    uvd = geometry.project_uvd(xyz, K)
    torch.testing.assert_close(uvd[..., 2], xyz[..., 2])
    torch.testing.assert_close(geometry.unproject(uvd, K), xyz, rtol=1e-5, atol=1e-3)


def test_project_errors():
    with pytest.raises(ValueError, match="xyz: expected shape"):
        geometry.project(torch.zeros(21, 2), _K())
    with pytest.raises(ValueError, match="K: expected shape"):
        geometry.project(_xyz(), torch.eye(4))
    with pytest.raises(TypeError, match="xyz"):
        geometry.project([[1.0, 2.0, 3.0]], _K())
    with pytest.raises(ValueError, match="K: expected finite"):
        geometry.project(_xyz(), torch.full((3, 3), float("nan")))
