"""`handlab evaluate --model DIR --data NAME:ROOT` end to end on every real-dataset loader.

Each dataset is built in its published layout by the fixture builders; the model is a small,
untrained SimpleBaseline saved as a run folder (weights + card), exactly what ``handlab train``
writes, so this checks the plumbing (loader -> batches -> model -> metrics -> JSON), not accuracy.
"""

import json
import math
import shutil

import pytest
from safetensors.torch import save_file

from data import fixtures
from handlab import cli
from handlab.data.dexycb import SERIALS
from handlab.models import create


def _dexycb_all_cameras(root):
    """The fixture writes one camera; the official protocol (the CLI's default) reads all 8."""
    truth = fixtures.make_dexycb(root, sequences=5)
    intr = root / "calibration" / "intrinsics"
    src = fixtures.DEXYCB_SERIAL
    for serial in SERIALS:
        if serial != src:
            shutil.copy(intr / f"{src}_640x480.yml", intr / f"{serial}_640x480.yml")
            for seq in root.glob(f"*/*/{src}"):
                shutil.copytree(seq, seq.parent / serial)
    return truth


# name -> (builder, split to evaluate, expected number of items)
RGB_CASES = {
    "freihand": (lambda r: fixtures.make_freihand(r, n=1, n_eval=2), "evaluation", 2),
    "rhd": (lambda r: fixtures.make_rhd(r, split="evaluation", n=2), "evaluation", 2),
    "stb": (lambda r: fixtures.make_stb(r), "test", None),
    # the HO-3D fixture holds one frame without a hand annotation (a DataError): evaluate 1 frame
    "ho3d": (lambda r: fixtures.make_ho3d(r), "train", 1),
    "dexycb": (_dexycb_all_cameras, "test", None),
    "panoptic": (lambda r: fixtures.make_panoptic(r, n_train=1, n_test=2), "test", 2),
    "interhand": (lambda r: fixtures.make_interhand(r, split="test"), "test", None),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    config = {"backbone": "resnet18", "input_size": 64, "head_width": 32}
    model = create("simplebaseline", **config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, d / "model.safetensors")
    (d / "card.json").write_text(json.dumps({"model": "simplebaseline", "model_config": config}))
    return d


@pytest.mark.parametrize("name", sorted(RGB_CASES))
def test_evaluate_cli_on_real_layout(name, run_dir, tmp_path):
    build, split, expected_n = RGB_CASES[name]
    root = tmp_path / name
    root.mkdir()
    build(root)
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(run_dir), "--data", f"{name}:{root}", "--split", split]
    if name == "ho3d":
        argv += ["--limit", "1"]
    code = cli.main([*argv, "--size", "64", "--batch-size", "2", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    metrics = result.get("metrics", result)
    assert math.isfinite(metrics["epe_px"]) and metrics["epe_px"] >= 0
    assert 0.0 <= metrics["auc_0-30px"] <= 1.0
    if expected_n is not None:
        assert metrics["n"] == expected_n
    else:
        assert metrics["n"] >= 1


def test_evaluate_cli_on_nyu_with_a_14_joint_depth_model(tmp_path):
    root = tmp_path / "nyu"
    root.mkdir()
    fixtures.make_nyu(root, split="test", n=2)
    run = tmp_path / "run"
    run.mkdir()
    config = {"num_joints": 14, "segment_mm": 150.0}
    model = create("a2j", **config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run / "model.safetensors")
    (run / "card.json").write_text(json.dumps({"model": "a2j", "model_config": config}))
    out = tmp_path / "eval.json"
    argv = ["evaluate", "--model", str(run), "--data", f"nyu:{root}", "--split", "test"]
    assert cli.main([*argv, "--size", "64", "--batch-size", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    metrics = result.get("metrics", result)
    assert metrics["n"] == 2
    assert math.isfinite(metrics["epe_px"]) and math.isfinite(metrics["mpjpe_mm"])
