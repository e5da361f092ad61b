"""The canonical 21-joint hand skeleton and the index maps from each dataset's joint order.

Taught in chapter 00 (``notebooks/00_tour.py``).

Canonical order (FreiHAND, DexYCB, CMU Panoptic/OpenPose, MMPose): 0 wrist; 1-4 thumb (CMC, MCP,
IP, tip); 5-8 index (MCP, PIP, DIP, tip); 9-12 middle; 13-16 ring; 17-20 little.

Index maps are written as ``canonical[i] = source[MAP[i]]`` (see ``to_canonical``). Joint groups
follow PoseIG's hand grouping by position along each finger's chain (the thumb's CMC sits in the
MCP group by position).

>>> JOINT_NAMES[8]
'index_tip'
>>> [JOINT_NAMES[j] for j in GROUPS["TIP"]]
['thumb_tip', 'index_tip', 'middle_tip', 'ring_tip', 'little_tip']
>>> to_canonical(list(range(21)), "rhd")[:5]
[0, 4, 3, 2, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

__all__ = [
    "BONES",
    "DATASET_ORDERS",
    "FINGERS",
    "GROUPS",
    "GROUP_OF_JOINT",
    "JOINT_NAMES",
    "NUM_JOINTS",
    "NYU_EVAL_JOINTS",
    "PARENTS",
    "flip_keypoints",
    "flip_xyz",
    "from_canonical",
    "to_canonical",
    "two_hand_flip",
]

NUM_JOINTS = 21
FINGER_NAMES = ("thumb", "index", "middle", "ring", "little")
_THUMB_PARTS = ("cmc", "mcp", "ip", "tip")
_FINGER_PARTS = ("mcp", "pip", "dip", "tip")

JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{part}"
    for finger in FINGER_NAMES
    for part in (_THUMB_PARTS if finger == "thumb" else _FINGER_PARTS)
)

# Each finger chains from the wrist: 0 -> 4f+1 -> 4f+2 -> 4f+3 -> 4f+4.
PARENTS: tuple[int, ...] = (-1,) + tuple(0 if j % 4 == 1 else j - 1 for j in range(1, NUM_JOINTS))
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))
FINGERS: dict[str, tuple[int, ...]] = {
    name: tuple(range(4 * f + 1, 4 * f + 5)) for f, name in enumerate(FINGER_NAMES)
}
GROUPS: dict[str, tuple[int, ...]] = {
    "wrist": (0,),
    "MCP": (1, 5, 9, 13, 17),
    "PIP": (2, 6, 10, 14, 18),
    "DIP": (3, 7, 11, 15, 19),
    "TIP": (4, 8, 12, 16, 20),
}
GROUP_OF_JOINT: tuple[str, ...] = tuple(
    next(g for g, joints in GROUPS.items() if j in joints) for j in range(NUM_JOINTS)
)

# canonical[i] = source[MAP[i]]  (../shared/reference/hands.md section 1)
DATASET_ORDERS: dict[str, tuple[int, ...]] = {
    "canonical": tuple(range(21)),
    "freihand": tuple(range(21)),
    "dexycb": tuple(range(21)),
    "panoptic": tuple(range(21)),
    # RHD, per hand: wrist, then each finger tip -> base (right hand is +21 in the 42 array)
    "rhd": (0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17),
    # STB: palm centre first (NOT the wrist), then little, ring, middle, index, thumb, base -> tip
    "stb": (0, 17, 18, 19, 20, 13, 14, 15, 16, 9, 10, 11, 12, 5, 6, 7, 8, 1, 2, 3, 4),
    # InterHand2.6M, per hand: thumb tip..base, index, middle, ring, little, wrist last
    "interhand": (20, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 19, 18, 17, 16),
    # MANO joint order with appended tips (HO-3D, manopth)
    "mano": (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20),
}
# NYU's 36 joints have no clean 21-joint skeleton; the benchmarks evaluate these 14.
NYU_EVAL_JOINTS: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)

T = TypeVar("T", torch.Tensor, np.ndarray, list)


def _order(source: str) -> tuple[int, ...]:
    key = source.lower()
    if key not in DATASET_ORDERS:
        raise ValueError(f"source: expected one of {sorted(DATASET_ORDERS)}, got {source!r}")
    return DATASET_ORDERS[key]


def _take(joints: T, index: Sequence[int], name: str) -> T:
    n = len(joints) if isinstance(joints, list) else joints.shape[-2 if joints.ndim > 1 else 0]
    if n != NUM_JOINTS:
        raise ValueError(f"{name}: expected 21 joints on the joint axis, got {n}")
    if isinstance(joints, list):
        return [joints[i] for i in index]
    axis = -2 if joints.ndim > 1 else 0
    idx = list(index)
    if isinstance(joints, torch.Tensor):
        return joints.index_select(axis % joints.ndim, torch.tensor(idx, device=joints.device))
    return np.take(joints, idx, axis=axis)


def to_canonical(joints: T, source: str) -> T:
    """Reorder joints from a dataset's order to the canonical one.

    Args:
        joints: (..., 21, C) tensor/array, or a list of 21 items, in ``source`` order.
        source: a key of ``DATASET_ORDERS`` (``"rhd"``, ``"stb"``, ``"interhand"``, ``"mano"``...).

    Returns:
        the same type, reordered so that ``out[i] = joints[MAP[i]]``.

    >>> to_canonical(torch.arange(21.0)[:, None], "mano")[1:5, 0].tolist()
    [13.0, 14.0, 15.0, 16.0]
    """
    return _take(joints, _order(source), "joints")


def from_canonical(joints: T, source: str) -> T:
    """Inverse of :func:`to_canonical`: canonical order back to ``source`` order.

    >>> x = list(range(21))
    >>> from_canonical(to_canonical(x, "stb"), "stb") == x
    True
    """
    order = _order(source)
    inverse = [0] * NUM_JOINTS
    for i, j in enumerate(order):
        inverse[j] = i
    return _take(joints, inverse, "joints")


def flip_keypoints(keypoints: torch.Tensor, width: int) -> torch.Tensor:
    """Mirror 2D keypoints (..., 2) pixels (x, y) horizontally in an image of ``width`` pixels.

    Pixel centres are at integer coordinates, so x maps to ``width - 1 - x``. A left hand becomes
    a right hand; the joint order is unchanged (one hand, one skeleton).

    >>> flip_keypoints(torch.tensor([[0.0, 5.0]]), 128).tolist()
    [[127.0, 5.0]]
    """
    out = keypoints.clone()
    out[..., 0] = (width - 1) - keypoints[..., 0]
    return out


def flip_xyz(xyz: torch.Tensor) -> torch.Tensor:
    """Mirror 3D joints (..., 3) mm in the camera frame (x -> -x): the 3D counterpart of a flip.

    >>> flip_xyz(torch.tensor([[10.0, 2.0, 300.0]])).tolist()
    [[-10.0, 2.0, 300.0]]
    """
    out = xyz.clone()
    out[..., 0] = -xyz[..., 0]
    return out


def two_hand_flip(joints: T) -> T:
    """Swap the two halves of a 42-joint two-hand array (left <-> right), e.g. RHD's or
    InterHand2.6M's, as a horizontal flip of the image requires.

    >>> two_hand_flip(list(range(42)))[:2]
    [21, 22]
    """
    n = len(joints) if isinstance(joints, list) else joints.shape[-2 if joints.ndim > 1 else 0]
    if n != 2 * NUM_JOINTS:
        raise ValueError(f"joints: expected 42 joints (two hands), got {n}")
    index = list(range(21, 42)) + list(range(21))
    if isinstance(joints, list):
        return [joints[i] for i in index]
    axis = -2 if joints.ndim > 1 else 0
    if isinstance(joints, torch.Tensor):
        return joints.index_select(axis % joints.ndim, torch.tensor(index, device=joints.device))
    return np.take(joints, index, axis=axis)
