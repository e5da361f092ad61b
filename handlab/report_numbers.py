"""What a chapter calls inside its kernel: its key numbers, its claims and its models' cards.

Every chapter ends with :func:`save_numbers`; the report runner (:mod:`handlab.report`) reads the
file back with :func:`load_numbers` for the index. :func:`claims_table` and :func:`model_cards`
are the tables the chapters show before they draw a conclusion. Importing this module is cheap
(pandas only when a table is made), so a kernel pays nothing for the runner's machinery.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> _ = save_numbers({"epe_px": 3.5}, d, "08")
>>> load_numbers(d, "08")["numbers"]
{'epe_px': 3.5}
"""

from __future__ import annotations

import json
import math
import resource
from pathlib import Path
from typing import Any

from handlab._io import atomic_write_text

__all__ = ["claims_table", "load_numbers", "model_cards", "save_numbers"]


def claims_table(
    claims: list[tuple[str, str, str, bool]], *, columns: tuple[str, str, str] | None = None
) -> tuple[Any, int]:
    """A seed's claims next to this run: rows ``(claim, the seed's numbers, ours, holds)`` ->
    a DataFrame with a computed ``verdict`` ("agrees"/"differs") and how many agree.

    ``columns`` renames the first three columns (default: claim, seed, measured here).

    >>> table, agree = claims_table([("a < b", "1 < 2", "3 vs 4", True), ("c", "x", "y", False)])
    >>> agree, list(table["verdict"])
    (1, ['agrees', 'differs'])
    """
    import pandas as pd

    names = list(columns or ("claim", "seed", "measured here"))
    rows = [(c, s, m, "agrees" if ok else "differs") for c, s, m, ok in claims]
    return pd.DataFrame(rows, columns=[*names, "verdict"]), sum(bool(c[3]) for c in claims)


def model_cards(models: dict[str, Any]) -> Any:
    """The card of every model a chapter explains, one row each: what the reader needs before a
    conclusion is drawn from it (family, training steps, test error and on how many samples, and
    PCK@0.2 on the 32 real development hands where the card records it).

    ``models`` maps a name to a loaded model with a ``card`` dict (zoo models and run folders
    have one), or to the card itself; a model without a card gets an empty row.

    >>> class M:
    ...     card = {"model": "toy", "steps": 10, "metrics": {"epe_px": 3.5, "n": 512}}
    >>> model_cards({"toy": M()}).loc["toy", "test EPE (px)"]
    3.5
    >>> model_cards({"toy": M(), "real": {"real_hands": {"pck@0.2_plain": 0.4}}})[
    ...     "real-hands PCK@0.2"].tolist()
    [None, 0.4]
    """
    import pandas as pd

    rows = {}
    for name, model in models.items():
        card = (model if isinstance(model, dict) else getattr(model, "card", None)) or {}
        found = card.get("storage_metrics") or card.get("metrics") or {}
        rows[name] = {
            "family": card.get("model"),
            # a model started from other weights counts their steps too (the card's chain)
            "training steps": card.get("total_steps", card.get("steps")),
            "test EPE (px)": found.get("epe_px"),
            "test MPJPE (mm)": found.get("mpjpe_mm"),
            "test samples": found.get("n"),
            "trained on": (card.get("train_config") or {}).get("data"),
            # measured by handlab evaluate --data coco:real-hands --crop plain, where the card
            # records it (real_hands)
            "real-hands PCK@0.2": (card.get("real_hands") or {}).get("pck@0.2_plain"),
        }
    return pd.DataFrame(rows).T.dropna(axis=1, how="all")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers: expected finite values, got {value}")
    return value


def save_numbers(numbers: dict[str, Any], out_dir: str | Path, chapter: str) -> Path:
    """Write a chapter's key numbers to ``out_dir/NN.json`` (called at the end of each chapter).

    Adds ``cpu_seconds`` (the kernel's user + system CPU time; a forked child starts from zero,
    unlike its peak memory, which the runner measures itself: :mod:`handlab._kernel`), and
    refuses NaN/inf, so a chapter that computed nothing real cannot pass its check.
    """
    payload = {"chapter": chapter, "numbers": _jsonable(numbers)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time of the kernel: unlike wall time it barely moves when the machine is busy
    payload["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    path = Path(out_dir) / f"{chapter}.json"
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def load_numbers(out_dir: str | Path, chapter: str) -> dict[str, Any] | None:
    path = Path(out_dir) / f"{chapter}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
