"""PoseIG's Table C (seed 000): the foreground index per joint group across six kinds of pose
model, the claims it makes, and the same claims checked on a measured table.

Taught in chapters 09 (``notebooks/09_indices.py``) and 11 (``notebooks/11_compare_zoo.py``).

Seed 000 restates Table C of the PoseIG supplement (He et al., CVPR 2023): FI of body joints
grouped trunk / branch / leaf for six models, SimpleBaseline ResNet-50 and ResNet-101,
HRNet-W32, TransPose, Integral and RLE. The table reports FI only (no DI or LI). Each claim
below is a function of an FI table (rows: joint groups from the root of the kinematic chain
outwards; columns: the six kinds), so one piece of code checks it on the seed's numbers, where
it must hold (that is what makes it the seed's claim, and a test keeps it so), and on a measured
hand table (wrist, MCP, PIP, DIP, TIP), where it may fail.

>>> verdicts = check_claims(SEED_TABLE_C, SEED_DEPTHS)
>>> bool(verdicts.holds.all())
True
>>> len(verdicts) == len(CLAIMS)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

__all__ = [
    "CLAIMS",
    "COORDINATE_KINDS",
    "HEATMAP_KINDS",
    "KINDS",
    "SEED_DEPTHS",
    "SEED_TABLE_C",
    "TABLE_C_ZOO_MODELS",
    "Claim",
    "Outcome",
    "check_claims",
    "kind_table",
]

KINDS = ("ResNet-50", "ResNet-101", "HRNet-W32", "TransPose", "Integral", "RLE")
# heatmap outputs (SimpleBaseline, HRNet, TransPose) against models trained on coordinates
# (Integral: soft-argmax of a heatmap; RLE: direct regression with a flow likelihood)
HEATMAP_KINDS = ("ResNet-50", "ResNet-101", "HRNet-W32", "TransPose")
COORDINATE_KINDS = ("Integral", "RLE")
# the ResNet depth behind each ResNet kind in the seed (a measured table passes its own)
SEED_DEPTHS: dict[str, int] = {"ResNet-50": 50, "ResNet-101": 101}
# The zoo's model for each kind, as chapters 09 and 11 compare them: no ResNet-101 ships, so the
# ResNet-18 flagship stands in for it (a second ResNet depth), and hrnet_small for HRNet-W32.
TABLE_C_ZOO_MODELS: dict[str, str] = {
    "ResNet-50": "simplebaseline_r50",
    "ResNet-101": "simplebaseline_r18",
    "HRNet-W32": "hrnet_small",
    "TransPose": "transpose_r18",
    "Integral": "integral_r18",
    "RLE": "rle_r18",
}

# seed 000, Table C (from the PoseIG supplement): FI of body joints, rows trunk -> leaf
SEED_TABLE_C = pd.DataFrame(
    {
        "ResNet-50": [1.961, 1.986, 2.028],
        "ResNet-101": [1.906, 1.949, 1.999],
        "HRNet-W32": [1.849, 1.926, 1.978],
        "TransPose": [1.863, 1.907, 1.990],
        "Integral": [1.865, 1.907, 1.946],
        "RLE": [1.754, 1.795, 1.853],
    },
    index=pd.Index(["trunk", "branch", "leaf"], name="group"),
)


@dataclass(frozen=True)
class Outcome:
    """A claim checked on one table: ``holds`` (None: not testable, e.g. a kind is missing)
    and what was found, in words."""

    holds: bool | None
    detail: str


@dataclass(frozen=True)
class Claim:
    """One statement of Table C: ``check(fi, depths)`` on an FI table (groups x kinds, root
    group first) and the ResNet depth of each ResNet kind."""

    name: str
    text: str
    check: Callable[[pd.DataFrame, Mapping[str, int]], Outcome]


def _missing(fi: pd.DataFrame, kinds: tuple[str, ...]) -> Outcome | None:
    absent = [k for k in kinds if k not in fi.columns or fi[k].isna().all()]
    return Outcome(None, f"not testable: no FI for {', '.join(absent)}") if absent else None


def _grows(fi: pd.DataFrame, depths: Mapping[str, int]) -> Outcome:
    rho = {}
    for kind in fi.columns:
        values = fi[kind].to_numpy(dtype=float)
        ok = np.isfinite(values)
        if ok.sum() >= 3 and np.ptp(values[ok]) == 0:  # flat: no rank correlation, no rise
            rho[kind] = 0.0
        elif ok.sum() >= 3:  # a rank correlation of two points says nothing
            rho[kind] = float(spearmanr(np.arange(len(values))[ok], values[ok]).statistic)
    if not rho:
        return Outcome(None, "not testable: no model has FI in three groups")
    rising = [k for k, r in rho.items() if r > 0]
    strict = [k for k in fi.columns if np.all(np.diff(fi[k].to_numpy(dtype=float)) > 0)]
    detail = (
        f"{len(rising)} of {len(rho)} models rise (Spearman > 0: "
        + ", ".join(f"{k} {r:+.2f}" for k, r in rho.items())
        + f"); strictly at every step: {len(strict)}"
    )
    return Outcome(len(rising) == len(rho), detail)


def _extreme(kind: str, highest: bool) -> Callable[[pd.DataFrame, Mapping[str, int]], Outcome]:
    def check(fi: pd.DataFrame, depths: Mapping[str, int]) -> Outcome:
        if (miss := _missing(fi, KINDS)) is not None:  # "of the six": all six needed
            return miss
        rows = fi.dropna(how="all")
        best = rows.idxmax(axis=1) if highest else rows.idxmin(axis=1)
        word = "highest" if highest else "lowest"
        detail = "; ".join(f"{group}: {k}" for group, k in best.items())
        return Outcome(bool((best == kind).all()), f"{word} FI per group: {detail}")

    return check


def _deeper_lower(fi: pd.DataFrame, depths: Mapping[str, int]) -> Outcome:
    if (miss := _missing(fi, ("ResNet-50", "ResNet-101"))) is not None:
        return miss
    pair = sorted(("ResNet-50", "ResNet-101"), key=lambda k: depths[k])
    if depths[pair[0]] == depths[pair[1]]:
        return Outcome(None, f"not testable: both ResNets have depth {depths[pair[0]]}")
    shallow, deep = pair
    diff = (fi[deep] - fi[shallow]).dropna()
    detail = (
        f"FI of ResNet-{depths[deep]} (column {deep}) minus ResNet-{depths[shallow]} "
        f"(column {shallow}): " + ", ".join(f"{g} {d:+.3f}" for g, d in diff.items())
    )
    return Outcome(bool((diff < 0).all()), detail)


def _coordinate_below(fi: pd.DataFrame, depths: Mapping[str, int]) -> Outcome:
    if (miss := _missing(fi, KINDS)) is not None:
        return miss
    gap = fi[list(COORDINATE_KINDS)].mean(axis=1) - fi[list(HEATMAP_KINDS)].mean(axis=1)
    detail = "mean FI of Integral and RLE minus that of the four heatmap models: " + ", ".join(
        f"{g} {d:+.3f}" for g, d in gap.dropna().items()
    )
    return Outcome(bool((gap.dropna() < 0).all()), detail)


def _above_chance(fi: pd.DataFrame, depths: Mapping[str, int]) -> Outcome:
    values = fi.to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return Outcome(None, "not testable: no FI")
    detail = f"FI from {values.min():.3f} to {values.max():.3f} over {values.size} cells"
    return Outcome(bool((values > 1).all()), detail)


CLAIMS = (
    Claim(
        "fi_grows_to_leaves",
        "FI grows from the root of the kinematic chain to the leaves in every model "
        "(tested: Spearman of FI with the group's position > 0 for each model)",
        _grows,
    ),
    Claim(
        "resnet50_highest",
        "SimpleBaseline ResNet-50 has the highest FI of the six in every group",
        _extreme("ResNet-50", highest=True),
    ),
    Claim("rle_lowest", "RLE has the lowest FI of the six in every group", _extreme("RLE", False)),
    Claim(
        "deeper_resnet_lower",
        "the deeper ResNet has a lower FI than the shallower one in every group",
        _deeper_lower,
    ),
    Claim(
        "coordinate_below_heatmap",
        "the models trained on coordinates (Integral, RLE) have a lower mean FI than the four "
        "heatmap models in every group",
        _coordinate_below,
    ),
    Claim(
        "fi_above_chance",
        "every model's attribution concentrates on the subject (FI > 1) in every group",
        _above_chance,
    ),
)


def check_claims(fi: pd.DataFrame, depths: Mapping[str, int]) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` on the FI table ``fi``, next to the seed's own outcome.

    Args:
        fi: groups x kinds (columns named as :data:`KINDS`; a missing kind makes the claims
            that need it "not testable"), root group first.
        depths: the ResNet depth behind "ResNet-50" and "ResNet-101" (:data:`SEED_DEPTHS` for
            the seed; a stand-in's own depth for a measured table).

    Returns:
        one row per claim: claim, text, seed (its outcome on :data:`SEED_TABLE_C`), holds,
        verdict ("agrees", "differs" or "not testable") and detail.
    """
    unknown = sorted(set(fi.columns) - set(KINDS))
    if unknown:
        raise ValueError(f"fi: expected columns among {list(KINDS)}, got unknown {unknown}")
    missing = [k for k in ("ResNet-50", "ResNet-101") if k in fi.columns and k not in depths]
    if missing:
        raise ValueError(f"depths: expected the ResNet depth of {missing}, got {dict(depths)}")
    rows = []
    for claim in CLAIMS:
        seed = claim.check(SEED_TABLE_C, SEED_DEPTHS).holds
        found = claim.check(fi, depths)
        if found.holds is None:
            verdict = "not testable"
        else:
            verdict = "agrees" if found.holds == seed else "differs"
        row = {"claim": claim.name, "text": claim.text, "seed": seed, "holds": found.holds}
        rows.append({**row, "verdict": verdict, "detail": found.detail})
    return pd.DataFrame(rows)


def kind_table(
    comparison: pd.DataFrame,
    kinds: Mapping[str, str],
    index: str = "FI",
    groups: tuple[str, ...] = ("wrist", "MCP", "PIP", "DIP", "TIP"),
) -> pd.DataFrame:
    """One index of :func:`~handlab.attribution.analysis.compare_models`'s tidy output as a
    Table C: groups (root first) x kinds.

    Args:
        comparison: columns model, group, index, value (``compare_models(..., by="group")``).
        kinds: kind (one of :data:`KINDS`) -> the model name in ``comparison``.
        index: "FI", "LI" or "DI".

    >>> c = pd.DataFrame({"model": ["a", "a"], "group": ["wrist", "TIP"],
    ...                   "index": ["FI", "FI"], "value": [1.5, 2.0]})
    >>> kind_table(c, {"RLE": "a"}, groups=("wrist", "TIP")).RLE.tolist()
    [1.5, 2.0]
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"kinds: expected keys among {list(KINDS)}, got unknown {unknown}")
    absent = sorted(set(kinds.values()) - set(comparison["model"]))
    if absent:
        raise ValueError(f"comparison: expected rows for the models {absent}, found none")
    part = comparison[comparison["index"] == index]
    wide = part.pivot_table(index="group", columns="model", values="value", dropna=False)
    out = wide.reindex(index=list(groups), columns=list(kinds.values()))
    out.columns = list(kinds)
    out.index.name = "group"
    return out
