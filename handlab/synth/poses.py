"""A pose sampler: natural hand configurations mixed with free poses, finger coupling, limits.

Taught in chapter 00 (``notebooks/00_tour.py``).

Natural hand poses are a small family (open, relaxed, fist, point, pinch, OK, grasp, counting);
mixing those templates with noise gives far more realistic statistics than sampling every angle
uniformly (``/work/shared/reference/synthetic-hands.md``). A share of free poses, uniform within
:data:`~handlab.hand_model.POSE_LIMITS`, keeps the rest of the space covered. In every pose
the DIP flexion follows the PIP (about 2/3 of it, with noise) and the fingers' abduction spreads
together, as in real hands. Every sampled pose is clamped into the limits.

>>> g = torch.Generator().manual_seed(0)
>>> pose, kind = sample_pose(4, g)
>>> pose.shape, kind.shape
(torch.Size([4, 16, 3]), torch.Size([4]))
"""

from __future__ import annotations

import math

import torch

from handlab._checks import check_range
from handlab.hand_model import POSE_LIMITS, POSE_ROWS, SHAPE_LIMIT, clamp_pose
from handlab.synth.draws import Draws, as_draws

__all__ = ["TEMPLATES", "TEMPLATE_WEIGHTS", "sample_pose", "sample_shape", "template_pose"]

_D = math.pi / 180.0
_CLOSED = (85.0, 100.0)
_OPEN = (0.0, 0.0)
_THUMB_IN = (40.0, 5.0, 45.0, 50.0)  # thumb folded over the fingers

# name -> ((mcp, pip) flexion degrees for index, middle, ring, little),
#         (thumb cmc flexion, cmc abduction, mcp flexion, ip flexion), spread degrees.
# Thumb abduction is positive towards the fingers (negative: the thumb spread away). In "pinch"
# and "ok" the thumb angles were solved through HandModel so that thumb and index tips meet.
TEMPLATES: dict[str, tuple[tuple[tuple[float, float], ...], tuple[float, ...], float]] = {
    "open": ((_OPEN, _OPEN, _OPEN, _OPEN), (0.0, -20.0, 0.0, 0.0), 12.0),
    "relaxed": (((15, 25), (20, 30), (25, 35), (30, 40)), (10.0, 0.0, 10.0, 15.0), 5.0),
    "fist": ((_CLOSED, _CLOSED, _CLOSED, _CLOSED), _THUMB_IN, 0.0),
    "point": ((_OPEN, _CLOSED, _CLOSED, _CLOSED), _THUMB_IN, 0.0),
    "pinch": (((45, 50), (15, 20), (15, 25), (20, 25)), (14.0, 9.0, 19.0, 35.0), 4.0),
    "ok": (((50, 70), (5, 5), (5, 5), (5, 5)), (-5.0, 7.0, 50.0, 62.0), 12.0),
    "grasp": (((50, 60), (55, 60), (55, 60), (55, 60)), (25.0, -10.0, 15.0, 20.0), 3.0),
    "two": ((_OPEN, _OPEN, _CLOSED, _CLOSED), _THUMB_IN, 12.0),
    "three": ((_OPEN, _OPEN, _OPEN, _CLOSED), (45.0, 0.0, 50.0, 40.0), 10.0),
    "four": ((_OPEN, _OPEN, _OPEN, _OPEN), (45.0, 0.0, 50.0, 40.0), 10.0),
    "free": ((_OPEN, _OPEN, _OPEN, _OPEN), (0.0, 0.0, 0.0, 0.0), 0.0),  # replaced by uniform
}
# Mixture weights (the counting gestures "one" and "five" are "point" and "open").
TEMPLATE_WEIGHTS: dict[str, float] = {
    "open": 0.10,
    "relaxed": 0.15,
    "fist": 0.10,
    "point": 0.10,
    "pinch": 0.09,
    "ok": 0.07,
    "grasp": 0.12,
    "two": 0.06,
    "three": 0.05,
    "four": 0.04,
    "free": 0.12,
}
_NAMES = tuple(TEMPLATES)
_FREE = _NAMES.index("free")


def template_pose(name: str) -> torch.Tensor:
    """The noise-free pose (16, 3) rad of template ``name`` (global rotation zero).

    >>> round(float(template_pose("fist")[2, 0]) * 180 / math.pi)  # index PIP flexion, degrees
    100
    """
    if name not in TEMPLATES:
        raise ValueError(f"name: expected one of {sorted(TEMPLATES)}, got {name!r}")
    fingers, thumb, spread = TEMPLATES[name]
    pose = torch.zeros(16, 3)
    for finger, (mcp, pip), abd in zip(
        ("index", "middle", "ring", "little"),
        fingers,
        (-spread, 0.0, spread / 2, spread),
        strict=True,
    ):
        rows = POSE_ROWS[finger]
        pose[rows[0], 0] = mcp * _D
        pose[rows[0], 2] = abd * _D
        pose[rows[1], 0] = pip * _D
        pose[rows[2], 0] = pip * _D * 2 / 3  # DIP follows PIP
    cmc, mcp, ip = POSE_ROWS["thumb"]
    pose[cmc, 0] = thumb[0] * _D
    pose[cmc, 2] = thumb[1] * _D
    pose[mcp, 0] = thumb[2] * _D
    pose[ip, 0] = thumb[3] * _D
    return pose


_TEMPLATE_POSES = torch.stack([template_pose(n) for n in _NAMES])  # (T, 16, 3)
_WEIGHTS = torch.tensor([TEMPLATE_WEIGHTS[n] for n in _NAMES], dtype=torch.float64)
# Noise (degrees) per (flexion, twist, abduction) component around a template.
_NOISE = torch.tensor([10.0, 2.0, 4.0]) * _D


def sample_pose(
    n: int, generator: torch.Generator | Draws, *, noise: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``n`` finger poses from the template mixture.

    Args:
        n: number of poses.
        generator: the only source of randomness (STYLE rule 7): a ``torch.Generator`` or
            :class:`~handlab.synth.draws.Draws` with ``n`` rows.
        noise: scale of the per-joint noise around each template (0 = exact templates).

    Returns:
        ``pose`` (n, 16, 3) rad with row 0 (global rotation) zero, within the limits, and
        ``kind`` (n,) int64, the index of the template in :data:`TEMPLATES` order.

    >>> pose, _ = sample_pose(100, torch.Generator().manual_seed(1))
    >>> bool((clamp_pose(pose) == pose).all())
    True
    """
    check_range("n", n, lo=1)
    check_range("noise", noise, lo=0.0)
    d = as_draws(n, generator)
    kind = d.choice(_WEIGHTS)  # (n,)
    pose = _TEMPLATE_POSES[kind].clone()  # (n, 16, 3)
    pose = pose + d.randn(16, 3) * _NOISE * noise
    # Free poses: uniform within the limits (global row excluded).
    lim = POSE_LIMITS[1:]
    uniform = lim[..., 0] + (lim[..., 1] - lim[..., 0]) * d.rand(15, 3)
    free = kind == _FREE
    pose[:, 1:] = torch.where(free[:, None, None], uniform, pose[:, 1:])
    # Coupling: DIP flexion ~ 2/3 PIP flexion (+ noise) for every finger, templates and free.
    coupling_noise = d.randn(4) * 6.0 * _D * noise
    for k, finger in enumerate(("index", "middle", "ring", "little")):
        _, pip, dip = POSE_ROWS[finger]
        pose[:, dip, 0] = pose[:, pip, 0] * 2 / 3 + coupling_noise[:, k]
    # Abduction spreads together: a shared spread offset, opposite on the two sides of the middle.
    spread = d.randn() * 4.0 * _D * noise
    for finger, sign in (("index", -1.0), ("ring", 0.5), ("little", 1.0)):
        pose[:, POSE_ROWS[finger][0], 2] += sign * spread
    pose[:, 0] = 0.0
    return clamp_pose(pose), kind


def sample_shape(n: int, generator: torch.Generator | Draws, *, std: float = 1.0) -> torch.Tensor:
    """Sample shape parameters (n, 10), standard normal times ``std``, clipped to +-3.

    >>> sample_shape(2, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 10])
    """
    check_range("n", n, lo=1)
    check_range("std", std, lo=0.0)
    return (as_draws(n, generator).randn(10) * std).clamp(-SHAPE_LIMIT, SHAPE_LIMIT)
