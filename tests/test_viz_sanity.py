import matplotlib
import pytest
import torch

from handlab.viz.sanity import MapExplorer, plot_map_grid


def test_plot_map_grid_panels_and_errors():
    maps = {f"step {k}": torch.rand(16, 16) for k in range(7)}
    fig = plot_map_grid(torch.rand(3, 16, 16), maps, keypoint=torch.tensor([3.0, 4.0]), cols=4)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert [ax.get_title() for ax in fig.axes] == ["image", *maps]
    with pytest.raises(ValueError, match="maps"):
        plot_map_grid(torch.rand(3, 16, 16), {"a": torch.rand(8, 8)})
    with pytest.raises(ValueError, match="image"):
        plot_map_grid(torch.rand(16, 16), maps)


def test_map_explorer_follows_its_widgets():
    maps = {"a": torch.rand(3, 2, 8, 8), "b": torch.rand(3, 2, 8, 8)}
    ex = MapExplorer(torch.rand(3, 3, 8, 8), maps, ["wrist", "index_tip"])
    assert ex.rendered == {"key": "a", "joint": 0, "sample": 0}
    ex.key.value = "b"
    ex.sample.value = 2
    ex.joint.value = 1
    assert ex.rendered == {"key": "b", "joint": 1, "sample": 2}
    with pytest.raises(ValueError, match="maps"):
        MapExplorer(torch.rand(3, 3, 8, 8), {"a": torch.rand(2, 2, 8, 8)}, ["x", "y"])
