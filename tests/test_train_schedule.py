"""The learning-rate schedules hold for every (steps, warm-up) pair: no division by zero.

``handlab train --steps 10`` used to fail at step 0 (one-cycle peak at ``0.1 * 10 - 1 = 0``).
"""

from __future__ import annotations

import itertools
import math

import pytest

from handlab.training.config import SCHEDULES, lr_factor

WARMUPS = (0.0, 0.01, 0.05, 0.1, 0.125, 0.2, 0.25, 1 / 3, 0.5, 0.9, 0.99, 1.0)


def _unimodal(values: list[float]) -> bool:
    """Non-decreasing up to the first maximum, non-increasing after it."""
    top = values.index(max(values))
    rises = all(a <= b + 1e-12 for a, b in itertools.pairwise(values[: top + 1]))
    falls = all(a + 1e-12 >= b for a, b in itertools.pairwise(values[top:]))
    return rises and falls


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_steps_warmup_pair_gives_a_finite_unimodal_schedule(schedule):
    for steps, warmup in itertools.product(range(1, 121), WARMUPS):
        f = [lr_factor(s, steps, schedule, warmup) for s in range(steps)]
        where = f"{schedule}, steps={steps}, warmup={warmup}"
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in f), where
        assert _unimodal(f), where
        assert max(f) > 0.0 or steps == 1, where  # some step learns


def test_ten_step_onecycle_run_is_the_smoke_test():
    f = [lr_factor(s, 10, "onecycle", 0.1) for s in range(10)]
    assert f[0] == 1.0  # a one-step warm-up is no warm-up
    assert f[-1] == pytest.approx(1 / 25 / 1e4)
