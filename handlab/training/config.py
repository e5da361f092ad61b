"""The training configuration: one frozen dataclass, passed whole, written into every card.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``, the training curves) and chapter 02.

>>> cfg = TrainConfig(model="simplebaseline", steps=100)
>>> cfg.batch_size, cfg.schedule
(32, 'onecycle')
>>> TrainConfig(model="simplebaseline", schedule="linear")
Traceback (most recent call last):
...
ValueError: schedule: expected one of ['constant', 'cosine', 'onecycle'], got 'linear'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from handlab._checks import check_range

__all__ = ["AugmentConfig", "TrainConfig", "lr_factor"]

SCHEDULES = ("constant", "cosine", "onecycle")


@dataclass(frozen=True)
class AugmentConfig:
    """Random affine + colour jitter, sampled per sample and per step (see ``augment``)."""

    enabled: bool = True
    rotate_deg: float = 30.0  # hands appear at any roll; +-30 keeps the box filled at 128 px
    scale: tuple[float, float] = (0.85, 1.15)  # the generator already varies hand size
    translate: float = 0.08  # fraction of the image side; keeps fingertips in frame
    brightness: float = 0.3  # factors in [1 - b, 1 + b]
    contrast: float = 0.3
    saturation: float = 0.3

    def __post_init__(self) -> None:
        check_range("rotate_deg", self.rotate_deg, 0.0, 180.0)
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ValueError(f"scale: expected 0 < lo <= hi, got {self.scale}")
        check_range("translate", self.translate, 0.0, 0.5)
        for name in ("brightness", "contrast", "saturation"):
            check_range(name, getattr(self, name), 0.0, 1.0)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; two runs with equal configs give equal weights.

    ``data`` is ``"synth"`` or ``"NAME:ROOT"`` (see ``handlab.data.open_data``). ``steps`` counts
    optimiser steps of ``batch_size`` samples (the global batch: under DDP each of the ``W``
    processes takes ``batch_size / W``).
    """

    model: str
    model_config: dict[str, Any] = field(default_factory=dict)
    data: str = "synth"
    splits: tuple[str, str, str] = ("train", "val", "test")  # train, validation, final test
    size: int = 128  # input side in px; the synthetic renderer draws at 128 directly
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3  # peak lr; Adam at 1e-3 is the usual SimpleBaseline setting
    schedule: str = "onecycle"  # warmup then cosine decay; lets short CPU runs use a higher lr
    warmup: float = 0.1  # fraction of steps spent warming up (cosine/onecycle)
    weight_decay: float = 1e-4  # AdamW, decoupled
    grad_clip: float | None = 5.0  # global norm; guards the first steps of heatmap losses
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_every: int = 100  # steps between validations (one metrics.jsonl line each)
    val_limit: int = 256  # validation samples (the split's first ones, fixed)
    test_limit: int | None = 512  # final test samples recorded in the card (None: whole split)
    ckpt_every: int = 100  # steps between checkpoints
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA and on CPUs with native bf16 (loss in fp32)
    num_workers: int = 0  # kept for the record: batches are built in-process by step index
    # Starting weights (fine-tuning): "zoo:NAME" or a run folder whose weights fit ``model``
    # key for key (e.g. integral regression from a SimpleBaseline); None: random initialisation.
    init: str | None = None
    # With ``init``: parameters only one side has start fresh (the model's) or are dropped (the
    # source's), e.g. a new head or a left-out module. False: every parameter must match.
    init_partial: bool = False
    # Starting trunk only: the ``backbone.*`` weights of "zoo:NAME" or a run folder (e.g. the
    # flagship SimpleBaseline's ResNet-18 for HandOccNet); the rest starts random. None: random.
    init_backbone: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise TypeError(f"model: expected a registered model name, got {self.model!r}")
        if not isinstance(self.model_config, dict):
            raise TypeError(
                f"model_config: expected a dict, got {type(self.model_config).__name__}"
            )
        if not isinstance(self.data, str):
            raise TypeError(
                f"data: expected 'synth' or 'NAME:ROOT', got {type(self.data).__name__}"
            )
        if len(self.splits) != 3 or not all(isinstance(s, str) for s in self.splits):
            raise ValueError(f"splits: expected three split names, got {self.splits!r}")
        object.__setattr__(self, "splits", tuple(self.splits))
        if isinstance(self.augment, dict):  # cards store the augment config as a dict
            object.__setattr__(self, "augment", _augment_from_dict(self.augment))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {self.schedule!r}")
        for name in ("steps", "batch_size", "val_every", "ckpt_every", "val_limit"):
            check_range(name, getattr(self, name), lo=1)
        check_range("size", self.size, lo=32)
        if self.init is not None and (not isinstance(self.init, str) or not self.init):
            raise TypeError(f"init: expected 'zoo:NAME', a run folder or None, got {self.init!r}")
        if self.init_partial and self.init is None:
            raise ValueError("init_partial: expected it only with init (weights to start from)")
        ib = self.init_backbone
        if ib is not None and (not isinstance(ib, str) or not ib):
            raise TypeError(f"init_backbone: expected 'zoo:NAME', a run folder or None, got {ib!r}")
        check_range("lr", self.lr, lo=0.0)
        check_range("warmup", self.warmup, 0.0, 1.0)
        check_range("weight_decay", self.weight_decay, lo=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``TrainConfig.from_dict`` inverts it)."""
        d = dataclasses.asdict(self)
        d["augment"]["scale"] = list(d["augment"]["scale"])
        d["splits"] = list(d["splits"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from ``to_dict`` output (e.g. a card's ``train_config``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"config: unknown fields {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**d)


def _augment_from_dict(d: dict[str, Any]) -> AugmentConfig:
    d = dict(d)
    if "scale" in d:
        d["scale"] = tuple(d["scale"])
    return AugmentConfig(**d)


def lr_factor(step: int, steps: int, schedule: str, warmup: float) -> float:
    """Multiplier of the peak lr at optimiser step ``step`` (0-based) of ``steps``.

    ``cosine``: linear warmup from 0 over ``warmup * steps`` steps, then cosine to 0.
    ``onecycle`` (Smith & Topin 2019), the formula of ``torch.optim.lr_scheduler.OneCycleLR``:
    cosine from 1/25 of the peak up to the peak at step ``warmup * steps - 1``, then cosine down
    to 1/1e4 of the start value at step ``steps - 1`` (written out because torch's class fails
    for runs shorter than ``1 / warmup`` steps).

    >>> [round(lr_factor(s, 10, "cosine", 0.2), 3) for s in (0, 1, 2, 6, 10)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    >>> lr_factor(0, 10, "onecycle", 0.1)  # a warm-up of one step starts at the peak
    1.0
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        warm = round(warmup * steps)
        if step < warm:
            return step / warm
        t = min(1.0, (step - warm) / max(1, steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))
    start, end = 1 / 25, 1 / 25 / 1e4
    peak_at, last = warmup * steps - 1, steps - 1
    # torch divides by ``peak_at`` and fails when it is 0 (e.g. 10 steps at warmup 0.1); a
    # warm-up shorter than one step is no warm-up: such a run starts at the peak.
    if peak_at > 0 and step <= peak_at:
        return _cos_anneal(start, 1.0, step / peak_at)
    peak_at = max(peak_at, 0.0)
    return _cos_anneal(1.0, end, min(1.0, (step - peak_at) / max(1.0, last - peak_at)))


def _cos_anneal(a: float, b: float, t: float) -> float:
    return b + (a - b) / 2 * (math.cos(math.pi * t) + 1)
