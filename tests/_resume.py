"""Interrupt a training run mid-way and compare two runs' weights: the resume tests' steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from handlab.training import loop
from handlab.training.config import TrainConfig


def fit_interrupted(
    monkeypatch: pytest.MonkeyPatch, config: TrainConfig, out: Path, *, at_step: int
) -> None:
    """Run ``loop.fit(config, out)`` and stop it with ``KeyboardInterrupt`` as step ``at_step``
    starts, as a kill would; ``loop._step_batch`` is restored afterwards."""
    real = loop._step_batch

    def interrupt(config, data, step, *rest):
        if step == at_step:
            raise KeyboardInterrupt
        return real(config, data, step, *rest)

    monkeypatch.setattr(loop, "_step_batch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(config, out, progress=False)
    monkeypatch.setattr(loop, "_step_batch", real)


def assert_same_weights(run_a: Path, run_b: Path) -> None:
    """The two run folders' ``model.safetensors`` hold the same tensors, bit for bit."""
    a = load_file(run_a / "model.safetensors")
    b = load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
