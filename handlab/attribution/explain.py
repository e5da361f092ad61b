"""Chapter helpers on top of the engine: one joint's PoseIG, and a batch's maps plus indices.

Taught in chapters 08 (``notebooks/08_poseig.py``) and 09 (``notebooks/09_indices.py``).

- :func:`poseig_joint` explains a single joint. :func:`~handlab.attribution.engine.poseig`
  always explains all J joints from each forward (J vector-Jacobian products per path point);
  when a chapter studies one joint (quadrature, completeness against the number of steps, the
  comparison with captum), integrating only that joint's likelihood costs one product per point
  instead of J, with identical numbers (tested against ``poseig(...)[:, joint]``).
- :func:`explain_batch` runs PoseIG on a batch of samples and tabulates the indices the way
  ``handlab attribute`` does: joints without usable ground truth (visibility 0) get no LI and no
  relation index (NaN), and are excluded from every visibility-weighted mean.

>>> from handlab.attribution.targets import JointLikelihood
>>> class Centroid(nn.Module):  # one joint at the intensity centroid
...     def forward(self, images):
...         w = images.sum(1)
...         ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
...         k = torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], -1)
...         return {"keypoints": (k / w.sum((1, 2))[:, None])[:, None].expand(-1, 2, 2)}
...     def decode(self, outputs):
...         return outputs
>>> x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
>>> r = poseig_joint(Centroid(), x, torch.full((1, 2, 2), 12.5), joint=1, steps=8, folds=8)
>>> r.attributions.shape, r.maps.shape, r.delta.shape
(torch.Size([1, 1, 3, 32, 32]), torch.Size([1, 1, 32, 32]), torch.Size([1, 1]))
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import nn

from handlab._checks import check_tensor
from handlab.attribution.config import PoseIGConfig, resolve
from handlab.attribution.engine import PoseIGResult, poseig
from handlab.attribution.indices import index_table, relation_index
from handlab.attribution.targets import JointSubset

__all__ = ["explain_batch", "poseig_joint"]


def poseig_joint(
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    joint: int,
    config: PoseIGConfig | None = None,
    **overrides: Any,
) -> PoseIGResult:
    """PoseIG of one joint's likelihood: :func:`~handlab.attribution.engine.poseig` with
    ``joints=(joint,)``.

    Args:
        model: a handlab pose model; images: (B, C, H, W); target_keypoints: (B, J, 2) px
            (or (B, J, 3) mm with ``space="3d"``); joint: the explained joint, in [0, J).
        config, overrides: as in :func:`~handlab.attribution.engine.poseig`.

    Returns:
        a :class:`~handlab.attribution.engine.PoseIGResult` whose joint axis has length 1:
        attributions (B, 1, C, H, W), maps (B, 1, H, W), delta/likelihood (B, 1).
    """
    check_tensor("target_keypoints", target_keypoints)
    joints = target_keypoints.shape[1] if target_keypoints.ndim == 3 else 0
    if not isinstance(joint, int) or isinstance(joint, bool) or not 0 <= joint < joints:
        raise ValueError(f"joint: expected an int in [0, {joints}), got {joint!r}")
    return poseig(model, images, target_keypoints, resolve(config, **overrides, joints=(joint,)))


def explain_batch(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    config: PoseIGConfig | None = None,
    *,
    sample_ids: list[int] | None = None,
    **overrides: Any,
) -> tuple[PoseIGResult, pd.DataFrame, torch.Tensor]:
    """PoseIG maps, the index table and the relation index of a batch of samples.

    Args:
        model: a handlab RGB pose model (2D keypoints are explained against the ground truth).
        batch: ``image`` (B, 3, H, W) in [0, 1], ``keypoints`` (B, J, 2) px, ``visibility``
            (B, J); optional ``mask`` (B, 1, H, W) or (B, H, W) for FI (synth and the loaders
            give it).
        config, overrides: the PoseIG settings, as in :func:`~handlab.attribution.engine.poseig`
            (``joints`` picks the explained joints; the table then holds those).
        sample_ids: B ids for the table's ``sample`` column (default 0..B-1).

    Returns:
        ``(result, table, ri)``: the :class:`PoseIGResult`; one row per (sample, joint) with
        DI, FI, LI (NaN LI where visibility is 0), ``likelihood`` and ``delta``; and the
        relation index (B, J, J) with NaN rows/columns for invisible joints.
    """
    for key in ("image", "keypoints", "visibility"):
        if key not in batch:
            raise ValueError(f"batch: expected the key {key!r}, got keys {sorted(batch)}")
    images = batch["image"]
    images = images if images.is_floating_point() else images.float()  # model's dtype kept
    vis = batch["visibility"].to(images.dtype)
    hidden = vis <= 0  # (B, J): no usable ground truth
    keypoints = batch["keypoints"].to(images.dtype).masked_fill(hidden[..., None], 0.0)
    cfg = resolve(config, **overrides)
    if cfg.joints is not None:  # the table, LI and RI describe the explained joints only
        pick = list(cfg.joints)
        vis, hidden, keypoints = vis[:, pick], hidden[:, pick], keypoints[:, pick]
        cfg = resolve(cfg, joints=None)
        model = JointSubset(model, pick)
    res = poseig(model, images, keypoints, cfg)
    mask = batch.get("mask")
    if mask is not None:
        mask = mask.reshape(images.shape[0], *images.shape[-2:])  # (B, H, W)
    table = index_table(
        res.maps, mask=mask, keypoints=keypoints, visibility=vis, sample_ids=sample_ids
    )
    table.loc[hidden.flatten().numpy(), "LI"] = float("nan")
    table["likelihood"] = res.likelihood.flatten().numpy()
    table["delta"] = res.delta.flatten().numpy()
    ri = relation_index(res.maps, keypoints)  # (B, J, J)
    ri = ri.masked_fill(hidden[:, :, None] | hidden[:, None, :], float("nan"))
    return res, table, ri
