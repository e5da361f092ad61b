"""benchmarks/attribution.py: the three methods it times compute the same attributions, captum
with and without ``internal_batch_size``; ``--device`` names a device this machine lacks."""

from __future__ import annotations

import sys

import pytest
import torch
from _benchmark import load_benchmark
from _tiny_model import TinyPose

from handlab.attribution import poseig
from handlab.attribution.paths import StraightPath, make_baseline


def _bench():
    return load_benchmark("attribution")


def test_timed_methods_agree_on_a_tiny_model():
    bench = _bench()
    torch.manual_seed(0)
    model = TinyPose(size=32).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    target = torch.rand(2, 21, 2, generator=torch.Generator().manual_seed(2)) * 32
    baseline = make_baseline(images, "blur", kernel_size=7, sigma=3.0)
    path = StraightPath(images, baseline)
    steps = 3
    ours = poseig(model, images, target, path=path, method="riemann_left", steps=steps, pilot=0)
    ref = bench.reference_pattern(model, path, target, steps)
    plain = bench.captum_per_joint(model, images, baseline, target, steps)
    batched = bench.captum_per_joint(model, images, baseline, target, steps, 2)
    scale = float(ours.attributions.abs().max())
    assert scale > 0
    for other in (ref, plain, batched):
        assert other.shape == ours.attributions.shape
        assert float((other - ours.attributions).abs().max()) / scale < 1e-5


def test_device_without_cuda_is_refused(monkeypatch, capsys):
    bench = _bench()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["attribution.py", "--device", "cuda"])
    with pytest.raises(SystemExit):
        bench.main()
    assert "--device" in capsys.readouterr().err
