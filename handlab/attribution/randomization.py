"""Model parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

Taught in chapter 10 (``notebooks/10_sanity_checks.py``).

If attributions explain what a model has *learned*, re-initialising its parameters must change
them. :func:`randomization_test` re-initialises a copy of the model one unit at a time, each
module with its own ``reset_parameters`` (seeded per unit), recomputes the PoseIG maps and
indices after every step, and compares them to the original maps:

- ``spearman_abs``: Spearman rank correlation of the max-normalised ``|maps|``;
- ``spearman_signed``: the same on the signed channel sums (max-|.| normalised);
- ``ssim``: structural similarity of the [0, 1] maps (``skimage.metrics``);
- ``spearman_hog``: Spearman of HOG features (16 x 16 px cells, ``skimage.feature.hog``).

Which parameters are reset: by default every module with parameters and a ``reset_parameters``
(conv, linear, deconv *and* the norm layers, each with its own initialiser; BatchNorm's resets
its affine parameters to 1 and 0 and its running statistics to 0 and 1), as in Adebayo et al.'s
cascade and ``quantus.MPRT``. ``conv_only=True`` resets only the conv/linear layers and keeps the
trained norm layers: a *partial* randomisation whose maps keep more of the original (chapter 10
measures by how much), kept for seed 000's setting.

Orders (as ``quantus.MPRT``'s ``layer_order``): ``"top_down"`` cascades from the output layer to
the input, ``"bottom_up"`` from the input up, ``"independent"`` randomises one unit at a time
with the rest kept. Units: ``"module"`` (the default: each parameterised module alone, in
registration order: quantus' definition), ``"block"`` (all modules sharing a parent, e.g. a ResNet
bottleneck), or an int ``n`` (``n`` conv/linear layers per step, each with the norm layers
registered after it up to the next conv: seed 000 randomised SimpleBaseline-ResNet-50's 54 conv
layers nine at a time). ``"conv"`` is ``"module"`` with ``conv_only=True``.

Zero and constant maps are counted, never dropped. A randomised head can make a joint's heatmap
negative everywhere; the decoder then clamps every cell, the joint gets no gradient and its map is
exactly zero. Such a map has no ranking, so its Spearman rank correlation with a non-constant map
is undefined (NaN in scipy; ``quantus.MPRT`` returns NaN too). handlab scores it **0**, the value
of an unrelated map: the map carries none of the original's ranking, so counting it as
uncorrelated is what the test means, while -1 would reward a map for being anti-correlated, which
it is not. Two constant maps score 1 (identical). SSIM is defined for constant maps (its
stabilising constants) and is used as computed. The share of constant maps per step is reported
as the metric ``constant_maps``. Where handlab goes beyond quantus: pose targets, PoseIG paths and
the indices at every step; captum has no randomisation test.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
>>> [name for name, _ in randomization_units(net)]
['0', '1', '2']
>>> [name for name, _ in randomization_units(net, conv_only=True)]
['0', '2']
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity
from torch import nn

from handlab.attribution.engine import attribution_maps, poseig
from handlab.attribution.indices import diffusion_index, foreground_index, localization_index

__all__ = ["METRICS", "map_similarity", "randomization_test", "randomization_units"]

METRICS = ("spearman_abs", "spearman_signed", "ssim", "spearman_hog", "constant_maps")
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
Unit = tuple[str, list[nn.Module]]


def randomization_units(
    model: nn.Module, unit: str | int = "module", *, conv_only: bool = False
) -> list[Unit]:
    """The model's units, input to output (registration order): ``[(name, modules), ...]``.

    Every module with parameters (or buffers) and ``reset_parameters`` takes part;
    ``conv_only`` (or ``unit="conv"``) keeps only conv/linear layers (module docstring).
    """
    if unit == "conv":
        unit, conv_only = "module", True
    named = [
        (n, m)
        for n, m in model.named_modules()
        if callable(getattr(m, "reset_parameters", None))
        and (any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(False)))
    ]
    if conv_only:
        named = [(n, m) for n, m in named if isinstance(m, _LAYERS)]
    if unit == "module":
        return [(n, [m]) for n, m in named]
    if unit == "block":
        blocks: dict[str, list[nn.Module]] = {}
        for n, m in named:
            blocks.setdefault(n.rpartition(".")[0] or n, []).append(m)
        return list(blocks.items())
    if isinstance(unit, int) and not isinstance(unit, bool) and unit >= 1:
        groups: list[list[tuple[str, nn.Module]]] = []
        convs = 0
        for n, m in named:  # a group opens at every n-th conv; norm layers join the open one
            if not groups or (isinstance(m, _LAYERS) and convs % unit == 0):
                groups.append([])
            groups[-1].append((n, m))
            convs += isinstance(m, _LAYERS)
        return [(f"{g[0][0]}..{g[-1][0]}", [m for _, m in g]) for g in groups]
    raise ValueError(f"unit: expected 'module', 'conv', 'block' or an int >= 1, got {unit!r}")


def _reset(modules: list[nn.Module], seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in modules:
            m.reset_parameters()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    flat_a, flat_b = np.ptp(a) == 0, np.ptp(b) == 0
    if flat_a or flat_b:  # a constant map has no ranking: 1 if both are, else 0 (docstring)
        return 1.0 if flat_a and flat_b else 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def _hog(m: np.ndarray) -> np.ndarray:
    return hog(m, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(1, 1))


def map_similarity(
    maps: torch.Tensor, signed: torch.Tensor, maps0: torch.Tensor, signed0: torch.Tensor
) -> dict[str, float]:
    """Mean over (sample, joint) of the four similarities between two sets of maps (B, J, H, W),
    every map counted (a constant map scores 0 against a non-constant one), and the share of
    constant maps in ``maps`` (``constant_maps``).

    ``maps`` are [0, 1] (``|.|``, max-normalised); ``signed`` are in [-1, 1].

    >>> m = torch.rand(1, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> {k: round(v, 6) for k, v in map_similarity(m, m, m, m).items()}
    {'spearman_abs': 1.0, 'spearman_signed': 1.0, 'ssim': 1.0, 'spearman_hog': 1.0,
     'constant_maps': 0.0}
    >>> z = m * torch.tensor([0.0, 1.0])[:, None, None]  # joint 0's map is zero: Spearman 0
    >>> sim = map_similarity(z, z, m, m)
    >>> round(sim["spearman_abs"], 6), sim["constant_maps"]
    (0.5, 0.5)
    """
    a, s = maps.detach().double().numpy(), signed.detach().double().numpy()
    a0, s0 = maps0.detach().double().numpy(), signed0.detach().double().numpy()
    scores: dict[str, list[float]] = {k: [] for k in METRICS}
    for i in np.ndindex(*a.shape[:2]):
        scores["spearman_abs"].append(_spearman(a[i], a0[i]))
        scores["spearman_signed"].append(_spearman(s[i], s0[i]))
        scores["ssim"].append(float(structural_similarity(a[i], a0[i], data_range=1.0)))
        scores["spearman_hog"].append(_spearman(_hog(a[i]), _hog(a0[i])))
        scores["constant_maps"].append(float(np.ptp(a[i]) == 0))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def _indices(maps, mask, keypoints, visibility) -> dict[str, float]:
    w = (
        torch.ones(maps.shape[:2], dtype=torch.float64)
        if visibility is None
        else visibility.double()
    )
    out = {"DI": diffusion_index(maps)}
    if mask is not None:
        out["FI"] = foreground_index(maps, mask)
    if keypoints is not None:
        out["LI"] = localization_index(maps, keypoints)
    means = {}
    for k, v in out.items():  # visibility-weighted, undefined (NaN) entries excluded
        ok = torch.isfinite(v) & (w > 0)
        means[k] = float((v[ok] * w[ok]).sum() / w[ok].sum()) if bool(ok.any()) else np.nan
    return means


def randomization_test(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    order: str = "top_down",
    unit: str | int = "module",
    conv_only: bool = False,
    seed: int = 0,
    same_seed: bool = False,
    mask: torch.Tensor | None = None,
    keypoints: torch.Tensor | None = None,
    visibility: torch.Tensor | None = None,
    explain: Callable[..., Any] = poseig,
    **poseig_kwargs: Any,
) -> pd.DataFrame:
    """Cascading or independent parameter randomisation with PoseIG maps and indices.

    Args:
        model: a handlab pose model (left untouched: a deep copy is randomised).
        images: (B, C, H, W); targets: (B, J, 2) px (the explained joints' targets).
        order: "top_down", "bottom_up" or "independent"; unit, conv_only: the module docstring
            (default: every parameterised layer, one per step).
        seed: unit k is re-initialised under ``torch.manual_seed(seed + k)`` (k in
            input-to-output order), so every order draws the same new weights for a unit;
            ``same_seed``: every unit under ``seed`` (quantus.MPRT re-seeds every layer with its
            ``seed + 1``).
        mask: (B, H, W) hand mask for FI; keypoints: (B, J, 2) px ground truth for LI;
            visibility: (B, J) weights for the index means.
        explain: the attribution function (default :func:`poseig`), called as
            ``explain(model, images, targets, **poseig_kwargs)``; it returns a result with
            ``attributions`` (B, J, C, H, W) or that tensor itself.

    Returns:
        tidy DataFrame, one row per (step, metric): step (0 = the original model), unit (the
        unit randomised at this step), randomized (units randomised so far in this copy),
        metric (the four similarities, ``constant_maps`` (share of constant maps), then DI,
        FI, LI means), value.
    """
    if order not in ("top_down", "bottom_up", "independent"):
        raise ValueError(f"order: expected 'top_down', 'bottom_up' or 'independent', got {order!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    work = copy.deepcopy(model).eval()
    units = randomization_units(work, unit, conv_only=conv_only)
    if not units:
        raise ValueError(f"unit: the model has no {unit!r} units to randomise")

    def run(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        out = explain(m, images, targets, **poseig_kwargs)
        attributions = out if isinstance(out, torch.Tensor) else out.attributions
        return attribution_maps(attributions), attribution_maps(attributions, signed=True)

    maps0, signed0 = run(work)
    rows = [(0, "", 0, k, v) for k, v in map_similarity(maps0, signed0, maps0, signed0).items()]
    rows += [(0, "", 0, k, v) for k, v in _indices(maps0, mask, keypoints, visibility).items()]
    steps = list(enumerate(units))
    if order == "top_down":
        steps = steps[::-1]
    for step, (k, (name, modules)) in enumerate(steps, start=1):
        current = work
        if order == "independent":
            current = copy.deepcopy(model).eval()
            modules = randomization_units(current, unit, conv_only=conv_only)[k][1]
        _reset(modules, seed if same_seed else seed + k)
        maps, signed = run(current)
        done = 1 if order == "independent" else step
        scores = map_similarity(maps, signed, maps0, signed0)
        scores |= _indices(maps, mask, keypoints, visibility)
        rows += [(step, name, done, metric, value) for metric, value in scores.items()]
    return pd.DataFrame(rows, columns=["step", "unit", "randomized", "metric", "value"])
