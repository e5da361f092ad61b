import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from handlab.attribution.paths import BlurPath, StraightPath
from handlab.viz import figures_attr as fa


def test_plot_paths_and_bad_nodes():
    x = torch.rand(1, 3, 32, 32)
    paths = {"black": StraightPath(x, torch.zeros_like(x)), "blur": BlurPath(x, folds=4)}
    fig = fa.plot_paths(paths, nodes=(0, 1))
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["s = 0", "s = 1", "", ""]
    # s = 0 of the black path is black, s = 1 of any path is the image
    assert fig.axes[0].images[0].get_array().max() == 0
    assert torch.allclose(torch.tensor(fig.axes[3].images[0].get_array()), x[0].permute(1, 2, 0))
    with pytest.raises(ValueError, match="nodes"):
        fa.plot_paths(paths, nodes=(0, 2))
    with pytest.raises(ValueError, match="paths"):
        fa.plot_paths({})


def test_plot_completeness_one_line_per_path_and_method():
    t = pd.DataFrame(
        {"path": ["a", "a", "a", "a"], "method": ["l", "l", "g", "g"], "steps": [2, 4, 2, 4],
         "rel_delta": [0.5, 0.2, 0.1, 0.0]}
    )  # fmt: skip
    assert len(fa.plot_completeness(t).axes[0].lines) == 2
    with pytest.raises(ValueError, match="rel_delta"):
        fa.plot_completeness(t.drop(columns="rel_delta"))
    assert len(fa.plot_completeness(t.rename(columns={"rel_delta": "d"}), y="d").axes) == 1


def test_plot_overlays_checks_shapes():
    fig = fa.plot_overlays(torch.rand(3, 8, 8), {"m": torch.rand(8, 8)}, target=torch.ones(2))
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="maps"):
        fa.plot_overlays(torch.rand(3, 8, 8), {"m": torch.rand(4, 8)})
    with pytest.raises(ValueError, match="image"):
        fa.plot_overlays(torch.rand(1, 8, 8), {"m": torch.rand(8, 8)})


def test_plot_relation_and_group_indices():
    assert len(fa.plot_relation(torch.rand(21, 21)).axes) == 2
    with pytest.raises(ValueError, match="ri"):
        fa.plot_relation(torch.rand(20, 21))
    t = pd.DataFrame(
        {"model": ["a"] * 5 + ["b"] * 5, "group": list(fa.GROUP_ORDER) * 2, "index": "FI",
         "value": range(10)}
    )  # fmt: skip
    fig = fa.plot_group_indices(t, indices=["FI"])
    assert len(fig.axes[0].patches) == 10
    with pytest.raises(ValueError, match="indices"):
        fa.plot_group_indices(t, indices=["LI"])
    with pytest.raises(ValueError, match="model"):
        fa.plot_group_indices(t.drop(columns="model"))
