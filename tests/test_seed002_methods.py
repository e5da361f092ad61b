"""The seed-002 benchmark's verdicts: a difference inside the margin is never called agreement."""

from __future__ import annotations

import json
from pathlib import Path

from _benchmark import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    return load_benchmark("seed002_methods")


def test_verdicts_need_a_margin():
    bench = _bench()
    assert bench._compare(80.0, 100.0) == "holds"
    assert bench._compare(100.0, 80.0) == "opposite"
    assert bench._compare(83.54, 83.56) == "no difference"


def test_shipped_results_give_a_verdict_per_claim():
    bench = _bench()
    runs = json.loads((ROOT / "benchmarks/results/seed002_methods.json").read_text())["runs"]
    lines = bench.verdicts(runs)
    assert len(lines) == 2
    assert all(line.rsplit(": ", 1)[1] in ("holds", "opposite", "no difference") for line in lines)
