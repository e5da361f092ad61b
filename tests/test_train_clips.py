"""Training a clip model (the Deformer) with ``handlab.training.fit`` on ``synth-clips``: the clip
input kind, clip augmentation, centre-frame evaluation, exact resume and the T check."""

from __future__ import annotations

import json

import pytest
import torch
from _resume import assert_same_weights, fit_interrupted

from handlab import metrics as M
from handlab.models import create
from handlab.synth.clips import SyntheticClips
from handlab.training import loop
from handlab.training.augment import (
    AugmentParams,
    apply_augment,
    apply_clip_augment,
    sample_augment,
)
from handlab.training.config import AugmentConfig, TrainConfig
from handlab.training.data import check_data, model_inputs
from handlab.training.evaluation import evaluate

TINY = {"T": 3, "width": 16, "heads": 2, "input_size": 64, "temporal_layers": 1}


def clip_config(**kw) -> TrainConfig:
    base = dict(
        model="deformer",
        model_config=TINY,
        data="synth-clips:T=3",
        size=64,
        steps=2,
        batch_size=2,
        val_every=2,
        ckpt_every=1,
        val_limit=2,
        test_limit=4,
        seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_fit_deformer_on_clips_then_evaluate_and_resume(tmp_path, monkeypatch):
    from handlab.zoo import load_model

    cfg = clip_config()
    metrics = loop.fit(cfg, tmp_path / "full", progress=False)
    assert metrics["n"] == 4 and 0 < metrics["epe_px"] < 128 and metrics["mpjpe_mm"] > 0
    card = json.loads((tmp_path / "full" / "card.json").read_text())
    assert card["eval"]["data"] == "synth-clips:T=3" and card["model"] == "deformer"
    model = load_model(tmp_path / "full")
    again = evaluate(model, SyntheticClips("test", size=64, T=3), batch_size=2, limit=4)
    assert again["epe_px"] == pytest.approx(metrics["epe_px"], rel=1e-4)

    fit_interrupted(monkeypatch, cfg, tmp_path / "cut", at_step=1)  # after the checkpoint at 1
    resumed = loop.fit(cfg, tmp_path / "cut", progress=False)
    assert_same_weights(tmp_path / "full", tmp_path / "cut")
    assert resumed == metrics


def test_evaluation_scores_the_centre_frame():
    torch.manual_seed(0)
    model = create("deformer", **TINY).eval()
    data = SyntheticClips("val", size=64, T=3, length=3)
    got = evaluate(model, data, batch_size=2)
    batch = data.batch([0, 1, 2])
    with torch.no_grad():
        out = model(model_inputs(model, batch))
    want = M.epe(out["keypoints"], batch["clip_keypoints"][:, 1], batch["clip_visibility"][:, 1])
    assert got["epe_px"] == pytest.approx(float(want), rel=1e-4)
    gt = batch["clip_xyz"][:, 1] - batch["clip_xyz"][:, 1, :1]
    assert got["mpjpe_mm"] == pytest.approx(float(M.mpjpe(out["xyz"], gt)), rel=1e-4)


def test_wrong_sequence_length_or_data_kind_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"T=5 frames, but Deformer expects T=3"):
        loop.fit(clip_config(data="synth-clips:T=5"), tmp_path, progress=False)
    with pytest.raises(ValueError, match="use --data synth-clips"):
        loop.fit(clip_config(data="synth"), tmp_path, progress=False)
    frame_model = create("simplebaseline", head_width=16, input_size=64)
    with pytest.raises(ValueError, match="use --data synth"):
        check_data(frame_model, SyntheticClips("val", size=64, T=3), "synth-clips:T=3")


def test_clip_augment_moves_every_frame_like_its_clip():
    """One affine and jitter per clip: frame t of clip i equals apply_augment with row i."""
    data = SyntheticClips("val", size=64, T=3, length=2).batch([0, 1])
    g = torch.Generator().manual_seed(0)
    params = sample_augment(2, g, AugmentConfig(), 64)
    out = apply_clip_augment(data, params)
    for i in range(2):
        row = AugmentParams(*(getattr(params, f)[i : i + 1] for f in params.__dataclass_fields__))
        for t in range(3):
            frame = {
                "image": data["clip"][i, t : t + 1],
                "keypoints": data["clip_keypoints"][i, t : t + 1],
                "visibility": data["clip_visibility"][i, t : t + 1],
                "xyz": data["clip_xyz"][i, t : t + 1],
            }
            want = apply_augment(frame, row)
            torch.testing.assert_close(out["clip"][i, t], want["image"][0])
            torch.testing.assert_close(out["clip_keypoints"][i, t], want["keypoints"][0])
            torch.testing.assert_close(out["clip_xyz"][i, t], want["xyz"][0])
    assert torch.equal(out["keypoints"], out["clip_keypoints"][:, 1])
    assert torch.equal(out["visibility"], out["clip_visibility"][:, 1])
    assert not torch.equal(out["clip"], data["clip"])
    with pytest.raises(ValueError, match="params"):
        apply_clip_augment(data, params[0:1])
