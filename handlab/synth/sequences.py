"""Sequences for video models: smooth hand and camera motion, moving occluders, per-frame blur.

Taught in chapter 00 (``notebooks/00_tour.py``).

A sequence interpolates keyframes, one every ``segment`` frames, with smoothstep easing (the
hand starts and settles like a real gesture): finger poses linearly in angle (the limits are a
box, so every frame stays within them), the global rotation along the geodesic between
keyframe rotations ``R_k @ exp(s * delta_k)``, the translation linearly. Shape, skin, lighting,
camera and background are fixed per sequence; occluders drift at a constant velocity, so the
occlusion of each joint changes from frame to frame; sensor noise and motion blur are per frame.

>>> out = generate_sequence(1, 4, seed=0, size=64)
>>> out["image"].shape, out["keypoints"].shape
(torch.Size([1, 4, 3, 64, 64]), torch.Size([1, 4, 21, 2]))
"""

from __future__ import annotations

import math
from typing import Any

import torch

from handlab._checks import check_range
from handlab.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from handlab.synth.renderer import check_size, render
from handlab.synth.scene import SceneOptions, sample_params, scene_options

__all__ = ["generate_sequence", "sample_sequence_params"]

_MAX_TURN = 0.4  # rad of global rotation between keyframes
_STEP_MM = torch.tensor([20.0, 20.0, 30.0])  # std of the translation change between keyframes
_OCC_SPEED = 2.5  # mm per frame, std of each occluder's drift in x and y


def _check_int(name: str, value: object, lo: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int >= {lo}, got {value!r}")
    check_range(name, value, lo=lo)


def sample_sequence_params(
    n_seq: int,
    T: int,
    generator: torch.Generator,
    *,
    segment: int = 16,
    options: SceneOptions | None = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Per-frame params (n_seq * T, ...) of ``n_seq`` smooth sequences of ``T`` frames,
    sequence-major (frame ``t`` of sequence ``s`` is row ``s * T + t``); render them with
    :func:`handlab.synth.render`. ``segment`` is the number of frames between keyframes;
    ``options`` (:class:`~handlab.synth.scene.SceneOptions`, fields replaced by ``overrides``):
    occluders and handedness per sequence, blur per frame."""
    _check_int("n_seq", n_seq, 1)
    _check_int("T", T, 1)
    _check_int("segment", segment, 1)
    opts = scene_options(options, **overrides)
    g = generator
    k = max(2, 1 + math.ceil((T - 1) / segment))
    keys = sample_params(n_seq * k, g, opts, blur=0.0)  # keyframes: blur is drawn per frame
    keys = {name: v.reshape(n_seq, k, *v.shape[1:]) for name, v in keys.items()}
    frames = {name: v[:, :1].expand(n_seq, T, *v.shape[2:]) for name, v in keys.items()}
    seg = torch.arange(T, dtype=torch.float32) / segment  # (T,) keyframe time
    k0 = seg.floor().long().clamp(max=k - 2)
    s = (seg - k0).clamp(0, 1)
    s = (s * s * (3 - 2 * s))[None, :, None]  # smoothstep easing, (1, T, 1)
    # Finger joints: lerp between keyframe poses.
    fingers = keys["pose"][:, :, 1:].flatten(2)  # (n_seq, k, 45)
    fingers = fingers[:, k0] + s * (fingers[:, k0 + 1] - fingers[:, k0])  # (n_seq, T, 45)
    # Global rotation: a chain of small turns from the first keyframe's rotation.
    delta = torch.nn.functional.normalize(torch.randn(n_seq, k - 1, 3, generator=g), dim=-1)
    delta = delta * _MAX_TURN * torch.rand(n_seq, k - 1, 1, generator=g)
    rots = [axis_angle_to_matrix(keys["pose"][:, 0, 0])]
    for j in range(k - 1):
        rots.append(rots[-1] @ axis_angle_to_matrix(delta[:, j]))
    rots = torch.stack(rots, dim=1)  # (n_seq, k, 3, 3)
    glob = rots[:, k0] @ axis_angle_to_matrix(delta[:, k0] * s)
    pose = torch.cat([matrix_to_axis_angle(glob)[:, :, None], fingers.unflatten(2, (15, 3))], 2)
    # Translation: a random walk of keyframes, lerped.
    steps = torch.randn(n_seq, k - 1, 3, generator=g) * _STEP_MM
    trans = keys["trans"][:, :1] + torch.cat([torch.zeros(n_seq, 1, 3), steps.cumsum(1)], 1)
    trans = trans[:, k0] + s * (trans[:, k0 + 1] - trans[:, k0])
    velocity = torch.randn(n_seq, 1, keys["occ_center"].shape[2], 2, generator=g) * _OCC_SPEED
    drift = torch.arange(T, dtype=torch.float32)[None, :, None, None] * velocity
    occ_center = keys["occ_center"][:, :1].expand(n_seq, T, -1, -1).clone()
    occ_center[..., :2] += drift
    per_frame = sample_params(n_seq * T, g, blur=opts.blur)  # only its blur and noise seeds
    frames = {
        **frames,
        "pose": pose,
        "trans": trans,
        "occ_center": occ_center,
        "blur": per_frame["blur"].reshape(n_seq, T, 2),
        "noise_seed": per_frame["noise_seed"].reshape(n_seq, T),
    }
    return {name: v.reshape(n_seq * T, *v.shape[2:]).contiguous() for name, v in frames.items()}


def generate_sequence(
    n_seq: int,
    T: int,
    *,
    seed: int,
    size: int = 128,
    segment: int = 16,
    options: SceneOptions | None = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Sample and render ``n_seq`` sequences of ``T`` frames: the keys of
    :func:`handlab.synth.generate` with a time axis, e.g. ``image`` (n_seq, T, 3, H, W),
    ``keypoints`` (n_seq, T, 21, 2) px, ``xyz`` (n_seq, T, 21, 3) mm. With ``extras``, also
    ``occlusion`` (n_seq, T, 21), ``occluder_mask`` and the flat per-frame ``params``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed: expected an int, got {seed!r}")
    check_size(size)
    opts = scene_options(options, **overrides)
    g = torch.Generator().manual_seed(seed)
    params = sample_sequence_params(n_seq, T, g, segment=segment, options=opts)
    out = render(params, size, extras=opts.extras)
    return {
        name: v if name == "params" else v.reshape(n_seq, T, *v.shape[1:])
        for name, v in out.items()
    }
