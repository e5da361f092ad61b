"""Widget logic without a browser: setting a widget's value fires the explorer's callback."""

import pytest
import torch

from handlab.viz.widgets import SampleExplorer


def _data(n=3):
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.rand(n, 3, 32, 32, generator=g),
        "depth": torch.rand(n, 1, 32, 32, generator=g) * 500,
        "mask": (torch.rand(n, 1, 32, 32, generator=g) > 0.5).float(),
        "keypoints": torch.rand(n, 21, 2, generator=g) * 31,
        "visibility": (torch.rand(n, 21, generator=g) > 0.3).float(),
    }


def test_slider_and_toggles_rerender():
    ex = SampleExplorer(_data())
    assert ex.rendered == {"index": 0, "panels": ["image"], "keypoints": True}
    ex.sample.value = 2
    assert ex.rendered["index"] == 2
    ex.panels.value = ("image", "depth", "mask")
    assert ex.rendered["panels"] == ["image", "depth", "mask"]
    ex.show_keypoints.value = False
    assert ex.rendered["keypoints"] is False
    assert ex.sample.max == 2


def test_missing_image_is_a_clear_error():
    with pytest.raises(ValueError, match="'image'"):
        SampleExplorer({"depth": torch.zeros(1, 1, 8, 8)})
