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

from handlab._checks import check_shape, check_tensor
from handlab.attribution.engine import (
    DEFAULT_MAX_BATCH,
    DEFAULT_METHOD,
    DEFAULT_STEPS,
    PoseIGResult,
    poseig,
)
from handlab.attribution.indices import index_table, relation_index
from handlab.attribution.paths import BlurPath, StraightPath
from handlab.attribution.sanity import JointSubset
from handlab.attribution.targets import ALPHA, _check_targets

__all__ = ["explain_batch", "poseig_joint"]


def poseig_joint(
    model: nn.Module,
    images: torch.Tensor,
    target_keypoints: torch.Tensor,
    joint: int,
    *,
    path: str | StraightPath | BlurPath = "blur",
    method: str = DEFAULT_METHOD,
    steps: int = DEFAULT_STEPS,
    baseline: str | torch.Tensor = "black",
    alpha: float = ALPHA,
    space: str = "2d",
    kernel_size: int = 31,
    sigma: float = 19.0,
    folds: int | None = 50,
    max_batch: int = DEFAULT_MAX_BATCH,
    seed: int = 0,
) -> PoseIGResult:
    """PoseIG of one joint's likelihood: :func:`~handlab.attribution.engine.poseig` with J = 1.

    Args:
        model: a handlab pose model; images: (B, C, H, W); target_keypoints: (B, J, 2) px
            (or (B, J, 3) mm with ``space="3d"``); joint: the explained joint, in [0, J).
        path, method, steps, baseline, alpha, kernel_size, sigma, folds, max_batch, seed: as in
            :func:`~handlab.attribution.engine.poseig` (``seed`` seeds noise baselines).

    Returns:
        a :class:`~handlab.attribution.engine.PoseIGResult` whose joint axis has length 1:
        attributions (B, 1, C, H, W), maps (B, 1, H, W), delta/likelihood (B, 1).
    """
    for name, value in (("images", images), ("target_keypoints", target_keypoints)):
        check_tensor(name, value)
    check_shape("images", images, (None, None, None, None))
    _check_targets(model, target_keypoints, space)
    check_shape("target_keypoints", target_keypoints, (images.shape[0], None, None))
    joints = target_keypoints.shape[1]
    if not isinstance(joint, int) or isinstance(joint, bool) or not 0 <= joint < joints:
        raise ValueError(f"joint: expected an int in [0, {joints}), got {joint!r}")
    # One mechanism for "explain only these joints": the JointSubset wrapper (chapter 10 uses it
    # for several joints); poseig then takes one VJP per path point instead of J.
    return poseig(
        JointSubset(model, [joint]), images, target_keypoints[:, [joint]], path=path,
        method=method, steps=steps, baseline=baseline, alpha=alpha, space=space,
        kernel_size=kernel_size, sigma=sigma, folds=folds, max_batch=max_batch, seed=seed,
    )  # fmt: skip


def explain_batch(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    steps: int = DEFAULT_STEPS,
    method: str = DEFAULT_METHOD,
    path: str = "blur",
    folds: int | str | None = "steps",
    max_batch: int = DEFAULT_MAX_BATCH,
    sample_ids: list[int] | None = None,
    **options: Any,
) -> tuple[PoseIGResult, pd.DataFrame, torch.Tensor]:
    """PoseIG maps, the index table and the relation index of a batch of samples.

    Args:
        model: a handlab RGB pose model (2D keypoints are explained against the ground truth).
        batch: ``image`` (B, 3, H, W) in [0, 1], ``keypoints`` (B, J, 2) px, ``visibility``
            (B, J); optional ``mask`` (B, 1, H, W) or (B, H, W) for FI (synth and the loaders
            give it).
        steps, method, path: as in :func:`~handlab.attribution.engine.poseig`; ``folds``
            ``"steps"`` (the default) uses as many blur folds as points on the blur path (the
            left Riemann nodes are then the fold points, the reference's sum at a lower cost);
            an int or None (a continuous sigma) is passed on.
        sample_ids: B ids for the table's ``sample`` column (default 0..B-1).
        options: further :func:`~handlab.attribution.engine.poseig` keywords (``baseline``,
            ``alpha``, ``noise_samples``, ``seed``, ...).

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
    res = poseig(
        model, images, keypoints, path=path, method=method, steps=steps,
        folds=steps if folds == "steps" else folds, max_batch=max_batch, **options,
    )  # fmt: skip
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
