"""benchmarks/v2v_tables.py: ``--train-only`` trains the named variants and writes no tables."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("v2v_tables", ROOT / "benchmarks/v2v_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_variant_is_named(capsys):
    with pytest.raises(SystemExit):
        _load().parse_args(["--steps", "2", "--train-only", "voxels-heatmap,nope"])
    assert "nope" in capsys.readouterr().err


def test_train_only_trains_and_stops(tmp_path):
    tables = _load()
    argv = ["--steps", "2", "--snapshots", "2", "--eval", "4", "--grid", "16", "--width", "2"]
    argv += ["--size", "64", "--batch-size", "2", "--device", "cpu", "--out", str(tmp_path)]
    argv += ["--results", str(tmp_path / "results.json"), "--train-only", "depthmap-coords"]
    assert tables.main(argv) == 0
    run = tmp_path / "depthmap-coords"
    assert (run / "card.json").is_file()
    assert sorted(p.name for p in (run / "snapshots").iterdir()) == [
        "model-00000001.safetensors",
        "model-00000002.safetensors",
    ]
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "tables.json").exists()
    assert not (tmp_path / "voxels-heatmap").exists()
