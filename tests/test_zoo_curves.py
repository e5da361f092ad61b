"""handlab.zoo.curves: the training curves of a shipped model as a flat table."""

from __future__ import annotations

import json

import pytest

from handlab import zoo

LINES = [
    {"step": 100, "lr": 1e-3, "train_loss": 0.01, "train_epe": 9.0,
     "val": {"n": 8, "epe_px": 8.5, "pck@10px": 0.6}},
    {"step": 200, "lr": 1e-4, "train_loss": 0.005, "train_epe": 5.0,
     "val": {"n": 8, "epe_px": 5.5, "pck@10px": 0.8}},
]  # fmt: skip


def _zoo(tmp_path, curves=True):
    (tmp_path / "m.safetensors").write_bytes(b"")
    (tmp_path / "m.json").write_text("{}")
    if curves:
        (tmp_path / "m.curves.json").write_text(json.dumps(LINES))
    return tmp_path


def test_curves_flatten_the_validation_metrics(tmp_path):
    table = zoo.curves("m", zoo_dir=_zoo(tmp_path))
    assert table["step"].tolist() == [100, 200]
    assert table["val_epe_px"].tolist() == [8.5, 5.5]
    assert table["val_pck@10px"].tolist() == [0.6, 0.8]
    assert table["train_loss"].tolist() == [0.01, 0.005]


def test_curves_honour_the_zoo_dir_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDLAB_ZOO_DIR", str(_zoo(tmp_path)))
    assert zoo.curves("m")["lr"].tolist() == [1e-3, 1e-4]


def test_curves_errors_name_the_model(tmp_path):
    with pytest.raises(ValueError, match="'nope'"):
        zoo.curves("nope", zoo_dir=_zoo(tmp_path, curves=False))
    with pytest.raises(ValueError, match=r"m\.curves\.json: missing file .*'m'"):
        zoo.curves("m", zoo_dir=tmp_path)
    (tmp_path / "m.curves.json").write_text("[]")
    with pytest.raises(ValueError, match="no validation lines"):
        zoo.curves("m", zoo_dir=tmp_path)
