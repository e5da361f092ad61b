"""The measures that tell a collapsed model: the mean-pose baseline, the spread of predictions
across images and the per-joint contrast of heatmaps.

Taught in chapter 02 (the zoo), where :mod:`handlab.zoo.guard` applies them to every shipped
model; ``fit`` uses :func:`prediction_spread` to warn when validation predictions stop varying.

A collapsed model predicts (nearly) the same pose for every image: ``handoccnet_r18`` once
shipped with flat heatmaps (spatial standard deviation 0) and every keypoint at the image
centre. Its error looked plausible (21 px at 128 px), so only measures relative to the data tell
it apart: the *mean-pose baseline* (predict each joint's mean over the split, the best constant
answer under L2), the *spread* (how much predictions vary across images, relative to how much the
labels vary) and the heatmaps' *contrast* (peak minus median of each map).

All take :func:`handlab.training.evaluation.predict`'s output: ``pred_keypoints``/``keypoints``
(N, J, 2) px, ``visibility`` (N, J), ``pred_xyz``/``xyz`` (N, J, 3) mm root-relative.

>>> gt = torch.tensor([[[0.0, 0.0]], [[4.0, 0.0]]])  # two images, one joint
>>> p = {"keypoints": gt, "pred_keypoints": torch.full((2, 1, 2), 2.0),
...      "visibility": torch.ones(2, 1)}
>>> mean_pose_errors(p)  # the mean pose (2, 0) is 2 px from both labels
{'epe_px': 2.0}
>>> prediction_spread(p)  # a constant prediction does not vary at all
{'keypoints': 0.0}
"""

from __future__ import annotations

import torch

from handlab import metrics as M

__all__ = [
    "CONTRAST_FLOOR",
    "SPREAD_FLOOR",
    "heatmap_contrast",
    "mean_pose_errors",
    "prediction_spread",
]

# Predictions must spread across images at least this fraction of the labels' spread. A model
# at half the mean-pose error spreads ~0.8-1.0 (measured on the zoo, chapter 02); a collapsed one 0.
SPREAD_FLOOR = 0.25
# Peak minus median of every joint's map, in the map's own units (Gaussian targets of height 1
# for the MSE families, logits for the soft-argmax ones): trained maps reach ~0.5 to tens, flat
# (collapsed) ones 0.
CONTRAST_FLOOR = 0.05


def _check_predictions(p: object) -> None:
    if not isinstance(p, dict) or "keypoints" not in p:
        raise TypeError("p: expected handlab.training.evaluation.predict's output (a dict)")


def mean_pose_errors(p: dict[str, torch.Tensor]) -> dict[str, float]:
    """Errors of the mean-pose baseline on the same samples: every image gets each joint's mean
    label over the samples (2D over the visible joints).

    Returns ``epe_px`` (when ``p`` has ``pred_keypoints``) and ``rr_mpjpe_mm`` (root-relative,
    when it has ``pred_xyz``), the same keys as the model's metrics.
    """
    _check_predictions(p)
    out = {}
    if "pred_keypoints" in p:
        kp, vis = p["keypoints"].float(), p["visibility"].float()  # (N, J, 2), (N, J)
        w = vis[..., None]  # (N, J, 1)
        mean = (kp * w).sum(0) / w.sum(0).clamp_min(1)  # (J, 2)
        out["epe_px"] = float(M.epe(mean.expand_as(kp), kp, vis))
    if "pred_xyz" in p:
        xyz = p["xyz"].float()  # (N, J, 3) mm, root-relative
        out["rr_mpjpe_mm"] = float(M.mpjpe(xyz.mean(0).expand_as(xyz), xyz))
    return out


def _spread(x: torch.Tensor) -> float:
    return float(x.float().std(dim=0).mean())  # std across images, averaged over joints/axes


def prediction_spread(p: dict[str, torch.Tensor]) -> dict[str, float]:
    """How much predictions vary across images relative to the labels: the standard deviation
    across images of each joint coordinate, averaged, predicted over labelled.

    Returns ``keypoints`` (when ``p`` has ``pred_keypoints``) and ``xyz`` (when it has
    ``pred_xyz``): 0 for a constant prediction, ~1 for one that varies as the labels do. Needs at
    least two samples.
    """
    _check_predictions(p)
    if p["keypoints"].shape[0] < 2:
        raise ValueError(f"p: expected at least 2 samples, got {p['keypoints'].shape[0]}")
    out = {}
    for key in ("keypoints", "xyz"):
        if f"pred_{key}" in p:
            out[key] = _spread(p[f"pred_{key}"]) / max(_spread(p[key]), 1e-9)
    return out


def heatmap_contrast(heatmaps: torch.Tensor) -> torch.Tensor:
    """Per-joint contrast: each map's peak minus its median, averaged over images.

    Args:
        heatmaps: (B, J, ...) one map per joint (2D (h, w) or volumes (d, h, w)).

    Returns:
        (J,) contrast in the maps' units; 0 for a flat map.

    >>> maps = torch.zeros(2, 2, 4, 4)
    >>> maps[:, 0, 1, 2] = 1.0  # joint 0 has a peak of height 1, joint 1 is flat
    >>> heatmap_contrast(maps).tolist()
    [1.0, 0.0]
    """
    if not isinstance(heatmaps, torch.Tensor) or heatmaps.dim() < 3:
        got = tuple(heatmaps.shape) if isinstance(heatmaps, torch.Tensor) else type(heatmaps)
        raise ValueError(f"heatmaps: expected a (B, J, ...) tensor of maps, got {got}")
    flat = heatmaps.detach().float().flatten(2)  # (B, J, cells)
    contrast = flat.amax(dim=-1) - flat.median(dim=-1).values  # (B, J)
    return contrast.mean(dim=0)  # (J,)
