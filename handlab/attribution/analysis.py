"""Analyses on top of the indices: the MCP shortcut, inversion errors, comparing models.

Taught in chapters 09 (``notebooks/09_indices.py``) and 11 (``notebooks/11_compare_zoo.py``).

- :func:`mcp_shortcut`: PoseIG's hand finding is "a shortcut of the knuckles": other joints'
  predictions lean on the MCP region. From the relation index RI (B, J, J) it measures, for each
  joint outside the MCP group, the mean RI toward the MCP joints against the mean RI toward the
  other non-MCP joints; a ratio above 1 means the joint relies on the knuckles more than on the
  rest of the hand.
- :func:`inversion_errors`: a prediction more than ``threshold`` px from its own ground truth but
  within ``threshold`` px of another joint's (the reference's definition, 10 px).
- :func:`compare_models`: the per-group index means of several models in one tidy table.

>>> ri = torch.ones(1, 21, 21)
>>> float(mcp_shortcut(ri).ratio.max())
1.0
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from handlab._checks import check_range, check_shape, check_tensor
from handlab.attribution.indices import INDICES, aggregate
from handlab.skeleton import GROUP_OF_JOINT, GROUPS, JOINT_NAMES, NUM_JOINTS

__all__ = ["compare_models", "inversion_errors", "mcp_shortcut"]


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    ok = np.isfinite(values) & (weights > 0)
    return float((values[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else np.nan


def mcp_shortcut(ri: torch.Tensor, visibility: torch.Tensor | None = None) -> pd.DataFrame:
    """How much each non-MCP joint's prediction relies on the MCP regions.

    Args:
        ri: (B, 21, 21) relation index, ``ri[b, j, k]`` = joint j's map against joint k's mask.
        visibility: (B, 21) weights; a (sample, source, target) term counts with
            ``vis[source] * vis[target]`` (invisible joints excluded).

    Returns:
        one row per non-MCP joint: joint, joint_name, group, RI_self, RI_mcp (mean toward the
        5 MCP joints), RI_other (mean toward the other non-MCP joints), ratio = RI_mcp / RI_other.
    """
    check_tensor("ri", ri)
    check_shape("ri", ri, (None, NUM_JOINTS, NUM_JOINTS))
    r = np.asarray(torch.as_tensor(ri).to(torch.float64))
    b = r.shape[0]
    if visibility is None:
        vis = np.ones((b, NUM_JOINTS))
    else:
        check_shape("visibility", visibility, (b, NUM_JOINTS))
        vis = np.asarray(torch.as_tensor(visibility).to(torch.float64))
    mcp = list(GROUPS["MCP"])
    rows = []
    for j in range(NUM_JOINTS):
        if j in mcp:
            continue
        others = [k for k in range(NUM_JOINTS) if k not in mcp and k != j]
        w = vis[:, j, None] * vis  # (B, J) weight of each target k for source j
        rows.append(
            {
                "joint": j,
                "joint_name": JOINT_NAMES[j],
                "group": GROUP_OF_JOINT[j],
                "RI_self": _weighted_mean(r[:, j, j], w[:, j]),
                "RI_mcp": _weighted_mean(r[:, j, mcp], w[:, mcp]),
                "RI_other": _weighted_mean(r[:, j, others], w[:, others]),
            }
        )
    out = pd.DataFrame(rows)
    out["ratio"] = out.RI_mcp / out.RI_other
    return out


def inversion_errors(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visibility: torch.Tensor | None = None,
    threshold: float = 10.0,
) -> pd.DataFrame:
    """Flag predictions that landed on another joint (the reference's "inversion" error).

    Args:
        pred, gt: (B, J, 2) input px (x, y); visibility: (B, J) (invisible joints are neither
            checked nor used as the other joint); threshold: px.

    Returns:
        one row per visible (sample, joint): sample, joint, dist_own (px), nearest (the closest
        other visible joint's index), dist_nearest (px), inverted (bool).

    >>> gt = torch.tensor([[[0.0, 0.0], [30.0, 0.0]]])
    >>> pred = torch.tensor([[[28.0, 1.0], [30.0, 2.0]]])
    >>> inversion_errors(pred, gt).inverted.tolist()
    [True, False]
    """
    check_tensor("pred", pred)
    check_shape("pred", pred, (None, None, 2))
    check_shape("gt", gt, tuple(pred.shape))
    check_range("threshold", threshold, lo=0.0)
    p = torch.as_tensor(pred).to(torch.float64)
    g = torch.as_tensor(gt).to(torch.float64)
    b, j = p.shape[:2]
    vis = (
        torch.ones(b, j, dtype=torch.float64) if visibility is None else torch.as_tensor(visibility)
    )
    check_shape("visibility", vis, (b, j))
    d = torch.cdist(p, g)  # (B, J, J): pred j to gt k, px
    own = torch.diagonal(d, dim1=1, dim2=2)
    blocked = torch.eye(j, dtype=torch.bool)[None] | (vis <= 0)[:, None, :]
    others = d.masked_fill(blocked, torch.inf)
    dist_nearest, nearest = others.min(-1)
    inverted = (own > threshold) & (dist_nearest < threshold)
    s, k = torch.nonzero(vis > 0, as_tuple=True)
    return pd.DataFrame(
        {
            "sample": s.numpy(),
            "joint": k.numpy(),
            "dist_own": own[s, k].numpy(),
            "nearest": nearest[s, k].numpy(),
            "dist_nearest": dist_nearest[s, k].numpy(),
            "inverted": inverted[s, k].numpy(),
        }
    )


def compare_models(
    tables: Mapping[str, pd.DataFrame], by: str = "group", indices: tuple[str, ...] = INDICES
) -> pd.DataFrame:
    """Per-``by`` visibility-weighted index means of several models, tidy.

    Args:
        tables: model name -> :func:`~handlab.attribution.indices.index_table` output.

    Returns:
        columns model, ``by``, index, value, n (one row per model, key and index).

    >>> t = pd.DataFrame({"group": ["MCP", "TIP"], "visibility": [1.0, 1.0], "FI": [2.0, 3.0]})
    >>> compare_models({"a": t, "b": t}, indices=("FI",)).shape
    (4, 5)
    """
    if not tables:
        raise ValueError("tables: expected at least one model's index table, got none")
    parts = []
    for name, table in tables.items():
        agg = aggregate(table, by, indices)
        for index in indices:
            parts.append(
                pd.DataFrame(
                    {
                        "model": name,
                        by: agg[by],
                        "index": index,
                        "value": agg[index],
                        "n": agg[f"n_{index}"],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)
