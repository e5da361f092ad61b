"""What the zoo's cards say: training curves, the devices a model was trained on, the
results table of ``docs/training.md``.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``, training curves) and chapter 02.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlab.zoo.store import folder, list_models

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["curves", "results_table", "trained_on"]


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

    d = folder(zoo_dir)
    names = list_models(d)
    if name not in names:
        raise ValueError(f"name: expected one of the shipped models {names}, got {name!r}")
    path = d / f"{name}.curves.json"
    if not path.is_file():
        raise ValueError(f"{path}: missing file (training curves of {name!r})")
    lines = json.loads(path.read_text())
    if not lines:
        raise ValueError(f"{path}: no validation lines (training curves of {name!r})")
    return pd.json_normalize(lines, sep="_")


# Columns of the results table (docs/training.md): (header, card metric key, format).
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

    Generated from the cards only (the results table in ``docs/training.md`` is this output), so
    a number there is always the number measured when the model was trained and re-checked by the
    zoo test. Metrics a model does not have (3D for a 2D model) are left blank.

    >>> results_table(Path("/nonexistent")).splitlines()[0].startswith("| model")
    True
    """
    d = folder(zoo_dir)
    head = "| model | family | config | steps | train time | trained on | MB | test n | "
    head += " | ".join(h for h, _, _ in _TABLE_COLUMNS) + " |"
    rows = [head, "|" + "---|" * (8 + len(_TABLE_COLUMNS))]
    for name in list_models(d):
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
