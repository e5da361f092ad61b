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


def test_a_named_run_stands_in_for_its_variant(tmp_path, capsys):
    bench = _bench()
    run = tmp_path / "mse"
    with pytest.raises(SystemExit):  # not a finished run
        bench.parse_args(["--run", f"deformer_mse={run}"])
    assert "not a finished handlab train run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--run", "deformer_l1=x"])
    assert "expected NAME=FOLDER with NAME one of" in capsys.readouterr().err
    # a finished run (here the shipped Deformer's card and weights copied into a folder)
    from handlab import zoo
    from handlab.zoo._large import weights_path

    run.mkdir()
    name = "deformer_r18"
    (run / "card.json").write_bytes((zoo.folder() / f"{name}.json").read_bytes())
    (run / "model.safetensors").write_bytes(weights_path(zoo.folder(), name).read_bytes())
    args = bench.parse_args(["--zoo", "--run", f"deformer_mse={run}"])
    assert (
        bench.load("deformer_mse", args).card["model"] == "deformer"
    )  # the run, not "not shipped"
    assert bench.load("deformer_perframe", args) is None
