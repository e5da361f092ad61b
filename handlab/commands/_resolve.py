"""Names on the command line -> objects: the one place where specs are resolved.

``--model`` takes ``zoo:NAME`` (a shipped model) or a ``handlab train`` run folder; ``--data``
takes ``synth``, ``synth-clips[:T=N]`` or ``NAME:ROOT`` (a real dataset in its published
layout). The library below (training, attribution) takes the resolved ``nn.Module`` and dataset.

>>> resolve_model(3)
Traceback (most recent call last):
...
TypeError: spec: expected 'zoo:NAME' or a run folder, got int
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import Dataset

__all__ = ["resolve_data", "resolve_model"]


def resolve_model(spec: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """``"zoo:NAME"`` or a run folder -> the model in eval mode, its card as ``model.card``."""
    if not isinstance(spec, str | Path):
        raise TypeError(f"spec: expected 'zoo:NAME' or a run folder, got {type(spec).__name__}")
    from handlab.zoo import load_model  # lazy: the parser builds without torch

    return load_model(spec, device=device)


def resolve_data(spec: str, split: str, *, size: int = 128) -> Dataset:
    """``"synth"``, ``"synth-clips[:T=N]"`` or ``"NAME:ROOT"`` -> the map-style dataset of
    ``split`` with ``size`` px crops (see :func:`handlab.data.open_data`)."""
    from handlab.data import open_data  # lazy, as above

    return open_data(spec, split, size=size)
