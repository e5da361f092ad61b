"""The model zoo: handlab's own trained weights (safetensors, int8/fp16) with a JSON card each.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02.

Each shipped model is ``weights/NAME.safetensors`` + ``weights/NAME.json``, made by
``handlab train`` and copied here by :func:`save_to_zoo`. The card records the model name and
config (so :func:`load` rebuilds it with ``handlab.models.create``), the exact command, seed,
steps, wall time, machine, and the metrics on the fixed synthetic test split. Nothing here
touches the network. ``HANDLAB_ZOO_DIR`` points every function at another folder (a user's own
zoo, or stand-ins while developing a chapter).

Storage: ``"int8"`` keeps every conv/linear weight as int8 with one float16 scale per output
channel (symmetric, ``scale = max|w| / 127``) and everything else as float16; it halves fp16's
size, which is what lets ResNet-50 and ResNet-34 ship inside the 80 MB budget. Loading
dequantises to float32. Written by hand: torch's quantisation APIs quantise activations too and
are not stored by safetensors; this is weight-only storage, nothing more.

>>> isinstance(list(), builtins.list)
True
>>> load("no_such_model")
Traceback (most recent call last):
...
ValueError: name: expected one of the shipped models [...], got 'no_such_model'
"""

from __future__ import annotations

import builtins
import json
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from handlab._checks import resolve_device
from handlab._io import load_safetensors
from handlab.errors import InputError
from handlab.models import create
from handlab.zoo._large import INSTALL_HINT, weights_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ZOO_DIR",
    "curves",
    "list",
    "load",
    "load_model",
    "load_run",
    "reevaluate",
    "results_table",
    "save_to_zoo",
    "trained_on",
]

ZOO_DIR = Path(__file__).parent / "weights"
STORAGES = ("int8", "float16", "float32")
_SCALE = ".__int8_scale"  # suffix of the per-channel scale stored beside an int8 weight


def _dir(zoo_dir: str | Path | None) -> Path:
    if zoo_dir is not None:
        return Path(zoo_dir)
    env = os.environ.get("HANDLAB_ZOO_DIR")
    return Path(env) if env else ZOO_DIR


def quantize_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weight-only int8 storage: each float tensor of >= 2 dims and >= 1024 values becomes int8
    plus a float16 scale per output channel (``NAME`` + ``.__int8_scale``); other floats fp16.

    >>> w = torch.randn(8, 16, 3, 3)
    >>> q = quantize_int8({"w": w})
    >>> q["w"].dtype, q["w.__int8_scale"].shape
    (torch.int8, torch.Size([8]))
    >>> bool((dequantize(q)["w"] - w).abs().max() <= w.abs().max() / 127)
    True
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if v.is_floating_point() and v.dim() >= 2 and v.numel() >= 1024:
            flat = v.detach().float().reshape(v.shape[0], -1)
            scale = (flat.abs().amax(dim=1) / 127).clamp_min(1e-12)
            scale = scale.half().float().clamp_min(6e-8)  # the scale as stored
            q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[k] = q.reshape(v.shape).contiguous()
            out[k + _SCALE] = scale.half()
        else:
            out[k] = v.half() if v.is_floating_point() else v
    return out


def dequantize(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`quantize_int8` (float32 out; also accepts fp16/fp32 states)."""
    out = {}
    for k, v in state.items():
        if k.endswith(_SCALE):
            continue
        scale = state.get(k + _SCALE)
        if scale is not None:
            shape = (-1,) + (1,) * (v.dim() - 1)
            out[k] = v.float() * scale.float().reshape(shape)
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out


def list(zoo_dir: Path | None = None) -> builtins.list[str]:
    """Names of the shipped models (those with both weights and a card), sorted."""
    d = _dir(zoo_dir)
    if not d.is_dir():
        return []
    cards = (p for p in d.glob("*.json") if not p.name.endswith(".curves.json"))
    return sorted(p.stem for p in cards if weights_path(d, p.stem).is_file())


def load(
    name: str, *, device: str | torch.device = "cpu", zoo_dir: Path | None = None
) -> nn.Module:
    """The shipped model ``name`` in eval mode (float32), its card dict as ``model.card``."""
    d = _dir(zoo_dir)
    names = list(d)
    if name not in names and (d / f"{name}.json").is_file():
        raise InputError(f"zoo:{name}: {INSTALL_HINT}")
    if name not in names:
        raise ValueError(f"name: expected one of the shipped models {names}, got {name!r}")
    return _build(weights_path(d, name), d / f"{name}.json", device)


def curves(name: str, *, zoo_dir: Path | None = None) -> pd.DataFrame:
    """The training curves of shipped model ``name`` as a ``pandas.DataFrame``, one row per
    validation: ``step``, ``lr``, ``train_loss``, ``train_epe`` (px) and the validation metrics
    prefixed ``val_`` (``val_epe_px``, ``val_pck@10px``, ``val_auc_0-30px``, ...).

    Read from ``NAME.curves.json`` beside the weights (written by :func:`save_to_zoo`).

    >>> curves("no_such_model", zoo_dir=Path("/nonexistent"))
    Traceback (most recent call last):
    ...
    ValueError: name: expected one of the shipped models [], got 'no_such_model'
    """
    import pandas as pd  # imported late: loading a model does not need pandas

    d = _dir(zoo_dir)
    names = list(d)
    if name not in names:
        raise ValueError(f"name: expected one of the shipped models {names}, got {name!r}")
    path = d / f"{name}.curves.json"
    if not path.is_file():
        raise ValueError(f"{path}: missing file (training curves of {name!r})")
    lines = json.loads(path.read_text())
    if not lines:
        raise ValueError(f"{path}: no validation lines (training curves of {name!r})")
    return pd.json_normalize(lines, sep="_")


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
    model.card = card
    return model.to(resolve_device(device)).eval()


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
    d = _dir(zoo_dir)
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


def reevaluate(model: nn.Module, *, batch_size: int = 32) -> dict[str, Any]:
    """Recompute ``model.card``'s test metrics: same data spec, split, size and sample limit."""
    from handlab.training.data import open_split
    from handlab.training.evaluation import evaluate

    card = getattr(model, "card", None)
    if not isinstance(card, dict) or "eval" not in card:
        raise ValueError("model: expected a model from handlab.zoo.load with a card holding 'eval'")
    ev = card["eval"]
    data = open_split(ev["data"], ev["split"], ev["size"])
    return evaluate(model, data, batch_size=batch_size, limit=ev["limit"])


# Columns of the README results table: (header, card metric key, format).
_TABLE_COLUMNS = (
    ("EPE px", "epe_px", "{:.2f}"),
    ("PCK@10px", "pck@10px", "{:.3f}"),
    ("AUC 0-30px", "auc_0-30px", "{:.3f}"),
    ("MPJPE mm", "mpjpe_mm", "{:.1f}"),
    ("PA-MPJPE mm", "pa_mpjpe_mm", "{:.1f}"),
    ("AUC 20-50mm", "auc_20-50mm", "{:.3f}"),
)


def trained_on(card: dict[str, Any]) -> list[str]:
    """The devices a card's training chain ran on (its ``machines``, else its ``machine``), first
    run first, consecutive repeats merged: "CPU", or the GPU's model ("H100" from
    "NVIDIA H100 80GB HBM3").

    >>> trained_on({"machines": [{"device": "cpu"}, {"device": "cpu"},
    ...                          {"device": "NVIDIA H100 80GB HBM3"}]})
    ['CPU', 'H100']
    """
    chain = []
    for machine in card.get("machines", [card.get("machine", {})]):
        device = str(machine.get("device", "?"))
        name = "CPU" if device == "cpu" else (device.removeprefix("NVIDIA ").split() or ["?"])[0]
        if not chain or chain[-1] != name:
            chain.append(name)
    return chain


def results_table(zoo_dir: Path | None = None) -> str:
    """A markdown table of every shipped model's card: config, training and test metrics.

    Generated from the cards only (the README's results table is this output), so a number in
    the README is always the number measured when the model was trained and re-checked by the
    zoo test. Metrics a model does not have (3D for a 2D model) are left blank.

    >>> results_table(Path("/nonexistent")).splitlines()[0].startswith("| model")
    True
    """
    d = _dir(zoo_dir)
    head = "| model | family | config | steps | train time | trained on | MB | test n | "
    head += " | ".join(h for h, _, _ in _TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (8 + len(_TABLE_COLUMNS))]
    for name in list(d):
        card = json.loads((d / f"{name}.json").read_text())
        metrics = card.get("metrics", {})
        config = ", ".join(f"{k}={v}" for k, v in sorted(card.get("model_config", {}).items()))
        minutes = card.get("total_wall_time_s", card.get("wall_time_s", 0.0)) / 60
        steps = str(card.get("steps", ""))
        if "init_card" in card:  # started from other weights: their steps + this run's
            steps = f"{card['total_steps'] - card['steps']} + {steps}"
        cells = [
            f"`{name}`",
            card["model"],
            config or "defaults",
            steps,
            f"{minutes:.0f} min",
            " + ".join(trained_on(card)),
            f"{card['size_mb']:.1f}" if "size_mb" in card else "",
            str(metrics.get("n", "")),
        ]
        cells += [fmt.format(metrics[k]) if k in metrics else "" for _, k, fmt in _TABLE_COLUMNS]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _main(args: Any) -> int:
    if args.action == "list":
        print("\n".join(list()))
    elif args.action == "table":
        print(results_table())
    else:
        if not args.run or not args.name:
            raise SystemExit("handlab zoo add: expected RUN_DIR and NAME")
        path = save_to_zoo(args.run, args.name, storage=args.storage)
        card = json.loads(path.with_suffix(".json").read_text())
        print(f"{path} ({card['size_mb']} MB, {args.storage})")
        for key in ("metrics", "storage_metrics"):  # summary numbers, not the per-joint rows
            numbers = {k: v for k, v in card.get(key, {}).items() if k != "per_joint"}
            print(f"{key}: {json.dumps(numbers)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``handlab zoo list|table|add RUN_DIR NAME`` to the command line."""
    p = subparsers.add_parser(
        "zoo", help="list the shipped models, print their results table, or add a finished run"
    )
    p.add_argument("action", choices=("list", "table", "add"))
    p.add_argument("run", nargs="?", help="add: a finished handlab train folder")
    p.add_argument("name", nargs="?", help="add: the zoo name")
    p.add_argument("--storage", choices=STORAGES, default="int8")
    p.set_defaults(func=_main)
