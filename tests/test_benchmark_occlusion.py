"""benchmarks/occlusion_tables.py --zoo: the shipped models stand in for the variants, at their
128 px, into their own results file; it trains nothing."""

from __future__ import annotations

import pytest
from _benchmark import load_benchmark


def _bench():
    return load_benchmark("occlusion_tables")


def test_zoo_mode_reads_the_shipped_models_at_their_size(capsys):
    bench = _bench()
    args = bench.parse_args(["--zoo"])
    assert args.size == 128 and args.results.name == "occlusion_tables_zoo.json"
    assert bench.parse_args([]).results.name == "occlusion_tables.json"  # the chapters' file
    model = bench.load("handoccnet", args)
    assert model.card["name"] == "handoccnet_r18"
    assert bench.load("deformer_mse", args) is None
    assert "not shipped" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.parse_args(["--zoo", "--steps", "10"])
    assert "--steps does not apply" in capsys.readouterr().err
