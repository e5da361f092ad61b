"""``evaluate``: a model's 2D (and 3D) metrics on a dataset, with a per-joint table.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02.

The numbers come from :mod:`handlab.metrics` (EPE, PCK, AUC of PCK over 0-30 px; MPJPE,
PA-MPJPE and AUC over 20-50 mm for 3D models, root-relative); this module only runs the model
over the first ``limit`` samples in order, in eval mode and without gradients.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from handlab import metrics as M
from handlab.skeleton import JOINT_NAMES
from handlab.training.data import load_batch, model_inputs

__all__ = ["evaluate", "format_table", "forward_in_chunks", "mean_epe", "predict"]


@torch.no_grad()
def forward_in_chunks(
    model: nn.Module, *inputs: torch.Tensor | None, chunk: int = 32
) -> dict[str, torch.Tensor]:
    """``model(*inputs)`` on ``chunk`` samples at a time, without gradients: every output
    concatenated along dim 0 (bounded memory for 3D convolutions and large batches). An input
    given as ``None`` (e.g. no ``K``) is passed as ``None`` to every chunk.

    Args:
        model: returns a dict of tensors with the batch on dim 0.
        inputs: tensors (N, ...) sharing N, or ``None``.

    >>> model = lambda x, k: {"y": 2 * x, "k": x if k is None else k}
    >>> out = forward_in_chunks(model, torch.arange(5.0)[:, None], None, chunk=2)
    >>> out["y"].flatten().tolist(), out["k"].shape
    ([0.0, 2.0, 4.0, 6.0, 8.0], torch.Size([5, 1]))
    """
    tensors = [x for x in inputs if x is not None]
    if not tensors or len({len(x) for x in tensors}) != 1:
        raise ValueError(
            f"inputs: expected tensors sharing their first dimension, got "
            f"{[None if x is None else tuple(x.shape) for x in inputs]}"
        )
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected a positive int, got {chunk!r}")
    n = len(tensors[0])
    parts = [
        model(*(None if x is None else x[i : i + chunk] for x in inputs))
        for i in range(0, n, chunk)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def mean_epe(outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> float:
    """Mean 2D error (px) of ``outputs["keypoints"]`` (B, J, 2) over the batch's visible joints;
    NaN for a model without 2D output (e.g. IK from xyz)."""
    if "keypoints" not in outputs:
        return float("nan")
    pred = outputs["keypoints"].detach().float()
    return float(M.epe(pred, batch["keypoints"], batch.get("visibility")))


@torch.no_grad()
def predict(
    model: nn.Module, data: Any, *, batch_size: int = 32, limit: int | None = None
) -> dict[str, torch.Tensor]:
    """Run ``model`` over the first ``limit`` samples of ``data`` (all if ``None``), in order.

    Returns CPU tensors: ``pred_keypoints`` (not for models whose input is 2D keypoints)
    /``keypoints`` (N, J, 2) px, ``visibility`` (N, J)
    and, for 3D models with ``xyz`` in the data, ``pred_xyz``/``xyz`` (N, J, 3) mm root-relative.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    n = len(data) if limit is None else min(int(limit), len(data))
    if n < 1:
        raise ValueError(f"limit: expected at least one sample to evaluate, got {n}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, n, batch_size):
        batch = load_batch(data, range(lo, min(n, lo + batch_size)))
        out = model(model_inputs(model, batch).to(device))
        rows = {"keypoints": batch["keypoints"]}
        rows["visibility"] = batch.get("visibility", torch.ones(batch["keypoints"].shape[:2]))
        # A lifting network's 2D keypoints are its input passed through: no 2D metrics for it.
        if "keypoints" in out and getattr(model, "input_kind", "rgb") != "keypoints":
            rows["pred_keypoints"] = out["keypoints"]
        if "xyz" in out and "xyz" in batch:
            rows["pred_xyz"] = out["xyz"] - out["xyz"][:, :1]
            rows["xyz"] = batch["xyz"] - batch["xyz"][:, :1]
        for k, v in rows.items():
            parts.setdefault(k, []).append(v.detach().float().cpu())
    model.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


def evaluate(
    model: nn.Module, data: Any, *, batch_size: int = 32, limit: int | None = None
) -> dict[str, Any]:
    """Metrics of ``model`` on the first ``limit`` samples of ``data``.

    Returns ``n`` (samples), the keys of :func:`handlab.metrics.evaluate_2d` (``epe_px``,
    ``pck@5px`` ... ``auc_0-30px``) and, for 3D models, of ``evaluate_3d`` on root-relative
    ``xyz`` (``mpjpe_mm``, ``pa_mpjpe_mm``, ``auc_20-50mm`` ...), and ``per_joint``: one dict per
    canonical joint (``joint``, ``epe_px``, ``pck@10px``, ``mpjpe_mm`` for 3D; empty for data
    in another joint order).
    """
    p = predict(model, data, batch_size=batch_size, limit=limit)
    return summarize(p)


def summarize(p: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Metrics from ``predict``'s output (see ``evaluate``)."""
    vis = p["visibility"]
    out: dict[str, Any] = {"n": int(vis.shape[0])}
    if "pred_keypoints" in p:
        out.update(M.evaluate_2d(p["pred_keypoints"], p["keypoints"], vis))
    if "pred_xyz" in p:  # every joint has a 3D label, occluded or not
        out.update(M.evaluate_3d(p["pred_xyz"], p["xyz"]))
    out["per_joint"] = _per_joint(p) if vis.shape[1] == len(JOINT_NAMES) else []
    return out


def _per_joint(p: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    cols = {}
    if "pred_keypoints" in p:
        t2 = M.per_joint_table(
            p["pred_keypoints"], p["keypoints"], p["visibility"], "px", pck_at=10
        )
        cols = {"epe_px": t2["mean_px"], "pck@10px": t2["pck@10px"]}
    if "pred_xyz" in p:
        cols["mpjpe_mm"] = M.per_joint_table(p["pred_xyz"], p["xyz"], None, "mm")["mean_mm"]
    return [{"joint": j, **{k: float(v[j]) for k, v in cols.items()}} for j in JOINT_NAMES]


def format_table(metrics: dict[str, Any]) -> str:
    """A plain-text table: the summary metrics, then one row per joint.

    >>> rows = [{"joint": "wrist", "epe_px": 1.5}]
    >>> print(format_table({"n": 2, "epe_px": 1.5, "per_joint": rows}))
    n           2
    epe_px      1.500
    <BLANKLINE>
    joint          epe_px
    wrist           1.500
    """
    scalars = {k: v for k, v in metrics.items() if k != "per_joint"}
    lines = [f"{k:<12}{_fmt(v)}" for k, v in scalars.items()]
    rows = metrics.get("per_joint", [])
    if rows:
        cols = [c for c in rows[0] if c != "joint"]
        lines += ["", f"{'joint':<12}" + "".join(f"{c:>10}" for c in cols)]
        lines += [f"{r['joint']:<12}" + "".join(f"{_fmt(r[c]):>10}" for c in cols) for r in rows]
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)
