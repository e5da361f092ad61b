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

from handlab._checks import resolve_device
from handlab._io import load_safetensors
from handlab.errors import InputError
from handlab.models import create
from handlab.zoo._large import INSTALL_HINT, weights_path
from handlab.zoo.quantize import dequantize, quantize_int8

__all__ = [
    "RGB_MODELS",
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
# The shipped models trained here that read one RGB image and decode 2D keypoints, one or two per
# family: the set chapter 11 compares and :mod:`handlab.figures` draws from. MediaPipe's imported
# models (fixed 224 px input, weights from real photos) are compared apart, in chapter 12.
RGB_MODELS = (
    "simplebaseline_r18",
    "simplebaseline_r50",
    "regression_r34",
    "integral_r18",
    "cpm",
    "hrnet_small",
    "detnet_r18",
    "handoccnet_r18",
    "transpose_r18",
    "rle_r18",
)


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
    cards = (p for p in d.glob("*.json") if not p.name.endswith(".curves.json"))
    return sorted(p.stem for p in cards if weights_path(d, p.stem).is_file())


def load(
    name: str,
    *,
    device: str | torch.device = "cpu",
    zoo_dir: Path | None = None,
    config: dict[str, Any] | None = None,
) -> nn.Module:
    """The shipped model ``name`` in eval mode (float32), its card dict as ``model.card``.

    ``config`` replaces fields of the card's model config that change how the model reads, not
    what it learnt (SimpleBaseline's ``flip_test``, a decoder); the weights must still fit
    exactly, so a field that changes the parameters is refused. The card records it as
    ``config_override``."""
    d = folder(zoo_dir)
    names = list_models(d)
    if name not in names and (d / f"{name}.json").is_file():
        raise InputError(f"zoo:{name}: {INSTALL_HINT}")
    if name not in names:
        raise ValueError(f"name: expected one of the shipped models {names}, got {name!r}")
    return _build(weights_path(d, name), d / f"{name}.json", device, config)


def load_run(
    run_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    config: dict[str, Any] | None = None,
) -> nn.Module:
    """The final model of a ``handlab train`` output folder, in eval mode with ``model.card``
    (``config``: as for :func:`load`)."""
    d = Path(run_dir)
    weights, card = d / "model.safetensors", d / "card.json"
    for p, what in ((weights, "trained weights"), (card, "its card")):
        if not p.is_file():
            raise ValueError(f"{p}: missing file ({what}); is {d} a finished handlab train run?")
    return _build(weights, card, device, config)


def load_model(
    spec: str | Path,
    *,
    device: str | torch.device = "cpu",
    config: dict[str, Any] | None = None,
) -> nn.Module:
    """``"zoo:NAME"`` (a shipped model) or a run folder, in eval mode with ``model.card``
    (``config``: inference-time fields of the model config, as for :func:`load`).

    >>> load_model("zoo:no_such_model")
    Traceback (most recent call last):
    ...
    ValueError: name: expected one of the shipped models [...], got 'no_such_model'
    """
    if not isinstance(spec, str | Path):
        raise TypeError(f"spec: expected 'zoo:NAME' or a run folder, got {type(spec).__name__}")
    if isinstance(spec, str) and spec.startswith("zoo:"):
        return load(spec[4:], device=device, config=config)
    return load_run(spec, device=device, config=config)


def _build(
    weights: Path, card_path: Path, device: str | torch.device, config: dict | None = None
) -> nn.Module:
    card = json.loads(card_path.read_text())
    for key in ("model", "model_config"):
        if key not in card:
            raise ValueError(f"{card_path}: card lacks {key!r}; expected a handlab train card")
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config: expected a dict of model config fields, got {config!r}")
    model = create(card["model"], **{**card["model_config"], **(config or {})})
    state = dequantize(load_safetensors(weights))
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
    model.card = {**card, "config_override": dict(config)} if config else card
    return model.to(resolve_device(device)).eval()


def save_to_zoo(
    run_dir: str | Path,
    name: str,
    *,
    storage: str = "int8",
    zoo_dir: Path | None = None,
    force: bool = False,
) -> Path:
    """Copy a finished run's weights (stored as ``storage``, one of :data:`STORAGES`) and card
    into the zoo as ``name``, if the stored weights pass :mod:`handlab.zoo.guard`.

    Returns the weights path. The card gains ``name``, ``storage``, ``size_mb``,
    ``storage_metrics`` (the test metrics recomputed from the stored weights, which is what
    ships) and ``guard`` (the guard's report on the same predictions: errors, mean-pose
    baselines, ratios, spread, heatmap contrast); ``metrics`` stay those measured on the float32
    run. The zoo test re-evaluates the shipped weights against ``metrics`` within 2 % and runs
    the guard again. A run that fails the guard raises :class:`~handlab.zoo.guard.GuardError`
    and nothing is written, unless ``force`` (the card then records the failed report).
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
    try:
        metrics, report = _guarded_metrics(stored.eval(), name, force)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    card = dict(
        model.card,
        name=name,
        storage=storage,
        size_mb=round(tmp.stat().st_size / 2**20, 2),
        storage_metrics=metrics,
        guard=report,
    )
    card.update(_lineage(model.card, d))
    tmp.replace(weights)
    (d / f"{name}.json").write_text(json.dumps(card, indent=1))
    curves = src / "metrics.jsonl"  # the training curves chapter 01 draws
    if curves.is_file():
        lines = [json.loads(ln) for ln in curves.read_text().splitlines()]
        (d / f"{name}.curves.json").write_text(json.dumps(lines))
    return d / f"{name}.safetensors"


def _guarded_metrics(
    model: nn.Module, name: str, force: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The card's test metrics of ``model`` and the guard's report, from one pass over its split;
    :class:`GuardError` when it fails and not ``force``."""
    from handlab.training.data import open_split
    from handlab.training.evaluation import predict, summarize
    from handlab.zoo.guard import GuardError, check

    if "eval" not in model.card:
        raise ValueError(f"{name}: the run's card lacks 'eval'; expected a handlab train card")
    ev = model.card["eval"]
    p = predict(model, open_split(ev["data"], ev["split"], ev["size"]), limit=ev["limit"])
    report = check(model, predictions=p)
    if not report.passed and not force:
        raise GuardError(
            f"{name}: the stored weights fail the zoo guard: " + "; ".join(report.failures)
            + " (train it further, or force it in: handlab zoo add --force)"
        )  # fmt: skip
    return summarize(p), report.to_dict()


def _lineage(card: dict[str, Any], zoo_dir: Path) -> dict[str, Any]:
    """For a run started from other weights (``train_config.init``): ``recipe``, the commands
    that retrain it from scratch in order (the last one's ``--init`` pointed at the previous
    command's ``--out``, since ``zoo:NAME`` may since have been replaced), ``init_card`` (the
    starting weights' card, without its per-joint rows) and ``total_steps`` /
    ``total_wall_time_s`` over the chain, and ``machines`` (each run's ``machine``, first run
    first). For a trunk from another model (``train_config.init_backbone``): ``recipe`` (that
    model's, then this run's command with ``--init-backbone`` pointed at its ``--out``) and
    ``init_backbone_card``. ``{}`` for a run from random weights."""
    config = card.get("train_config", {})
    init, trunk = config.get("init"), config.get("init_backbone")
    if not init and not trunk:
        return {}
    parent, own = _parent(init or trunk, "--init" if init else "--init-backbone", card, zoo_dir)
    # a run folder's card has no recipe yet: rebuild it from its own starting weights
    earlier = parent.get("recipe") or _lineage(parent, zoo_dir).get("recipe")
    recipe = [*(earlier or [parent.get("command", "")]), own]
    metrics = {k: v for k, v in parent.get("metrics", {}).items() if k != "per_joint"}
    keep = ("name", "model", "model_config", "command", "steps", "wall_time_s", "recipe")
    summary = {**{k: parent[k] for k in keep if k in parent}, "metrics": metrics}
    if not init:  # only the trunk came from elsewhere: this run's totals are its own
        return {"recipe": recipe, "init_backbone_card": summary}
    return {
        "recipe": recipe,
        "init_card": summary,
        "total_steps": parent.get("total_steps", parent.get("steps", 0)) + card.get("steps", 0),
        "total_wall_time_s": parent.get("total_wall_time_s", parent.get("wall_time_s", 0.0))
        + card.get("wall_time_s", 0.0),
        # each run's machine, first run first (a chain may mix a CPU and a lent GPU)
        "machines": [*parent.get("machines", [parent.get("machine", {})]), card.get("machine", {})],
    }


def _parent(
    spec: str, option: str, card: dict[str, Any], zoo_dir: Path
) -> tuple[dict[str, Any], str]:
    """The card of the weights ``spec`` (``zoo:NAME`` or a run folder) that ``option`` named,
    and this run's command with ``option`` pointed at that card's ``--out``."""
    src = zoo_dir / f"{spec[4:]}.json" if spec.startswith("zoo:") else Path(spec) / "card.json"
    if not src.is_file():
        raise ValueError(f"{option}: the starting weights' card {src} is missing; expected it")
    parent = json.loads(src.read_text())
    words = shlex.split(parent.get("command", ""))
    out = words[words.index("--out") + 1] if "--out" in words[:-1] else None
    own = shlex.split(card.get("command", ""))
    if out and option in own[:-1]:
        own[own.index(option) + 1] = out
    return parent, shlex.join(own)


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    seen: set[int] = set()
    out = {}
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen or v.numel() == 0:
            seen.add(v.data_ptr())
            out[k] = v
    return out
