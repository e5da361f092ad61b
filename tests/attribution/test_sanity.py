import pandas as pd
import pytest
import torch
from attr_models import TinyHeatmapNet, TinyRegression3D, images, near_targets
from torch import nn

from handlab.attribution.engine import poseig
from handlab.attribution.randomization import randomization_test, randomization_units
from handlab.attribution.sanity import (
    EXPECTED_TRENDS,
    JointSubset,
    MapRecorder,
    describe_trends,
    randomization_trends,
)

KW = {"path": "straight", "baseline": "mean", "steps": 3, "pilot": 0}


def test_joint_subset_explains_exactly_the_chosen_joints():
    model = TinyHeatmapNet(joints=4).double().eval()
    x = images(b=2)
    t = near_targets(model, x)
    full = poseig(model, x, t, **KW)
    sub = poseig(JointSubset(model, [3, 1]), x, t[:, [3, 1]], **KW)
    torch.testing.assert_close(sub.attributions, full.attributions[:, [3, 1]])
    torch.testing.assert_close(sub.delta, full.delta[:, [3, 1]])
    assert not model.training  # the wrapper kept (and restored) the model's eval mode


def test_joint_subset_keeps_xyz_and_exposes_the_layers():
    model = TinyRegression3D(joints=3).double().eval()
    sub = JointSubset(model, [2])
    out = sub.decode(sub(images(b=1)))
    assert out["keypoints"].shape == (1, 1, 2) and out["xyz"].shape == (1, 1, 3)
    torch.testing.assert_close(out["xyz"][:, 0], model(images(b=1))["xyz"][:, 2])
    assert sub.is_3d and sub.num_joints == 1
    assert [n for n, _ in randomization_units(sub, "conv")] == ["model.conv", "model.fc"]


@pytest.mark.parametrize("joints", [[], [4], [0, 0], [-1]])
def test_joint_subset_errors(joints):
    with pytest.raises(ValueError, match="joints"):
        JointSubset(TinyHeatmapNet(joints=4), joints)
    with pytest.raises(TypeError, match="model"):
        JointSubset(nn.Conv2d(3, 3, 1), [0])


def _table(values: dict[str, list[float]], randomized=None) -> pd.DataFrame:
    rows = []
    for metric, vals in values.items():
        for step, v in enumerate(vals):
            done = step if randomized is None else randomized[step]
            rows.append({"step": step, "randomized": done, "metric": metric, "value": v})
    return pd.DataFrame(rows)


def test_trends_signs_and_agreement():
    table = _table(
        {
            "FI": [2.0, 2.1, 1.5, 1.2],  # mostly falls: rho = -0.8, agrees
            "LI": [3.0, 3.5, 4.0, 5.0],  # rises: disagrees with seed 000
            "DI": [40.0, 40.0, 40.0, 40.0],  # constant: no trend, does not agree
            "ssim": [1.0, 0.5, float("nan"), 0.1],  # NaN step ignored: rho = -1 on 3 points
            "other": [1.0, 2.0, 3.0, 4.0],  # not in the expectations: skipped
        }
    )
    out = randomization_trends(table).set_index("metric")
    assert list(out.index) == ["FI", "LI", "DI", "ssim"]
    assert out.loc["FI", "rho"] == pytest.approx(-0.8)
    assert out.agrees.to_dict() == {"FI": True, "LI": False, "DI": False, "ssim": True}
    assert out.loc["ssim", "rho"] == pytest.approx(-1.0)
    assert out.loc["LI", "expected"] == "falls" and out.loc["LI", "final"] == 5.0
    assert EXPECTED_TRENDS["DI"] == 1
    text = describe_trends(out.reset_index(), "t")
    assert "- LI: expected to fall; measured 3 -> 5 (rho = 1.00): **differs**" in text
    assert "- DI: expected to rise; measured 40 -> 40 (rho = undefined): **differs**" in text


def test_trends_refuse_independent_runs_and_other_tables():
    with pytest.raises(ValueError, match="cascading"):
        randomization_trends(_table({"FI": [2.0, 1.0, 1.0, 0.5]}, randomized=[0, 1, 1, 1]))
    with pytest.raises(ValueError, match="missing"):
        randomization_trends(pd.DataFrame({"metric": ["FI"], "value": [1.0]}))


def test_trends_on_a_real_cascade():
    model = TinyHeatmapNet(joints=3).double().eval()
    x = images(b=2)
    table = randomization_test(model, x, near_targets(model, x), unit="module", **KW)
    out = randomization_trends(table).set_index("metric")
    assert out.loc["spearman_abs", "agrees"] and out.loc["spearman_abs", "final"] < 0.9
    assert out.loc["spearman_abs", "original"] == 1.0


def test_map_recorder_keeps_every_step_of_a_randomisation_test():
    model = TinyHeatmapNet(joints=3).double().eval()
    x = images(b=2)
    t = near_targets(model, x)
    rec = MapRecorder()
    table = randomization_test(model, x, t, unit="conv", explain=rec, **KW)
    assert len(rec.maps) == table.step.max() + 1 == 4
    torch.testing.assert_close(rec.maps[0], poseig(model, x, t, **KW).maps)
    assert not torch.equal(rec.maps[0], rec.maps[-1])
