"""handlab.viz.occlusion: stage panels from a real HandOccNet pass, bucket bars, errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from handlab.models import create
from handlab.occlusion import bucket_table
from handlab.viz.occlusion import StageExplorer, plot_buckets, plot_stages, token_norms


def test_token_norms_is_the_per_cell_norm():
    tokens = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0))
    maps = token_norms(tokens, (2, 3))
    torch.testing.assert_close(maps[1, 1, 2], tokens[1, 5].norm())
    with pytest.raises(ValueError, match="tokens"):
        token_norms(tokens, (2, 2))


def test_plot_stages_draws_every_stage():
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        stages = model.stages(images)
    mask = torch.zeros(1, 64, 64)
    mask[:, 10:30, 10:30] = 1
    fig = plot_stages(
        images[1], stages, index=1, keypoints=torch.rand(21, 2) * 63, occluder_mask=mask
    )
    assert len(fig.axes) == 6 + 5  # image + 5 maps, and a colorbar per map
    necessity = fig.axes[1].images[1].get_array()
    torch.testing.assert_close(torch.as_tensor(necessity.data), stages["necessity"][1, 0])
    plt.close(fig)
    with pytest.raises(ValueError, match="missing keys"):
        plot_stages(images[0], {"features": stages["features"]})


def test_plot_buckets_bars_follow_the_table():
    target = torch.zeros(4, 21, 2)
    occ = torch.linspace(0, 1, 84).reshape(4, 21)
    table = bucket_table({"a": target + 1.0, "b": target + 2.0}, target, occ)
    fig = plot_buckets(table, title="t")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:5] == pytest.approx([2**0.5] * 5) and heights[5:] == pytest.approx([8**0.5] * 5)
    assert len(fig.axes[0].get_xticklabels()) == 5
    plt.close(fig)
    with pytest.raises(TypeError, match="bucket_table"):
        plot_buckets(table.drop(index="joints"))


def test_stage_explorer_follows_the_slider():
    torch.manual_seed(0)
    model = create("handoccnet", width=16, heads=2, input_size=64).eval()
    data = {"image": torch.rand(3, 3, 64, 64), "keypoints": torch.rand(3, 21, 2) * 63}
    ex = StageExplorer(model, data)
    assert ex.rendered["index"] == 0 and ex.frame.max == 2
    ex.frame.value = 2
    with torch.no_grad():
        want = float(model.stages(data["image"][2:3])["necessity"].mean())
    assert ex.rendered == {"index": 2, "necessity_mean": pytest.approx(want)}
    with pytest.raises(TypeError, match="HandOccNet"):
        StageExplorer(create("simplebaseline", head_width=16, input_size=64), data)
    with pytest.raises(ValueError, match="'image'"):
        StageExplorer(model, {"keypoints": data["keypoints"]})
