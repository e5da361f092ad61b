"""TransPose and RLE (seed 000's Table C families): the parts that are theirs alone."""

from __future__ import annotations

import math

import pytest
import torch

from handlab.models import create
from handlab.models.rle import RealNVP2d, rle_nll
from handlab.models.transpose import sine_positions


def test_sine_positions_are_distinct_and_bounded():
    pos = sine_positions(4, 5, 16)
    assert pos.shape == (20, 16)
    assert float(pos.abs().max()) <= 1.0
    assert torch.cdist(pos, pos).fill_diagonal_(1.0).min() > 1e-3  # every cell its own code
    with pytest.raises(ValueError, match="d_model"):
        sine_positions(2, 2, 6)


def test_transpose_attention_is_a_distribution_over_cells():
    torch.manual_seed(0)
    model = create("transpose", d_model=32, heads=2, layers=2, feedforward=64, input_size=64)
    att = model.eval().attention(torch.rand(2, 3, 64, 64))
    cells = (64 // 8) ** 2
    assert att.shape == (2, cells, cells)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, cells))
    with pytest.raises(ValueError, match="heads"):
        create("transpose", d_model=30, heads=4)


def test_flow_density_integrates_to_one():
    """A normalising flow's log-det is right iff its density integrates to 1 (grid quadrature)."""
    torch.manual_seed(0)
    flow = RealNVP2d(layers=3, hidden=16)
    for p in flow.parameters():  # a visibly non-Gaussian density, not the initial near-identity
        p.data.normal_(0.0, 0.5)
    step = 0.05
    axis = torch.arange(-12.0, 12.0, step) + step / 2
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mass = float(flow.log_prob(grid).exp().sum()) * step * step
    assert mass == pytest.approx(1.0, abs=0.02)


def test_rle_nll_with_an_identity_flow_is_laplace_times_gaussian():
    flow = RealNVP2d(layers=1, hidden=4)
    for p in flow.parameters():
        p.data.zero_()  # s = t = 0: the flow is the standard normal
    mu, sigma = torch.zeros(1, 1, 2), torch.full((1, 1, 2), 0.5)
    x = torch.tensor([[[0.3, -0.2]]])
    xb = (x - mu) / sigma
    want = (
        math.log(0.25)
        - float((-xb.abs() - math.log(2)).sum())
        - float(-0.5 * (xb**2).sum() - math.log(2 * math.pi))
    )
    assert float(rle_nll(mu, sigma, x, flow).detach()) == pytest.approx(want, rel=1e-5)


def test_rle_loss_trains_the_flow_and_fits_a_batch():
    torch.manual_seed(0)
    model = create("rle", input_size=64, flow_hidden=16)
    images = torch.rand(4, 3, 64, 64)
    batch = {"keypoints": torch.rand(4, 21, 2) * 40 + 12, "visibility": torch.ones(4, 21)}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss, _ = model.loss(model(images), batch)
        opt.zero_grad()
        loss.backward()
        flow_grads = [p.grad for n, p in model.named_parameters() if n.startswith("flow.")]
        assert all(g is not None and float(g.abs().sum()) > 0 for g in flow_grads)
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1.0
    with pytest.raises(ValueError, match=r"config\.input_size"):
        model(torch.rand(1, 3, 96, 96))


def test_transpose_fits_a_batch():
    torch.manual_seed(0)
    model = create("transpose", d_model=32, heads=2, layers=1, feedforward=64, input_size=64)
    images = torch.rand(2, 3, 64, 64)
    batch = {"keypoints": torch.rand(2, 21, 2) * 40 + 12, "visibility": torch.ones(2, 21)}
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(25):
        loss, _ = model.loss(model(images), batch)
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.7 * first


@pytest.mark.parametrize("name", ["rle", "regression"])
def test_coordinate_decode_inverts_to_image_units(name):
    # the coordinate heads' target encoding and their decode are one round trip
    from handlab.models._common import to_image_units

    model = create(name, input_size=64)
    keypoints = torch.rand(2, 21, 2, generator=torch.Generator().manual_seed(0)) * 70 - 3
    coords = to_image_units(keypoints, 64).flatten(1)  # (B, 2J)
    assert torch.allclose(model.decode({"coords": coords})["keypoints"], keypoints, atol=1e-5)
