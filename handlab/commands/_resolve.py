"""Names on the command line -> objects: the one place where specs are resolved.

``--model`` takes ``zoo:NAME`` (a shipped model), a ``handlab train`` run folder, ``onnx:PATH``
(an ONNX network, :func:`handlab.models.from_onnx`) or ``python:module:function`` (a factory
returning a contract-following model, :func:`handlab.models.from_factory`); ``--data`` takes
``synth``, ``synth-dr`` (domain-randomised training split), ``synth-clips[:T=N]``, ``NAME:ROOT``
(a real dataset in its published layout) or ``coco:PATH`` (COCO-style keypoint files;
``coco:real-hands`` is the checkout's evaluation-only development set). The library below
(training, attribution) takes the resolved ``nn.Module`` and dataset.

>>> resolve_model(3)
Traceback (most recent call last):
...
TypeError: spec: expected 'zoo:NAME', a run folder, 'onnx:PATH' or 'python:module:function', \
got int
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["MODEL_HELP", "resolve_data", "resolve_model", "zoo_rgb_models"]

MODEL_HELP = "zoo:NAME, a handlab train run folder, onnx:PATH or python:MODULE:FUNCTION"


def resolve_model(
    spec: str | Path, *, device: str | torch.device = "cpu", config: dict | None = None
) -> nn.Module:
    """``"zoo:NAME"``, a run folder, ``"onnx:PATH"`` or ``"python:module:function"`` -> the model
    in eval mode on ``device`` (zoo models and runs carry their card as ``model.card``).
    ``config``: inference-time model config fields (zoo models and runs only)."""
    if not isinstance(spec, str | Path):
        raise TypeError(
            "spec: expected 'zoo:NAME', a run folder, 'onnx:PATH' or 'python:module:function', "
            f"got {type(spec).__name__}"
        )
    # lazy imports: the parser builds without torch
    foreign = isinstance(spec, str) and spec.startswith(("onnx:", "python:"))
    if config and foreign:
        raise ValueError(f"--model-config: {spec} has no handlab config to change")
    if isinstance(spec, str) and spec.startswith("onnx:"):
        from handlab.models import from_onnx

        return _with_card(from_onnx(spec.removeprefix("onnx:")), spec).to(device).eval()
    if isinstance(spec, str) and spec.startswith("python:"):
        from handlab.models import from_factory

        return _with_card(from_factory(spec.removeprefix("python:")), spec).to(device).eval()
    from handlab.zoo import load_model

    return load_model(spec, device=device, config=config)


def _with_card(model: nn.Module, spec: str) -> nn.Module:
    # A foreign model has no training card; the reports show its spec where a card's model is.
    if not isinstance(getattr(model, "card", None), dict):
        model.card = {"model": spec, "source": spec}
    return model


def resolve_data(spec: str, split: str, *, size: int = 128, **options: Any) -> Dataset:
    """``"synth"``, ``"synth-dr"``, ``"synth-clips[:T=N]"``, ``"NAME:ROOT"`` or ``"coco:PATH"``
    -> the map-style dataset of ``split`` with ``size`` px crops (see
    :func:`handlab.data.open_data`; ``options`` go to a real loader, e.g. ``crop="upright"``)."""
    from handlab.data import open_data  # lazy, as above

    return open_data(spec, split, size=size, **options)


def zoo_rgb_models() -> list[str]:
    """``zoo:NAME`` of every shipped model that reads one RGB image and predicts 2D keypoints
    (its card has 2D test metrics); clip, depth, keypoint and xyz models are left out."""
    import json

    from handlab import zoo
    from handlab.models import create

    names = []
    for name in zoo.list_models():
        card = json.loads((zoo.folder() / f"{name}.json").read_text())
        kind = getattr(create(card["model"], **card["model_config"]), "input_kind", "rgb")
        if kind == "rgb" and "epe_px" in card.get("metrics", {}):
            names.append(f"zoo:{name}")
    return names
