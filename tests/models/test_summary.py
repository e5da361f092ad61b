"""handlab.models.summary: the layer table follows the real forward pass; timing measures."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from handlab.models import create
from handlab.models.summary import inference_ms, layer_table


def test_simplebaseline_goes_down_to_stride_32_and_back_to_4():
    model = create("simplebaseline", backbone="resnet18", head_width=16)
    table = layer_table(model, torch.zeros(1, 3, 64, 64), depth=2)
    strides = dict(zip(table["layer"], table["stride"], strict=True))
    assert strides["backbone.7"] == 32.0  # ResNet layer4
    assert strides["head.deconv"] == 4.0 and strides["head.final"] == 4.0
    assert table["output"].iloc[-1] == (1, 21, 16, 16)
    # the rows partition the network: their parameters add up to the whole model's
    assert table["params"].sum() == sum(p.numel() for p in model.parameters())
    assert model.training  # the training flag is restored


def test_depth_selects_children_and_keeps_call_order():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Linear(4, 2)  # defined first, called last
            self.a = nn.Sequential(nn.Linear(3, 4), nn.ReLU())

        def forward(self, images):
            return self.b(self.a(images.flatten(1)))

    net = Net()
    images = torch.zeros(5, 3, 1, 1)
    assert layer_table(net, images, depth=1)["layer"].tolist() == ["a", "b"]
    deep = layer_table(net, images, depth=2)
    assert deep["layer"].tolist() == ["a.0", "a.1", "b"]  # b is a leaf above depth 2
    assert deep["params"].tolist() == [16, 0, 10]
    assert all(math.isnan(s) for s in deep["stride"])  # (B, C) outputs have no stride
    with pytest.raises(ValueError, match="depth"):
        layer_table(net, images, depth=0)
    with pytest.raises(ValueError, match="images"):
        layer_table(net, torch.zeros(5, 3))


def test_inference_ms_measures_the_forward_time_per_image():
    class Slow(nn.Module):
        def forward(self, images):
            time.sleep(0.02)
            return images

    ms = inference_ms(Slow(), torch.zeros(2, 3, 4, 4), repeats=2)
    assert 10.0 <= ms < 200.0  # 20 ms per call over 2 images
    with pytest.raises(ValueError, match="repeats"):
        inference_ms(Slow(), torch.zeros(1, 3, 4, 4), repeats=0)
