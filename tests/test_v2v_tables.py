"""benchmarks/v2v_tables.py: ``--train-only`` trains the named variants and writes no tables."""

import pytest
import torch
from _benchmark import load_benchmark


def _load():
    return load_benchmark("v2v_tables")


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


def test_markdown_puts_each_number_in_its_cell(tmp_path, capsys):
    import json

    a = {
        f"{i}-{o}": {"mm": 10.0 * (k + 1) + 0.123, "params_m": 0.5 * (k + 1)}
        for k, (i, o) in enumerate(
            [(i, o) for i in ("depthmap", "voxels") for o in ("coords", "heatmap")]
        )
    }
    b = {
        "decoders": {"RoM step 900": {"argmax": 3.0, "subvoxel": 2.0, "gaussian": 1.0}},
        "ensembles": {"step 900 / -": 7.5},
        "sequence": {"ensemble": 6.25},
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"table_a": a, "table_b": b}))
    assert _load().main(["--markdown", "--results", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| 2D depth map | 10.12 (0.50 M) | 20.12 (1.00 M) | 18.85 / 13.01 |"
    assert lines[3] == "| 3D voxels | 30.12 (1.50 M) | 40.12 (2.00 M) | 16.78 / 10.37 |"
    assert "| RoM step 900 | 3.00 | 2.00 | 1.00 |" in lines
    assert "| step 900 / - | 7.50 |" in lines and "| ensemble | 6.25 |" in lines


def test_curves_read_each_variants_validation_and_markdown_shows_them(tmp_path, capsys):
    import json

    tables = _load()
    run = tmp_path / "voxels-heatmap"
    run.mkdir()
    records = [
        {"step": 5, "train_loss": 1.0},  # a training-only line has no "val" and is not a point
        {"step": 10, "val": {"rr_mpjpe_mm": 40.5, "epe_px": 9.0}},
        {"step": 20, "val": {"rr_mpjpe_mm": 20.25, "epe_px": 4.5}},
    ]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    got = tables.curves(tmp_path)
    assert got == {
        "voxels-heatmap": [
            {"step": 10, "rr_mpjpe_mm": 40.5, "epe_px": 9.0},
            {"step": 20, "rr_mpjpe_mm": 20.25, "epe_px": 4.5},
        ]
    }
    a = {
        f"{i}-{o}": {"mm": 1.0, "params_m": 1.0}
        for i in ("depthmap", "voxels")
        for o in ("coords", "heatmap")
    }
    b = {"decoders": {}, "ensembles": {}, "sequence": {}}
    path = tmp_path / "t.json"
    ref = {"model": "zoo:v2v_32", "mm": 17.125, "steps": 2700, "batch_size": 32}
    path.write_text(json.dumps({"table_a": a, "table_b": b, "curves": got, "reference": ref}))
    assert tables.main(["--markdown", "--results", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| validation, root-relative mm | 10 | 20 |" in lines
    assert "| voxels-heatmap | 40.5 | 20.2 |" in lines
    assert any("`zoo:v2v_32` (2700 steps of batch 32), 17.12 mm" in line for line in lines)


def test_reference_row_scores_the_zoo_twin_and_refuses_another_cell():
    import math

    tables = _load()
    args = tables.parse_args(["--eval", "4", "--size", "128"])
    test = tables.split_data("test", args)
    row = tables.reference_row("zoo:v2v_32", test, torch.device("cpu"))
    assert row["model"] == "zoo:v2v_32" and row["batch_size"] == 32 and row["steps"] >= 1000
    # the same score as the benchmark's own path on the same model
    model = tables.zoo.load_model("zoo:v2v_32")
    direct = tables.error(
        tables.joints(model, tables.run(model, test, torch.device("cpu"))), test["xyz"]
    )
    assert math.isclose(row["mm"], direct, rel_tol=1e-6) and 0 < row["mm"] < 100
    with pytest.raises(ValueError, match="--reference: expected a voxels -> heatmap"):
        tables.reference_row("zoo:a2j_r18", test, torch.device("cpu"))


def test_a_wrong_reference_fails_before_any_training(tmp_path):
    tables = _load()
    argv = ["--steps", "2", "--eval", "4", "--grid", "16", "--width", "2", "--size", "64"]
    argv += ["--device", "cpu", "--out", str(tmp_path / "runs"), "--reference", "zoo:a2j_r18"]
    with pytest.raises(ValueError, match="--reference: expected a voxels -> heatmap"):
        tables.main(argv)
    assert not (tmp_path / "runs").exists()
