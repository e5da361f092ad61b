"""The README's figures: the recipes that compute them, and :func:`make_figures`.

``make figures`` (``handlab figures``, :mod:`handlab.commands.figures`) runs every recipe in
:data:`FIGURES`; ``handlab figures --only synth_gallery`` one. A recipe loads zoo models, runs
the computation (PoseIG, a randomisation test) and hands the results to :mod:`handlab.viz`,
which only draws. A model missing from the zoo raises a ``ValueError`` naming it.

- :func:`synth_gallery`: a grid of synthetic samples (image, keypoints, depth, mask).
- :func:`attribution_by_family`: one PoseIG map per model family for one joint of one image.
- :func:`indices_by_group`: FI / LI / DI per joint group for a few models, as bars.
- :func:`randomization_curve`: a cascading randomisation of a zoo model (every parameterised
  layer, norm layers included), similarity and index curves per step.

PoseIG runs with :class:`~handlab.attribution.config.PoseIGConfig`'s defaults (target
``heatmap_match``, Gauss-Legendre with a 64-forward pilot placing the nodes) on the blur path,
whose ``folds`` blur levels equal the recipe's ``steps``.

>>> "synth_gallery" in FIGURES and FIGURES["indices_by_group"] is indices_by_group
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn

from handlab import zoo
from handlab._checks import check_range
from handlab.attribution.analysis import compare_models
from handlab.attribution.explain import explain_batch, poseig_joint
from handlab.attribution.indices import diffusion_index, localization_index
from handlab.attribution.randomization import randomization_test, randomization_units
from handlab.attribution.sanity import JointSubset
from handlab.skeleton import JOINT_NAMES, NUM_JOINTS
from handlab.viz.attribution import plot_randomization
from handlab.viz.figures_attr import plot_group_indices, plot_overlays
from handlab.viz.gallery import plot_gallery
from handlab.viz.sanity import CHAIN

__all__ = [
    "FAMILY_MODELS",
    "FIGURES",
    "INDEX_MODELS",
    "attribution_by_family",
    "indices_by_group",
    "load_models",
    "make_figures",
    "randomization_curve",
    "synth_gallery",
]

# One zoo model per family with an RGB input and a 2D decode (the explained likelihood is 2D):
# the zoo's RGB models but the second SimpleBaseline (ResNet-50, in the large-weights package).
FAMILY_MODELS = tuple(name for name in zoo.RGB_MODELS if name != "simplebaseline_r50")
INDEX_MODELS = ("simplebaseline_r18", "integral_r18", "hrnet_small", "regression_r34")
# A recipe's ``models``: zoo names, or name -> a model already built.
Models = Sequence[str] | Mapping[str, nn.Module]


def load_models(models: Models) -> dict[str, nn.Module]:
    """Zoo names -> loaded models (``HANDLAB_ZOO_DIR`` honoured); a mapping passes through.

    Raises ``ValueError`` naming every requested model missing from the zoo.

    >>> load_models({"mine": nn.Identity()})
    {'mine': Identity()}
    """
    if isinstance(models, Mapping):
        if not models or not all(isinstance(m, nn.Module) for m in models.values()):
            raise ValueError("models: expected a non-empty mapping of name -> nn.Module")
        return dict(models)
    if isinstance(models, str) or not models:
        raise ValueError(f"models: expected a non-empty sequence of zoo names, got {models!r}")
    shipped = zoo.list_models()
    missing = [name for name in models if name not in shipped]
    if missing:
        raise ValueError(
            f"models: {missing} missing from the zoo (shipped: {shipped}); train and add them "
            "('handlab zoo add') or set HANDLAB_ZOO_DIR"
        )
    return {name: zoo.load(name) for name in models}


def _models_and_batch(
    models: Models, *, steps: int, size: int, samples: Sequence[int]
) -> tuple[dict[str, nn.Module], dict[str, torch.Tensor]]:
    """The PoseIG recipes' start: check ``steps``, load ``models``, and the fixed synthetic test
    images ``samples`` at ``size`` px (checks first, so a bad argument fails before any load)."""
    from handlab.synth import SyntheticHands

    check_range("steps", steps, lo=1)
    loaded = load_models(models)
    return loaded, SyntheticHands("test", size=size).batch(list(samples))


def _save(fig: Any, path: str | Path, dpi: int) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def synth_gallery(
    path: str | Path, *, n: int = 8, seed: int = 0, size: int = 128, occluders: float = 0.5
) -> Path:
    """Write a PNG grid of ``n`` generated samples (:func:`handlab.viz.gallery.plot_gallery`).

    Returns the path written.
    """
    from handlab.synth import generate

    check_range("n", n, lo=1, hi=64)
    samples = generate(n, seed=seed, size=size, occluders=occluders)
    title = f"handlab.synth.generate(n={n}, seed={seed}, size={size})"
    return _save(plot_gallery(samples, title=title), path, dpi=90)


def attribution_by_family(
    path: str | Path,
    *,
    models: Models = FAMILY_MODELS,
    joint: int = 8,
    steps: int = 50,
    size: int = 128,
    sample: int = 0,
) -> Path:
    """One PoseIG map per model family for one joint of one fixed test image (blur path).

    Args:
        path: the PNG to write.
        models: zoo names (default one per family) or name -> model.
        joint: the explained joint (default 8, the index fingertip).
        steps: PoseIG's points (default rule: Gauss-Legendre, nodes placed by a 64-forward
            pilot) and the blur path's folds (the reference's 50).
        size: image side (px); sample: index into the fixed synthetic test split.

    Returns:
        the path written. Each panel shows the map, the ground truth (white cross), the
        model's prediction (cyan dot) and the map's LI and DI.
    """
    check_range("sample", sample, lo=0)
    if not isinstance(joint, int) or not 0 <= joint < NUM_JOINTS:
        raise ValueError(f"joint: expected an int in [0, {NUM_JOINTS}), got {joint!r}")
    loaded, batch = _models_and_batch(models, steps=steps, size=size, samples=[sample])
    image, keypoints = batch["image"], batch["keypoints"]  # (1, 3, H, W), (1, 21, 2) px
    maps, points = {}, {}
    for name, model in loaded.items():
        res = poseig_joint(model, image, keypoints, joint, steps=steps, folds=steps, max_batch=8)
        li = float(localization_index(res.maps, keypoints[:, joint : joint + 1])[0, 0])
        di = float(diffusion_index(res.maps)[0, 0])
        title = f"{name}\nLI {li:.2f}  DI {di:.1f}"
        maps[title] = res.maps[0, 0]
        with torch.no_grad():
            points[title] = model(image)["keypoints"][0, joint]
    fig = plot_overlays(image[0], maps, points=points, target=keypoints[0, joint], cols=4)
    fig.suptitle(f"PoseIG (blur path, {steps} folds) of {JOINT_NAMES[joint]}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))  # room for the suptitle
    return _save(fig, path, dpi=90)


def indices_by_group(
    path: str | Path,
    *,
    models: Models = INDEX_MODELS,
    n: int = 4,
    steps: int = 16,
    size: int = 128,
) -> Path:
    """FI / LI / DI per joint group (visibility-weighted) for a few models, as bars.

    Args:
        path: the PNG to write; models: zoo names or name -> model; n: test images explained;
        steps: PoseIG's points per image (default rule: Gauss-Legendre with a 64-forward
            pilot) and the blur path's folds; size: image side (px).

    Returns:
        the path written.
    """
    check_range("n", n, lo=1, hi=1000)
    loaded, batch = _models_and_batch(models, steps=steps, size=size, samples=range(n))
    tables = {
        name: explain_batch(m, batch, steps=steps, max_batch=8)[1] for name, m in loaded.items()
    }
    fig = plot_group_indices(compare_models(tables, by="group"))
    fig.suptitle(f"PoseIG indices per joint group ({n} test images, blur path, {steps} folds)")
    fig.tight_layout()
    return _save(fig, path, dpi=90)


def randomization_curve(
    path: str | Path | None = None,
    *,
    model: str | nn.Module = "simplebaseline_r18",
    n_images: int = 2,
    steps: int = 12,
    groups: int = 6,
    joints: Sequence[int] = CHAIN,
    size: int = 128,
    seed: int = 0,
) -> pd.DataFrame:
    """Cascading (top-down) randomisation of a model in ``groups`` conv groups, drawn and saved.

    The README figure: seed 000 randomised SimpleBaseline-ResNet-50's 54 conv layers nine at a
    time (six steps); here the conv layers are cut into ``groups`` equal groups the same way,
    each with the norm layers that follow its convs (every parameterised layer is reset, as in
    Adebayo et al. and ``quantus.MPRT``; zero maps are counted, their share drawn dashed).

    Args:
        path: where to save the PNG (None: only compute); model: a zoo name or a pose model;
        n_images: synthetic test images (seed ``seed``, ``size`` px); steps: PoseIG's points
            (default rule: Gauss-Legendre with a 64-forward pilot) and the blur path's folds;
            joints: which joints to explain (default the wrist and the index finger, one per
            group).

    Returns:
        the :func:`~handlab.attribution.randomization_test` table.
    """
    from handlab import synth

    for name, value in (("n_images", n_images), ("steps", steps), ("groups", groups)):
        check_range(name, value, lo=1)
    net = zoo.load(model) if isinstance(model, str) else model
    per_group = math.ceil(len(randomization_units(net, "conv")) / groups)
    data = synth.generate(n_images, seed=seed, size=size)
    j = list(joints)
    kp = data["keypoints"][:, j]
    table = randomization_test(
        JointSubset(net, j), data["image"], kp, order="top_down", unit=per_group, seed=seed,
        mask=data["mask"][:, 0], keypoints=kp, visibility=data["visibility"][:, j],
        steps=steps, folds=steps,
    )  # fmt: skip
    label = model if isinstance(model, str) else type(model).__name__
    fig = plot_randomization(
        table,
        title=f"{label}: top-down randomisation, {per_group} conv layers (+ their norm layers) "
        f"per step; PoseIG blur, {steps} points",
    )
    if path is not None:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return table


# name -> recipe taking the output path
FIGURES: dict[str, Callable[[Path], Any]] = {
    "synth_gallery": synth_gallery,
    "randomization_curve": randomization_curve,
    "attribution_by_family": attribution_by_family,
    "indices_by_group": indices_by_group,
}


def make_figures(out: str | Path = "figures", only: list[str] | None = None) -> list[Path]:
    """Write the selected figures (default: all) as ``out/NAME.png``; returns their paths."""
    names = only or sorted(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"only: expected some of {sorted(FIGURES)}, got unknown {unknown}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = out_dir / f"{name}.png"
        FIGURES[name](path)
        print(f"[handlab figures] wrote {path}", flush=True)
        paths.append(path)
    return paths
