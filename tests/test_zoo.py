"""The zoo: shipped models re-evaluated against their cards; save/load round trip; errors."""

from __future__ import annotations

import json

import pytest
import torch
from _tiny_model import TINY, ToyHands, build_tiny
from safetensors.torch import load_file

from handlab import zoo
from handlab.models import registry
from handlab.training import data as train_data
from handlab.training import loop
from handlab.training.config import TrainConfig

HEADLINE = ("epe_px", "mpjpe_mm", "pa_mpjpe_mm")  # the card numbers a re-evaluation must reproduce


def _check_against_card(metrics: dict, card: dict) -> None:
    checked = [k for k in HEADLINE if k in card["metrics"]]
    assert checked, "the card holds no headline metric"
    for k in checked:
        assert metrics[k] == pytest.approx(card["metrics"][k], rel=0.02), k


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list())
def test_shipped_model_matches_its_card(name):
    model = zoo.load(name)
    assert not model.training and model.card["model"] in registry.list_models()
    _check_against_card(zoo.reevaluate(model), model.card)


def test_shipped_weights_fit_the_budget():
    total = sum(p.stat().st_size for p in zoo.ZOO_DIR.glob("*.safetensors"))
    assert total <= 80 * 2**20


@pytest.fixture
def tiny_run(monkeypatch, tmp_path):
    monkeypatch.setitem(registry._BUILDERS, TINY, build_tiny)
    toy = lambda spec, split, size: ToyHands(split, size)  # noqa: E731
    monkeypatch.setattr(loop, "open_split", toy)
    monkeypatch.setattr(train_data, "open_split", toy)
    config = TrainConfig(
        model=TINY,
        model_config={"size": 32, "with_xyz": True},
        size=32,
        steps=8,
        batch_size=4,
        lr=1e-2,
        val_every=4,
        ckpt_every=4,
        val_limit=8,
        test_limit=16,
        seed=3,
    )
    loop.fit(config, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_saved_model_round_trips_and_reevaluates_within_2_percent(tiny_run, tmp_path):
    zdir = tmp_path / "zoo"
    path = zoo.save_to_zoo(tiny_run, "tiny", zoo_dir=zdir)
    assert zoo.list(zdir) == ["tiny"]
    assert all(v.dtype == torch.float16 for v in load_file(path).values())
    assert len(json.loads((zdir / "tiny.curves.json").read_text())) == 2
    model = zoo.load("tiny", zoo_dir=zdir)
    assert not model.training and model.card["storage"] == "float16"
    assert model.card["eval"]["limit"] == 16 and model.card["name"] == "tiny"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    again = zoo.reevaluate(model)
    _check_against_card(again, model.card)
    assert again["n"] == 16


def test_load_model_accepts_a_run_folder(tiny_run):
    model = zoo.load_model(tiny_run)
    ref = load_file(tiny_run / "model.safetensors")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ref.items())
    assert model.card["steps"] == 8 and not model.training
    assert zoo.load_model(str(tiny_run)).card == model.card


def test_zoo_errors(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="shipped models"):
        zoo.load("nope", zoo_dir=tmp_path)
    with pytest.raises(ValueError, match="shipped models"):
        zoo.load_model("zoo:nope")
    with pytest.raises(TypeError, match="spec"):
        zoo.load_model(3)
    with pytest.raises(ValueError, match="missing file"):
        zoo.load_run(tmp_path / "empty")
    with pytest.raises(ValueError, match="name"):
        zoo.save_to_zoo(tiny_run, "../evil", zoo_dir=tmp_path / "z")
    with pytest.raises(ValueError, match="card"):
        zoo.reevaluate(build_tiny())
    card = json.loads((tiny_run / "card.json").read_text())
    card["model_config"] = {"size": 32, "with_xyz": False}  # weights no longer fit the model
    (tiny_run / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="do not fit"):
        zoo.load_run(tiny_run)


def test_results_table_is_generated_from_the_cards(tiny_run, tmp_path):
    zdir = tmp_path / "zoo"
    zoo.save_to_zoo(tiny_run, "tiny", zoo_dir=zdir)
    card = json.loads((zdir / "tiny.json").read_text())
    lines = zoo.results_table(zdir).splitlines()
    assert len(lines) == 3 and lines[2].startswith("| `tiny` |")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert float(cells[header.index("EPE px")]) == pytest.approx(
        card["metrics"]["epe_px"], abs=0.01
    )
    assert cells[header.index("steps")] == str(card["steps"])
