"""Evaluation on real hand photographs (COCO-style files): PCK of the box, per source.

Taught in chapter 12 ("from synthetic to real hands"). :func:`diagnose` breaks a score down into
how the model fails (per joint group, wrist and centre errors, in-plane orientation).

A model reads each hand's crop (:class:`handlab.data.coco.COCOHands`, ``plain`` or
``upright``); its keypoints are mapped back to the photograph through the inverse of the crop's
affine (:func:`handlab.geometry.invert_affine`) and scored there against the labels, relative to
the hand's reference box (the annotation's ``bbox``): ``pck@0.2`` is the share of labelled joints
within 0.2 x the box's longer side, ``epe/box`` the mean error over that side. The rows are
pooled over joints, per source (a subfolder of the data) and over all hands.

The baseline is a constant *mean pose*: the mean of 1000 synthetic training hands' keypoints,
each cropped by the same rule (so it is the generator's average hand in the crop's frame). It
sees no real label. The development set ``REAL_HANDS`` (32 hands, 5 sources) is evaluation
only: it holds an ``EVALUATION_ONLY`` marker, and training refuses it.

>>> scores = real_scores(torch.zeros(2, 21, 2), torch.ones(2, 21, 2), torch.ones(2, 21),
...                      torch.tensor([10.0, 20.0]), ["a", "b"])
>>> scores["overall"]["pck@0.2"], scores["a"]["epe/box"]
(1.0, 0.1414...)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from handlab.data.coco import REAL_HANDS
from handlab.geometry import apply_affine, crop_affine, hand_box, invert_affine, upright_box
from handlab.skeleton import GROUPS

__all__ = [
    "REAL_HANDS",
    "THRESHOLD",
    "angle_error",
    "diagnose",
    "evaluate_real",
    "format_real",
    "mean_pose",
    "orientation",
    "predict_real",
    "real_scores",
]

THRESHOLD = 0.2  # PCK threshold, fraction of the box's longer side (the README's table)


def real_scores(
    pred: torch.Tensor,
    gt: torch.Tensor,
    visibility: torch.Tensor,
    box_side: torch.Tensor,
    sources: Sequence[str],
) -> dict[str, dict[str, float]]:
    """PCK@0.2 and EPE/box per source and ``"overall"``.

    Args:
        pred, gt: (N, J, 2) px in the photographs.
        visibility: (N, J), 1 = labelled.
        box_side: (N,) px, the reference box's longer side.
        sources: N source names.

    Returns:
        ``{source: {"hands": n, "joints": labelled joints, "pck@0.2": ..., "epe/box": ...}}``,
        sources sorted, ``"overall"`` last.
    """
    if len(sources) != pred.shape[0]:
        raise ValueError(f"sources: expected {pred.shape[0]} names, got {len(sources)}")
    d = (pred - gt).norm(dim=-1) / box_side[:, None]  # (N, J) error / box side
    lab = visibility > 0
    out = {}
    groups = {s: [i for i, t in enumerate(sources) if t == s] for s in sorted(set(sources))}
    groups["overall"] = list(range(len(sources)))
    for name, rows in groups.items():
        dd, mm = d[rows][lab[rows]], lab[rows]
        out[name] = {
            "hands": len(rows),
            "joints": int(mm.sum()),
            "pck@0.2": float((dd <= THRESHOLD).float().mean()),
            "epe/box": float(dd.mean()),
        }
    return out


@functools.lru_cache(maxsize=8)
def mean_pose(crop: str, size: int, *, scale: float = 1.5, n: int = 1000) -> torch.Tensor:
    """The synthetic training hands' mean keypoints (21, 2) in ``size`` px crops of kind
    ``crop`` (``"plain"``: square of the tight keypoint box x ``scale``; ``"upright"``)."""
    from handlab.synth import SyntheticHands  # lazy: the generator is a separate layer

    data = SyntheticHands("train", size=128, length=n)
    kps = torch.cat(
        [data.batch(list(range(i, min(n, i + 100))))["keypoints"] for i in range(0, n, 100)]
    )
    if crop == "upright":
        centre, side, angle = upright_box(kps, scale=scale)
        affine = crop_affine(centre, side, size, angle=angle)
    else:
        box = hand_box(kps, margin=1.0)
        centre, side = (box[:, :2] + box[:, 2:]) / 2, (box[:, 2:] - box[:, :2]).amax(-1) * scale
        affine = crop_affine(centre, side, size)
    return apply_affine(kps, affine).mean(0)


@torch.no_grad()
def predict_real(
    model: nn.Module | None,
    data: Any,
    *,
    batch_size: int = 16,
    progress: bool = False,
    constant: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Keypoints of every hand of ``data`` (a :class:`~handlab.data.coco.COCOHands`), in the
    photographs' pixels: ``pred``/``gt`` (N, 21, 2), ``visibility`` (N, 21), ``box_side`` (N,),
    ``sources`` (N names). ``model=None`` predicts ``constant`` (21, 2) crop px for every hand."""
    if model is None and constant is None:
        raise ValueError("model: expected a model, or constant= keypoints for a fixed prediction")
    device = None if model is None else next(model.parameters()).device
    rows: dict[str, list] = {"pred": [], "gt": [], "visibility": [], "box_side": [], "sources": []}
    chunks = range(0, len(data), batch_size)
    for lo in tqdm(chunks, desc="real hands", disable=not progress, leave=False):
        items = [data[i] for i in range(lo, min(len(data), lo + batch_size))]
        affine = torch.stack([it["meta"]["affine"] for it in items])  # (B, 2, 3)
        if model is None:
            crop_kps = constant.expand(len(items), -1, -1)
        else:
            images = torch.stack([it["image"] for it in items]).to(device)
            crop_kps = model(images)["keypoints"].float().cpu()
        rows["pred"].append(apply_affine(crop_kps, invert_affine(affine)))
        rows["gt"].append(
            apply_affine(torch.stack([it["keypoints"] for it in items]), invert_affine(affine))
        )
        rows["visibility"].append(torch.stack([it["visibility"] for it in items]))
        boxes = torch.stack([it["meta"]["box"] for it in items])
        rows["box_side"].append((boxes[:, 2:] - boxes[:, :2]).amax(-1))
        rows["sources"] += [it["meta"]["source"] for it in items]
    return {k: v if k == "sources" else torch.cat(v) for k, v in rows.items()}


def evaluate_real(
    model: nn.Module | None, data: Any, *, progress: bool = False, batch_size: int = 16
) -> dict[str, dict[str, float]]:
    """:func:`real_scores` of ``model`` on ``data`` (``None``: the mean-pose baseline)."""
    constant = None
    if model is None:
        constant = mean_pose(data.crop, data.size, scale=data.scale)
    p = predict_real(model, data, batch_size=batch_size, progress=progress, constant=constant)
    return real_scores(p["pred"], p["gt"], p["visibility"], p["box_side"], p["sources"])


def format_real(results: dict[str, dict[str, dict[str, float]]], *, markdown: bool = False) -> str:
    """A table of ``{row name: real_scores(...)}``: PCK@0.2 per source, then overall PCK@0.2 and
    EPE/box; markdown for the README, plain text otherwise.

    >>> r = {"m": {"s": {"hands": 1, "pck@0.2": 0.5, "epe/box": 0.25},
    ...            "overall": {"hands": 1, "pck@0.2": 0.5, "epe/box": 0.25}}}
    >>> print(format_real(r, markdown=True))
    | model | s (1) | overall PCK@0.2 (1) | EPE / box |
    |---|---:|---:|---:|
    | m | 0.50 | 0.50 | 0.250 |
    """
    first = next(iter(results.values()))
    sources = [s for s in first if s != "overall"]
    head = ["model", *(f"{s.removeprefix('mmpose_')} ({first[s]['hands']})" for s in sources)]
    head += [f"overall PCK@0.2 ({first['overall']['hands']})", "EPE / box"]
    body = []
    for name, scores in results.items():
        cells = [f"{scores[s]['pck@0.2']:.2f}" for s in sources]
        cells += [f"{scores['overall']['pck@0.2']:.2f}", f"{scores['overall']['epe/box']:.3f}"]
        body.append([name, *cells])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body]
    )


MIDDLE_MCP = 9


def orientation(kps: torch.Tensor) -> torch.Tensor:
    """Angle (degrees) of the MCP-to-wrist vector of (N, 21, 2) keypoints; 0 = wrist straight
    below the middle MCP (image y grows downwards).

    >>> k = torch.zeros(1, 21, 2); k[0, 0] = torch.tensor([0.0, 5.0])
    >>> float(orientation(k)[0])
    0.0
    """
    v = kps[:, 0] - kps[:, MIDDLE_MCP]
    return torch.rad2deg(torch.atan2(v[:, 0], v[:, 1]))


def angle_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Absolute difference of two angles in degrees, wrapped to [0, 180].

    >>> angle_error(torch.tensor([170.0]), torch.tensor([-170.0])).tolist()
    [20.0]
    """
    return ((a - b + 180.0) % 360.0 - 180.0).abs()


def diagnose(pred: dict[str, Any]) -> dict[str, float]:
    """How a model fails on real hands, from :func:`predict_real`'s output: PCK@0.2 per joint
    group (``pck wrist`` ... ``pck TIP``), the median wrist and hand-centre errors over the box
    side, the median in-plane orientation error (:func:`orientation`, degrees) and the share of
    hands turned by more than 90 degrees (wrist and fingers swapped), and the spread of the
    predicted poses' shapes over the true ones' (0: one pose in every crop).

    >>> g = torch.rand(4, 21, 2) * 50 + torch.rand(4, 1, 2) * 200
    >>> base = {"gt": g, "visibility": torch.ones(4, 21), "box_side": torch.full((4,), 60.0)}
    >>> d = diagnose({**base, "pred": 2 * g.mean(1, keepdim=True) - g})  # turned by 180 deg
    >>> d["turned > 90 deg"], round(d["orientation error deg"]), round(d["spread ratio"], 3)
    (1.0, 180, 1.0)
    """
    p, g, vis, side = pred["pred"], pred["gt"], pred["visibility"] > 0, pred["box_side"]
    err = (p - g).norm(dim=-1) / side[:, None]  # (N, J), fraction of the box
    out: dict[str, float] = {}
    for group, joints in GROUPS.items():
        idx = list(joints)
        e, v = err[:, idx], vis[:, idx]
        out[f"pck {group}"] = float((e[v] < THRESHOLD).float().mean()) if v.any() else math.nan
    both = vis[:, 0] & vis[:, MIDDLE_MCP]
    out["wrist error / box"] = float(err[vis[:, 0], 0].median())
    centre = ((p - g) * vis[..., None]).sum(1) / vis.sum(1, keepdim=True).clamp(min=1)
    out["centre error / box"] = float((centre.norm(dim=-1) / side).median())
    turn = angle_error(orientation(p), orientation(g))[both]
    out["orientation error deg"] = float(turn.median())
    out["turned > 90 deg"] = float((turn > 90).float().mean())

    # spread of the pose's shape (each hand around its own centroid, in box units), predicted
    # over true: a constant pose in the crop scores 0
    def shape(k: torch.Tensor) -> torch.Tensor:
        return (k - k.mean(1, keepdim=True)) / side[:, None, None]

    out["spread ratio"] = float(shape(p).std(0).mean() / shape(g).std(0).mean())
    return out
