"""Occlusion buckets: per-joint errors tabulated by how occluded each joint is.

Taught in chapters 06 (HandOccNet) and 07 (Deformer).

The buckets are those of the Deformer paper's DexYCB table (seminar seed 003): occlusion in
0-25 %, 25-50 %, 50-75 % and 75-100 %, half-open on the right except the last, so 0.25 falls in
25-50 % and 1.0 in 75-100 %. Occlusion is a fraction in [0, 1], given per joint (N, J) or per
sample (N,) (the hand's occluded fraction, as DexYCB reports it; every joint of the sample then
lands in the sample's bucket). The tables are generic: any model's predictions, any unit.

>>> assign_buckets(torch.tensor([0.0, 0.2499, 0.25, 0.5, 0.75, 1.0])).tolist()
[0, 0, 1, 2, 3, 3]
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch

from handlab._checks import check_finite, check_shape, check_tensor

__all__ = [
    "BUCKETS",
    "BUCKET_NAMES",
    "assign_buckets",
    "bucket_means",
    "bucket_table",
    "joint_errors",
]

BUCKETS: tuple[tuple[float, float], ...] = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
BUCKET_NAMES: tuple[str, ...] = ("0-25%", "25-50%", "50-75%", "75-100%")


def assign_buckets(occlusion: torch.Tensor) -> torch.Tensor:
    """Bucket index 0..3 of each occlusion fraction: ``occlusion`` (...) in [0, 1] -> long (...).

    >>> assign_buckets(torch.tensor([[0.1, 0.6]])).tolist()
    [[0, 2]]
    """
    check_tensor("occlusion", occlusion)
    occlusion = torch.as_tensor(occlusion)
    check_finite("occlusion", occlusion)
    if occlusion.numel() and (occlusion.min() < 0 or occlusion.max() > 1):
        raise ValueError(
            "occlusion: expected fractions in [0, 1], got values in "
            f"[{float(occlusion.min())}, {float(occlusion.max())}]"
        )
    edges = torch.tensor([hi for _, hi in BUCKETS[:-1]], dtype=occlusion.dtype)
    return torch.bucketize(occlusion.contiguous(), edges, right=True)


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean error per joint: ``pred``, ``target`` (N, J, D) -> (N, J), in their unit.

    >>> joint_errors(torch.zeros(1, 2, 2), torch.tensor([[[3.0, 4.0], [0.0, 1.0]]])).tolist()
    [[5.0, 1.0]]
    """
    check_shape("pred", pred, (None, None, None))
    check_shape("target", target, tuple(pred.shape))
    return torch.linalg.vector_norm(torch.as_tensor(pred) - torch.as_tensor(target), dim=-1)


def _joint_occlusion(occlusion: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if occlusion.dim() == 1:
        check_shape("occlusion", occlusion, (shape[0],))
        return occlusion[:, None].expand(shape)
    check_shape("occlusion", occlusion, shape)
    return occlusion


def bucket_means(
    errors: torch.Tensor, occlusion: torch.Tensor, mask: torch.Tensor | None = None
) -> dict[str, tuple[float, int]]:
    """Mean error and joint count in each bucket and over all joints.

    Args:
        errors: (N, J) per-joint errors (any unit).
        occlusion: (N, J) per-joint or (N,) per-sample occlusion fractions in [0, 1].
        mask: optional (N, J) bool, the joints to count (e.g. joints inside the image).

    Returns:
        ``{"all": (mean, n), "0-25%": (mean, n), ...}``; the mean is NaN for an empty bucket.

    >>> bucket_means(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.9]]))["75-100%"]
    (3.0, 1)
    """
    check_shape("errors", errors, (None, None))
    check_finite("errors", errors)
    occ = _joint_occlusion(torch.as_tensor(occlusion), tuple(errors.shape))
    buckets = assign_buckets(occ)  # (N, J)
    keep = torch.ones_like(errors, dtype=torch.bool)
    if mask is not None:
        check_shape("mask", mask, tuple(errors.shape))
        keep = torch.as_tensor(mask).bool()
    out = {"all": _mean(errors[keep])}
    for k, name in enumerate(BUCKET_NAMES):
        out[name] = _mean(errors[keep & (buckets == k)])
    return out


def _mean(values: torch.Tensor) -> tuple[float, int]:
    n = int(values.numel())
    return (float(values.double().mean()) if n else float("nan")), n


def bucket_table(
    predictions: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    occlusion: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Mean per-joint error of each model by occlusion bucket, one row per model.

    Args:
        predictions: model name -> (N, J, D) predicted joints (keypoints px or xyz mm).
        target: (N, J, D) ground truth in the same unit.
        occlusion: (N, J) or (N,) occlusion fractions in [0, 1].
        mask: optional (N, J) bool of joints to count.

    Returns:
        a DataFrame indexed by model name with columns ``all``, ``0-25%`` ... ``75-100%`` (mean
        error, NaN for an empty bucket) and a last row ``joints`` with each column's count.

    >>> t = torch.zeros(2, 1, 3)
    >>> table = bucket_table({"m": t + 1.0}, t, torch.tensor([0.1, 0.8]))
    >>> float(table.loc["m", "all"]), float(table.loc["joints", "75-100%"])
    (1.7320508..., 1.0)
    """
    if not isinstance(predictions, Mapping) or not predictions:
        raise TypeError("predictions: expected a non-empty dict name -> (N, J, D) tensor")
    rows, counts = {}, None
    for name, pred in predictions.items():
        check_shape(f"predictions[{name!r}]", pred, tuple(target.shape))
        means = bucket_means(joint_errors(pred, target), occlusion, mask)
        rows[name] = {k: m for k, (m, _) in means.items()}
        counts = {k: float(n) for k, (_, n) in means.items()}
    rows["joints"] = counts
    return pd.DataFrame.from_dict(rows, orient="index")
