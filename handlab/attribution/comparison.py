"""One PoseIG report across several models on the same images: which model looks where.

Taught in chapter 11 (``notebooks/11_compare_zoo.py``).

:func:`explain_models` runs :func:`~handlab.attribution.poseig` for every model on the same
images and joints (a :class:`~handlab.attribution.sanity.JointSubset` keeps the cost to the
chosen joints) and returns one tidy table, one row per (model, sample, joint): the indices of
:func:`~handlab.attribution.index_table` (DI, FI, LI), the likelihood ``F(x)``, the completeness
gap ``delta`` (with ``F`` at the path's start, to judge it against ``F(x) - F(x')``) and the
model's own error on that joint, plus every model's maps for the
small-multiples figure. :func:`~handlab.attribution.compare_models` then averages per group.

>>> class Centroid(nn.Module):  # all 21 joints at the image's intensity centroid
...     num_joints = 21
...     def forward(self, images):
...         w = images.sum(1)
...         ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
...         k = torch.stack([(w * xs).sum((1, 2)), (w * ys).sum((1, 2))], -1)
...         return {"keypoints": (k / w.sum((1, 2))[:, None])[:, None].expand(-1, 21, 2)}
...     def decode(self, outputs):
...         return outputs
>>> data = {"image": torch.rand(1, 3, 32, 32), "keypoints": torch.full((1, 21, 2), 16.0)}
>>> table, maps = explain_models({"c": Centroid()}, data, joints=[0, 8], path="straight")
>>> table[["joint_name", "group"]].values.tolist(), tuple(maps["c"].shape)
([['wrist', 'wrist'], ['index_tip', 'TIP']], (1, 2, 32, 32))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from handlab._checks import check_shape, check_tensor
from handlab.attribution.engine import poseig
from handlab.attribution.indices import index_table
from handlab.attribution.sanity import JointSubset
from handlab.skeleton import FINGERS, GROUP_OF_JOINT, JOINT_NAMES, NUM_JOINTS

__all__ = ["COLUMNS", "explain_models"]

COLUMNS = (
    "model", "sample", "joint", "joint_name", "group", "finger", "visibility",
    "DI", "FI", "LI", "likelihood", "baseline_likelihood", "delta", "error_px",
)  # fmt: skip
_FINGER_OF_JOINT = {j: name for name, joints in FINGERS.items() for j in joints}


def _check_data(data: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
    for key in ("image", "keypoints"):
        if key not in data:
            raise ValueError(f"data: expected keys 'image' and 'keypoints', got {sorted(data)}")
        check_tensor(f"data['{key}']", data[key])
    check_shape("data['image']", data["image"], (None, 3, None, None))
    b, _, h, w = data["image"].shape
    check_shape("data['keypoints']", data["keypoints"], (b, NUM_JOINTS, 2))
    if "visibility" in data:
        check_shape("data['visibility']", data["visibility"], (b, NUM_JOINTS))
    if "mask" in data:
        check_shape("data['mask']", data["mask"], (b, 1, h, w))
    return b, h, w


def explain_models(
    models: Mapping[str, nn.Module],
    data: Mapping[str, torch.Tensor],
    *,
    joints: Sequence[int] | None = None,
    **poseig_kwargs: Any,
) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """PoseIG maps, indices, completeness and error of every model on the same samples.

    Args:
        models: name -> handlab 2D/3D RGB pose model with 21 joints (explained in 2D, input px).
        data: ``image`` (B, 3, H, W) in [0, 1], ``keypoints`` (B, 21, 2) px ground truth (the
            likelihood's target and LI's centres), optional ``visibility`` (B, 21) and ``mask``
            (B, 1, H, W) for FI (the generator's keys).
        joints: which joints to explain (default all 21).
        **poseig_kwargs: passed to :func:`~handlab.attribution.poseig` (path, steps, folds, ...).

    Returns:
        (table, maps): ``table`` has the columns :data:`COLUMNS`, one row per (model, sample,
        explained joint); error_px is the distance of the model's ``forward`` keypoint to the
        ground truth (px). ``maps`` is name -> (B, len(joints), H, W) maps in [0, 1].
    """
    if not models:
        raise ValueError("models: expected at least one name -> model, got none")
    b, _, _ = _check_data(data)
    joints = list(range(NUM_JOINTS)) if joints is None else [int(j) for j in joints]
    images = data["image"]
    gt = data["keypoints"].to(images.dtype)
    vis = data["visibility"].to(images.dtype) if "visibility" in data else torch.ones(b, NUM_JOINTS)
    mask = data["mask"][:, 0] if "mask" in data else None
    tables, maps = [], {}
    for name, model in models.items():
        sub = JointSubset(model, joints)
        res = poseig(sub, images, gt[:, joints], **poseig_kwargs)
        with torch.no_grad():
            pred = model(images)["keypoints"][:, joints]  # (B, J', 2) px
        table = index_table(res.maps, mask=mask, keypoints=gt[:, joints], visibility=vis[:, joints])
        table["joint"] = [joints[k] for k in table["joint"]]
        table["joint_name"] = [JOINT_NAMES[j] for j in table["joint"]]
        table["group"] = [GROUP_OF_JOINT[j] for j in table["joint"]]
        table["finger"] = [_FINGER_OF_JOINT.get(j) for j in table["joint"]]
        table["likelihood"] = res.likelihood.flatten().numpy()
        table["baseline_likelihood"] = res.baseline_likelihood.flatten().numpy()
        table["delta"] = res.delta.flatten().numpy()
        table["error_px"] = (pred - gt[:, joints]).norm(dim=-1).flatten().numpy()
        table.insert(0, "model", name)
        tables.append(table)
        maps[name] = res.maps
    return pd.concat(tables, ignore_index=True)[list(COLUMNS)], maps
