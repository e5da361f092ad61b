"""handlab.synth.clips: the clip dataset's layout, seeding, drifting occluders, options, errors."""

import pytest
import torch

from handlab.data import open_data
from handlab.synth import clips as clips_module
from handlab.synth import sample_sequence_params
from handlab.synth.clips import SyntheticClips
from handlab.synth.dataset import split_seed
from handlab.synth.renderer import render


@pytest.fixture(scope="module")
def clips():
    return SyntheticClips("val", size=64, T=5, occluders=1.0, extras=True)


def test_batch_layout_and_centre_frame(clips):
    b = clips.batch([0, 3])
    assert tuple(b["clip"].shape) == (2, 5, 3, 64, 64)
    assert tuple(b["clip_keypoints"].shape) == (2, 5, 21, 2)
    assert tuple(b["clip_xyz"].shape) == (2, 5, 21, 3)
    assert tuple(b["clip_occlusion"].shape) == (2, 5, 21)
    for key in ("keypoints", "xyz", "visibility", "occlusion"):
        assert torch.equal(b[key], b[f"clip_{key}"][:, 2]), key
    assert tuple(b["K"].shape) == (2, 3, 3)
    assert 0 <= float(b["clip"].min()) and float(b["clip"].max()) <= 1


def test_clip_is_the_sequence_rendered_from_its_own_seed(clips):
    """Clip i = sample_sequence_params from split_seed(split, i), whatever batch it is in."""
    g = torch.Generator().manual_seed(split_seed("val", 3))
    params = sample_sequence_params(1, 5, g, occluders=1.0, blur=0.5)
    want = render(params, 64)
    got = clips.batch([0, 3])
    torch.testing.assert_close(got["clip"][1], want["image"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got["clip_keypoints"][1], want["keypoints"])
    alone = clips[3]
    torch.testing.assert_close(alone["clip"], got["clip"][1], atol=1e-5, rtol=0)
    assert not torch.equal(got["clip"][0], got["clip"][1])


def test_occluders_drift_and_the_hand_moves(clips):
    b = clips.batch(list(range(4)))
    occ = b["clip_occlusion"]  # (4, 5, 21)
    assert float((occ[:, 1:] - occ[:, :-1]).abs().max()) > 0  # occlusion changes over the clip
    step = (b["clip_xyz"][:, 1:] - b["clip_xyz"][:, :-1]).norm(dim=-1)
    assert 0 < float(step.mean()) < 30  # smooth motion, mm per frame


def test_rendering_in_passes_changes_nothing(monkeypatch):
    ds = SyntheticClips("val", size=64, T=3, extras=True)
    whole = ds.batch([0, 1, 2])
    monkeypatch.setattr(clips_module, "FRAMES_PER_PASS", 3)  # one clip per pass
    parts = ds.batch([0, 1, 2])
    assert whole.keys() == parts.keys()
    for k in whole:
        torch.testing.assert_close(parts[k], whole[k], atol=1e-5, rtol=0)


def test_splits_differ_and_getitems_matches_batch():
    val, test = SyntheticClips("val", size=64, T=3), SyntheticClips("test", size=64, T=3)
    assert not torch.equal(val.batch([0])["xyz"], test.batch([0])["xyz"])
    items = val.__getitems__([1, 2])
    torch.testing.assert_close(items[1]["xyz"], val.batch([1, 2])["xyz"][1])
    assert len(val) == 2000 and len(SyntheticClips("train", size=64, length=10)) == 10


def test_open_data_spec():
    assert open_data("synth-clips", "test", size=64).T == 7
    ds = open_data("synth-clips:T=3", "test", size=64)
    assert ds.T == 3 and ds.size == 64
    with pytest.raises(ValueError, match="synth-clips:T=N"):
        open_data("synth-clips:frames=3", "test")
    with pytest.raises(ValueError, match="synth-clips:T=N"):
        open_data("synth-clips:T=x", "test")


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="split"):
        SyntheticClips("dev")
    with pytest.raises(TypeError, match="T"):
        SyntheticClips("val", T=2.0)
    with pytest.raises(ValueError, match="T"):
        SyntheticClips("val", T=0)
    with pytest.raises(ValueError, match="length"):
        SyntheticClips("val", length=0)
    with pytest.raises(ValueError, match="blur"):
        SyntheticClips("val", blur=2.0)
    ds = SyntheticClips("val", size=64, T=3, length=4)
    with pytest.raises(IndexError, match="index"):
        ds.batch([4])
    with pytest.raises(ValueError, match="indices"):
        ds.batch([])
