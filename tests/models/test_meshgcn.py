"""Ge et al.'s mesh graph CNN: the Chebyshev convolution against a dense reference, training."""

from __future__ import annotations

import torch

from handlab.mesh import scene_vertices, template_mesh
from handlab.models import create
from handlab.models.meshgcn import ChebConv, scaled_laplacian
from handlab.synth.scene import sample_params

SMALL = {"input_size": 64, "head_width": 16, "channels": (16, 8, 8, 8)}


def test_chebconv_matches_dense_chebyshev_polynomials():
    g = torch.Generator().manual_seed(0)
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0], [0, 2], [3, 4]])
    L = scaled_laplacian(5, edges)
    conv = ChebConv(L, 3, 2, k=4)
    x = torch.randn(2, 5, 3, generator=g)
    # Dense reference: A, D from the edge list, T_k(L) by the recurrence on matrices.
    A = torch.zeros(5, 5)
    A[edges[:, 0], edges[:, 1]] = 1
    A = A + A.T
    d = A.sum(1).rsqrt()
    Ld = -(d[:, None] * A * d[None])
    T = [torch.eye(5), Ld]
    T += [2 * Ld @ T[-1] - T[-2]]
    T += [2 * Ld @ T[-1] - T[-2]]
    want = sum(Tk @ x @ w for Tk, w in zip(T, conv.weight, strict=True)) + conv.bias
    torch.testing.assert_close(conv(x), want, atol=1e-5, rtol=1e-5)


def test_meshgcn_learns_vertices_from_synthetic_meshes():
    torch.manual_seed(0)
    model = create("meshgcn", **SMALL)
    params = sample_params(2, torch.Generator().manual_seed(1))
    mesh = template_mesh(voxel_mm=model.config.mesh_voxel_mm)
    verts = scene_vertices(params, mesh)  # (2, V, 3) camera frame
    xyz = (model.regressor @ verts).detach()
    batch = {
        "keypoints": torch.rand(2, 21, 2) * 40 + 12,
        "visibility": torch.ones(2, 21),
        "xyz": xyz,
        "vertices": verts,
    }
    images = torch.rand(2, 3, 64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        loss, logs = model.loss(model(images), batch)
        first = logs["mpvpe_mm"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["mpvpe_mm"] < 0.6 * first
    # Real images come without meshes: the loss still works, on heatmaps and joints.
    batch.pop("vertices")
    loss, logs = model.loss(model(images), batch)
    assert "vertices" not in logs and torch.isfinite(loss)


def test_backward_under_bfloat16_autocast():
    # handlab train autocasts to bfloat16 on CUDA and bf16 CPUs; the sparse Laplacian product
    # once failed there ("expected scalar type Float but found BFloat16").
    model = create("meshgcn", **SMALL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 3, 64, 64))
    out["vertices"].float().abs().mean().backward()
    assert all(p.grad is not None for p in model.convs.parameters())
