"""PoseIGExplorer logic without a browser: setting a widget's value recomputes or redraws."""

import pytest
import torch

from handlab.attribution.engine import poseig
from handlab.models import create
from handlab.synth import generate
from handlab.viz.poseig_explorer import PATHS, PoseIGExplorer


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return create("hrnet_small", width=8).eval(), generate(2, seed=3, size=64)


def test_controls_recompute_and_cache(setup):
    model, data = setup
    ex = PoseIGExplorer(model, data, steps=(2, 3))
    assert ex.rendered["sample"] == 0 and ex.rendered["path"] == "blur (PoseIG)"
    assert len(ex.cache) == 1
    ex.joint.value = 8  # a joint change reuses the cached result
    assert ex.rendered["joint"] == 8 and len(ex.cache) == 1
    ex.sample.value = 1
    ex.path.value = "straight, mean"
    ex.steps.value = 3
    assert len(ex.cache) == 4
    assert (ex.rendered["sample"], ex.rendered["path"], ex.rendered["steps"]) == (
        1, "straight, mean", 3,
    )  # fmt: skip
    want = poseig(model, data["image"][1:2], data["keypoints"][1:2], path="straight",
                  baseline="mean", steps=3, folds=3)  # fmt: skip
    torch.testing.assert_close(ex.rendered["map"], want.maps[0, 8])
    assert ex.rendered["delta"] == pytest.approx(float(want.delta[0, 8]))
    assert ex.rendered["LI"] >= 0 and 0 < ex.rendered["likelihood"] <= 1


def test_every_path_label_runs(setup):
    model, data = setup
    ex = PoseIGExplorer(model, data, steps=(2,))
    for label in PATHS:
        ex.path.value = label
        assert ex.rendered["path"] == label and ex.rendered["map"].shape == (64, 64)


@pytest.mark.parametrize(
    ("data", "steps", "match"),
    [({"image": torch.rand(1, 3, 64, 64)}, (2,), "keypoints"), (None, (), "steps"),
     (None, (0,), "steps")],
)  # fmt: skip
def test_bad_arguments_are_named(setup, data, steps, match):
    model, good = setup
    with pytest.raises(ValueError, match=match):
        PoseIGExplorer(model, good if data is None else data, steps=steps)
