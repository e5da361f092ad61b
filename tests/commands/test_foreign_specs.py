"""``--model onnx:PATH`` and ``--model python:module:function`` wherever the command line takes a
model (``evaluate``, ``attribute``, ``report``): a torchvision network exported to ONNX in the
test itself, resolved by ``commands._resolve`` and run through each command (issue 16)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn

from handlab import cli, report
from handlab.commands._resolve import resolve_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_spec(tmp_path_factory) -> str:
    """A seeded ResNet-18 trunk with a 21-heatmap head (stride 8), exported with dynamic sizes."""
    torch.manual_seed(0)
    trunk = torchvision.models.resnet18(weights=None)
    head = [nn.ConvTranspose2d(512, 21, kernel_size=4, stride=4), nn.Softplus()]
    net = nn.Sequential(*list(trunk.children())[:-2], *head).eval()
    path = tmp_path_factory.mktemp("onnx") / "hand.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net, (torch.rand(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
            input_names=["images"], dynamic_axes={"images": {0: "b", 2: "h", 3: "w"}},
        )  # fmt: skip
    return f"onnx:{path}"


def test_resolve_foreign_specs(onnx_spec, tmp_path, monkeypatch):
    model = resolve_model(onnx_spec)
    assert not model.training and model.card["model"] == onnx_spec
    assert model(torch.rand(1, 3, 64, 64))["keypoints"].shape == (1, 21, 2)
    (tmp_path / "my_cli_nets.py").write_text(
        "from torch import nn\nfrom handlab.models import wrap\n"
        "def build():\n    return wrap(nn.Conv2d(3, 21, 4, stride=4), normalize='imagenet')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = resolve_model("python:my_cli_nets:build")
    assert mine.card["model"] == "python:my_cli_nets:build" and mine.normalized
    with pytest.raises(ValueError, match="path: expected an ONNX file"):
        resolve_model(f"onnx:{tmp_path / 'missing.onnx'}")
    with pytest.raises(ValueError, match="spec: cannot load"):
        resolve_model("python:my_cli_nets:nope")


def test_evaluate_and_attribute_take_an_onnx_model(onnx_spec, tmp_path):
    out = tmp_path / "metrics.json"
    common = ["--data", "synth", "--size", "64", "--limit", "2"]
    assert cli.main(["evaluate", "--model", onnx_spec, *common, "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 2 and metrics["epe_px"] > 0 and len(metrics["per_joint"]) == 21
    run = tmp_path / "attr"
    words = ["attribute", "--model", onnx_spec, *common, "--steps", "2", "--folds", "2"]
    assert cli.main([*words, "--out", str(run), "--no-progress"]) == 0
    table = pd.read_parquet(run / "indices.parquet")
    assert len(table) == 2 * 21 and table["DI"].notna().all()
    assert json.loads((run / "manifest.json").read_text())["complete"]


@pytest.mark.notebook
def test_report_chapter_takes_an_onnx_model(onnx_spec, tmp_path):
    source = REPO / "notebooks" / "10_sanity_checks.py"
    result = report.run_chapter(source, tmp_path, parameters={"fast": True, "model": onnx_spec})
    assert result.status == "ok", result.error
    # the chapter randomised the ONNX network: ResNet-18's 20 convolutions and the head
    assert result.numbers["units"]["conv"] == 21
