import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from attr_models import distributed_worker, run_case
from safetensors.torch import save_file

from handlab import cli
from handlab.attribution.config import PoseIGConfig
from handlab.attribution.runner import run_attribution

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    model, data, config = run_case()
    done = run_attribution(model, data, out, config=config, progress=False)
    assert done == {"computed": [0, 1, 2], "skipped": []}
    return out


def _read(out: Path):
    with h5py.File(out / "maps.h5", "r") as f:
        arrays = {k: f[k][()] for k in ("maps", "ri", "sample")}
        chunks = f["maps"].chunks
    return pd.read_parquet(out / "indices.parquet"), arrays, chunks


def _assert_same(a: Path, b: Path) -> None:
    ta, xa, _ = _read(a)
    tb, xb, _ = _read(b)
    pd.testing.assert_frame_equal(ta, tb, check_exact=True)
    for k in xa:
        np.testing.assert_array_equal(xa[k], xb[k])


def test_outputs(reference):
    table, arrays, chunks = _read(reference)
    assert arrays["maps"].shape == (5, 21, 48, 48) and arrays["maps"].dtype == np.float16
    assert chunks == (1, 21, 48, 48)
    assert arrays["ri"].shape == (5, 21, 21) and arrays["sample"].tolist() == [0, 1, 2, 3, 4]
    assert len(table) == 105 and {"DI", "FI", "LI", "likelihood", "delta"} <= set(table.columns)
    assert table["FI"].notna().all()  # the items come with masks
    hidden = table.visibility == 0
    assert hidden.any() and table.loc[hidden, "LI"].isna().all()
    assert table.loc[~hidden, "LI"].notna().all()
    assert np.isnan(arrays["ri"]).any() and not np.isnan(arrays["ri"][0, 0, 0])
    assert float(np.nanmax(arrays["maps"])) == 1.0
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["complete"] and manifest["steps"] == 2 and manifest["samples"] == 5
    assert manifest["path"] == "blur" and manifest["units"] == 3


@pytest.mark.slow
def test_resume_after_a_kill_recomputes_nothing(reference, tmp_path):
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import attr_models as m; "
        f"m.kill_after_first_unit({str(tmp_path)!r})"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]  # really killed (SIGKILL)
    written = sorted(p.name for p in (tmp_path / "parts").glob("*.parquet"))
    assert written == ["unit-000000.parquet", "unit-000001.parquet"]
    assert not (tmp_path / "indices.parquet").exists()
    model, data, config = run_case()
    done = run_attribution(model, data, tmp_path, config=config, progress=False)
    assert done == {"computed": [2], "skipped": [0, 1]}
    _assert_same(tmp_path, reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(reference, tmp_path):
    mp.spawn(distributed_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    _assert_same(tmp_path, reference)
    assert json.loads((tmp_path / "manifest.json").read_text())["world_size"] == 2


def test_resume_with_other_settings_raises(reference):
    model, data, config = run_case()
    with pytest.raises(
        ValueError, match=r"manifest.json: an earlier run used other settings for \['steps'\]"
    ):
        other = replace(config, poseig=replace(config.poseig, steps=3))
        run_attribution(model, data, reference, config=other, progress=False)
    with pytest.raises(TypeError, match="config"):
        run_attribution(model, data, reference, config={"steps": 3})
    with pytest.raises(ValueError, match="dataset: expected items with 'visibility'"):
        run_attribution(
            model,
            [{"image": torch.zeros(3, 32, 32), "keypoints": torch.zeros(21, 2)}],
            reference / "x",
            config=config,
            progress=False,
        )


def _saved_run(tmp_path: Path) -> Path:
    from handlab.models import create

    torch.manual_seed(0)
    model_config = {"backbone": "resnet18", "input_size": 64, "head_width": 16, "head_layers": 1}
    model = create("simplebaseline", **model_config)
    run = tmp_path / "run"
    run.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run / "model.safetensors")
    (run / "card.json").write_text(
        json.dumps({"model": "simplebaseline", "model_config": model_config})
    )
    return run


def _argv(run: Path, out: Path) -> list[str]:
    return ["attribute", "--model", str(run), "--data", "synth", "--size", "64", "--limit", "3",
            "--steps", "2", "--batch-size", "1", "--out", str(out), "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(tmp_path):
    run = _saved_run(tmp_path)
    assert cli.main(_argv(run, tmp_path / "one")) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(_free_port()), "-m", "handlab.cli",
           *_argv(run, tmp_path / "two")]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"rank 1: computed 1 units" in proc.stdout
    _assert_same(tmp_path / "two", tmp_path / "one")


def test_command_line_on_a_saved_run(tmp_path):
    run = _saved_run(tmp_path)
    out = tmp_path / "out"
    argv = _argv(run, out)
    argv[argv.index("--limit") + 1] = "2"
    argv[argv.index("--batch-size") + 1] = "2"
    assert cli.main(argv) == 0
    table, arrays, _ = _read(out)
    assert arrays["maps"].shape == (2, 21, 64, 64) and len(table) == 42
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == str(run) and manifest["data"].startswith("synth")
    assert manifest["steps"] == 2 and manifest["method"] == PoseIGConfig().method
    assert manifest["joints"] is None and manifest["target"] == PoseIGConfig().target


def test_command_line_joint_subset_costs_proportionally(tmp_path):
    run = _saved_run(tmp_path)
    out = tmp_path / "out"
    argv = _argv(run, out)
    argv[argv.index("--limit") + 1] = "1"
    assert cli.main([*argv, "--joints", "0", "8"]) == 0
    table, arrays, _ = _read(out)
    assert arrays["maps"].shape == (1, 2, 64, 64) and len(table) == 2
    assert json.loads((out / "manifest.json").read_text())["joints"] == [0, 8]
