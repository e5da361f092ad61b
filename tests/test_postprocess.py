"""Tests of handlab.postprocess: decoders, N-best, ensembles, pose prior, temporal average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handlab.codecs import GaussianVolume
from handlab.postprocess import PosePrior, decode_volume, ensemble, n_best, temporal_average

# interior sub-voxel centres, a centre on a voxel, and centres on / next to the borders
POINTS = torch.tensor(
    [[[3.3, 4.7, 5.2], [6.0, 6.0, 6.0], [0.2, 11.0, 5.6], [0.0, 0.4, 10.8], [11.3, 0.0, 0.1]]]
)


@pytest.fixture(scope="module")
def volumes() -> torch.Tensor:
    maps, weights = GaussianVolume(size=(12, 12, 12), sigma=1.7).encode(POINTS)
    assert bool((weights == 1).all())
    return maps


@pytest.mark.parametrize(
    ("method", "tol"), [("argmax", 0.5), ("subvoxel", 0.005), ("gaussian", 1e-4)]
)
def test_decoders_on_clean_gaussians(volumes: torch.Tensor, method: str, tol: float) -> None:
    coords = decode_volume(volumes, method)
    assert coords.shape == (1, 5, 3)
    err = (coords - POINTS).abs()
    assert float(err.max()) <= tol + 1e-6
    # the voxel-centred peak is exact for every decoder
    assert float(err[0, 1].max()) < 1e-4


def test_argmax_is_the_nearest_voxel(volumes: torch.Tensor) -> None:
    coords = decode_volume(volumes, "argmax")
    assert torch.equal(coords[0, :2], torch.tensor([[3.0, 5.0, 5.0], [6.0, 6.0, 6.0]]))


def test_subvoxel_is_differentiable(volumes: torch.Tensor) -> None:
    maps = volumes.clone().requires_grad_(True)
    decode_volume(maps, "subvoxel")[..., 0].sum().backward()
    assert maps.grad is not None and float(maps.grad.abs().sum()) > 0


def test_n_best_against_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 3, 4, 5, 6, generator=g) - 0.2
    got = n_best(maps, 7)
    for b in range(2):
        for j in range(3):
            cells = [
                (float(maps[b, j, z, y, x]), (x, y, z))
                for z in range(4)
                for y in range(5)
                for x in range(6)
            ]
            top = sorted(cells, key=lambda c: -c[0])[:7]
            w = np.array([max(v, 0.0) for v, _ in top])
            want = (w[:, None] * np.array([p for _, p in top], dtype=float)).sum(0) / w.sum()
            np.testing.assert_allclose(got[b, j].numpy(), want, atol=1e-5)
    assert torch.equal(n_best(maps, 1), decode_volume(maps, "argmax"))


def test_ensemble_weighted_mean() -> None:
    a, b = torch.zeros(2, 21, 3), torch.full((2, 21, 3), 4.0)
    assert torch.allclose(ensemble([a, b]), torch.full((2, 21, 3), 2.0))
    assert torch.allclose(ensemble([a, b], weights=[1.0, 3.0]), torch.full((2, 21, 3), 3.0))
    volumes = [
        torch.rand(1, 2, 3, 3, 3, generator=torch.Generator().manual_seed(i)) for i in range(3)
    ]
    want = np.mean([v.numpy() for v in volumes], axis=0)
    np.testing.assert_allclose(ensemble(volumes).numpy(), want, atol=1e-6)


def test_pose_prior_removes_noise_outside_the_subspace() -> None:
    g = torch.Generator().manual_seed(0)
    J, k = 21, 5
    basis = torch.linalg.qr(torch.randn(J * 3, k, generator=g, dtype=torch.float64))[0].T  # (k, 63)
    train = (torch.randn(400, k, generator=g, dtype=torch.float64) * 30) @ basis
    prior = PosePrior.fit(train.view(400, J, 3), k)
    clean = (torch.randn(10, k, generator=g, dtype=torch.float64) * 30) @ basis  # (10, 63)
    noise = torch.randn(10, J * 3, generator=g, dtype=torch.float64) * 5
    noise_out = noise - (noise @ basis.T) @ basis  # the part orthogonal to the subspace
    projected = prior.project((clean + noise_out).view(10, J, 3)).view(10, J * 3)
    assert float((projected - clean).abs().max()) < 1e-6
    # noise inside the subspace is kept: the prior is a projection, not a denoiser of everything
    inside = noise - noise_out
    kept = prior.project((clean + inside).view(10, J, 3)).view(10, J * 3)
    assert torch.allclose(kept, clean + inside, atol=1e-6)
    # the same subspace as numpy's SVD (an independent reference)
    _, _, vt = np.linalg.svd(train.numpy(), full_matrices=False)
    ref = vt[:k].T @ vt[:k]
    np.testing.assert_allclose(
        prior.components.T.numpy() @ prior.components.numpy(), ref, atol=1e-8
    )


def test_temporal_average_constant_is_identity_and_matches_a_loop() -> None:
    const = torch.randn(1, 21, 3).expand(9, 21, 3)
    assert torch.allclose(temporal_average(const, 3), const, atol=1e-6)
    seq = torch.randn(2, 9, 4, 3, generator=torch.Generator().manual_seed(1))
    got = temporal_average(seq, 2)
    for t in range(9):
        lo, hi = max(0, t - 2), min(9, t + 3)
        assert torch.allclose(got[:, t], seq[:, lo:hi].mean(1), atol=1e-6)
    assert torch.equal(temporal_average(seq, 0), seq)


def test_errors() -> None:
    maps = torch.rand(1, 2, 5, 5, 5)
    with pytest.raises(ValueError, match="method: expected one of"):
        decode_volume(maps, "mean")
    with pytest.raises(ValueError, match=r"heatmaps: expected shape \(\*, \*, \*, \*, \*\)"):
        decode_volume(torch.rand(2, 5, 5, 5))
    with pytest.raises(TypeError, match=r"heatmaps: expected a torch\.Tensor"):
        decode_volume(maps.numpy())
    with pytest.raises(ValueError, match="heatmaps: expected finite"):
        decode_volume(torch.full((1, 1, 3, 3, 3), float("nan")))
    with pytest.raises(ValueError, match=r"n: expected an int in \[1, 125\]"):
        n_best(maps, 0)
    with pytest.raises(ValueError, match="preds_list: expected at least one"):
        ensemble([])
    with pytest.raises(TypeError, match="preds_list: expected a list"):
        ensemble(torch.zeros(2, 21, 3))
    with pytest.raises(ValueError, match=r"preds_list\[1\]: expected shape"):
        ensemble([torch.zeros(1, 21, 3), torch.zeros(1, 20, 3)])
    with pytest.raises(ValueError, match="weights: expected 2 non-negative"):
        ensemble([torch.zeros(1), torch.zeros(1)], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"n_components: expected an int in \[1, 62\]"):
        PosePrior.fit(torch.zeros(10, 21, 3), 63)
    with pytest.raises(ValueError, match="train_xyz: expected at least n_components"):
        PosePrior.fit(torch.rand(3, 21, 3), 5)
    prior = PosePrior.fit(torch.rand(30, 21, 3), 4)
    with pytest.raises(ValueError, match=r"xyz: expected shape \(\.\.\., 21, 3\)"):
        prior.project(torch.zeros(2, 14, 3))
    with pytest.raises(
        ValueError, match=r"seq_xyz: expected at least 2 \* window \+ 1 = 7 frames, got 5"
    ):
        temporal_average(torch.zeros(5, 21, 3), 3)
    with pytest.raises(ValueError, match="window: expected an int >= 0"):
        temporal_average(torch.zeros(5, 21, 3), -1)
    with pytest.raises(ValueError, match=r"seq_xyz: expected shape \(T, J, 3\)"):
        temporal_average(torch.zeros(2, 2, 5, 21, 3), 1)
