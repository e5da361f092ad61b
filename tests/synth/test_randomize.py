"""Domain randomisation: opt-in (nothing else changes), replayable, and it does change images."""

import pytest
import torch

from handlab.data import open_data
from handlab.synth import SyntheticHands, sample_params
from handlab.synth.randomize import DR_SHAPES, PHOTOS, apply_camera, photo_bank


def test_off_by_default_and_labels_unchanged_when_on():
    plain = SyntheticHands("train", size=64).batch([0, 1, 2, 3])
    dr = SyntheticHands("train", size=64, randomize=1.0).batch([0, 1, 2, 3])
    # drawn after every other choice: pose, camera and labels are those of the plain samples
    for key in ("keypoints", "xyz", "K", "mask"):
        torch.testing.assert_close(dr[key], plain[key])
    assert float((dr["image"] - plain["image"]).abs().mean()) > 0.02
    assert bool((dr["image"] >= 0).all() and (dr["image"] <= 1).all())
    params = sample_params(3, torch.Generator().manual_seed(0))
    assert not set(DR_SHAPES) & set(params)  # off: no keys, no draws


def test_replayable_and_background_is_a_photo():
    a = SyntheticHands("train", size=64, randomize=1.0).batch([5, 6])
    b = SyntheticHands("train", size=64, randomize=1.0).batch([6])
    torch.testing.assert_close(a["image"][1], b["image"][0])
    assert photo_bank().shape == (len(PHOTOS), 3, 192, 192)


def test_camera_effects_are_identity_when_neutral():
    image = torch.rand(2, 3, 32, 32)
    neutral = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 50.0, 0.0]] * 2)
    torch.testing.assert_close(apply_camera(image, {"dr_camera": neutral}), image)
    jpeg = neutral.clone()
    jpeg[:, 6] = 1.0
    out = apply_camera(image, {"dr_camera": jpeg})
    assert 0 < float((out - image).abs().mean()) < 0.3  # JPEG of noise: lossy, but the image


def test_synth_dr_spec_randomises_training_only():
    train = open_data("synth-dr", "train", size=64)
    test = open_data("synth-dr", "test", size=64)
    assert train.options.randomize > 0 and train.options.left == 0.5
    frozen = SyntheticHands("test", size=64).batch([0])
    torch.testing.assert_close(test.batch([0])["image"], frozen["image"])


def test_synth_dr_spec_takes_generator_options_on_training_only():
    train = open_data("synth-dr:props,held=0.6", "train", size=64)
    assert train.options.held == 0.6 and train.options.sleeves == 0.5  # props, then held
    assert train.options.randomize > 0 and train.options.left == 0.5
    val = open_data("synth-dr:props", "val", size=64)
    assert val.options.held == 0.0 and val.options.randomize == 0.0
    with pytest.raises(ValueError, match="synth-dr:KEY=VALUE"):
        open_data("synth-dr:held", "train", size=64)
    with pytest.raises(ValueError, match="held"):  # SceneOptions checks the probability
        open_data("synth-dr:held=2", "train", size=64)
