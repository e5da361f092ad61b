"""Evaluation on the real development hands: scores, the mean pose, the CLI, training refuses."""

import json

import pytest
import torch
from safetensors.torch import save_file

from handlab.cli import main
from handlab.data import open_dataset
from handlab.data.coco import REAL_HANDS
from handlab.models import create
from handlab.training import TrainConfig, fit
from handlab.training.data import refuse_evaluation_only
from handlab.training.realhands import format_real, mean_pose, predict_real, real_scores


def test_real_scores_known_answers():
    gt = torch.zeros(3, 21, 2)
    pred = gt.clone()
    pred[0, :10, 0] = 3.0  # 0.3 of a 10 px box: misses
    pred[1, :, 1] = 1.0  # 0.1 of a 10 px box: hits
    vis = torch.ones(3, 21)
    vis[2] = 0
    vis[2, 0] = 1
    pred[2, 0] = 100.0  # its only labelled joint is far off
    s = real_scores(pred, gt, vis, torch.full((3,), 10.0), ["a", "a", "b"])
    assert s["a"]["pck@0.2"] == pytest.approx(32 / 42) and s["b"]["pck@0.2"] == 0.0
    assert s["overall"]["joints"] == 43 and s["overall"]["pck@0.2"] == pytest.approx(32 / 43)
    assert s["a"]["epe/box"] == pytest.approx((10 * 0.3 + 21 * 0.1) / 42)
    assert list(s) == ["a", "b", "overall"]


def test_predictions_come_back_in_photo_pixels():
    """A 'model' that returns the crop's own labels scores perfectly after the inverse crop."""
    data = open_dataset("coco", REAL_HANDS, crop="upright", size=64, mirror_left=True)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.calls = 0

        def forward(self, images):
            start = self.calls
            self.calls += len(images)
            return {
                "keypoints": torch.stack([data[i]["keypoints"] for i in range(start, self.calls)])
            }

    p = predict_real(Oracle(), data, batch_size=8)
    lab = p["visibility"] > 0
    torch.testing.assert_close(p["pred"][lab], p["gt"][lab], atol=1e-3, rtol=0)
    raw = data.load_frame(5)
    torch.testing.assert_close(p["gt"][5][lab[5]], raw["keypoints"][lab[5]], atol=1e-3, rtol=0)
    scores = real_scores(p["pred"], p["gt"], p["visibility"], p["box_side"], p["sources"])
    assert scores["overall"]["pck@0.2"] == 1.0 and scores["overall"]["hands"] == 32


def test_mean_pose_is_synthetic_and_upright():
    up = mean_pose("upright", 64, n=200)
    assert up.shape == (21, 2) and float(up[9, 1]) < float(up[0, 1])  # middle MCP above wrist
    plain = mean_pose("plain", 64, n=200)
    assert bool(((plain > 0) & (plain < 63)).all())


def test_evaluate_cli_per_source_with_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = {"backbone": "resnet18", "input_size": 64, "head_width": 32}
    model = create("simplebaseline", **config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, run / "model.safetensors")
    card = {"model": "simplebaseline", "model_config": config, "train_config": {"size": 64}}
    (run / "card.json").write_text(json.dumps(card))
    out = tmp_path / "real.json"
    argv = ["evaluate", "--model", str(run), "--data", "coco:real-hands", "--crop", "upright"]
    assert main([*argv, "--markdown", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| model | coco_wholebody_hand (10) |") and "| mean pose" in table
    result = json.loads(out.read_text())
    assert set(result) == {"run", "mean pose (synthetic)"}
    assert set(result["run"]) == {
        "mmpose_coco_wholebody_hand", "mmpose_freihand", "mmpose_interhand26m",
        "mmpose_onehand10k", "mmpose_panoptic", "overall",
    }  # fmt: skip
    assert 0 <= result["run"]["overall"]["pck@0.2"] <= 1
    assert format_real(result).splitlines()[0].split()[0] == "model"
    # an inference-time config field (the flip test) reads the same weights another way
    flip = tmp_path / "flip.json"
    assert main([*argv, "--json", str(flip), "--model-config", "flip_test=true"]) == 0
    flipped = json.loads(flip.read_text())["run"]["overall"]
    assert flipped["epe/box"] != result["run"]["overall"]["epe/box"]
    capsys.readouterr()
    assert main([*argv, "--model-config", "head_width=8"]) == 1  # not an inference-time field
    assert "weights do not fit simplebaseline" in capsys.readouterr().err


def test_training_refuses_evaluation_only_data(tmp_path):
    for spec in ("coco:real-hands", f"coco:{REAL_HANDS / 'mmpose_freihand'}"):
        with pytest.raises(ValueError, match="EVALUATION_ONLY"):
            fit(TrainConfig(model="simplebaseline", data=spec, steps=1), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    marked = tmp_path / "mine"
    marked.mkdir()
    (marked / "EVALUATION_ONLY").write_text("no")
    with pytest.raises(ValueError, match="EVALUATION_ONLY"):
        refuse_evaluation_only(f"coco:{marked / 'annotations.json'}")
    refuse_evaluation_only(f"coco:{tmp_path}")  # unmarked: fine
    refuse_evaluation_only("synth")


def test_all_zoo_takes_the_rgb_2d_models_only():
    from handlab.commands._resolve import zoo_rgb_models

    names = zoo_rgb_models()
    assert "zoo:simplebaseline_r18" in names and "zoo:hrnet_small" in names
    for other in ("a2j_r18", "v2v_32", "deformer_r18", "lifting", "iknet"):  # depth, clip, 3D in
        assert f"zoo:{other}" not in names


def _cards_with_real_scores() -> list:
    from handlab import zoo

    names = []
    for name in zoo.list():
        card = json.loads((zoo.ZOO_DIR / f"{name}.json").read_text())
        if "handlab evaluate" in card.get("real_hands", {}).get("protocol", ""):
            names.append(name)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("name", _cards_with_real_scores())
def test_real_scores_on_a_card_are_reproduced(name, tmp_path):
    """A card's real-hands PCK@0.2 (recorded from `handlab evaluate --data coco:real-hands`) is
    what the shipped weights score today."""
    from handlab import zoo

    out = tmp_path / "real.json"
    argv = ["evaluate", "--model", f"zoo:{name}", "--data", "coco:real-hands", "--crop", "plain"]
    assert main([*argv, "--no-progress", "--json", str(out)]) == 0
    overall = json.loads(out.read_text())[name]["overall"]
    recorded = zoo.load(name).card["real_hands"]
    assert overall["hands"] == recorded["n_hands"] == 32
    assert overall["pck@0.2"] == pytest.approx(recorded["pck@0.2_plain"], abs=1e-6)
