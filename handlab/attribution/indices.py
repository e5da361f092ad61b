"""PoseIG's indices of an attribution map: diffusion, foreground, localization and relation.

Taught in chapter 09 (``notebooks/09_indices.py``).

For a (sample, joint) map ``A`` (H, W) >= 0 (the maps of :func:`~handlab.attribution.poseig`),
with ``P = A / sum(A)`` and ``N = H * W`` (He et al., CVPR 2023; DI from LAM, Gu & Dong 2021):

- DI, diffusion index: ``(1 - Gini(A)) * 100``; Gini of the flattened map shifted to be
  non-negative plus a tiny epsilon, sorted ascending, ``sum((2i - n - 1) a_i) / (n sum a_i)``.
  A uniform map has DI = 100, a single-pixel map DI ~ 100 / N. High DI = widely spread.
- FI, foreground index: ``sum(P * M) / (|M| / N)`` with ``M`` the hand mask dilated by 2 px
  (a 5 x 5 max filter). FI = 1 is chance; FI > 1 concentrates on the hand.
- LI, localization index: the same with the joint's own Gaussian heatmap as a soft mask (peak 1,
  ``sigma`` = 8 input px, the reference's 2 heatmap px at stride 4, cut at 3 sigma), encoded by
  :class:`handlab.codecs.GaussianHeatmap`. LI > 1: attribution sits on the joint itself.
- RI, relation index: ``RI[j1, j2]`` = LI of joint j1's map against joint j2's heatmap: how
  much j1's prediction relies on the pixels around j2 (a J x J matrix per sample).

An index is NaN where it is undefined (an all-zero map, a joint outside the image). Tables are
tidy pandas DataFrames; :func:`aggregate` averages per joint, group (wrist/MCP/PIP/DIP/TIP) or
finger, weighted by visibility: invisible joints are excluded, not counted as zeros (the
reference's running mean counts them, which biases it).

>>> maps = torch.ones(1, 1, 8, 8)
>>> diffusion_index(maps).tolist(), foreground_index(maps, torch.ones(1, 8, 8)).tolist()
([[100.0]], [[1.0]])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from handlab._checks import check_shape, check_tensor
from handlab.codecs import GaussianHeatmap
from handlab.skeleton import FINGERS, GROUP_OF_JOINT, JOINT_NAMES, NUM_JOINTS

__all__ = [
    "INDICES",
    "aggregate",
    "diffusion_index",
    "foreground_index",
    "gini",
    "index_table",
    "joint_masks",
    "localization_index",
    "relation_index",
    "relation_table",
]

INDICES = ("DI", "FI", "LI")
SIGMA_PX = 8.0  # the reference's sigma = 2 heatmap px at stride 4, in input pixels
_FINGER_OF_JOINT = {j: name for name, joints in FINGERS.items() for j in joints}


def _maps(maps: torch.Tensor) -> torch.Tensor:
    check_tensor("maps", maps)
    check_shape("maps", maps, (None, None, None, None))
    return torch.as_tensor(maps).to(torch.float64)


def gini(values: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Gini coefficient over the last axis: (..., n) -> (...), in [0, 1).

    >>> gini(torch.tensor([1.0, 1.0, 1.0, 1.0])).item() < 1e-9
    True
    >>> round(gini(torch.tensor([0.0, 0.0, 0.0, 1.0])).item(), 6)
    0.75
    """
    a = values.to(torch.float64)
    a = a - a.amin(-1, keepdim=True).clamp_max(0)  # shift negative maps to start at 0
    a = torch.sort(a + eps, dim=-1).values
    n = a.shape[-1]
    i = torch.arange(1, n + 1, dtype=a.dtype)
    return ((2 * i - n - 1) * a).sum(-1) / (n * a.sum(-1))


def diffusion_index(maps: torch.Tensor) -> torch.Tensor:
    """DI = (1 - Gini) * 100 of each map: (B, J, H, W) -> (B, J); NaN for an all-zero map.

    >>> delta = torch.zeros(1, 1, 4, 4); delta[0, 0, 1, 2] = 1.0
    >>> round(diffusion_index(delta).item(), 4)
    6.25
    """
    m = _maps(maps)
    di = (1 - gini(m.flatten(2))) * 100
    return torch.where(m.flatten(2).abs().sum(-1) > 0, di, torch.nan)


def _soft_mask_index(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    # sum(P * M) / (sum(M) / N) for every map (B, J1) against every mask (B, J2): (B, J1, J2)
    n = maps.shape[-1] * maps.shape[-2]
    p = maps / maps.sum((-2, -1), keepdim=True)  # (B, J1, H, W); NaN for all-zero maps
    overlap = torch.einsum("bihw,bkhw->bik", p, masks)
    area = masks.sum((-2, -1))[:, None, :] / n  # (B, 1, J2)
    return torch.where(area > 0, overlap / area, torch.nan)


def foreground_index(maps: torch.Tensor, mask: torch.Tensor, dilation: int = 2) -> torch.Tensor:
    """FI of each map against the hand mask dilated by ``dilation`` px: (B, J) (1 = chance).

    Args:
        maps: (B, J, H, W) >= 0; mask: (B, H, W) hand mask (nonzero = hand).

    >>> mask = torch.zeros(1, 8, 8); mask[0, :2, :2] = 1
    >>> maps = torch.zeros(1, 1, 8, 8); maps[0, 0, 0, 0] = 1
    >>> foreground_index(maps, mask, dilation=0).tolist()
    [[16.0]]
    """
    m = _maps(maps)
    check_tensor("mask", mask)
    check_shape("mask", mask, (m.shape[0], m.shape[2], m.shape[3]))
    if not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"dilation: expected an int >= 0 (px), got {dilation!r}")
    hand = (torch.as_tensor(mask) != 0).to(torch.float64)[:, None]  # (B, 1, H, W)
    if dilation:
        hand = F.max_pool2d(hand, 2 * dilation + 1, stride=1, padding=dilation)
    return _soft_mask_index(m, hand)[..., 0]


def joint_masks(
    keypoints: torch.Tensor, size: tuple[int, int], sigma: float = SIGMA_PX
) -> torch.Tensor:
    """Peak-1 Gaussian soft masks (B, J, H, W) at keypoints (B, J, 2) px, cut at 3 sigma.

    Encoded by :class:`handlab.codecs.GaussianHeatmap` at stride 1; a joint outside the image
    gets an all-zero mask.

    >>> joint_masks(torch.tensor([[[2.0, 1.0]]]), (4, 4), sigma=1.0)[0, 0, 1].tolist()
    [0.1353..., 0.6065..., 1.0, 0.6065...]
    """
    check_tensor("keypoints", keypoints)
    check_shape("keypoints", keypoints, (None, None, 2))
    codec = GaussianHeatmap(heatmap_size=size, stride=1, sigma=sigma)
    masks, _ = codec.encode(torch.as_tensor(keypoints).to(torch.float64))
    return torch.where(masks >= np.exp(-4.5), masks, 0.0)  # 3 sigma: exp(-9 / 2)


def localization_index(
    maps: torch.Tensor, keypoints: torch.Tensor, sigma: float = SIGMA_PX
) -> torch.Tensor:
    """LI of each joint's map against its own joint's Gaussian: (B, J) (1 = chance).

    Args:
        maps: (B, J, H, W) >= 0; keypoints: (B, J, 2) input px (x, y), ground truth.
        sigma: the soft mask's std in input px.

    >>> maps = torch.ones(1, 1, 16, 16)
    >>> localization_index(maps, torch.tensor([[[8.0, 8.0]]])).tolist()
    [[1.0]]
    """
    return torch.diagonal(relation_index(maps, keypoints, sigma), dim1=1, dim2=2)


def relation_index(
    maps: torch.Tensor, keypoints: torch.Tensor, sigma: float = SIGMA_PX
) -> torch.Tensor:
    """RI[b, j1, j2]: LI of joint j1's map against joint j2's Gaussian: (B, J, J).

    >>> maps = torch.zeros(1, 2, 16, 16); maps[0, 0, 3, 3] = 1; maps[0, 1, 3, 3] = 1
    >>> ri = relation_index(maps, torch.tensor([[[3.0, 3.0], [12.0, 12.0]]]), sigma=1.0)
    >>> ri[0, :, 0] > 1, ri[0, :, 1] == 0
    (tensor([True, True]), tensor([True, True]))
    """
    m = _maps(maps)
    check_shape("keypoints", keypoints, (m.shape[0], m.shape[1], 2))
    return _soft_mask_index(m, joint_masks(keypoints, tuple(m.shape[-2:]), sigma))


def _joint_columns(j: int, joints: int) -> dict[str, object]:
    if joints != NUM_JOINTS:
        return {"joint_name": f"joint{j}", "group": None, "finger": None}
    return {
        "joint_name": JOINT_NAMES[j],
        "group": GROUP_OF_JOINT[j],
        "finger": _FINGER_OF_JOINT.get(j),
    }


def _visibility(visibility: torch.Tensor | None, b: int, j: int) -> np.ndarray:
    if visibility is None:
        return np.ones((b, j))
    check_tensor("visibility", visibility)
    check_shape("visibility", visibility, (b, j))
    return np.asarray(torch.as_tensor(visibility).to(torch.float64))


def index_table(
    maps: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    keypoints: torch.Tensor | None = None,
    visibility: torch.Tensor | None = None,
    sigma: float = SIGMA_PX,
    sample_ids: list[int] | None = None,
) -> pd.DataFrame:
    """DI (always), FI (with ``mask``) and LI (with ``keypoints``) as a tidy table.

    Args:
        maps: (B, J, H, W); mask: (B, H, W); keypoints: (B, J, 2) px; visibility: (B, J) in
            [0, 1] (weights for :func:`aggregate`); sample_ids: B ids (default 0..B-1).

    Returns:
        one row per (sample, joint): sample, joint, joint_name, group, finger, visibility,
        DI, FI, LI (NaN where not computed or undefined).

    >>> t = index_table(torch.ones(2, 21, 8, 8))
    >>> t.shape, t.loc[4, ["joint_name", "group", "finger"]].tolist(), float(t.DI[4])
    ((42, 9), ['thumb_tip', 'TIP', 'thumb'], 100.0)
    """
    m = _maps(maps)
    b, j = m.shape[:2]
    vis = _visibility(visibility, b, j)
    cols = {"DI": diffusion_index(m).numpy()}
    nan = np.full((b, j), np.nan)
    cols["FI"] = foreground_index(m, mask).numpy() if mask is not None else nan
    cols["LI"] = localization_index(m, keypoints, sigma).numpy() if keypoints is not None else nan
    ids = list(range(b)) if sample_ids is None else list(sample_ids)
    if len(ids) != b:
        raise ValueError(f"sample_ids: expected {b} ids, got {len(ids)}")
    rows = [
        {"sample": ids[s], "joint": k, **_joint_columns(k, j), "visibility": vis[s, k]}
        | {name: float(cols[name][s, k]) for name in INDICES}
        for s in range(b)
        for k in range(j)
    ]
    return pd.DataFrame(rows)


def relation_table(
    maps: torch.Tensor,
    keypoints: torch.Tensor,
    *,
    visibility: torch.Tensor | None = None,
    sigma: float = SIGMA_PX,
    sample_ids: list[int] | None = None,
) -> pd.DataFrame:
    """RI as a tidy table: sample, source, target, weight (vis[source] * vis[target]), RI.

    >>> relation_table(torch.ones(1, 2, 16, 16), torch.full((1, 2, 2), 8.0)).RI.tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    ri = relation_index(maps, keypoints, sigma).numpy()  # (B, J, J)
    b, j = ri.shape[:2]
    vis = _visibility(visibility, b, j)
    ids = list(range(b)) if sample_ids is None else list(sample_ids)
    s, src, dst = np.meshgrid(np.arange(b), np.arange(j), np.arange(j), indexing="ij")
    return pd.DataFrame(
        {
            "sample": np.asarray(ids)[s.ravel()],
            "source": src.ravel(),
            "target": dst.ravel(),
            "weight": (vis[:, :, None] * vis[:, None, :]).ravel(),
            "RI": ri.ravel(),
        }
    )


def aggregate(
    table: pd.DataFrame, by: str = "joint", indices: tuple[str, ...] = INDICES
) -> pd.DataFrame:
    """Visibility-weighted means of ``indices`` per ``by``: "joint", "group", "finger", ...

    Rows with visibility 0 or a NaN index are excluded from that index's mean (never counted as
    zeros); ``n_<index>`` counts the rows that contributed. Joints without a finger (the wrist)
    drop out of the "finger" view.

    >>> t = pd.DataFrame({"group": ["MCP", "MCP", "TIP"], "visibility": [1.0, 0.0, 1.0],
    ...                   "FI": [2.0, 0.0, 3.0]})
    >>> aggregate(t, "group", ("FI",)).FI.tolist()
    [2.0, 3.0]
    """
    if by not in table.columns:
        raise ValueError(f"by: expected a column of the table {list(table.columns)}, got {by!r}")
    missing = [name for name in indices if name not in table.columns]
    if missing or "visibility" not in table.columns:
        raise ValueError(
            f"table: expected columns 'visibility' and {list(indices)}, missing {missing}"
        )
    rows = []
    for key, part in table.dropna(subset=[by]).groupby(by, sort=False):
        row: dict[str, object] = {by: key}
        for name in indices:
            ok = part[name].notna() & (part["visibility"] > 0)
            w = part.loc[ok, "visibility"].to_numpy(dtype=float)
            v = part.loc[ok, name].to_numpy(dtype=float)
            row[name] = float((w * v).sum() / w.sum()) if w.sum() > 0 else np.nan
            row[f"n_{name}"] = int(ok.sum())
        rows.append(row)
    order = {"group": ["wrist", "MCP", "PIP", "DIP", "TIP"], "finger": list(FINGERS)}.get(by)
    out = pd.DataFrame(rows)
    if order is not None:
        out = out.set_index(by).reindex([k for k in order if k in set(out[by])]).reset_index()
    return out.sort_values(by).reset_index(drop=True) if order is None else out
