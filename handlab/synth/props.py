"""Opt-in scene props and framing: sleeves, hands holding objects, truncation at the image
border, and skin details (flexion creases, varied nails).

No chapter shows them yet; ``docs/real_hands.md`` measures how real each makes the generator
look (``benchmarks/synth_realism.py``) and what it costs (``benchmarks/synth.py``).

Real hand photographs (issue 17, section 2) show what the plain generator never draws: a cuff
or sleeve across the forearm, a hand wrapped around a cup, a phone or a ball, hands cut by the
detector's box or the photograph's border, lines at the finger joints and nails of many shades.
Each effect is a probability in :class:`handlab.synth.SceneOptions` (``sleeves``, ``held``,
``truncation``, ``details``); :func:`sample_props` draws their parameters after every other draw
of :func:`handlab.synth.sample_params` (the domain randomisation's included) and only for the
effects asked for, so samples without them are unchanged to the bit.

- sleeves: one capsule around the forearm from 15-60 mm behind the wrist, 1.1-1.4x its radius,
  in a cloth colour (matte); its pixels are not hand pixels (``mask``);
- held objects: occluder slot 0 becomes a cylinder (a bottle, a handle), a ball or a box (a
  phone) against the palm, and the fingers take a grasp around it (tighter for thinner objects);
  the hand is moved so its joint centroid stays where it was framed;
- truncation: the principal point is shifted 0.25-0.5 image widths in a random direction, so part
  of the hand leaves the image (those joints get ``visibility`` 0);
- details: dark lines across every finger joint (creases, 2 mm wide, 10-35 % darker) and a nail
  colour from pale pink to white, sometimes polished;
- forearm: the forearm capsule 2.5-4x as long as the hand model's 120 mm stub and 1.0-1.25x as
  thick, so it runs out of the image as a real arm does instead of ending in a rounded stub
  just behind the wrist (a cue of the plain generator that no photograph shows).

>>> from handlab.synth.scene import sample_params
>>> p = sample_params(2, torch.Generator().manual_seed(0), sleeves=1.0, details=1.0)
>>> p["sleeve"].shape, p["details"].shape
(torch.Size([2, 6]), torch.Size([2, 5]))
"""

from __future__ import annotations

import math

import torch

from handlab.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from handlab.hand_model import POSE_ROWS, HandModel, clamp_pose
from handlab.synth.backgrounds import sample_colors
from handlab.synth.draws import Draws
from handlab.synth.poses import template_pose

__all__ = [
    "PROP_SHAPES",
    "crease_factor",
    "crease_strength",
    "long_forearm",
    "nail_colors",
    "sample_props",
    "sleeve_capsule",
]

# key -> shape after the batch dim (float tensors), present only when the effect was asked for
PROP_SHAPES: dict[str, tuple[int, ...]] = {
    "sleeve": (6,),  # on, start mm behind the wrist, radius factor, colour (3)
    "details": (5,),  # on, crease darkening, nail colour (3)
    "forearm": (3,),  # on, length factor, radius factor
}
_MODEL = HandModel()
_GRASP = template_pose("grasp")
_FINGERS = ("index", "middle", "ring", "little")
_CREASE_MM = 2.0  # half width of a crease line (Gaussian sigma), mm
_NAIL_POLISH = 0.1  # share of polished nails among samples with details


def sample_props(
    params: dict[str, torch.Tensor],
    d: Draws,
    *,
    sleeves: float = 0.0,
    held: float = 0.0,
    truncation: float = 0.0,
    details: float = 0.0,
    forearm: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Draw the props asked for (each a probability) and return ``params`` updated: new keys
    ``sleeve`` / ``details`` / ``forearm`` (:data:`PROP_SHAPES`), and for held objects and
    truncation changed ``pose``, ``trans``, ``occ_*`` and ``camera`` rows. Draws nothing for an
    effect at 0."""
    out = dict(params)
    n = d.n
    if sleeves > 0:
        out["sleeve"] = torch.cat(
            [
                (d.rand() < sleeves).float()[:, None],
                d.uniform(15, 60)[:, None],
                d.uniform(1.1, 1.4)[:, None],
                sample_colors(d, 1, skin_share=0.0)[:, 0],
            ],
            -1,
        )
    if held > 0:
        out.update(_hold(out, d, d.rand() < held))
    if truncation > 0:
        on = (d.rand() < truncation).float()
        angle = d.uniform(0, 2 * math.pi)
        shift = on * d.uniform(0.25, 0.5)
        camera = out["camera"].clone()
        camera[:, 2] += shift * torch.cos(angle)
        camera[:, 3] += shift * torch.sin(angle)
        out["camera"] = camera
    if details > 0:
        natural = (
            torch.stack([torch.ones(n), d.uniform(0.72, 0.9), d.uniform(0.7, 0.88)], -1)
            * d.uniform(0.85, 1.0)[:, None]
        )
        polish = sample_colors(d, 1, skin_share=0.0)[:, 0]
        nail = torch.where((d.rand() < _NAIL_POLISH)[:, None], polish, natural)
        out["details"] = torch.cat(
            [(d.rand() < details).float()[:, None], d.uniform(0.1, 0.35)[:, None], nail], -1
        )
    if forearm > 0:
        out["forearm"] = torch.stack(
            [(d.rand() < forearm).float(), d.uniform(2.5, 4.0), d.uniform(1.0, 1.25)], -1
        )
    return out


def _hold(params: dict[str, torch.Tensor], d: Draws, on: torch.Tensor) -> dict[str, torch.Tensor]:
    """Occluder slot 0 as an object in the palm (rows ``on``), the fingers in a grasp around it."""
    n = d.n
    kind = torch.where(d.rand() < 0.55, 1, torch.where(d.rand() < 0.5, 0, 2))  # cyl, ball, box
    radius = d.uniform(12, 25)  # cylinder radius; a ball's is 1.4x
    half_len = d.uniform(40, 80)
    box = torch.stack([d.uniform(8, 14), d.uniform(35, 60), d.uniform(22, 35)], -1)
    size = torch.where(
        (kind == 2)[:, None],
        box[:, [0, 2, 1]],  # local x off the palm (thin), y along the fingers, z across
        torch.stack([torch.where(kind == 0, 1.4 * radius, radius), half_len, torch.zeros(n)], -1),
    )
    depth = torch.where(kind == 2, box[:, 0], size[:, 0])  # how far the object stands off the palm
    centre_local = torch.stack(
        [d.uniform(-8, 8), d.uniform(55, 80), 10.0 + depth + d.uniform(0, 4)], -1
    )
    new_pose, trans = _grasp(params, d, depth, on)
    rot = axis_angle_to_matrix(params["pose"][:, 0])  # (n, 3, 3)
    mirror = torch.where(params["left"][:, None], torch.tensor([-1.0, 1, 1]), torch.ones(3))
    centre = ((centre_local * mirror)[:, None] @ rot.transpose(1, 2))[:, 0] + trans
    # Object frame: local z (a cylinder's axis) across the palm (hand x), tilted a little.
    tilt = axis_angle_to_matrix(
        torch.stack([d.randn() * 0.15, torch.zeros(n), d.randn() * 0.15], -1)
    )
    across = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # columns: x -> -z, z -> x
    obj_rot = matrix_to_axis_angle(rot @ tilt @ across)
    color = sample_colors(d, 1, skin_share=0.0)[:, 0]
    out = {k: params[k].clone() for k in ("occ_on", "occ_kind", "occ_center", "occ_size")}
    out["occ_rot"], out["occ_color"] = params["occ_rot"].clone(), params["occ_color"].clone()
    out["occ_on"][:, 0] |= on
    for key, value in (
        ("occ_kind", kind),
        ("occ_center", centre),
        ("occ_size", size),
        ("occ_rot", obj_rot),
        ("occ_color", color),
    ):
        mask = on.view(n, *([1] * (value.dim() - 1)))
        out[key][:, 0] = torch.where(mask, value, out[key][:, 0])
    return {**out, "pose": new_pose, "trans": trans}


def _grasp(
    params: dict[str, torch.Tensor], d: Draws, depth: torch.Tensor, on: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose (n, 16, 3) and trans (n, 3) of hands holding an object ``depth`` (n,) mm thick (rows
    ``on``): the grasp template, tighter around thinner objects, with noise; the hand moved so
    its joint centroid stays where the scene framed it."""
    n = d.n
    tight = (1.45 - depth / 40).clamp(0.8, 1.25)
    pose = params["pose"]
    grasp = _GRASP[None].expand(n, -1, -1).clone()
    for finger in _FINGERS:
        rows = list(POSE_ROWS[finger])
        grasp[:, rows, 0] = grasp[:, rows, 0] * tight[:, None]
    grasp = grasp + 0.08 * d.randn(16, 3) * torch.tensor([1.0, 0.2, 0.4])
    grasp[:, 0] = pose[:, 0]
    new_pose = torch.where(on[:, None, None], clamp_pose(grasp), pose)
    rot = axis_angle_to_matrix(pose[:, 0])  # (n, 3, 3)
    mirror = torch.where(params["left"][:, None], torch.tensor([-1.0, 1, 1]), torch.ones(3))
    old, new = (_centroid(p, params["shape"]) * mirror for p in (pose, new_pose))
    shift = ((old - new)[:, None] @ rot.transpose(1, 2))[:, 0]
    return new_pose, torch.where(on[:, None], params["trans"] + shift, params["trans"])


def _centroid(pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """(n, 3) mean joint of the hand in its own frame (global rotation left out)."""
    local = pose.clone()
    local[:, 0] = 0
    return _MODEL(local, shape).mean(1)


def sleeve_capsule(
    params: dict[str, torch.Tensor], start: torch.Tensor, end: torch.Tensor, radius: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sleeve of each sample around its forearm capsule (``start`` at the wrist, ``end``
    (n, 3) mm, ``radius`` (n,)): ends ``a``, ``b`` (n, 3), radius (n,) and on (n,) bool."""
    s = params["sleeve"]
    axis = end - start
    unit = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    a = start + unit * s[:, 1:2]
    b = end + unit * 80.0  # past the forearm stub's end: the sleeve leaves the image
    return a, b, radius * s[:, 2], s[:, 0] > 0


def long_forearm(
    params: dict[str, torch.Tensor], geo: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``geo`` (:func:`handlab.synth.renderer.hand_geometry`) with the forearm capsule (the last)
    of the samples whose ``params["forearm"]`` is on lengthened and thickened; unchanged without.

    >>> geo = {"start": torch.zeros(2, 1, 3), "end": torch.tensor([[[0.0, -120, 0]]] * 2),
    ...        "radius": torch.full((2, 1), 24.0)}
    >>> out = long_forearm({"forearm": torch.tensor([[1.0, 3.0, 1.25], [0.0, 3.0, 1.25]])}, geo)
    >>> out["end"][:, 0, 1].tolist(), out["radius"][:, 0].tolist()
    ([-360.0, -120.0], [30.0, 24.0])
    """
    if "forearm" not in params:
        return geo
    f = params["forearm"]
    on = f[:, 0] > 0
    a, b, r = geo["start"][:, -1], geo["end"][:, -1], geo["radius"][:, -1]
    end, radius = geo["end"].clone(), geo["radius"].clone()
    end[:, -1] = torch.where(on[:, None], a + (b - a) * f[:, 1:2], b)
    radius[:, -1] = torch.where(on, r * f[:, 2], r)
    return {**geo, "end": end, "radius": radius}


def crease_factor(strength: torch.Tensor, s: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """(m,) shading factors of finger pixels at axis parameter ``s`` (m,) of bones ``length``
    (m,) mm: darker by up to ``strength`` (m,) within a few mm of either end of the bone (the
    joints' creases).

    >>> s, length = torch.tensor([0.0, 0.5]), torch.tensor([30.0, 30.0])
    >>> crease_factor(torch.tensor([0.3, 0.3]), s, length)
    tensor([0.7000, 1.0000])
    """
    dist = torch.minimum(s, 1 - s) * length  # mm to the nearer joint
    return 1 - strength * torch.exp(-0.5 * (dist / _CREASE_MM) ** 2)


def crease_strength(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """(n,) how much darker each sample's creases are (0 where details are off)."""
    return params["details"][:, 0] * params["details"][:, 1]


def nail_colors(params: dict[str, torch.Tensor], default: torch.Tensor) -> torch.Tensor:
    """(n, 3) nail colour of each sample: the drawn one where details are on, else ``default``
    (3,)."""
    d = params["details"]
    return torch.where(d[:, :1] > 0, d[:, 2:5], default)
