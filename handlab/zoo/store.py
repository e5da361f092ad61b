"""The zoo's store: shipped weights and cards on disk, loaded and saved.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02.

Each shipped model is ``weights/NAME.safetensors`` + ``weights/NAME.json``, made by
``handlab train`` and copied here by :func:`save_to_zoo`. The card records the model name and
config (so :func:`load` rebuilds it with ``handlab.models.create``), the exact command, seed,
steps, wall time, machine, and the metrics on the fixed synthetic test split. Nothing here
touches the network. ``HANDLAB_ZOO_DIR`` points every function at another folder (a user's own
zoo, or stand-ins while developing a chapter).

>>> load("no_such_model")
Traceback (most recent call last):
...
ValueError: name: expected one of the shipped models [...], got 'no_such_model'
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from handlab.models import create
from handlab.zoo.evaluation import reevaluate
from handlab.zoo.quantize import dequantize, quantize_int8

__all__ = [
    "STORAGES",
    "ZOO_DIR",
    "folder",
    "list_models",
    "load",
    "load_model",
    "load_run",
    "save_to_zoo",
]

ZOO_DIR = Path(__file__).parent / "weights"
STORAGES = ("int8", "float16", "float32")


def folder(zoo_dir: str | Path | None = None) -> Path:
    """The zoo folder: ``zoo_dir`` if given, else ``$HANDLAB_ZOO_DIR``, else :data:`ZOO_DIR`."""
    if zoo_dir is not None:
        return Path(zoo_dir)
    env = os.environ.get("HANDLAB_ZOO_DIR")
    return Path(env) if env else ZOO_DIR


def list_models(zoo_dir: Path | None = None) -> list[str]:
    """Names of the shipped models (those with both weights and a card), sorted.

    ``handlab.zoo.list`` is the same function (the short name, kept for notebooks).

    >>> list_models(Path("/nonexistent"))
    []
    """
    d = folder(zoo_dir)
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.safetensors") if p.with_suffix(".json").is_file())


def load(
    name: str, *, device: str | torch.device = "cpu", zoo_dir: Path | None = None
) -> nn.Module:
    """The shipped model ``name`` in eval mode (float32), its card dict as ``model.card``."""
    d = folder(zoo_dir)
    names = list_models(d)
    if name not in names:
        raise ValueError(f"name: expected one of the shipped models {names}, got {name!r}")
    return _build(d / f"{name}.safetensors", d / f"{name}.json", device)


def load_run(run_dir: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """The final model of a ``handlab train`` output folder, in eval mode with ``model.card``."""
    d = Path(run_dir)
    weights, card = d / "model.safetensors", d / "card.json"
    for p, what in ((weights, "trained weights"), (card, "its card")):
        if not p.is_file():
            raise ValueError(f"{p}: missing file ({what}); is {d} a finished handlab train run?")
    return _build(weights, card, device)


def load_model(spec: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """``"zoo:NAME"`` (a shipped model) or a run folder, in eval mode with ``model.card``.

    >>> load_model("zoo:no_such_model")
    Traceback (most recent call last):
    ...
    ValueError: name: expected one of the shipped models [...], got 'no_such_model'
    """
    if not isinstance(spec, str | Path):
        raise TypeError(f"spec: expected 'zoo:NAME' or a run folder, got {type(spec).__name__}")
    if isinstance(spec, str) and spec.startswith("zoo:"):
        return load(spec[4:], device=device)
    return load_run(spec, device=device)


def _build(weights: Path, card_path: Path, device: str | torch.device) -> nn.Module:
    card = json.loads(card_path.read_text())
    for key in ("model", "model_config"):
        if key not in card:
            raise ValueError(f"{card_path}: card lacks {key!r}; expected a handlab train card")
    model = create(card["model"], **card["model_config"])
    state = dequantize(load_file(weights))
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{weights}: weights do not fit {card['model']}: {err}") from err
    # safetensors drops aliases of shared tensors: a missing key is fine only if it aliases one.
    own = model.state_dict()
    bad = [k for k in missing if not any(own[k].data_ptr() == own[j].data_ptr() for j in state)]
    if bad or unexpected:
        raise ValueError(
            f"{weights}: weights do not fit {card['model']} (missing {bad}, "
            f"unexpected {unexpected})"
        )
    model.card = card
    return model.to(device).eval()


def save_to_zoo(
    run_dir: str | Path,
    name: str,
    *,
    storage: str = "int8",
    zoo_dir: Path | None = None,
) -> Path:
    """Copy a finished run's weights (stored as ``storage``, one of :data:`STORAGES`) and card
    into the zoo as ``name``.

    Returns the weights path. The card gains ``name``, ``storage``, ``size_mb`` and
    ``storage_metrics`` (the test metrics recomputed from the stored weights, which is what
    ships); ``metrics`` stay those measured on the float32 run. The zoo test re-evaluates the
    shipped weights against ``metrics`` within 2 %.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage: expected one of {STORAGES}, got {storage!r}")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name: expected letters, digits, '-' or '_', got {name!r}")
    src = Path(run_dir)
    model = load_run(src)  # validates the folder and that the weights fit
    d = folder(zoo_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in _unique_state(model).items()}
    if storage == "int8":
        state = quantize_int8(state)
    elif storage == "float16":
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    weights = d / f"{name}.safetensors"
    tmp = weights.with_suffix(".safetensors.tmp")
    save_file(state, tmp)
    stored = create(model.card["model"], **model.card["model_config"])
    stored.load_state_dict(dequantize(load_file(tmp)), strict=False)
    stored.card = model.card
    card = dict(
        model.card,
        name=name,
        storage=storage,
        size_mb=round(tmp.stat().st_size / 2**20, 2),
        storage_metrics=reevaluate(stored.eval()) if "eval" in model.card else {},
    )
    card.update(_lineage(model.card, d))
    tmp.replace(weights)
    (d / f"{name}.json").write_text(json.dumps(card, indent=1))
    curves = src / "metrics.jsonl"  # the training curves chapter 01 draws
    if curves.is_file():
        lines = [json.loads(ln) for ln in curves.read_text().splitlines()]
        (d / f"{name}.curves.json").write_text(json.dumps(lines))
    return d / f"{name}.safetensors"


def _lineage(card: dict[str, Any], zoo_dir: Path) -> dict[str, Any]:
    """For a run started from other weights (``train_config.init``): ``recipe``, the commands
    that retrain it from scratch in order (the last one's ``--init`` pointed at the previous
    command's ``--out``, since ``zoo:NAME`` may since have been replaced), ``init_card`` (the
    starting weights' card, without its per-joint rows) and ``total_steps`` /
    ``total_wall_time_s`` over the chain, and ``machines`` (each run's ``machine``, first run
    first). ``{}`` for a run from random weights."""
    init = card.get("train_config", {}).get("init")
    if not init:
        return {}
    src = zoo_dir / f"{init[4:]}.json" if init.startswith("zoo:") else Path(init) / "card.json"
    if not src.is_file():
        raise ValueError(f"init: the starting weights' card {src} is missing; expected it to exist")
    parent = json.loads(src.read_text())
    words = shlex.split(parent.get("command", ""))
    out = words[words.index("--out") + 1] if "--out" in words[:-1] else None
    own = shlex.split(card.get("command", ""))
    if out and "--init" in own[:-1]:
        own[own.index("--init") + 1] = out
    metrics = {k: v for k, v in parent.get("metrics", {}).items() if k != "per_joint"}
    keep = ("name", "model", "model_config", "command", "steps", "wall_time_s", "recipe")
    return {
        "recipe": [*parent.get("recipe", [parent.get("command", "")]), shlex.join(own)],
        "init_card": {**{k: parent[k] for k in keep if k in parent}, "metrics": metrics},
        "total_steps": parent.get("total_steps", parent.get("steps", 0)) + card.get("steps", 0),
        "total_wall_time_s": parent.get("total_wall_time_s", parent.get("wall_time_s", 0.0))
        + card.get("wall_time_s", 0.0),
        # each run's machine, first run first (a chain may mix a CPU and a lent GPU)
        "machines": [*parent.get("machines", [parent.get("machine", {})]), card.get("machine", {})],
    }


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    seen: set[int] = set()
    out = {}
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen or v.numel() == 0:
            seen.add(v.data_ptr())
            out[k] = v
    return out
