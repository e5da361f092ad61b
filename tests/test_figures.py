"""handlab.figures: the README figures' recipes write their PNGs, check arguments, name missing
zoo models."""

import pytest
import torch
from _tiny_model import build_tiny

from handlab import figures
from handlab.attribution.randomization import METRICS
from handlab.figures import randomization_curve
from handlab.models import create


@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {
        "hrnet": create("hrnet_small", width=8).eval(),
        "regression": create("regression", backbone="resnet18", input_size=64).eval(),
    }


def _nonempty(path):
    return path.is_file() and path.stat().st_size > 1000


def test_attribution_by_family_writes_a_png(tiny_models, tmp_path):
    out = figures.attribution_by_family(tmp_path / "f.png", models=tiny_models, steps=2, size=64)
    assert out == tmp_path / "f.png" and _nonempty(out)


def test_indices_by_group_writes_a_png(tiny_models, tmp_path):
    out = figures.indices_by_group(tmp_path / "g.png", models=tiny_models, n=2, steps=2, size=64)
    assert _nonempty(out)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"joint": 21}, "joint"), ({"steps": 0}, "steps"), ({"models": "cpm"}, "models"),
     ({"models": {}}, "models"), ({"sample": -1}, "sample")],
)  # fmt: skip
def test_attribution_by_family_bad_args(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        figures.attribution_by_family(tmp_path / "f.png", **kwargs)
    assert not (tmp_path / "f.png").exists()


def test_missing_zoo_models_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDLAB_ZOO_DIR", str(tmp_path / "empty_zoo"))
    with pytest.raises(ValueError, match=r"'simplebaseline_r18'.*'integral_r18'"):
        figures.indices_by_group(tmp_path / "g.png")
    with pytest.raises(ValueError, match="'cpm'"):
        figures.load_models(["cpm"])
    with pytest.raises(ValueError, match="n"):
        figures.indices_by_group(tmp_path / "g.png", n=0)


def test_randomization_curve_writes_the_figure_with_tiny_settings(tmp_path):
    model = build_tiny(size=64).eval()  # a conv and a linear layer: two groups of one
    path = tmp_path / "curve.png"
    table = randomization_curve(path, model=model, n_images=1, steps=2, groups=2, size=64)
    assert path.stat().st_size > 1000
    assert table.step.max() == 2 and table.randomized.max() == 2
    assert set(table.metric) == {*METRICS, "DI", "FI", "LI"}
    assert table.unit.tolist()[-1] == "model.features.0..model.features.0"  # input side last
    assert figures.FIGURES["randomization_curve"] is randomization_curve
    with pytest.raises(ValueError, match="groups"):
        randomization_curve(model=model, groups=0)


def test_make_figures_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="no_such_figure"):
        figures.make_figures(tmp_path, ["no_such_figure"])
    assert not list(tmp_path.iterdir())
