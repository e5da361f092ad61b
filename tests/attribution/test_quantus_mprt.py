"""Dev check: handlab's randomization_test agrees with quantus.MPRT on a shared tiny case.

Runs only where quantus can be installed (``pip install -e .[dev-quantus]``; it pulls
opencv-python), hence the importorskip. Shared case: a one-joint heatmap model, two images, the
same units (every module with ``reset_parameters``, BatchNorm too: quantus' definition, handlab's
``unit="module"``) randomised in the same order, the same PoseIG maps, the same similarity
(Spearman rank correlation of |maps|). One difference is bridged on purpose: quantus re-seeds
every layer with ``seed + 1``, handlab unit k with ``seed + k``; the test's conv layers draw their
new weights from their own generator, so both tools give them identical new weights.
"""

import numpy as np
import pytest
import torch
from attr_models import TinyHeatmapNet, images
from torch import nn

from handlab.attribution.engine import poseig
from handlab.attribution.randomization import randomization_test
from handlab.attribution.sanity import MapRecorder

quantus = pytest.importorskip("quantus")

KW = {"path": "straight", "baseline": "mean", "steps": 4, "pilot": 0}


class SeededConv2d(nn.Conv2d):
    """A conv whose ``reset_parameters`` ignores the global RNG (its own seeded generator)."""

    init_seed = 0

    def reset_parameters(self) -> None:
        g = torch.Generator().manual_seed(self.init_seed)
        with torch.no_grad():
            w = torch.randn(self.weight.shape, generator=g, dtype=torch.float64) * 0.5
            self.weight.copy_(w)
            if self.bias is not None:
                self.bias.copy_(torch.randn(self.bias.shape, generator=g, dtype=torch.float64))


def tiny_model() -> nn.Module:
    model = TinyHeatmapNet(joints=1).double()
    for k, name in enumerate(("conv1", "conv2", "head")):
        old = getattr(model, name)
        new = SeededConv2d(
            old.in_channels, old.out_channels, old.kernel_size, stride=old.stride,
            padding=old.padding,
        ).double()  # fmt: skip
        new.init_seed = 100 + k
        new.load_state_dict(old.state_dict())  # the "trained" weights
        setattr(model, name, new)  # same position in the module order
    return model.eval()


def quantus_mprt(
    model: nn.Module, x: torch.Tensor, goals: torch.Tensor, order: str
) -> tuple[dict, list[torch.Tensor]]:
    """quantus.MPRT of PoseIG (``KW``) towards ``goals`` on images ``x``, Spearman of |maps|,
    seed 3: its scores per layer and every map it asked for, in call order."""
    quantus_maps = []

    def explain(model, inputs, targets, **kwargs):  # quantus calls with these names
        t = goals[torch.as_tensor(targets).long()]
        maps = poseig(model, torch.as_tensor(inputs), t, **KW).maps  # (B, J, H, W)
        quantus_maps.append(maps.clone())
        return maps.numpy()

    metric = quantus.MPRT(
        layer_order=order, seed=3, similarity_func=quantus.similarity_func.correlation_spearman,
        abs=True, normalise=True, disable_warnings=True,
    )  # fmt: skip
    scores = metric(
        model=model, x_batch=x.numpy(), y_batch=np.arange(len(x)), a_batch=None,
        explain_func=explain, explain_func_kwargs={}, device="cpu", batch_size=len(x),
    )  # fmt: skip
    return scores, quantus_maps


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_quantus_mprt_agrees_with_randomization_test(order):
    model = tiny_model()
    x = images(b=2)
    goals = (model.decode(model(x))["keypoints"] + 2.0).detach()  # (2, 1, 2) px
    scores, quantus_maps = quantus_mprt(model, x, goals, order)
    recorder = MapRecorder()
    table = randomization_test(model, x, goals, order=order, unit="module", explain=recorder, **KW)

    steps = table[table.metric == "spearman_abs"].sort_values("step")
    layers = [k for k in scores if k != "original"]
    assert layers == steps.unit.tolist()[1:]  # same units, same order
    ours = steps.value.to_numpy()[1:]
    theirs = np.array([np.mean(scores[k]) for k in layers])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    assert np.allclose(scores["original"], 1.0)
    # and the maps themselves: quantus' last len(layers) + 1 calls are the original and each step
    for mine, theirs_map in zip(recorder.maps, quantus_maps[-len(recorder.maps) :], strict=True):
        torch.testing.assert_close(mine, theirs_map)
    assert ours.min() < 0.99  # the test randomised something that changed the maps


def test_quantus_mprt_agrees_on_the_shipped_flagship():
    # The shipped SimpleBaseline-ResNet-18, every parameterised layer (47: conv, deconv,
    # BatchNorm) randomised top-down, one joint (index tip) on two 64 px synthetic hands. quantus
    # re-seeds every layer with its seed + 1: handlab's same_seed with seed + 1 draws the same
    # weights. Where a randomised head makes a map exactly zero, quantus' Spearman is NaN (and
    # its mean undefined); handlab counts that map as 0 (uncorrelated): the test checks both.
    from handlab import zoo
    from handlab.attribution.targets import JointSubset
    from handlab.synth import generate

    hands = generate(2, seed=0, size=64)
    x = hands["image"].double()
    model = JointSubset(zoo.load("simplebaseline_r18"), [8]).double().eval()
    goals = hands["keypoints"][:, [8]].double()
    scores, quantus_maps = quantus_mprt(model, x, goals, "top_down")
    recorder = MapRecorder()
    table = randomization_test(
        model, x, goals, order="top_down", seed=4, same_seed=True, explain=recorder, **KW
    )
    steps = table[table.metric == "spearman_abs"].sort_values("step")
    layers = [k for k in scores if k != "original"]
    assert len(layers) == 47 and layers == steps.unit.tolist()[1:]
    for mine, theirs_map in zip(recorder.maps, quantus_maps[-len(recorder.maps) :], strict=True):
        torch.testing.assert_close(mine, theirs_map)  # the same weights, hence the same maps
    theirs = np.array([scores[k] for k in layers], dtype=float)  # (47, 2)
    zero = np.array([[float(m[i].abs().max()) == 0 for i in range(2)] for m in recorder.maps[1:]])
    np.testing.assert_array_equal(np.isnan(theirs), zero)  # quantus' NaN = an exactly zero map
    np.testing.assert_allclose(steps.value.to_numpy()[1:], np.nan_to_num(theirs).mean(1), atol=1e-9)
    constant = table[table.metric == "constant_maps"].sort_values("step").value.to_numpy()[1:]
    np.testing.assert_allclose(constant, zero.mean(1))
