"""Scene sampling: every random choice of a synthetic sample, drawn once into a params dict.

Taught in chapter 00 (``notebooks/00_tour.py``).

Explicit randomness (STYLE rule 7): :func:`sample_params` draws pose, shape, handedness, global
rotation, camera, lighting, skin, background, occluders, blur and noise seeds from one
``torch.Generator``; :func:`handlab.synth.renderer.render` is deterministic in them, so any sample
replays from its params (and renders at any size: the camera and background are stored in
units of the image width).

Handedness: right hands by default (as MANO, FreiHAND and the fitting code assume);
``left=p`` makes a share ``p`` of left hands, mirrored in the hand frame, keeping the canonical
joint order.

Camera: focal length 1.1-1.7 image widths (a 35-50 degree field of view, like a webcam crop),
principal point within 1% of the centre, the hand 25-65 cm away filling half to 85% of the image.
The forearm never points at the camera (it would hide the hand).

>>> params = sample_params(3, torch.Generator().manual_seed(0))
>>> params["pose"].shape, params["camera"].shape
(torch.Size([3, 16, 3]), torch.Size([3, 4]))
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from handlab._checks import check_finite, check_range, check_shape, check_tensor
from handlab.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from handlab.hand_model import POSE_LIMITS, SHAPE_LIMIT, HandModel
from handlab.synth.backgrounds import sample_background, sample_colors, sample_skin
from handlab.synth.draws import Draws, as_draws
from handlab.synth.poses import sample_pose, sample_shape
from handlab.synth.props import PROP_SHAPES, sample_props
from handlab.synth.randomize import DR_PARTS, DR_SHAPES, sample_randomization

__all__ = [
    "MAX_OCCLUDERS",
    "PARAM_SHAPES",
    "SceneOptions",
    "check_params",
    "sample_params",
    "scene_options",
]

MAX_OCCLUDERS = 3
HAND_SPAN = 190.0  # mm, wrist to fingertips of an average open hand, for framing
_MODEL = HandModel()

# key -> shape after the batch dim (dtype float unless listed in _INT / _BOOL)
PARAM_SHAPES: dict[str, tuple[int, ...]] = {
    "pose": (16, 3),
    "shape": (10,),
    "left": (),
    "trans": (3,),
    "camera": (4,),
    "skin": (3,),
    "light": (3,),
    "light_color": (3,),
    "ambient": (),
    "specular": (),
    "occ_on": (MAX_OCCLUDERS,),
    "occ_kind": (MAX_OCCLUDERS,),
    "occ_center": (MAX_OCCLUDERS, 3),
    "occ_size": (MAX_OCCLUDERS, 3),
    "occ_rot": (MAX_OCCLUDERS, 3),
    "occ_color": (MAX_OCCLUDERS, 3),
    "blur": (2,),
    "depth_noise": (),
    "grain": (),
    "noise_seed": (),
    "bg_depth": (3,),
    "bg_gradient": (3, 3),
    "bg_noise": (3, 6, 6),
    "bg_stripes": (4,),
    "bg_stripe_color": (3,),
    "bg_shapes": (8, 5),
    "bg_shape_color": (8, 3),
}
_BOOL = ("left", "occ_on", "depth_noise")
_INT = ("occ_kind", "noise_seed")


def _global_rotation(n: int, g: Draws) -> torch.Tensor:
    """Axis-angle (n, 3): fingers mostly up the image, any roll, forearm never at the camera."""
    yz = g.uniform(-0.75, 0.25)  # camera-z of the finger direction (forearm = -y)
    phi = -math.pi / 2 + 1.0 * g.randn()  # image "up" is -y in the camera
    rxy = torch.sqrt(1 - yz * yz)
    y = torch.stack([rxy * torch.cos(phi), rxy * torch.sin(phi), yz], dim=-1)
    x0 = torch.nn.functional.normalize(
        torch.linalg.cross(y, torch.tensor([0.0, 0, 1]).expand_as(y)), dim=-1
    )
    z0 = torch.linalg.cross(x0, y)
    roll = g.uniform(0, 2 * math.pi)[:, None]
    x = torch.cos(roll) * x0 + torch.sin(roll) * z0
    z = torch.linalg.cross(x, y)
    return matrix_to_axis_angle(torch.stack([x, y, z], dim=-1))


def _occluders(n: int, g: Draws, share: float, xyz: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spheres, capsule-cylinders and boxes between the camera and a random joint of the hand."""
    m = MAX_OCCLUDERS
    has = g.rand() < share
    count = 1 + g.randint(m)
    on = has[:, None] & (torch.arange(m)[None] < count[:, None])
    kind = g.randint(3, m)
    sphere_r = g.uniform(8, 22, m)
    cyl = torch.stack([g.uniform(5, 12, m), g.uniform(20, 50, m)], -1)
    box = g.uniform(6, 25, m, 3)
    size = torch.where(
        (kind == 2)[..., None],
        box,
        torch.cat(
            [
                torch.where((kind == 1)[..., None], cyl, sphere_r[..., None].expand(n, m, 2)),
                torch.zeros(n, m, 1),
            ],
            -1,
        ),
    )
    reach = size.norm(dim=-1)
    target = xyz[torch.arange(n)[:, None], g.randint(21, m)]  # (n, m, 3)
    dist = target.norm(dim=-1)
    ahead = torch.minimum(reach + g.uniform(15, 70, m), target[..., 2] - reach - 60)
    center = target * (1 - ahead / dist)[..., None]
    center[..., :2] += g.randn(m, 2) * 0.5 * reach[..., None]
    axis = torch.nn.functional.normalize(g.randn(m, 3), dim=-1)
    return {
        "occ_on": on,
        "occ_kind": kind,
        "occ_center": center,
        "occ_size": size,
        "occ_rot": axis * g.uniform(0, math.pi, m)[..., None],
        "occ_color": sample_colors(g, m, skin_share=0.2),
    }


@dataclass(frozen=True)
class SceneOptions:
    """The generator's options, passed whole from :func:`~handlab.synth.generate`,
    :class:`~handlab.synth.SyntheticHands`, the sequences and clips to :func:`sample_params`
    (which draws with them) and :func:`~handlab.synth.render` (``extras``).

    >>> SceneOptions(occluders=1.0, extras=True).blur
    0.0
    >>> SceneOptions(left=2.0)
    Traceback (most recent call last):
    ...
    ValueError: left: expected a value in [0.0, 1.0], got 2.0
    """

    occluders: float = 0.5  # probability of 1-3 occluders in front of the hand (seed 003)
    blur: float = 0.0  # probability of motion blur, 2-8 px at 128 px (scaled with the size)
    depth_noise: bool = False  # sensor noise, quantisation and holes in the depth
    left: float = 0.0  # share of left hands (right by default, as MANO and FreiHAND)
    extras: bool = False  # render also returns occlusion, occluder_mask and params
    # domain randomisation (handlab.synth.randomize): probability of each effect; its params are
    # drawn last and only when > 0, so samples without it are unchanged to the bit
    randomize: float = 0.0
    randomize_parts: tuple[str, ...] = DR_PARTS  # which randomisation effects (all by default)
    # props (handlab.synth.props), probabilities drawn after the randomisation, only when > 0:
    sleeves: float = 0.0  # a sleeve over the forearm
    held: float = 0.0  # an object in the palm, the fingers in a grasp around it
    truncation: float = 0.0  # the hand shifted so the image border cuts it
    details: float = 0.0  # creases at the finger joints, varied nail colours
    forearm: float = 0.0  # a forearm that runs out of the image instead of the 120 mm stub

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not isinstance(value, int | float):
                raise TypeError(f"{name}: expected a probability in [0, 1], got {value!r}")
            check_range(name, float(value), lo=0.0, hi=1.0)
        parts = self.randomize_parts
        if not isinstance(parts, tuple) or not parts or not set(parts) <= set(DR_PARTS):
            raise ValueError(
                f"randomize_parts: expected a tuple of some of {DR_PARTS}, got {parts!r}"
            )


# the props' probabilities, drawn by handlab.synth.props.sample_props (its keyword names)
_PROPS = ("sleeves", "held", "truncation", "details", "forearm")
_PROBABILITIES = ("occluders", "blur", "left", "randomize", *_PROPS)


def scene_options(options: SceneOptions | None = None, **overrides: Any) -> SceneOptions:
    """``options`` (default :class:`SceneOptions`) with the fields in ``overrides`` replaced:
    the keyword form ``generate(..., occluders=1.0)`` of the functions that take options.

    >>> scene_options(SceneOptions(blur=0.5), occluders=0.0).blur
    0.5
    >>> scene_options(occluder=1.0)
    Traceback (most recent call last):
    ...
    TypeError: options: expected some of [...], got unknown ['occluder']
    """
    if options is not None and not isinstance(options, SceneOptions):
        raise TypeError(f"options: expected a SceneOptions, got {type(options).__name__}")
    names = {f.name for f in dataclasses.fields(SceneOptions)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"options: expected some of {sorted(names)}, got unknown {unknown}")
    return dataclasses.replace(options or SceneOptions(), **overrides)


def sample_params(
    n: int,
    generator: torch.Generator | Draws,
    options: SceneOptions | None = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Draw every random choice of ``n`` samples (see :data:`PARAM_SHAPES` for the keys).

    Args:
        n: number of samples (>= 1).
        generator: the only source of randomness: a ``torch.Generator``, or
            :class:`~handlab.synth.draws.Draws` with ``n`` rows (one seeded row per sample).
        options: the :class:`SceneOptions` (occluders, blur, depth noise, left hands);
            ``overrides`` replace single fields (``occluders=1.0``).

    >>> p = sample_params(2, torch.Generator().manual_seed(0), occluders=1.0)
    >>> bool(p["occ_on"][:, 0].all())
    True
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"n: expected an int >= 1, got {n!r}")
    check_range("n", n, lo=1)
    opts = scene_options(options, **overrides)
    g = as_draws(n, generator)
    pose, _ = sample_pose(n, g)
    pose[:, 0] = _global_rotation(n, g)
    shape = sample_shape(n, g)
    is_left = g.rand() < opts.left
    fx = g.uniform(1.1, 1.7)
    camera = torch.stack(
        [
            fx,
            fx * (1 + 0.005 * g.randn()),
            *(0.01 * g.randn(2).T),
        ],
        -1,
    )
    # Place the hand: its joint centroid on a ray near the image centre, at a framing distance.
    local = pose.clone()
    local[:, 0] = 0
    mirror = torch.where(is_left[:, None], torch.tensor([-1.0, 1, 1]), torch.ones(3))
    joints = (_MODEL(local, shape) * mirror[:, None]) @ axis_angle_to_matrix(pose[:, 0]).transpose(
        1, 2
    )
    dist = fx * HAND_SPAN * (1 + 0.05 * shape[:, 0]) / g.uniform(0.5, 0.85)
    jitter = g.uniform(-0.08, 0.08, 2)
    aim = torch.stack([jitter[:, 0] * dist / fx, jitter[:, 1] * dist / camera[:, 1], dist], -1)
    trans = aim - joints.mean(1)
    light = torch.stack(
        [
            0.6 * g.randn(),
            -0.5 + 0.5 * g.randn(),
            -torch.ones(n),
        ],
        -1,
    )
    params = {
        "pose": pose,
        "shape": shape,
        "left": is_left,
        "trans": trans,
        "camera": camera,
        "skin": sample_skin(n, g),
        "light": torch.nn.functional.normalize(light, dim=-1),
        "light_color": g.uniform(0.85, 1.05, 3),
        "ambient": g.uniform(0.25, 0.5),
        "specular": g.uniform(0.03, 0.2),
        **_occluders(n, g, float(opts.occluders), joints + trans[:, None]),
        "blur": torch.stack(
            [
                (g.rand() < opts.blur) * g.uniform(2, 8) / 128,
                g.uniform(0, math.pi),
            ],
            -1,
        ),
        "depth_noise": torch.full((n,), bool(opts.depth_noise)),
        "grain": g.uniform(0.004, 0.015),
        "noise_seed": g.randint(2**24) * 2**24 + g.randint(2**24),
        "bg_depth": torch.stack([dist + g.uniform(150, 700), *g.uniform(-0.3, 0.3, 2).T], -1),
        **sample_background(n, g),
    }
    if opts.randomize > 0:  # drawn after everything else: the other draws stay as they were
        params.update(
            sample_randomization(n, g, float(opts.randomize), tuple(opts.randomize_parts))
        )
    props = {k: float(getattr(opts, k)) for k in _PROPS}
    if any(props.values()):  # drawn last, and only when asked for, for the same reason
        params = sample_props(params, g, **props)
    return params


def check_params(params: object) -> None:
    """Raise ``TypeError``/``ValueError`` naming the key unless ``params`` is a complete,
    finite, consistently batched dict with pose and shape within their limits."""
    if not isinstance(params, dict):
        raise TypeError(f"params: expected a dict from sample_params, got {type(params).__name__}")
    missing = sorted(set(PARAM_SHAPES) - set(params))
    if missing:
        raise ValueError(f"params: expected keys {sorted(PARAM_SHAPES)}, missing {missing}")
    n = None
    # domain randomisation and props
    optional = {k: v for k, v in {**DR_SHAPES, **PROP_SHAPES}.items() if k in params}
    for key, tail in {**PARAM_SHAPES, **optional}.items():
        value = params[key]
        check_tensor(f"params[{key!r}]", value)
        n = len(value) if n is None else n
        check_shape(f"params[{key!r}]", value, (n, *tail))
        if key in _BOOL and value.dtype != torch.bool:
            raise TypeError(f"params[{key!r}]: expected a bool tensor, got {value.dtype}")
        if key in _INT and (value.is_floating_point() or value.dtype == torch.bool):
            raise TypeError(f"params[{key!r}]: expected an integer tensor, got {value.dtype}")
        if key not in _BOOL + _INT:
            check_finite(f"params[{key!r}]", value)
    pose = params["pose"]
    lim = POSE_LIMITS
    bad = (pose < lim[..., 0] - 1e-5) | (pose > lim[..., 1] + 1e-5)
    if bad.any():
        i, row, axis = (int(t) for t in torch.nonzero(bad)[0])
        raise ValueError(
            f"params['pose']: expected finger angles within POSE_LIMITS, got "
            f"{float(pose[i, row, axis]):.3f} rad at sample {i}, row {row}, axis {axis} "
            f"(limits {lim[row, axis].tolist()})"
        )
    worst = float(params["shape"].abs().max())
    if worst > SHAPE_LIMIT + 1e-6:
        raise ValueError(f"params['shape']: expected values in [-3, 3], got {worst:.3f}")
    if bool((params["trans"][:, 2] <= 0).any()):
        raise ValueError("params['trans']: expected the hand in front of the camera (z > 0)")
