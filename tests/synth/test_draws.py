"""handlab.synth.draws: per-sample rows, distributions, prefix stability, errors."""

import pytest
import torch
from scipy import stats

from handlab.synth import sample_params
from handlab.synth.draws import WIDTH, Draws, as_draws


def test_rows_from_seeds_equal_single_generator_rows():
    d = Draws.from_seeds([3, 5])
    one = Draws.from_generator(1, torch.Generator().manual_seed(5))
    assert torch.equal(d.uniforms[1], one.uniforms[0])


def test_distributions_match_scipy():
    d = Draws.from_generator(20000, torch.Generator().manual_seed(0))
    normal = d.randn().double().numpy()
    assert stats.kstest(normal, "norm").pvalue > 1e-3
    ints = d.randint(5)
    counts = torch.bincount(ints, minlength=5).double() / len(ints)
    torch.testing.assert_close(
        counts, torch.full((5,), 0.2, dtype=torch.float64), atol=0.015, rtol=0
    )
    picks = d.choice(torch.tensor([1.0, 3.0]))
    assert abs(float(picks.double().mean()) - 0.75) < 0.015


def test_sample_i_does_not_depend_on_the_batch_size():
    a = sample_params(1, torch.Generator().manual_seed(9))
    b = sample_params(4, torch.Generator().manual_seed(9))
    for key in a:
        assert torch.equal(a[key][0], b[key][0]), key


def test_errors():
    d = Draws.from_generator(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="expected Draws with 3 rows, got 2"):
        as_draws(3, d)
    with pytest.raises(TypeError, match=r"generator: expected a torch\.Generator or Draws"):
        as_draws(2, 0)
    with pytest.raises(RuntimeError, match="WIDTH"):
        d.rand(WIDTH + 1)
