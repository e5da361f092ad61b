"""handlab.viz.video: the clip viewer's sliders and track choice, the clip strip, errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from handlab.viz.video import ClipExplorer, plot_clip


def _clips(n=2, t=5):
    g = torch.Generator().manual_seed(0)
    clips = torch.rand(n, t, 3, 32, 32, generator=g)
    tracks = {
        "truth": torch.rand(n, t, 21, 2, generator=g) * 31,
        "fused": torch.rand(n, t, 21, 2, generator=g) * 80 - 20,  # partly outside the frame
    }
    return clips, tracks


def test_sliders_and_tracks_rerender():
    clips, tracks = _clips()
    occ = torch.rand(2, 5, 21)
    ex = ClipExplorer(clips, tracks, visibility=torch.ones(2, 5, 21), occlusion=occ)
    assert ex.rendered == {"clip": 0, "frame": 2, "tracks": ["truth", "fused"]}
    ex.clip.value = 1
    ex.frame.value = 4
    assert ex.rendered["clip"] == 1 and ex.rendered["frame"] == 4
    ex.shown.value = ("fused",)
    assert ex.rendered["tracks"] == ["fused"]
    assert ex.frame.max == 4 and ex.clip.max == 1


def test_plot_clip_titles_show_centre_and_occlusion():
    clips, tracks = _clips(1, 3)
    occ = torch.full((1, 3, 21), 0.5)
    fig = plot_clip(clips, tracks, occlusion=occ, visibility=torch.ones(1, 3, 21))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1] == "t=1 (centre)\nocclusion 50%"
    assert fig.axes[0].get_xlim() == (-0.5, 31.5) and fig.axes[0].get_ylim() == (31.5, -0.5)
    plt.close(fig)


def test_bad_shapes_are_clear_errors():
    clips, tracks = _clips()
    with pytest.raises(ValueError, match="tracks\\['fused'\\]"):
        ClipExplorer(clips, {"fused": tracks["fused"][:, :3]})
    with pytest.raises(ValueError, match="clips"):
        plot_clip(clips[0], tracks)
    with pytest.raises(ValueError, match="at least one track"):
        ClipExplorer(clips, {})
