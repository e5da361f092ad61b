"""Keypoint metrics: EPE, PCK and its AUC under each field convention, MPJPE variants, tables.

Taught in chapter 00 (``notebooks/00_tour.py``).

Every metric is visibility-aware: joints with ``visibility == 0`` are left out (never counted as
zero error), and a keypoint with no visible instance is left out of per-keypoint means.
Inputs are torch tensors or numpy arrays ``(..., J, C)`` (C = 2 pixels or 3 mm); results are
Python floats or pandas DataFrames.

Averaging, stated once (see ``../shared/reference/hands.md`` section 3):

- ``epe`` / ``mpjpe`` / ``pa_mpjpe``: pooled mean over all visible joint instances (mmpose EPE,
  the usual MPJPE).
- ``pck`` / ``pck_curve`` / ``auc``: per keypoint first (fraction of that joint's visible
  instances within the threshold), then the mean over keypoints, as Zimmermann & Brox's
  ``EvalUtil`` (reused by FreiHAND) and mmpose's ``keypoint_pck_accuracy`` do. ``average="pooled"``
  gives the fraction over all visible instances instead.
- ``auc`` conventions: ``"zb"`` (Z&B, minimal-hand: trapezoid under PCK(<=t) at
  ``linspace(lo, hi, steps)`` divided by ``hi - lo``; defaults 0-50 mm, 20 steps; minimal-hand's
  "20-50 mm" is ``lo=20, hi=50, steps=16``); ``"freihand"`` (the same computation, defaults 0-50 mm
  with 100 steps); ``"mmpose"`` (left Riemann mean of PCK(< t) at ``lo + i / steps * (hi - lo)``,
  ``i = 0 .. steps - 1``, strict ``<`` as in mmpose; defaults 0-30 px, 20 steps).

>>> gt = torch.zeros(2, 21, 2)
>>> pred = gt + torch.tensor([3.0, 4.0])
>>> epe(pred, gt), pck(pred, gt, 5.0), pck(pred, gt, 4.9)
(5.0, 1.0, 0.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.integrate import trapezoid  # np.trapezoid needs numpy >= 2

from handlab import geometry
from handlab._checks import Array, check_finite, check_shape, check_tensor
from handlab.skeleton import FINGERS, GROUP_OF_JOINT, GROUPS, JOINT_NAMES, NUM_JOINTS

__all__ = [
    "AUC_DEFAULTS",
    "auc",
    "epe",
    "evaluate_2d",
    "evaluate_3d",
    "mpjpe",
    "pa_mpjpe",
    "pck",
    "pck_curve",
    "per_group_table",
    "per_joint_table",
    "root_relative_mpjpe",
]

AUC_DEFAULTS: dict[str, tuple[float, float, int]] = {
    "zb": (0.0, 50.0, 20),
    "freihand": (0.0, 50.0, 100),
    "mmpose": (0.0, 30.0, 20),
}


def _prepare(pred: Array, gt: Array, visibility: Array | None):
    """-> pred, gt (N, J, C) float64 and a boolean mask (N, J); invisible joints may be NaN."""
    check_tensor("pred", pred)
    check_tensor("gt", gt)
    p = torch.as_tensor(pred).detach().cpu().double()
    g = torch.as_tensor(gt).detach().cpu().double()
    check_shape("pred", p, ("...", None, None))
    if p.shape != g.shape:
        raise ValueError(f"gt: expected the shape of pred {tuple(p.shape)}, got {tuple(g.shape)}")
    mask = torch.ones(p.shape[:-1], dtype=torch.bool)
    if visibility is not None:
        check_tensor("visibility", visibility)
        v = torch.as_tensor(visibility).detach().cpu()
        check_shape("visibility", v, tuple(p.shape[:-1]))
        mask = v > 0
    check_finite("pred (visible joints)", p[mask])
    check_finite("gt (visible joints)", g[mask])
    J, C = p.shape[-2:]
    return p.reshape(-1, J, C), g.reshape(-1, J, C), mask.reshape(-1, J)


def _distances(pred: Array, gt: Array, visibility: Array | None):
    """-> distances (N, J) float64 with NaN where invisible, and the mask (N, J)."""
    p, g, mask = _prepare(pred, gt, visibility)
    d = (p - g).norm(dim=-1)
    return torch.where(mask, d, torch.nan), mask


def _pooled_mean(d: torch.Tensor, mask: torch.Tensor) -> float:
    if not bool(mask.any()):
        raise ValueError("visibility: expected at least one visible joint, got none")
    return float(d[mask].mean())


def epe(pred: Array, gt: Array, visibility: Array | None = None) -> float:
    """End-point error: mean Euclidean distance over visible joints (pooled), in input units.

    >>> epe(torch.tensor([[0.0, 0.0], [6.0, 8.0]]), torch.zeros(2, 2), torch.tensor([1, 1]))
    5.0
    """
    d, mask = _distances(pred, gt, visibility)
    return _pooled_mean(d, mask)


def _pck_matrix(d: torch.Tensor, mask: torch.Tensor, thresholds: torch.Tensor, strict: bool):
    """-> hits (T, N, J) float with NaN where invisible."""
    dt = d[None]  # (1, N, J)
    t = thresholds[:, None, None]
    hit = (dt < t) if strict else (dt <= t)
    return torch.where(mask[None], hit.double(), torch.nan)


def _average(hits: torch.Tensor, average: str) -> torch.Tensor:
    """(T, N, J) hits with NaN -> (T,) per the averaging rule."""
    if average == "pooled":
        return hits.flatten(1).nanmean(-1)
    if average == "keypoint":
        per_kp = hits.nanmean(1)  # (T, J); NaN for a keypoint never visible
        return per_kp.nanmean(-1)
    raise ValueError(f"average: expected 'keypoint' or 'pooled', got {average!r}")


def pck_curve(
    pred: Array,
    gt: Array,
    thresholds: Array | list[float],
    visibility: Array | None = None,
    *,
    normalize: Array | None = None,
    average: str = "keypoint",
    strict: bool = False,
) -> np.ndarray:
    """PCK at each threshold: (T,) fractions in [0, 1].

    Args:
        pred, gt: (..., J, C) in the same units (px or mm).
        thresholds: (T,) distances (in units of ``normalize`` if given).
        visibility: optional (..., J); 0 leaves a joint out.
        normalize: optional (...,) per-sample scale, e.g. mmpose's box size ``max(w, h)``:
            the error is divided by it before the comparison.
        average: ``"keypoint"`` (per keypoint, then mean; default) or ``"pooled"``.
        strict: count ``error < t`` (mmpose) instead of ``error <= t`` (Z&B).

    >>> pck_curve(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), [0.5, 1.0, 2.0]).tolist()
    [0.0, 1.0, 1.0]
    """
    d, mask = _distances(pred, gt, visibility)
    if not bool(mask.any()):
        raise ValueError("visibility: expected at least one visible joint, got none")
    if normalize is not None:
        check_tensor("normalize", normalize)
        n = torch.as_tensor(normalize).detach().cpu().double().reshape(-1)
        if n.numel() != d.shape[0] or not bool((n > 0).all()):
            raise ValueError(
                f"normalize: expected {d.shape[0]} positive per-sample scales, got {tuple(n.shape)}"
            )
        d = d / n[:, None]
    t = torch.as_tensor(np.asarray(thresholds, dtype=np.float64))
    return _average(_pck_matrix(d, mask, t.reshape(-1), strict), average).numpy()


def pck(
    pred: Array,
    gt: Array,
    t: float,
    visibility: Array | None = None,
    *,
    normalize: Array | None = None,
    average: str = "keypoint",
    strict: bool = False,
) -> float:
    """Percentage of correct keypoints at one threshold ``t``; see :func:`pck_curve`.

    mmpose's PCK@0.2 is ``pck(pred, gt, 0.2, vis, normalize=box_size, strict=True)``.

    >>> pck(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.zeros(2, 2), 2.0)
    0.5
    """
    curve = pck_curve(
        pred, gt, [t], visibility, normalize=normalize, average=average, strict=strict
    )
    return float(curve[0])


def auc(
    pred: Array,
    gt: Array,
    lo: float | None = None,
    hi: float | None = None,
    steps: int | None = None,
    convention: str = "zb",
    visibility: Array | None = None,
) -> float:
    """Area under the PCK curve, normalised to [0, 1]; conventions in the module docstring.

    ``lo``, ``hi``, ``steps`` default to ``AUC_DEFAULTS[convention]``.

    >>> gt = torch.zeros(1, 1, 3)
    >>> round(auc(gt + torch.tensor([25.0, 0, 0]), gt, convention="freihand"), 3)
    0.5
    """
    if convention not in AUC_DEFAULTS:
        raise ValueError(f"convention: expected one of {sorted(AUC_DEFAULTS)}, got {convention!r}")
    d_lo, d_hi, d_steps = AUC_DEFAULTS[convention]
    lo = d_lo if lo is None else float(lo)
    hi = d_hi if hi is None else float(hi)
    steps = d_steps if steps is None else steps
    if not hi > lo or not isinstance(steps, int) or steps < 2:
        raise ValueError(
            f"lo, hi, steps: expected hi > lo and an int steps >= 2, got {lo}, {hi}, {steps}"
        )
    if convention == "mmpose":
        thresholds = lo + np.arange(steps) / steps * (hi - lo)
        curve = pck_curve(pred, gt, thresholds, visibility, strict=True)
        return float(curve.mean())
    thresholds = np.linspace(lo, hi, steps)
    curve = pck_curve(pred, gt, thresholds, visibility)
    return float(trapezoid(curve, thresholds) / (hi - lo))


def mpjpe(pred: Array, gt: Array, visibility: Array | None = None) -> float:
    """Mean per-joint position error (mm), pooled over visible joints: the 3D EPE.

    >>> mpjpe(torch.tensor([[[0.0, 0, 10]]]), torch.zeros(1, 1, 3))
    10.0
    """
    return epe(pred, gt, visibility)


def root_relative_mpjpe(
    pred: Array, gt: Array, visibility: Array | None = None, *, root: int = 0
) -> float:
    """MPJPE after subtracting joint ``root`` (the wrist) from both; (..., J, 3) mm.

    Samples whose root is invisible cannot be root-aligned and are left out. The root joint
    itself (error 0) stays in the mean, as in the usual definition.

    >>> p = torch.tensor([[[5.0, 0, 0], [5.0, 3, 4]]])
    >>> root_relative_mpjpe(p, torch.tensor([[[0.0, 0, 0], [0, 0, 0]]]))
    2.5
    """
    p, g, mask = _prepare(pred, gt, visibility)
    if not 0 <= root < p.shape[1]:
        raise ValueError(f"root: expected a joint index in [0, {p.shape[1]}), got {root}")
    mask = mask & mask[:, root : root + 1]
    p = p - p[:, root : root + 1]
    g = g - g[:, root : root + 1]
    return epe(p, g, mask)


def pa_mpjpe(pred: Array, gt: Array, visibility: Array | None = None) -> float:
    """Procrustes-aligned MPJPE (mm): similarity-align each sample (fit on its visible joints,
    :func:`handlab.geometry.procrustes`), then the pooled MPJPE.

    >>> gt = torch.tensor([[[0.0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30]]])
    >>> round(pa_mpjpe(2 * gt + 7, gt), 6)
    0.0
    """
    p, g, mask = _prepare(pred, gt, visibility)
    keep = mask.any(-1)
    if not bool(keep.any()):
        raise ValueError("visibility: expected at least one visible joint, got none")
    p, g, mask = p[keep], g[keep], mask[keep]
    p = torch.where(mask[..., None], p, 0.0)
    g = torch.where(mask[..., None], g, 0.0)
    aligned = geometry.procrustes(p, g, visibility=mask)
    return epe(aligned, g, mask)


def _check_21(p: torch.Tensor) -> None:
    if p.shape[1] != NUM_JOINTS:
        raise ValueError(f"pred: expected {NUM_JOINTS} joints for a named table, got {p.shape[1]}")


def per_joint_table(
    pred: Array,
    gt: Array,
    visibility: Array | None = None,
    unit: str = "px",
    *,
    pck_at: float | None = None,
) -> pd.DataFrame:
    """One row per canonical joint: group, finger, visible count, mean / median / max error.

    Args:
        pred, gt: (..., 21, C) in ``unit`` (``"px"`` or ``"mm"``, used in the column names).
        pck_at: also report ``pck@<t><unit>`` per joint (error <= t).

    >>> gt = torch.zeros(4, 21, 2)
    >>> per_joint_table(gt + 1.0, gt).loc["index_tip", "mean_px"].round(3)
    np.float64(1.414)
    """
    if unit not in ("px", "mm"):
        raise ValueError(f"unit: expected 'px' or 'mm', got {unit!r}")
    d, mask = _distances(pred, gt, visibility)
    _check_21(d[..., None])
    finger_of = {j: f for f, joints in FINGERS.items() for j in joints}
    table = pd.DataFrame(
        {
            "group": list(GROUP_OF_JOINT),
            "finger": [finger_of.get(j, "wrist") for j in range(NUM_JOINTS)],
            "count": mask.sum(0).numpy(),
            f"mean_{unit}": d.nanmean(0).numpy(),
            f"median_{unit}": d.nanmedian(0).values.numpy(),
            f"max_{unit}": np.nanmax(np.where(mask.numpy(), d.numpy(), -np.inf), 0),
        },
        index=pd.Index(JOINT_NAMES, name="joint"),
    )
    table.loc[table["count"] == 0, f"max_{unit}"] = np.nan
    if pck_at is not None:
        table[f"pck@{pck_at:g}{unit}"] = (
            _pck_matrix(d, mask, torch.tensor([float(pck_at)]), False)[0].nanmean(0).numpy()
        )
    return table


def per_group_table(
    pred: Array,
    gt: Array,
    visibility: Array | None = None,
    unit: str = "px",
    *,
    by: str = "group",
) -> pd.DataFrame:
    """Errors pooled per joint group (wrist, MCP, PIP, DIP, TIP) or per finger (``by="finger"``).

    >>> gt = torch.zeros(1, 21, 3)
    >>> pred = gt.clone()
    >>> pred[:, [4, 8, 12, 16, 20], 0] = 10.0  # every tip 10 mm off
    >>> per_group_table(pred, gt, unit="mm")["mean_mm"].tolist()
    [0.0, 0.0, 0.0, 0.0, 10.0]
    """
    if unit not in ("px", "mm"):
        raise ValueError(f"unit: expected 'px' or 'mm', got {unit!r}")
    if by == "group":
        groups = GROUPS
    elif by == "finger":
        groups = {"wrist": (0,), **FINGERS}
    else:
        raise ValueError(f"by: expected 'group' or 'finger', got {by!r}")
    d, mask = _distances(pred, gt, visibility)
    _check_21(d[..., None])
    rows = []
    for name, joints in groups.items():
        dj, mj = d[:, list(joints)], mask[:, list(joints)]
        vals = dj[mj].numpy()
        rows.append(
            {
                by: name,
                "joints": len(joints),
                "count": int(mj.sum()),
                f"mean_{unit}": float(vals.mean()) if vals.size else np.nan,
                f"median_{unit}": float(np.median(vals)) if vals.size else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index(by)


def _error_pairs(pred: Array, gt: Array, visibility: Array | None):
    """Distances once, as (N, J, 1) "points" against zeros: every metric above gives the same
    number on them (the norm of a 1-vector is its value), without recomputing the distances."""
    d, mask = _distances(pred, gt, visibility)
    err = torch.where(mask, d, 0.0)[..., None]
    return err, torch.zeros_like(err), mask


def evaluate_2d(
    pred: Array,
    gt: Array,
    visibility: Array | None = None,
    *,
    thresholds: tuple[float, ...] = (5.0, 10.0, 20.0),
    box_size: Array | None = None,
) -> dict[str, float]:
    """Headline 2D numbers (pixels): EPE, PCK at ``thresholds``, Z&B AUC 0-30 px (20 steps),
    mmpose AUC (0-30 px left Riemann) and, given per-sample ``box_size``, mmpose PCK@0.2.

    >>> gt = torch.zeros(3, 21, 2)
    >>> sorted(evaluate_2d(gt + 1.0, gt))
    ['auc_0-30px', 'auc_mmpose', 'epe_px', 'pck@10px', 'pck@20px', 'pck@5px']
    """
    err, zero, vis = _error_pairs(pred, gt, visibility)
    out = {"epe_px": epe(err, zero, vis)}
    for t in thresholds:
        out[f"pck@{t:g}px"] = pck(err, zero, t, vis)
    out["auc_0-30px"] = auc(err, zero, 0.0, 30.0, 20, "zb", vis)
    out["auc_mmpose"] = auc(err, zero, convention="mmpose", visibility=vis)
    if box_size is not None:
        out["pck@0.2box"] = pck(err, zero, 0.2, vis, normalize=box_size, strict=True)
    return out


def evaluate_3d(
    pred: Array,
    gt: Array,
    visibility: Array | None = None,
    *,
    thresholds: tuple[float, ...] = (20.0, 50.0),
) -> dict[str, float]:
    """Headline 3D numbers (mm): MPJPE, root-relative and PA-MPJPE, PCK at ``thresholds``,
    the FreiHAND AUC (0-50 mm, 100 steps) and the minimal-hand AUC (20-50 mm, 16 steps).

    >>> gt = torch.zeros(3, 21, 3)
    >>> evaluate_3d(gt + torch.tensor([0.0, 0.0, 10.0]), gt)["mpjpe_mm"]
    10.0
    """
    out = {
        "mpjpe_mm": mpjpe(pred, gt, visibility),
        "rr_mpjpe_mm": root_relative_mpjpe(pred, gt, visibility),
        "pa_mpjpe_mm": pa_mpjpe(pred, gt, visibility),
    }
    err, zero, vis = _error_pairs(pred, gt, visibility)
    for t in thresholds:
        out[f"pck@{t:g}mm"] = pck(err, zero, t, vis)
    out["auc_0-50mm"] = auc(err, zero, convention="freihand", visibility=vis)
    out["auc_20-50mm"] = auc(err, zero, 20.0, 50.0, 16, "zb", vis)
    return out
