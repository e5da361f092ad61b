"""``poseig`` does not depend on the caller's tensor state (issue 16): inputs that require grad
gave maps that carried a graph, and ``index_table`` then crashed on ``numpy()``."""

from __future__ import annotations

import torch
from torch import nn

from handlab.attribution import poseig
from handlab.attribution.indices import index_table
from handlab.models import wrap


def test_inputs_with_requires_grad_give_the_same_plain_maps():
    torch.manual_seed(0)
    model = wrap(nn.Sequential(nn.Conv2d(3, 21, 4, stride=4), nn.Softplus()))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    k = torch.rand(2, 21, 2, generator=g) * 31
    plain = poseig(model, x, k, steps=3, folds=3)
    tracked = poseig(model, x.clone().requires_grad_(True), k.clone().requires_grad_(True),
                     steps=3, folds=3)  # fmt: skip
    for name in ("attributions", "maps", "delta", "likelihood", "baseline_likelihood"):
        value = getattr(tracked, name)
        assert not value.requires_grad and value.grad_fn is None, name
        torch.testing.assert_close(value, getattr(plain, name))
    table = index_table(tracked.maps, keypoints=k.detach())
    assert len(table) == 2 * 21 and table["DI"].notna().all()
