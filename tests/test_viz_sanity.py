import matplotlib
import pytest
import torch
from _tiny_model import build_tiny

from handlab import figures
from handlab.attribution.randomization import METRICS
from handlab.viz.sanity import MapExplorer, plot_map_grid, randomization_curve


def test_randomization_curve_writes_the_figure_with_tiny_settings(tmp_path):
    model = build_tiny(size=64).eval()  # a conv and a linear layer: two groups of one
    path = tmp_path / "curve.png"
    table = randomization_curve(path, model=model, n_images=1, steps=2, groups=2, size=64)
    assert path.stat().st_size > 1000
    assert table.step.max() == 2 and table.randomized.max() == 2
    assert set(table.metric) == {*METRICS, "DI", "FI", "LI"}
    assert table.unit.tolist()[-1] == "model.features.0..model.features.0"  # input side last
    assert figures.FIGURES["randomization_curve"] == "handlab.viz.sanity:randomization_curve"
    with pytest.raises(ValueError, match="groups"):
        randomization_curve(model=model, groups=0)


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
