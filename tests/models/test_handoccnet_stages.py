"""HandOccNet.stages: the intermediate tensors chapter 06 shows are the ones forward uses."""

import torch

from handlab.models import create


def test_stages_are_the_forward_pass():
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        s = model.stages(images)
        out = model(images)
    b, c, h, w = s["features"].shape
    assert (b, c, h, w) == (2, 16, 8, 8)
    tokens = s["features"].flatten(2).transpose(1, 2)  # (B, N, C)
    m = s["necessity"].flatten(2).transpose(1, 2)  # (B, N, 1)
    torch.testing.assert_close(s["primary"], tokens * m)
    torch.testing.assert_close(s["secondary"], tokens * (1 - m))
    torch.testing.assert_close(s["primary"] + s["secondary"], tokens)
    torch.testing.assert_close(out["necessity"], s["necessity"])
    torch.testing.assert_close(out["correlation"], s["correlation"])
    assert s["correlation"].shape == (2, 2, h * w, h * w)
    grid = s["enhanced"].transpose(1, 2).reshape(b, c, h, w)
    torch.testing.assert_close(out["heatmaps"], model.heatmap_head(grid))
    assert not torch.equal(s["injected"], s["enhanced"])  # SET changed the features
