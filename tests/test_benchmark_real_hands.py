"""handlab.training.realhands.diagnose on constructed predictions (a perfect one, a constant
pose, every hand turned by 180 degrees) and benchmarks/real_hands_diagnosis.py on the real
development hands."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _benchmark import load_benchmark

from handlab.training.realhands import diagnose


def _bench():
    return load_benchmark("real_hands_diagnosis")


def _hands(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(n, 21, 2, generator=g) * 80 + torch.rand(n, 1, 2, generator=g) * 300
    return {"gt": gt, "visibility": torch.ones(n, 21), "box_side": torch.full((n,), 100.0)}


def test_diagnosis_of_perfect_constant_and_turned_predictions():
    data = _hands()
    perfect = diagnose({**data, "pred": data["gt"].clone()})
    assert all(perfect[f"pck {g}"] == 1.0 for g in ("wrist", "MCP", "PIP", "DIP", "TIP"))
    assert perfect["orientation error deg"] == pytest.approx(0.0, abs=1e-3)
    assert perfect["turned > 90 deg"] == 0.0 and perfect["spread ratio"] == pytest.approx(1.0)
    # one pose placed at every hand's centre: its shape never varies
    centre = data["gt"].mean(1, keepdim=True)
    constant = diagnose({**data, "pred": centre + data["gt"][:1] - centre[:1]})
    assert constant["spread ratio"] == pytest.approx(0.0, abs=1e-6)
    # every hand rotated by 180 degrees about its centroid: all turned, centres still right
    turned = diagnose({**data, "pred": 2 * centre - data["gt"]})
    assert turned["turned > 90 deg"] == 1.0
    assert turned["orientation error deg"] == pytest.approx(180.0, abs=1e-3)
    assert turned["centre error / box"] == pytest.approx(0.0, abs=1e-5)
    assert turned["spread ratio"] == pytest.approx(1.0)


def test_diagnosis_runs_on_the_real_development_hands(tmp_path):
    out = tmp_path / "diag.json"
    assert _bench().main(["--models", "zoo:simplebaseline_r18", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    row = result["models"]["zoo:simplebaseline_r18"]
    assert all(not math.isnan(v) for v in row.values())
    assert 0.0 <= row["turned > 90 deg"] <= 1.0 and 0.0 <= row["pck wrist"] <= 1.0
    assert result["models"]["mean pose (synthetic)"]["spread ratio"] < 1e-4
    assert result["framing"]["real hands (plain crops)"]["upright"] > 0.5
