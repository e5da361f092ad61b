"""Tests for handlab.codecs: round trips, border behaviour, differentiability, errors."""

import numpy as np
import pytest
import torch

from handlab import codecs


def _grid_positions(h: int, w: int, stride: float, step: float = 0.37) -> torch.Tensor:
    """Input-pixel keypoints whose heatmap centres sweep every cell, border cells included."""
    xs = torch.arange(-0.49, w - 0.5, step, dtype=torch.float64)
    ys = torch.arange(-0.49, h - 0.5, step * 1.7, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx.flatten(), gy.flatten()], -1)  # heatmap cells
    return (grid + 0.5) * stride - 0.5  # (N, 2) input px


def test_encode_matches_naive_loop_and_weights():
    codec = codecs.GaussianHeatmap(heatmap_size=(8, 10), stride=4, sigma=1.5)
    kp = torch.tensor([[[13.0, 9.4], [-3.0, 5.0], [20.0, 20.0]]])
    vis = torch.tensor([[1.0, 1.0, 0.0]])
    maps, weights = codec.encode(kp, vis)
    assert maps.shape == (1, 3, 8, 10)
    assert weights.tolist() == [[1.0, 0.0, 0.0]]  # joint 1 is left of the map, joint 2 invisible
    cx, cy = (13.0 + 0.5) / 4 - 0.5, (9.4 + 0.5) / 4 - 0.5
    ref = np.zeros((8, 10))
    for r in range(8):
        for c in range(10):
            ref[r, c] = np.exp(-((c - cx) ** 2 + (r - cy) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(maps[0, 0].numpy(), ref, rtol=1e-5, atol=1e-7)
    assert torch.all(maps[0, 1:] == 0)


@pytest.mark.parametrize("method", ["taylor", "local_soft_argmax"])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_clean_peaks_anywhere_decode_within_0p1_px(method, sigma):
    codec = codecs.GaussianHeatmap(heatmap_size=(12, 16), stride=4, sigma=sigma)
    kp = _grid_positions(12, 16, 4).float()
    maps, weights = codec.encode(kp[:, None])  # (N, 1, h, w)
    assert torch.all(weights == 1)
    decoded, scores = codec.decode(maps, method)
    err = (decoded[:, 0] - kp).norm(dim=-1)
    assert err.max() < 0.1, (method, sigma, err.max(), kp[err.argmax()])
    assert torch.all(scores >= np.exp(-0.5 / (2 * sigma**2)) - 1e-4)  # peak within half a cell


def test_quarter_error_is_bounded_by_a_quarter_cell_and_is_worse():
    codec = codecs.GaussianHeatmap(heatmap_size=(12, 16), stride=4, sigma=2.0)
    kp = _grid_positions(12, 16, 4).float()
    inner = ((kp > 4) & (kp < torch.tensor([59.0, 43.0]))).all(-1)  # the rule is off at borders
    maps, _ = codec.encode(kp[inner][:, None])
    err = (codec.decode(maps, "quarter")[0][:, 0] - kp[inner]).abs()
    assert err.max() <= 0.25 * 4 + 1e-4  # up to 0.25 heatmap px per axis
    assert err.max() > 0.5  # and it really is that coarse, unlike taylor


def test_global_soft_argmax_bias_toward_centre_is_a_property():
    # PoseIG's beta = 10 decode of a peak-1 Gaussian: background mass drags it to the centre.
    codec = codecs.GaussianHeatmap(heatmap_size=(64, 64), stride=4, sigma=2.0)
    kp = codec.from_grid(torch.tensor([[[5.0, 5.0], [32.0, 32.0], [60.0, 60.0]]]))
    maps, _ = codec.encode(kp)
    true_cells = torch.tensor([[5.0, 5.0], [32.0, 32.0], [60.0, 60.0]])
    full = codecs.soft_argmax_2d(maps, beta=10.0)[0]
    half = codecs.soft_argmax_2d(0.5 * maps, beta=10.0)[0]
    assert (half[0] - true_cells[0]).min() > 10  # pulled > 10 heatmap px toward the centre
    assert (true_cells[2] - half[2]).min() > 10
    assert (full[0] - true_cells[0]).min() > 1  # biased even at peak height 1
    assert (half[1] - true_cells[1]).abs().max() < 1  # the centre barely moves
    # the local decoder is unaffected by amplitude
    local = codecs.local_soft_argmax_2d(0.5 * maps, radius=3, power=4.0)[0]
    torch.testing.assert_close(local, true_cells, atol=0.02, rtol=0)


def test_soft_argmax_target_encoder_is_exact_for_global_decode():
    codec = codecs.SoftArgmaxHeatmap(heatmap_size=(12, 16), stride=4, sigma=2.0, beta=10.0)
    kp = _grid_positions(12, 16, 4)
    cells = codec.to_grid(kp)
    ok = ((cells > 0.05) & (cells < torch.tensor([15.0 - 0.05, 11.0 - 0.05]))).all(-1)
    logits, weights = codec.encode(kp[:, None])
    assert torch.equal(
        weights[:, 0] > 0, ((cells > 0) & (cells < torch.tensor([15.0, 11.0]))).all(-1)
    )
    decoded = codecs.soft_argmax_2d(logits, beta=10.0)
    err = (codec.from_grid(decoded[ok, 0]) - kp[ok]).norm(dim=-1)
    assert err.max() < 1e-3
    # the plain peak-1 Gaussian target decoded the same way is far off near the border
    plain, _ = codecs.GaussianHeatmap((12, 16), 4, 2.0).encode(kp[ok][:, None])
    plain_err = (codec.from_grid(codecs.soft_argmax_2d(plain, 10.0)[:, 0]) - kp[ok]).norm(dim=-1)
    assert plain_err.max() > 0.5 and plain_err.max() > 100 * err.max()


def test_decoders_are_differentiable_in_heatmap_values():
    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    base = torch.exp(-((x - 1.3) ** 2 + (y - 6.6) ** 2) / 8).double()
    maps = (base + 0.02 * torch.rand(2, 9, 11, generator=g, dtype=torch.float64))[None]
    maps.requires_grad_(True)
    for fn in (
        codecs.taylor_argmax_2d,
        lambda h: codecs.local_soft_argmax_2d(h, radius=2),
        lambda h: codecs.soft_argmax_2d(h, beta=3.0),
    ):
        assert torch.autograd.gradcheck(fn, (maps,), eps=1e-6, atol=1e-5)
        out = fn(maps)
        (grad,) = torch.autograd.grad(out[0, 0, 0], maps)
        assert grad.abs().sum() > 0 and torch.isfinite(grad).all()
        assert grad[0, 1].abs().sum() == 0  # joint 0's x depends only on joint 0's map


def test_taylor_survives_flat_and_noisy_maps():
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 1] = torch.rand(8, 8, generator=torch.Generator().manual_seed(3))
    for method in codecs.METHODS:
        kp, _ = codecs.GaussianHeatmap((8, 8), 4, 2.0).decode(maps, method)
        assert torch.isfinite(kp).all() and kp.shape == (1, 2, 2)
    # a noisy map's refinement stays within one cell of its argmax
    taylor = codecs.taylor_argmax_2d(maps)[0, 1]
    flat = maps[0, 1].flatten().argmax()
    peak = torch.tensor([flat % 8, flat // 8], dtype=torch.float32)
    assert (taylor - peak).abs().max() <= 1.0


@pytest.mark.parametrize("method", ["taylor", "local_soft_argmax"])
def test_volume_round_trip_including_borders(method):
    codec = codecs.GaussianVolume(size=(7, 8, 9), sigma=1.7)
    g = torch.Generator().manual_seed(1)
    sizes = torch.tensor([9.0, 8.0, 7.0])  # (x, y, z)
    pts = torch.rand(40, 3, generator=g) * sizes - 0.5
    pts[:4] = torch.tensor([[-0.45, 0.0, 6.45], [8.4, 7.4, -0.4], [0.1, 3.3, 0.2], [4.0, 4.0, 3.0]])
    vols, weights = codec.encode(pts[None])
    assert vols.shape == (1, 40, 7, 8, 9) and torch.all(weights == 1)
    # the peak sits at (x, y, z) = volume index [z, y, x]
    assert vols[0, 3, 3, 4, 4] == pytest.approx(1.0)
    decoded, _ = codec.decode(vols, method)
    assert (decoded[0] - pts).norm(dim=-1).max() < 0.02


def test_codec_errors():
    codec = codecs.GaussianHeatmap(heatmap_size=(8, 8))
    with pytest.raises(ValueError, match="keypoints: expected shape"):
        codec.encode(torch.zeros(21, 3))
    with pytest.raises(ValueError, match="visibility: expected shape"):
        codec.encode(torch.zeros(21, 2), torch.ones(20))
    with pytest.raises(ValueError, match="keypoints"):
        codec.encode(torch.tensor([[float("nan"), 1.0]]))
    nan_invisible = codec.encode(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1))
    assert torch.all(nan_invisible[0] == 0) and nan_invisible[1].item() == 0
    with pytest.raises(ValueError, match="heatmaps: expected spatial size"):
        codec.decode(torch.zeros(1, 21, 9, 8))
    with pytest.raises(ValueError, match="method: expected one of"):
        codec.decode(torch.zeros(1, 21, 8, 8), "argmax")
    with pytest.raises(ValueError, match="heatmaps: expected finite"):
        codec.decode(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(TypeError, match="heatmaps"):
        codecs.soft_argmax_2d([[0.0]])
    with pytest.raises(ValueError, match="radius"):
        codecs.local_soft_argmax_2d(torch.zeros(1, 8, 8), radius=0)
    with pytest.raises(ValueError, match="sigma"):
        codecs.GaussianHeatmap((8, 8), 4, sigma=0)
    with pytest.raises(ValueError, match="size"):
        codecs.GaussianVolume(size=(8, 8))
    with pytest.raises(ValueError, match="beta"):
        codecs.SoftArgmaxHeatmap((8, 8), beta=-1.0)
