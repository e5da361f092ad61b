"""Reading a randomisation test: joint subsets, index trends, and seed 000's claim checked.

Taught in chapters 10 (``notebooks/10_sanity_checks.py``) and 11 (``notebooks/11_compare_zoo.py``).

- :class:`~handlab.attribution.targets.JointSubset` (re-exported here) restricts a pose model's
  *decode* to some joints, so PoseIG explains only those (one backward pass each); the config's
  ``joints`` does the same without a wrapper.
- :class:`MapRecorder` is an ``explain`` for :func:`~handlab.attribution.randomization_test`
  that keeps every step's maps (the table holds only scores): the seed's Fig. C, maps per step.
- :class:`CaptumExplain` runs the same test on any captum method (saliency, SmoothGrad,
  occlusion, ...), and :func:`sanity_verdict` judges a run: the similarity at full randomisation
  against :data:`SANITY_CRITERION` (0.2), a check that fails when the map survives.
- :func:`randomization_trends` summarises a cascading
  :func:`~handlab.attribution.randomization_test` table: for every metric, the Spearman rank
  correlation of its value with the number of randomised units, and whether the sign agrees with
  the expectation. Seed 000 (PoseIG supplement A.4, SimpleBaseline-ResNet-50, 54 conv layers
  randomised nine at a time) reports that FI and LI fall and DI rises as layers are randomised;
  Adebayo et al. (2018) expect every similarity to the original maps to fall.

>>> table = pd.DataFrame({"step": [0, 1, 2] * 2, "randomized": [0, 1, 2] * 2,
...                       "metric": ["FI"] * 3 + ["DI"] * 3,
...                       "value": [2.0, 1.5, 1.1, 40.0, 55.0, 70.0]})
>>> randomization_trends(table)[["metric", "rho", "agrees"]].values.tolist()
[['FI', -1.0, True], ['DI', 1.0, True]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from handlab.attribution.engine import PoseIGResult, poseig
from handlab.attribution.targets import JointSubset

__all__ = [
    "EXPECTED_TRENDS",
    "SANITY_CRITERION",
    "CaptumExplain",
    "JointSubset",
    "MapRecorder",
    "describe_trends",
    "randomization_trends",
    "sanity_verdict",
]

# +1: should rise with the number of randomised units, -1: should fall. Indices: seed 000 (A.4,
# Tab. B); similarities to the original maps: Adebayo et al. 2018 (a sane map changes).
EXPECTED_TRENDS: dict[str, int] = {
    "spearman_abs": -1,
    "spearman_signed": -1,
    "ssim": -1,
    "spearman_hog": -1,
    "DI": 1,
    "FI": -1,
    "LI": -1,
}


class MapRecorder:
    """An ``explain`` that records the maps of every call (one call per randomisation step).

    ``randomization_test(..., explain=recorder)`` calls it once for the original model, then
    once per step, so ``recorder.maps[k]`` (B, J, H, W) in [0, 1] are step k's maps.

    >>> class Centre(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 1, 2) * 8}
    ...     def decode(self, outputs):
    ...         return outputs
    >>> rec = MapRecorder()
    >>> _ = rec(Centre(), torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 2), path="straight", steps=2)
    >>> len(rec.maps), tuple(rec.maps[0].shape)
    (1, (1, 1, 8, 8))
    """

    def __init__(self, explain: Callable[..., PoseIGResult] = poseig) -> None:
        self.explain = explain
        self.maps: list[torch.Tensor] = []

    def __call__(self, model: nn.Module, *args: Any, **kwargs: Any) -> PoseIGResult:
        result = self.explain(model, *args, **kwargs)
        self.maps.append(result.maps.detach().clone())
        return result


class CaptumExplain:
    """An ``explain`` for :func:`~handlab.attribution.randomization_test` from any captum method.

    ``CaptumExplain(Saliency)(model, images, targets)`` -> attributions (B, J, C, H, W): one
    :func:`~handlab.attribution.bridge.explain_joints` call (the method once per joint);
    ``attribute_kwargs`` go to ``attribute`` (``nt_samples``, ``sliding_window_shapes``, ...),
    the bridge's ``alpha``/``space``/``target`` too.

    >>> from captum.attr import Saliency
    >>> class Mean(nn.Module):
    ...     def forward(self, images):
    ...         return {"keypoints": images.mean((1, 2, 3))[:, None, None].expand(-1, 2, 2) * 10}
    ...     def decode(self, outputs):
    ...         return outputs
    >>> CaptumExplain(Saliency)(Mean(), torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 2)).shape
    torch.Size([1, 2, 3, 8, 8])
    """

    def __init__(self, explainer: Callable[[nn.Module], Any], **attribute_kwargs: Any) -> None:
        self.explainer = explainer
        self.kwargs = attribute_kwargs

    def __call__(
        self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        from handlab.attribution.bridge import explain_joints  # bridge imports the engine

        return explain_joints(self.explainer, model, images, targets, **self.kwargs).detach()


# Adebayo et al. (2018) read a map as insensitive to the model when its rank correlation with the
# original stays high; the usual reading (quantus' MPRT examples, later sanity-check studies)
# calls a method sane when the similarity at full randomisation falls below about 0.2.
SANITY_CRITERION = 0.2


def sanity_verdict(
    table: pd.DataFrame, *, metric: str = "spearman_abs", criterion: float = SANITY_CRITERION
) -> dict[str, Any]:
    """The verdict of one cascading randomisation: is the map at full randomisation unlike the
    original (``metric`` at the last step below ``criterion``)?

    Args:
        table: a cascading :func:`~handlab.attribution.randomization_test` table whose last step
            randomised every unit.
        metric: the similarity judged; criterion: the largest similarity that passes.

    Returns:
        ``{"metric", "final", "criterion", "passes", "constant_maps"}``: the similarity at the
        last step, whether it is below the criterion, and the share of constant maps there.

    >>> t = pd.DataFrame({"step": [0, 1, 0, 1], "randomized": [0, 1, 0, 1],
    ...                   "metric": ["spearman_abs"] * 2 + ["constant_maps"] * 2,
    ...                   "value": [1.0, 0.35, 0.0, 0.25]})
    >>> sanity_verdict(t)["passes"], sanity_verdict(t, criterion=0.4)["passes"]
    (False, True)
    """
    missing = {"step", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"table: expected a randomization_test table, missing {sorted(missing)}")
    last = table[table.step == table.step.max()].set_index("metric").value
    if metric not in last:
        raise ValueError(f"metric: expected one of {sorted(last.index)}, got {metric!r}")
    final = float(last[metric])
    return {
        "metric": metric,
        "final": final,
        "criterion": criterion,
        "passes": bool(final < criterion),
        "constant_maps": float(last.get("constant_maps", np.nan)),
    }


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(y)
    if ok.sum() < 3 or np.ptp(y[ok]) == 0 or np.ptp(x[ok]) == 0:
        return np.nan  # fewer than three points or a constant: no trend to rank
    return float(spearmanr(x[ok], y[ok]).statistic)


def randomization_trends(
    table: pd.DataFrame, expected: Mapping[str, int] = EXPECTED_TRENDS
) -> pd.DataFrame:
    """Does each metric move the expected way as more units are randomised (cascading order)?

    Args:
        table: one cascading :func:`~handlab.attribution.randomization_test` table (columns
            step, randomized, metric, value), step 0 the original model.
        expected: metric -> +1 (should rise) or -1 (should fall); metrics not named are skipped.

    Returns:
        one row per metric found in both: metric, expected ("rises"/"falls"), rho (Spearman of
        value against the number of randomised units; NaN with fewer than three finite steps or
        a constant value), original (value at step 0), final (at the last step), agrees
        (``sign(rho) == expected``; False where rho is NaN).
    """
    missing = {"step", "randomized", "metric", "value"} - set(table.columns)
    if missing:
        raise ValueError(f"table: expected a randomization_test table, missing {sorted(missing)}")
    if table.loc[table.step > 0, "randomized"].nunique() < 2:
        raise ValueError(
            "table: expected a cascading run (top_down or bottom_up, two or more steps); an "
            "independent run randomises one unit per step and has no trend"
        )
    rows = []
    for metric, part in table.groupby("metric", sort=False):
        if metric not in expected:
            continue
        part = part.sort_values("step")
        x = part["randomized"].to_numpy(float)
        y = part["value"].to_numpy(float)
        rho = _rho(x, y)
        rows.append(
            {
                "metric": metric,
                "expected": "rises" if expected[metric] > 0 else "falls",
                "rho": rho,
                "original": float(y[0]),
                "final": float(y[-1]),
                "agrees": bool(np.isfinite(rho) and np.sign(rho) == np.sign(expected[metric])),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "expected", "rho", "original", "final", "agrees"])


def describe_trends(trends: pd.DataFrame, title: str) -> str:
    """Markdown bullets, one per metric of a :func:`randomization_trends` table, with the verdict.

    >>> t = pd.DataFrame({"metric": ["FI"], "expected": ["falls"], "rho": [-0.8],
    ...                   "original": [2.0], "final": [1.2], "agrees": [True]})
    >>> print(describe_trends(t, "run"))
    **run**
    - FI: expected to fall; measured 2 -> 1.2 (rho = -0.80): **agrees**
    """
    lines = [f"**{title}**"]
    for row in trends.itertuples():
        word = "agrees" if row.agrees else "differs"
        rho = "undefined" if not np.isfinite(row.rho) else f"{row.rho:.2f}"
        lines.append(
            f"- {row.metric}: expected to {row.expected[:-1]}; measured {row.original:.3g} -> "
            f"{row.final:.3g} (rho = {rho}): **{word}**"
        )
    return "\n".join(lines)
