"""Re-evaluating a shipped model on the test split its card names (what the zoo test checks).

Taught in chapter 02 (``notebooks/02_compare_2d.py``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["reevaluate"]


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
