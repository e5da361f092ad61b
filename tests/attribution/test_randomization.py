import matplotlib
import pandas as pd
import pytest
import torch
from attr_models import TinyHeatmapNet, images, near_targets
from scipy.stats import spearmanr
from torch import nn

from handlab.attribution.engine import attribution_maps, poseig
from handlab.attribution.randomization import (
    METRICS,
    map_similarity,
    randomization_test,
    randomization_units,
)
from handlab.viz.attribution import plot_maps, plot_randomization

KW = {"path": "straight", "baseline": "mean", "steps": 3, "pilot": 0}


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
    assert [n for n, _ in randomization_units(model, conv_only=True)] == ["conv1", "conv2", "head"]
    everything = ["conv1", "bn1", "conv2", "bn2", "head"]  # BatchNorm counts, as in quantus
    assert [n for n, _ in randomization_units(model)] == everything
    assert [n for n, _ in randomization_units(model, "module")] == everything
    # two convs per step, each with the norm layer after it; conv-only keeps the norms out
    assert [len(m) for _, m in randomization_units(model, 2)] == [4, 1]
    assert [len(m) for _, m in randomization_units(model, 2, conv_only=True)] == [2, 1]
    assert sum(len(m) for _, m in randomization_units(model, 1)) == 5
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
    first = table[table.step == 0].set_index("metric").value
    assert first.loc[[m for m in METRICS if m != "constant_maps"]].to_numpy() == pytest.approx(1.0)
    assert first["constant_maps"] == 0.0
    assert table.step.max() == 3


def test_cascade_destroys_the_maps_and_is_reproducible(case):
    model, x, t = case
    mask = torch.zeros(2, 32, 32)
    mask[:, 8:24, 8:24] = 1
    table = randomization_test(model, x, t, mask=mask, keypoints=t, **KW)
    again = randomization_test(model, x, t, mask=mask, keypoints=t, **KW)
    pd.testing.assert_frame_equal(table, again)
    last = table[table.step == 5].set_index("metric").value
    assert last["spearman_abs"] < 0.9 and last["ssim"] < 0.9
    assert {"DI", "FI", "LI"} <= set(table.metric)
    assert table.randomized.tolist()[-1] == 5  # conv1, bn1, conv2, bn2, head


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
    with pytest.raises(ValueError, match="no 'module' units"):
        randomization_test(nn.Sequential(nn.ReLU()), x, t)


def test_plots(case):
    model, x, t = case
    table = randomization_test(model, x, t, unit=2, **KW)
    fig = plot_randomization(table)
    assert isinstance(fig, matplotlib.figure.Figure)
    # 4 similarities, the constant-map share, the 0.2 criterion; DI on the right
    assert len(fig.axes[0].lines) == 6 and len(fig.axes[1].lines) == 1
    with pytest.raises(ValueError, match="table"):
        plot_randomization(pd.DataFrame({"step": [0]}))
    fig = plot_maps(x[0], poseig(model, x, t, **KW).maps[0], names=["a", "b", "c"])
    assert [ax.get_title() for ax in fig.axes] == ["image", "a", "b", "c"]
    with pytest.raises(ValueError, match="image, maps"):
        plot_maps(x[0], torch.zeros(3, 8, 8))


def test_default_resets_every_parameterised_layer_norms_too(case):
    model, x, t = case
    seen = []
    randomization_test(model, x, t, order="top_down", explain=_capture(seen), **KW)
    assert len(seen) == 1 + 5  # original + conv1, bn1, conv2, bn2, head
    last = seen[-1]
    # BatchNorm's own initialiser: statistics back to 0 / 1 (the trained ones differed)
    assert torch.equal(last["bn1.running_mean"], torch.zeros(6, dtype=torch.float64))
    assert not torch.equal(model.bn1.running_mean, last["bn1.running_mean"])
    assert torch.equal(last["bn2.running_var"], torch.ones(6, dtype=torch.float64))
    assert not torch.equal(model.bn2.running_var, last["bn2.running_var"])
    partial = []
    randomization_test(model, x, t, conv_only=True, explain=_capture(partial), **KW)
    assert len(partial) == 1 + 3  # the partial variant keeps the trained norm layers
    torch.testing.assert_close(partial[-1]["bn1.running_mean"], model.bn1.running_mean)


class _ZeroJoint:
    """Explain that records its results; joint 0's attributions are zero once ``head`` changed."""

    def __init__(self, trained_head: torch.Tensor) -> None:
        self.trained = trained_head
        self.results = []

    def __call__(self, m, images, targets, **kwargs):
        res = poseig(m, images, targets, **kwargs)
        if not torch.equal(m.head.weight, self.trained):
            res.attributions[:, 0] = 0.0
        self.results.append(res)
        return res


def test_zero_maps_are_counted_as_uncorrelated_not_dropped(case):
    model, x, t = case
    explain = _ZeroJoint(model.head.weight.clone())
    table = randomization_test(model, x, t, unit="conv", explain=explain, **KW)
    step1 = table[table.step == 1].set_index("metric").value
    assert step1["constant_maps"] == pytest.approx(1 / 3)  # 2 samples x 3 joints, 2 are zero
    # by hand: the zero maps score 0, the others their Spearman; the mean over all 6 maps
    m0 = explain.results[0].maps
    m1 = attribution_maps(explain.results[1].attributions)
    rho = [
        [spearmanr(m1[b, j].flatten(), m0[b, j].flatten()).statistic for j in (1, 2)]
        for b in (0, 1)
    ]
    kept = [r for row in rho for r in row]
    assert step1["spearman_abs"] == pytest.approx(sum(kept) / 6)
    assert step1["spearman_abs"] < sum(kept) / 4  # dropping them (the old mean) reads higher
