"""PoseIG explains each family added for the seeds (TransPose and RLE from seed 000's Table C;
hand-model regression, the mesh graph CNN and weak depth supervision from seed 002): maps that
are finite, not all zero, and whose sums track the change of the explained scalar."""

from __future__ import annotations

import pytest
import torch

from handlab.attribution.engine import poseig
from handlab.models import create

SMALL = {
    "transpose": {"d_model": 32, "heads": 2, "layers": 1, "feedforward": 64, "input_size": 64},
    "rle": {"input_size": 64, "flow_hidden": 16},
    "handmodel_regression": {"input_size": 64},
    "meshgcn": {"input_size": 64, "head_width": 16, "channels": (16, 8, 8, 8)},
    "weak3d": {"input_size": 64, "head_width": 16, "hidden": 32},
}


@pytest.mark.parametrize("family", sorted(SMALL))
def test_poseig_explains_the_family(family):
    torch.manual_seed(0)
    model = create(family, **SMALL[family]).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = model(x)["keypoints"] + 1.5  # near the prediction, as PoseIG explains it
    res = poseig(model, x, target, path="straight", steps=8, joints=[0, 8, 20])
    assert res.attributions.shape == (2, 3, 3, 64, 64)
    assert torch.isfinite(res.attributions).all() and res.attributions.abs().sum() > 0
    assert torch.isfinite(res.delta).all()
