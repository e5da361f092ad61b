import math

import pytest
import torch
from attr_models import TinyHeatmapNet, TinyRegression3D, images, near_targets

from handlab.attribution.engine import poseig
from handlab.attribution.explain import explain_batch, poseig_joint


@pytest.fixture(scope="module")
def model():
    return TinyHeatmapNet(joints=21).double().eval()


@pytest.mark.parametrize(
    ("path", "method", "baseline"),
    [("blur", "riemann_left", "black"), ("straight", "gausslegendre", "mean")],
)
def test_poseig_joint_equals_the_joint_of_poseig(model, path, method, baseline):
    x = images(b=2, size=32)
    t = near_targets(model, x)
    full = poseig(
        model, x, t, path=path, method=method, steps=5, folds=5, baseline=baseline, pilot=0
    )
    for j in (0, 7, 20):
        one = poseig_joint(model, x, t, j, path=path, method=method, steps=5, folds=5, pilot=0,
                           baseline=baseline)  # fmt: skip
        assert one.attributions.shape == (2, 1, 3, 32, 32)
        torch.testing.assert_close(one.attributions[:, 0], full.attributions[:, j])
        torch.testing.assert_close(one.delta[:, 0], full.delta[:, j])
        torch.testing.assert_close(one.likelihood[:, 0], full.likelihood[:, j])
        torch.testing.assert_close(one.maps[:, 0], full.maps[:, j])


def test_poseig_joint_3d_space_and_bad_joint():
    m = TinyRegression3D().double().eval()
    x = images(b=1, size=32)
    xyz = m(x)["xyz"].detach() + 1.0
    res = poseig_joint(m, x, xyz, 2, space="3d", path="straight", steps=3)
    assert res.delta.shape == (1, 1) and torch.isfinite(res.delta).all()
    for bad in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match="joint"):
            poseig_joint(m, x, xyz, bad, space="3d", steps=2)


def test_explain_batch_hidden_joints_get_no_li_or_ri(model):
    x = images(b=2, size=32)
    t = near_targets(model, x)
    vis = torch.ones(2, 21)
    vis[0, 3] = 0
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    res, table, ri = explain_batch(
        model, {"image": x, "keypoints": t, "visibility": vis, "mask": mask}, steps=3
    )
    assert res.maps.shape == (2, 21, 32, 32) and ri.shape == (2, 21, 21)
    assert len(table) == 42
    assert math.isnan(table.loc[3, "LI"]) and table.drop(index=3).LI.notna().all()
    assert table.FI.notna().all() and table.DI.between(0, 100).all()
    assert torch.isnan(ri[0, 3]).all() and torch.isnan(ri[0, :, 3]).all()
    assert torch.isfinite(ri[1]).all()
    torch.testing.assert_close(
        torch.tensor(table.delta.to_numpy()).view(2, 21), res.delta, check_dtype=False
    )


def test_explain_batch_names_a_missing_key(model):
    with pytest.raises(ValueError, match="visibility"):
        explain_batch(model, {"image": images(), "keypoints": torch.zeros(2, 21, 2)})
