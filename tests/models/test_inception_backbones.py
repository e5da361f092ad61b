"""Seed 001's Inception networks (timm, random weights): in the regression and heatmap families."""

from __future__ import annotations

import pytest
import torch

from handlab.models import create
from handlab.models._common import TIMM_TRUNKS, resnet_trunk


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TIMM_TRUNKS))
def test_timm_trunk_is_stride_exact(name):
    torch.manual_seed(0)
    trunk, channels = resnet_trunk(name)
    out = trunk(torch.rand(1, 3, 96, 128))
    assert out.shape == (1, channels, 3, 4)


@pytest.mark.slow
def test_seed_001_networks_build_and_learn():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 96, 96)
    batch = {"keypoints": torch.rand(2, 21, 2) * 60 + 18, "visibility": torch.ones(2, 21)}
    for model in (
        create("regression", backbone="inception_resnet_v2", input_size=96),
        create("simplebaseline", backbone="inception_v3", input_size=96, head_width=16),
    ):
        out = model(x)
        assert out["keypoints"].shape == (2, 21, 2)
        loss, _ = model.loss(out, batch)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None for g in grads)
    with pytest.raises(ValueError, match="input_size"):
        create("regression", backbone="inception_resnet_v2", input_size=64)
    with pytest.raises(ValueError, match="inception_resnet_v2"):
        create("simplebaseline", backbone="vgg16")
