"""Batches by step index: which samples step ``s`` trains on is a pure function of (seed, s).

Taught in chapter 01 (``notebooks/01_simplebaseline.py``); clip batches in chapter 07.

Making the data position a function of the step (instead of an iterator's hidden state) is what
lets a resumed run see exactly the batches an uninterrupted run would have seen, and lets each
DDP process take its own slice of the same global batch without a sampler.

>>> step_indices(0, 10, batch_size=4, seed=0)
[5, 6, 1, 2]
>>> sorted(step_indices(0, 4, batch_size=4, seed=0))  # one step = one epoch: every sample once
[0, 1, 2, 3]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from handlab.models.base import INPUT_KINDS, contract

__all__ = [
    "INPUT_KEYS",
    "check_data",
    "load_batch",
    "model_inputs",
    "open_split",
    "refuse_evaluation_only",
    "step_generator",
    "step_indices",
]


def open_split(spec: str, split: str, size: int) -> Any:
    """Open ``spec`` (``"synth"``, ``"synth-clips[:T=N]"`` or ``"NAME:ROOT"``) at ``split`` with
    ``size`` px crops (see :func:`handlab.data.open_data`).

    Returns a dataset: ``__len__`` and ``__getitem__`` giving sample dicts.
    """
    if not isinstance(spec, str):
        raise TypeError(f"data: expected 'synth' or 'NAME:ROOT', got {type(spec).__name__}")
    from handlab.data import open_data  # imported late: training does not need every loader

    return open_data(spec, split, size=size)


def refuse_evaluation_only(spec: str) -> None:
    """Raise ``ValueError`` when the data ``spec`` names an evaluation-only set (a folder marked
    by :data:`handlab.data.coco.EVALUATION_ONLY`, such as the real development hands): ``fit``
    calls this first, so nothing real of that set is ever trained on, validated or tested
    during training.

    >>> refuse_evaluation_only("coco:real-hands")
    Traceback (most recent call last):
    ...
    ValueError: data: 'coco:real-hands' is marked EVALUATION_ONLY (...); train on other data
    """
    if not isinstance(spec, str):
        raise TypeError(f"data: expected 'synth' or 'NAME:ROOT', got {type(spec).__name__}")
    from handlab.data.coco import REAL_HANDS, is_evaluation_only  # late, as in open_split

    _, sep, root = spec.partition(":")
    if not sep or not root:
        return
    path = REAL_HANDS if root == "real-hands" and not Path(root).exists() else Path(root)
    if is_evaluation_only(path):
        raise ValueError(f"data: {spec!r} is marked EVALUATION_ONLY ({path}); train on other data")


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """A generator seeded from (seed, step, stream): replayable randomness for one step."""
    # Distinct odd multipliers keep (seed, step, stream) triples from colliding in practice.
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + stream) % 2**63)


def step_indices(step: int, n: int, *, batch_size: int, seed: int) -> list[int]:
    """Dataset indices of the global batch at ``step``: epochs of seeded permutations of ``n``."""
    if n < 1:
        raise ValueError(f"data: expected a non-empty dataset, got {n} samples")
    out: list[int] = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n)
        perm = torch.randperm(n, generator=step_generator(seed, epoch, stream=1))
        take = min(batch_size - len(out), n - offset)
        out.extend(perm[offset : offset + take].tolist())
        pos += take
    return out


def load_batch(data: Any, indices: Sequence[int]) -> dict[str, torch.Tensor]:
    """Stack the samples at ``indices`` into a batch dict (tensor fields only; ``meta`` dropped).

    Uses the dataset's batched path ``data.batch(indices)`` when it has one (the synthetic
    generator renders a whole batch at once), else ``data[i]`` one by one.
    """
    if callable(getattr(data, "batch", None)):
        batch = data.batch(list(indices))
        return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    samples = [data[i] for i in indices]
    keys = [k for k, v in samples[0].items() if isinstance(v, torch.Tensor)]
    return {k: torch.stack([torch.as_tensor(s[k]) for s in samples]) for k in keys}


# model.input_kind -> the batch field its forward reads: the model contract's table
INPUT_KEYS = INPUT_KINDS


def check_data(model: Any, data: Any, spec: str) -> None:
    """Fail before training if ``data`` (opened from ``spec``) cannot feed ``model``.

    A clip model (``input_kind == "clip"``) needs clip data (``synth-clips``) with as many
    frames per clip as its ``clip_length`` (:mod:`handlab.models.base`); a frame model cannot
    read clips. The error names the option that fixes it.
    """
    declared = contract(model)
    kind = declared.input_kind
    data_t = getattr(data, "T", None)  # frames per clip; None for single-frame data
    name = type(model).__name__
    if kind == "clip" and data_t is None:
        raise ValueError(
            f"data: {name} reads clips (input_kind 'clip'), but {spec!r} gives single frames; "
            "use --data synth-clips"
        )
    if kind != "clip" and data_t is not None:
        raise ValueError(
            f"data: {spec!r} gives clips of {data_t} frames, but {name} reads single inputs "
            f"(input_kind {kind!r}); use --data synth"
        )
    model_t = declared.clip_length
    if kind == "clip" and model_t is not None and model_t != data_t:
        raise ValueError(
            f"data: {spec!r} gives clips of T={data_t} frames, but {name} expects T={model_t}; "
            f"use --data synth-clips:T={model_t} or --model-config T={data_t}"
        )


def model_inputs(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch tensor ``model`` reads, chosen by its contract's ``input_kind`` (RGB: ``image``);
    a ``masked_input`` model gets 0 outside the batch's ``mask``."""
    declared = contract(model)
    key = declared.batch_key
    if key not in batch:
        raise ValueError(f"batch: model needs {key!r}, got keys {sorted(batch)}")
    x = batch[key]
    # depth models that read a segmented hand (A2J, V2V: ``masked_input``) get 0 outside the mask
    if declared.masked_input and "mask" in batch:
        x = x * (batch["mask"].reshape(x.shape) > 0).to(x.dtype)
    return x
