import matplotlib
import pandas as pd
import pytest
import torch
from attr_models import TinyHeatmapNet, images, near_targets
from torch import nn

from handlab.attribution.engine import poseig
from handlab.attribution.randomization import (
    METRICS,
    map_similarity,
    randomization_test,
    randomization_units,
)
from handlab.viz.attribution import plot_maps, plot_randomization

KW = {"path": "straight", "baseline": "mean", "steps": 3}


@pytest.fixture(scope="module")
def case():
    model = TinyHeatmapNet(joints=3).double().eval()
    x = images(b=2)
    return model, x, near_targets(model, x)


def _capture(store):
    def explain(m, *args, **kwargs):
        store.append({k: v.clone() for k, v in m.state_dict().items()})
        return poseig(m, *args, **kwargs)

    return explain


def test_units():
    model = TinyHeatmapNet()
    assert [n for n, _ in randomization_units(model, "conv")] == ["conv1", "conv2", "head"]
    assert len(randomization_units(model, "module")) == 5  # BatchNorm counts, as in quantus
    assert [len(m) for _, m in randomization_units(model, 2)] == [2, 1]
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), nn.Conv2d(4, 2, 1))
    blocks = randomization_units(nested, "block")
    assert [(n, len(m)) for n, m in blocks] == [("0", 2), ("1", 1)]


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_orders_randomise_the_right_units_with_seeded_initialisers(case, order):
    model, x, t = case
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    table = randomization_test(
        model, x, t, order=order, unit="conv", seed=7, explain=_capture(seen), **KW
    )
    for k, v in model.state_dict().items():  # the caller's model is untouched
        torch.testing.assert_close(v, before[k])
    names = ["conv1", "conv2", "head"]
    sequence = {"top_down": [2, 1, 0], "bottom_up": [0, 1, 2], "independent": [0, 1, 2]}[order]
    for step, k in enumerate(sequence, start=1):
        changed = {
            n for n in names if not torch.equal(seen[step][f"{n}.weight"], before[f"{n}.weight"])
        }
        if order == "independent":
            want = {names[k]}
        else:
            want = {names[i] for i in sequence[:step]}
        assert changed == want
        fresh = TinyHeatmapNet(joints=3).double()
        torch.manual_seed(7 + k)
        getattr(fresh, names[k]).reset_parameters()
        torch.testing.assert_close(
            seen[step][f"{names[k]}.weight"], getattr(fresh, names[k]).weight
        )
    assert set(table.metric) == {*METRICS, "DI"}
    assert table[table.step == 0].set_index("metric").loc[list(METRICS), "value"].eq(1.0).all()
    assert table.step.max() == 3


def test_cascade_destroys_the_maps_and_is_reproducible(case):
    model, x, t = case
    mask = torch.zeros(2, 32, 32)
    mask[:, 8:24, 8:24] = 1
    table = randomization_test(model, x, t, mask=mask, keypoints=t, **KW)
    again = randomization_test(model, x, t, mask=mask, keypoints=t, **KW)
    pd.testing.assert_frame_equal(table, again)
    last = table[table.step == 3].set_index("metric").value
    assert last["spearman_abs"] < 0.9 and last["ssim"] < 0.9
    assert {"DI", "FI", "LI"} <= set(table.metric)
    assert table.randomized.tolist()[-1] == 3


def test_map_similarity_known_values():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(1, 2, 32, 32, generator=g, dtype=torch.float64)
    s = m * 2 - 1
    sim = map_similarity(m, -s, m, s)
    assert sim["spearman_abs"] == pytest.approx(1.0) and sim["spearman_signed"] == pytest.approx(
        -1.0
    )
    other = torch.rand(1, 2, 32, 32, generator=g, dtype=torch.float64)
    sim = map_similarity(other, other, m, s)
    assert abs(sim["spearman_abs"]) < 0.2 and sim["ssim"] < 0.3


def test_randomization_errors(case):
    model, x, t = case
    with pytest.raises(ValueError, match="order"):
        randomization_test(model, x, t, order="sideways")
    with pytest.raises(ValueError, match="unit"):
        randomization_test(model, x, t, unit="stage")
    with pytest.raises(ValueError, match="unit"):
        randomization_units(model, 0)
    with pytest.raises(TypeError, match="model"):
        randomization_test("model", x, t)
    with pytest.raises(ValueError, match="no 'conv' units"):
        randomization_test(nn.Sequential(nn.ReLU()), x, t)


def test_plots(case):
    model, x, t = case
    table = randomization_test(model, x, t, unit=2, **KW)
    fig = plot_randomization(table)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes[0].lines) == 4 and len(fig.axes[1].lines) == 1
    with pytest.raises(ValueError, match="table"):
        plot_randomization(pd.DataFrame({"step": [0]}))
    fig = plot_maps(x[0], poseig(model, x, t, **KW).maps[0], names=["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["image", "a", "b", "c"]
    with pytest.raises(ValueError, match="image, maps"):
        plot_maps(x[0], torch.zeros(3, 8, 8))
