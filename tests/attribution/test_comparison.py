import pytest
import torch
from attr_models import TinyHeatmapNet, images

from handlab.attribution.comparison import COLUMNS, explain_models
from handlab.attribution.engine import poseig
from handlab.skeleton import GROUP_OF_JOINT

KW = {"path": "straight", "baseline": "mean", "steps": 3, "pilot": 0}


@pytest.fixture(scope="module")
def case():
    x = images(b=2)
    g = torch.Generator().manual_seed(0)
    data = {
        "image": x,
        "keypoints": torch.rand(2, 21, 2, generator=g, dtype=torch.float64) * 31,
        "visibility": torch.tensor([[1.0] * 20 + [0.0]] * 2),
        "mask": (x.mean(1, keepdim=True) > 0.3).double(),
    }
    models = {
        "a": TinyHeatmapNet(joints=21, seed=0).double().eval(),
        "b": TinyHeatmapNet(joints=21, seed=1).double().eval(),
    }
    return models, data


def test_explain_models_matches_poseig_per_model(case):
    models, data = case
    joints = [0, 5, 20]
    table, maps = explain_models(models, data, joints=joints, **KW)
    assert list(table.columns) == list(COLUMNS) and len(table) == 2 * 2 * 3
    assert table.model.tolist()[:6] == ["a"] * 6
    assert table.joint.tolist()[:3] == joints
    assert table.group.tolist()[:3] == [GROUP_OF_JOINT[j] for j in joints]
    for name, model in models.items():
        full = poseig(model, data["image"], data["keypoints"], **KW)
        torch.testing.assert_close(maps[name], full.maps[:, joints])
        rows = table[table.model == name]
        torch.testing.assert_close(
            torch.tensor(rows.delta.to_numpy()), full.delta[:, joints].flatten()
        )
        torch.testing.assert_close(
            torch.tensor(rows.baseline_likelihood.to_numpy()),
            full.baseline_likelihood[:, joints].flatten(),
        )
        pred = model(data["image"])["keypoints"][:, joints]
        err = (pred - data["keypoints"][:, joints]).norm(dim=-1).flatten()
        torch.testing.assert_close(torch.tensor(rows.error_px.to_numpy()), err)
    assert table.FI.notna().all() and table.LI.notna().all()
    assert (table[table.joint == 20].visibility == 0).all()
    assert not maps["a"].equal(maps["b"])  # different weights, different maps


def test_explain_models_errors(case):
    models, data = case
    with pytest.raises(ValueError, match="models"):
        explain_models({}, data)
    with pytest.raises(ValueError, match="keypoints"):
        explain_models(models, {"image": data["image"]})
    with pytest.raises(ValueError, match="mask"):
        explain_models(models, data | {"mask": data["mask"][:, 0]})
