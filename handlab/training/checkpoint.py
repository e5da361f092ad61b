"""Checkpoints written atomically, and the resume that makes an interrupted run bit-identical.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``).

Layout of ``out_dir/checkpoint/``: ``model-<step>.safetensors`` (weights, no pickle),
``train-<step>.pt`` (optimiser, scheduler and RNG states, read back with
``torch.load(weights_only=True)``) and ``latest.json`` naming both. Each file is written to a
temporary name and moved into place with ``os.replace``; ``latest.json`` is replaced last, so a
crash at any moment leaves the previous complete checkpoint in force.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.json", "{}")
>>> (d / "a.json").read_text()
'{}'
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from handlab._io import atomic_write, atomic_write_text
from handlab.errors import InputError

__all__ = ["atomic_write_text", "load_checkpoint", "save_checkpoint"]


def atomic_save_model(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Save ``model``'s weights as safetensors (shared tensors handled) atomically."""
    atomic_write(path, lambda tmp: save_model(model, tmp, metadata=metadata))


def save_checkpoint(ckpt_dir: Path, step: int, model: nn.Module, state: dict[str, Any]) -> None:
    """Write the checkpoint of ``step``: weights, ``state`` (tensors, numbers, lists, dicts)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    names = {
        "step": step,
        "model": f"model-{step:08d}.safetensors",
        "train": f"train-{step:08d}.pt",
    }
    atomic_save_model(model, ckpt_dir / names["model"])
    atomic_write(ckpt_dir / names["train"], lambda tmp: torch.save(state, tmp))
    atomic_write_text(ckpt_dir / "latest.json", json.dumps(names))
    for old in ckpt_dir.iterdir():  # older checkpoints are superseded once latest.json moved
        if old.name.startswith(("model-", "train-")) and old.name not in names.values():
            old.unlink()


def load_checkpoint(ckpt_dir: Path, model: nn.Module) -> tuple[int, dict[str, Any]] | None:
    """Load the latest checkpoint into ``model``; return ``(step, state)``, ``None`` if absent.

    Every failure is an :class:`~handlab.errors.InputError` naming the file. A ``train-*.pt``
    holding anything but tensors, numbers and containers is refused unread (``weights_only``):
    handlab never writes one, so it was made elsewhere or tampered with.
    """
    ckpt_dir = Path(ckpt_dir)
    latest = ckpt_dir / "latest.json"
    if not latest.is_file():
        return None
    fix = f"delete {ckpt_dir} or start over with --restart (resume=False)"
    try:
        names = json.loads(latest.read_text())
        weights, train = ckpt_dir / names["model"], ckpt_dir / names["train"]
        step = int(names["step"])
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{latest}: expected JSON naming the step, model and train files ({err}); {fix}"
        ) from err
    try:
        load_model(model, str(weights))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise InputError(f"{weights}: unreadable or mismatched weights ({err}); {fix}") from err
    try:
        state = torch.load(train, weights_only=True)
    except pickle.UnpicklingError as err:  # torch's text would suggest unsafe loading: not shown
        raise InputError(
            f"{train}: refused, it holds Python objects other than tensors and numbers (a "
            f"handlab checkpoint never does; it may have been tampered with); {fix}"
        ) from err
    except (OSError, EOFError, RuntimeError, ValueError) as err:
        what = type(err).__name__
        raise InputError(f"{train}: unreadable training state ({what}); {fix}") from err
    return step, state
