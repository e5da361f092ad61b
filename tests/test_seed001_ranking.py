"""The seed-001 ranking benchmark: its verdict follows the table, and the shipped table used one
recipe at one budget for all four networks."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from _benchmark import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/seed001_ranking.json"


def _bench():
    return load_benchmark("seed001_ranking")


def _row(epe: float, pck: float) -> dict[str, float]:
    return {"test_epe_px": epe, "real_pck@0.2": pck}


def test_verdict_follows_the_table():
    bench = _bench()
    # the seed's own order: Inception-ResNet-v2 < ResNet34 < CPM < Inception-v3
    same = {
        "inception_resnet_v2": _row(5.0, 0.6),
        "resnet34": _row(6.0, 0.5),
        "cpm": _row(7.0, 0.4),
        "inception_v3": _row(9.0, 0.3),
    }
    verdict = bench._verdict(same)
    assert verdict["spearman_seed_vs_test_epe"] == pytest.approx(1.0)
    assert verdict["spearman_seed_vs_real_pck"] == pytest.approx(1.0)
    assert verdict["irv2_best_test_epe"] and verdict["irv2_best_real_pck"]
    reverse = {n: _row(20.0 - r["test_epe_px"], 1.0 - r["real_pck@0.2"]) for n, r in same.items()}
    verdict = bench._verdict(reverse)
    assert verdict["spearman_seed_vs_test_epe"] == pytest.approx(-1.0)
    assert not verdict["irv2_best_test_epe"] and not verdict["irv2_best_real_pck"]
    assert bench._verdict({"cpm": _row(1.0, 1.0)}) == {}  # no verdict from part of the table


def test_shipped_table_is_one_recipe_at_one_budget():
    bench = _bench()
    result = json.loads(RESULTS.read_text())
    nets = result["networks"]
    assert set(nets) == set(bench.NETWORKS)
    assert {n["steps"] for n in nets.values()} == {result["recipe"]["steps"]}
    assert all(n["threads"] == 1 for n in nets.values())
    # the same training flags, apart from --model/--model-config/--out
    flags = set()
    for net in nets.values():
        words = [w for w in shlex.split(net["command"]) if w != "--restart"]
        for name in ("--model", "--out"):
            del words[words.index(name) : words.index(name) + 2]
        if "--model-config" in words:
            words = words[: words.index("--model-config")]
        flags.add(tuple(words))
    assert len(flags) == 1, flags
    assert result["verdict"] == bench._verdict(nets)
    assert all(0.0 <= n["real_pck@0.2"] <= 1.0 and n["test_epe_px"] > 0 for n in nets.values())
