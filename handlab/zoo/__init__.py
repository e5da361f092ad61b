"""The model zoo: handlab's own trained weights (safetensors, fp16) with a JSON card each.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02.

Each shipped model is ``weights/NAME.safetensors`` + ``weights/NAME.json``, made by
``handlab train`` and copied here by :func:`save_to_zoo`. The card records the model name and
config (so :func:`load` rebuilds it with ``handlab.models.create``), the exact command, seed,
steps, wall time, machine, and the metrics on the fixed synthetic test split. Nothing here
touches the network.

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
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from handlab.models import create

__all__ = [
    "ZOO_DIR",
    "list",
    "load",
    "load_model",
    "load_run",
    "reevaluate",
    "results_table",
    "save_to_zoo",
]

ZOO_DIR = Path(__file__).parent / "weights"


def list(zoo_dir: Path | None = None) -> builtins.list[str]:
    """Names of the shipped models (those with both weights and a card), sorted."""
    d = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.safetensors") if p.with_suffix(".json").is_file())


def load(
    name: str, *, device: str | torch.device = "cpu", zoo_dir: Path | None = None
) -> nn.Module:
    """The shipped model ``name`` in eval mode (float32), its card dict as ``model.card``."""
    d = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    names = list(d)
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
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(weights).items()}
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
    run_dir: str | Path, name: str, *, fp16: bool = True, zoo_dir: Path | None = None
) -> Path:
    """Copy a finished run's weights (as float16 if ``fp16``) and card into the zoo as ``name``.

    Returns the weights path. The card gains ``name`` and ``storage`` (``"float16"``/
    ``"float32"``); its metrics stay those measured on the float32 run (the zoo test
    re-evaluates the stored weights against them within 2 %).
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name: expected letters, digits, '-' or '_', got {name!r}")
    src = Path(run_dir)
    model = load_run(src)  # validates the folder and that the weights fit
    d = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in _unique_state(model).items()}
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, d / f"{name}.safetensors")
    card = dict(model.card, name=name, storage="float16" if fp16 else "float32")
    (d / f"{name}.json").write_text(json.dumps(card, indent=1))
    curves = src / "metrics.jsonl"  # the training curves chapter 01 draws
    if curves.is_file():
        lines = [json.loads(ln) for ln in curves.read_text().splitlines()]
        (d / f"{name}.curves.json").write_text(json.dumps(lines))
    return d / f"{name}.safetensors"


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


def results_table(zoo_dir: Path | None = None) -> str:
    """A markdown table of every shipped model's card: config, training and test metrics.

    Generated from the cards only (the README's results table is this output), so a number in
    the README is always the number measured when the model was trained and re-checked by the
    zoo test. Metrics a model does not have (3D for a 2D model) are left blank.

    >>> results_table(Path("/nonexistent")).splitlines()[0].startswith("| model")
    True
    """
    d = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    head = "| model | family | config | steps | train time | test n | "
    head += " | ".join(h for h, _, _ in _TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (6 + len(_TABLE_COLUMNS))]
    for name in list(d):
        card = json.loads((d / f"{name}.json").read_text())
        metrics = card.get("metrics", {})
        config = ", ".join(f"{k}={v}" for k, v in sorted(card.get("model_config", {}).items()))
        minutes = card.get("wall_time_s", 0.0) / 60
        cells = [
            f"`{name}`",
            card["model"],
            config or "defaults",
            str(card.get("steps", "")),
            f"{minutes:.0f} min",
            str(metrics.get("n", "")),
        ]
        cells += [fmt.format(metrics[k]) if k in metrics else "" for _, k, fmt in _TABLE_COLUMNS]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _main(args: Any) -> int:
    if args.action == "list":
        print("\n".join(list()))
    else:
        print(results_table())
    return 0


def register(subparsers: Any) -> None:
    """Add ``handlab zoo list|table`` to the command line."""
    p = subparsers.add_parser("zoo", help="list the shipped models or print their results table")
    p.add_argument("action", choices=("list", "table"))
    p.set_defaults(func=_main)
