"""handlab.viz.curves: each plot draws the data it is given, and bad inputs raise naming them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from handlab.viz import curves


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _curves() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [100, 200, 300],
            "lr": [1e-3, 5e-4, 1e-5],
            "train_loss": [0.01, 0.004, 0.002],
            "train_epe": [12.0, 7.0, 5.0],
            "val_epe_px": [11.0, 6.5, 4.8],
            "val_pck@10px": [0.4, 0.7, 0.8],
        }
    )


def test_training_curves_plot_every_series_against_the_step():
    fig = curves.plot_training_curves(_curves(), title="sb")
    loss, epe, lr = fig.axes
    assert loss.get_yscale() == "log"
    assert loss.get_lines()[0].get_xdata().tolist() == [100, 200, 300]
    assert [ln.get_ydata().tolist() for ln in epe.get_lines()] == [
        [12.0, 7.0, 5.0],
        [11.0, 6.5, 4.8],
    ]
    assert lr.get_lines()[0].get_ydata().tolist() == [1e-3, 5e-4, 1e-5]
    assert fig._suptitle.get_text() == "sb"


def test_training_curves_name_the_missing_column():
    with pytest.raises(ValueError, match=r"curves: .*missing \['val_epe_px'\]"):
        curves.plot_training_curves(_curves().drop(columns="val_epe_px"))
    with pytest.raises(TypeError, match=r"curves: expected a pandas\.DataFrame"):
        curves.plot_training_curves({"step": [1]})
    with pytest.raises(ValueError, match="empty"):
        curves.plot_training_curves(_curves().iloc[:0])


def test_pck_curves_one_line_per_model_in_order():
    t = np.array([0.0, 10.0, 20.0, 30.0])
    table = pd.DataFrame({"cpm": [0, 0.3, 0.7, 0.9], "hrnet": [0, 0.5, 0.9, 1.0]}, index=t)
    fig = curves.plot_pck_curves(table, title="test split")
    lines = fig.axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["cpm", "hrnet"]
    assert lines[1].get_xdata().tolist() == t.tolist()
    assert lines[1].get_ydata().tolist() == [0, 0.5, 0.9, 1.0]
    assert fig.axes[0].get_title() == "test split"


def test_tradeoff_places_each_labelled_point():
    table = pd.DataFrame({"ms": [3.0, 9.0], "epe": [6.0, 4.0]}, index=["r18", "r50"])
    fig = curves.plot_tradeoff(table, "ms", "epe")
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().tolist() == [[3.0, 6.0], [9.0, 4.0]]
    assert [(a.get_text(), a.xy) for a in ax.texts] == [("r18", (3.0, 6.0)), ("r50", (9.0, 4.0))]
    with pytest.raises(ValueError, match="missing"):
        curves.plot_tradeoff(table, "ms", "auc")


def test_prediction_grid_titles_carry_the_visible_epe():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 21, 2, generator=g) * 60
    vis = torch.ones(3, 21)
    vis[1, 5:] = 0
    good = gt.clone()
    bad = gt.clone()
    bad[:, :, 0] += 6.0
    bad[1, 5:] += 100.0  # hidden joints: must not count
    fig = curves.prediction_grid(
        torch.rand(3, 3, 64, 64), gt, {"good": good, "bad": bad}, vis, max_samples=2
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["good: EPE 0.0 px"] * 2 + ["bad: EPE 6.0 px"] * 2


def test_prediction_grid_checks_shapes():
    gt = torch.zeros(2, 21, 2)
    with pytest.raises(ValueError, match=r"predictions\['m'\]"):
        curves.prediction_grid(torch.rand(2, 3, 32, 32), gt, {"m": torch.zeros(2, 20, 2)})
    with pytest.raises(ValueError, match="predictions"):
        curves.prediction_grid(torch.rand(2, 3, 32, 32), gt, {})
    with pytest.raises(ValueError, match="images"):
        curves.prediction_grid(torch.rand(2, 1, 32, 32), gt, {"m": gt})
