"""Evaluation data made once: the cached split equals the streamed one and is rendered once."""

import pytest
import torch

from handlab import report_data
from handlab.synth import SyntheticHands
from handlab.training.data import load_batch
from handlab.training.evaluation import predict


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    monkeypatch.setattr(report_data, "_MEMORY", {})
    monkeypatch.delenv(report_data.CACHE_ENV, raising=False)


def test_cached_split_equals_the_streamed_samples():
    cached = report_data.eval_split("synth", "test", size=64, limit=40)
    streamed = SyntheticHands("test", size=64)
    assert len(cached) == 40
    for lo in (0, 32):  # the passes predict streams
        want = load_batch(streamed, range(lo, min(40, lo + 32)))
        got = load_batch(cached, range(lo, min(40, lo + 32)))
        assert sorted(got) == sorted(want)
        for key in want:
            assert torch.equal(got[key], want[key]), key


def test_predict_on_the_cached_split_renders_nothing(monkeypatch):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, images):
            return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 21, 2) + self.w}

        def decode(self, outputs):  # the model contract (handlab.models.base) asks for one
            return {"keypoints": outputs["keypoints"]}

    test = report_data.eval_split("synth", "test", size=64, limit=8)
    calls = []
    monkeypatch.setattr(SyntheticHands, "batch", lambda self, ix: calls.append(ix))
    first = predict(Tiny(), test)
    again = report_data.eval_split("synth", "test", size=64, limit=8)
    assert again is test and not calls  # neither predict nor a second eval_split rendered
    assert torch.equal(predict(Tiny(), again)["pred_keypoints"], first["pred_keypoints"])


def test_disk_cache_is_reused_by_another_process(tmp_path, monkeypatch):
    monkeypatch.setenv(report_data.CACHE_ENV, str(tmp_path))
    made = report_data.eval_split("synth", "test", size=64, limit=4)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    monkeypatch.setattr(report_data, "_MEMORY", {})  # as in the next chapter's kernel
    monkeypatch.setattr(report_data, "_render", lambda *a: pytest.fail("rendered again"))
    loaded = report_data.eval_split("synth", "test", size=64, limit=4)
    assert loaded is not made and torch.equal(loaded.batch([3])["image"], made.batch([3])["image"])


@pytest.mark.parametrize(
    "other",
    [
        {"spec": "synth:left=1.0"},
        {"size": 96},
        {"limit": 5},
        {"split": "val"},
        {"occluders": 1.0},
    ],
)
def test_every_setting_gets_its_own_samples(other):
    base = {"spec": "synth", "split": "test", "size": 64, "limit": 4}
    a = report_data.eval_split(**base)
    b = report_data.eval_split(**{**base, **other})
    assert a is not b
    if "limit" in other:
        assert len(b) == 5 and torch.equal(a.batch([3])["image"], b.batch([3])["image"])
    elif "size" not in other:  # the same indices, other samples
        assert not torch.equal(a.batch([0, 1, 2, 3])["image"], b.batch([0, 1, 2, 3])["image"])


def test_bad_specs_are_named():
    with pytest.raises(ValueError, match="left: expected a number or true/false, got 'abc'"):
        report_data.eval_split("synth:left=abc", "test", size=64, limit=1)
    with pytest.raises(ValueError, match="apply to 'synth' only"):
        report_data.eval_split("rhd:/nowhere", "test", size=64, limit=1, occluders=1.0)
    with pytest.raises(ValueError, match="limit: expected a positive int"):
        report_data.eval_split("synth", "test", size=64, limit=0)


def test_keys_keep_only_the_named_fields_and_are_part_of_the_key():
    some = report_data.eval_split("synth", "test", size=64, limit=2, keys=("keypoints", "image"))
    every = report_data.eval_split("synth", "test", size=64, limit=2)
    assert sorted(some.batch([0])) == ["image", "keypoints"] and "depth" in every.batch([0])
    assert torch.equal(some.batch([1])["image"], every.batch([1])["image"])
    with pytest.raises(ValueError, match=r"keys: 'synth' has no fields \['heatmaps'\]"):
        report_data.eval_split("synth", "test", size=64, limit=2, keys=("heatmaps",))
