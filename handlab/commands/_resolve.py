"""Names on the command line -> objects: the one place where specs are resolved.

``--model`` takes ``zoo:NAME`` (a shipped model), a ``handlab train`` run folder, ``onnx:PATH``
(an ONNX network, :func:`handlab.models.from_onnx`) or ``python:module:function`` (a factory
returning a contract-following model, :func:`handlab.models.from_factory`); ``--data`` takes
``synth``, ``synth-clips[:T=N]`` or ``NAME:ROOT`` (a real dataset in its published layout). The
library below (training, attribution) takes the resolved ``nn.Module`` and dataset.

>>> resolve_model(3)
Traceback (most recent call last):
...
TypeError: spec: expected 'zoo:NAME', a run folder, 'onnx:PATH' or 'python:module:function', \
got int
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["MODEL_HELP", "resolve_data", "resolve_model"]

MODEL_HELP = "zoo:NAME, a handlab train run folder, onnx:PATH or python:MODULE:FUNCTION"


def resolve_model(spec: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """``"zoo:NAME"``, a run folder, ``"onnx:PATH"`` or ``"python:module:function"`` -> the model
    in eval mode on ``device`` (zoo models and runs carry their card as ``model.card``)."""
    if not isinstance(spec, str | Path):
        raise TypeError(
            "spec: expected 'zoo:NAME', a run folder, 'onnx:PATH' or 'python:module:function', "
            f"got {type(spec).__name__}"
        )
    # lazy imports: the parser builds without torch
    if isinstance(spec, str) and spec.startswith("onnx:"):
        from handlab.models import from_onnx

        return _with_card(from_onnx(spec.removeprefix("onnx:")), spec).to(device).eval()
    if isinstance(spec, str) and spec.startswith("python:"):
        from handlab.models import from_factory

        return _with_card(from_factory(spec.removeprefix("python:")), spec).to(device).eval()
    from handlab.zoo import load_model

    return load_model(spec, device=device)


def _with_card(model: nn.Module, spec: str) -> nn.Module:
    # A foreign model has no training card; the reports show its spec where a card's model is.
    if not isinstance(getattr(model, "card", None), dict):
        model.card = {"model": spec, "source": spec}
    return model


def resolve_data(spec: str, split: str, *, size: int = 128) -> Dataset:
    """``"synth"``, ``"synth-clips[:T=N]"`` or ``"NAME:ROOT"`` -> the map-style dataset of
    ``split`` with ``size`` px crops (see :func:`handlab.data.open_data`)."""
    from handlab.data import open_data  # lazy, as above

    return open_data(spec, split, size=size)
