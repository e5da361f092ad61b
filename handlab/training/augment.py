"""Augmentation that moves keypoints with pixels: random affine + colour jitter.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``); clips in chapter 07.

Randomness is explicit (STYLE rule 7): ``sample_augment(n, generator, config, size)`` draws the
parameters, ``apply_augment(batch, params)`` applies them deterministically with
``torchvision.transforms.v2.functional`` to the images (bilinear), depth and mask (nearest) and,
through ``tv_tensors.KeyPoints``, to the keypoints: one affine serves pixels and points.

torchvision treats a keypoint coordinate as continuous with pixel ``i`` spanning ``[i, i + 1)``;
handlab puts pixel centres at integers (``handlab.geometry``), so points are shifted by +0.5
before and -0.5 after the transform. Joints pushed out of the image get ``visibility`` 0. The
``xyz`` target is rolled about the camera's optical axis by the same angle, and ``K`` gets the
scaled focal length and moved principal point, so ``project(xyz, K) == keypoints`` still holds
exactly (for ``fx == fy``); depth values are left unchanged.

>>> g = torch.Generator().manual_seed(0)
>>> params = sample_augment(2, g, AugmentConfig(), size=64)
>>> batch = {"image": torch.rand(2, 3, 64, 64), "keypoints": torch.full((2, 21, 2), 32.0)}
>>> apply_augment(batch, params)["image"].shape
torch.Size([2, 3, 64, 64])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from handlab._checks import check_shape
from handlab.training.config import AugmentConfig

__all__ = ["AugmentParams", "apply_augment", "apply_clip_augment", "sample_augment"]

_PIXEL_SHIFT = 0.5  # handlab pixel centres (integers) -> torchvision's continuous coordinates


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample parameters, each tensor ``(N,)``: degrees, scale, px, px, jitter factors."""

    angle: torch.Tensor
    scale: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor

    def __getitem__(self, idx: slice) -> AugmentParams:
        return AugmentParams(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def sample_augment(
    n: int, generator: torch.Generator, config: AugmentConfig, size: int
) -> AugmentParams:
    """Draw parameters for ``n`` samples of ``size`` px from ``generator`` (uniform ranges)."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)

    c = config
    return AugmentParams(
        angle=uniform(-c.rotate_deg, c.rotate_deg),
        scale=uniform(*c.scale),
        tx=uniform(-c.translate, c.translate) * size,
        ty=uniform(-c.translate, c.translate) * size,
        brightness=uniform(1 - c.brightness, 1 + c.brightness),
        contrast=uniform(1 - c.contrast, 1 + c.contrast),
        saturation=uniform(1 - c.saturation, 1 + c.saturation),
    )


def apply_augment(batch: dict[str, torch.Tensor], params: AugmentParams) -> dict[str, torch.Tensor]:
    """Apply ``params`` to a batch; returns a new dict (other keys passed through).

    Keys used: ``image`` (B, C, H, W) in [0, 1] (C = 3 gets colour jitter), ``keypoints``
    (B, J, 2) px, and if present ``visibility`` (B, J), ``depth`` (B, 1, H, W), ``mask``
    (B, 1, H, W) or (B, H, W), ``xyz`` (B, J, 3) mm, ``K`` (B, 3, 3).
    """
    images = batch["image"]
    check_shape("images", images, (None, None, None, None))
    n, _, h, w = images.shape
    check_shape("keypoints", batch["keypoints"], (n, None, 2))
    if params.angle.shape[0] != n:
        raise ValueError(f"params: expected {n} samples, got {params.angle.shape[0]}")
    out = dict(batch)
    out["image"] = torch.stack([_affine_image(images[i], params, i, True) for i in range(n)])
    for key in ("depth", "mask"):
        if key in batch:
            out[key] = torch.stack(
                [_affine_image(batch[key][i], params, i, False) for i in range(n)]
            )
    kps = torch.stack([_affine_points(batch["keypoints"][i], params, i, (h, w)) for i in range(n)])
    out["keypoints"] = kps
    if "visibility" in batch:
        inside = (kps >= -0.5).all(-1) & (kps[..., 0] <= w - 0.5) & (kps[..., 1] <= h - 0.5)
        out["visibility"] = batch["visibility"] * inside.to(batch["visibility"].dtype)
    for key in ("xyz", "vertices"):  # 3D targets (mesh vertices too) turn with the picture
        if key in batch:
            out[key] = _roll_xyz(batch[key], params.angle)
    if "K" in batch:
        out["K"] = _move_K(batch["K"], params, (h, w))
    if images.shape[1] == 3:
        out["image"] = torch.stack([_jitter(out["image"][i], params, i) for i in range(n)])
    return out


def apply_clip_augment(
    batch: dict[str, torch.Tensor], params: AugmentParams
) -> dict[str, torch.Tensor]:
    """:func:`apply_augment` for a batch of clips: one affine and jitter per clip, all frames.

    Keys used: ``clip`` (B, T, 3, H, W), ``clip_keypoints`` (B, T, J, 2) px and if present
    ``clip_visibility`` (B, T, J), ``clip_xyz`` (B, T, J, 3), ``K`` (B, 3, 3); the centre-frame
    ``keypoints``/``visibility``/``xyz`` are then re-read from frame ``T // 2`` (the layout of
    :class:`handlab.synth.clips.SyntheticClips`). ``params`` has one row per clip.

    >>> g = torch.Generator().manual_seed(0)
    >>> batch = {"clip": torch.rand(2, 3, 3, 64, 64), "clip_keypoints": torch.rand(2, 3, 21, 2)}
    >>> apply_clip_augment(batch, sample_augment(2, g, AugmentConfig(), 64))["keypoints"].shape
    torch.Size([2, 21, 2])
    """
    clip = batch["clip"]
    check_shape("clip", clip, (None, None, None, None, None))
    b, t, _, h, w = clip.shape
    check_shape("clip_keypoints", batch["clip_keypoints"], (b, t, None, 2))
    if params.angle.shape[0] != b:
        raise ValueError(f"params: expected {b} clips, got {params.angle.shape[0]}")
    per_frame = params[torch.arange(b).repeat_interleave(t)]  # clip i's row for its T frames
    names = {"image": "clip", "keypoints": "clip_keypoints"}
    names |= {k: f"clip_{k}" for k in ("visibility", "xyz") if f"clip_{k}" in batch}
    moved = apply_augment({k: batch[v].flatten(0, 1) for k, v in names.items()}, per_frame)
    out = dict(batch)
    for k, v in names.items():
        out[v] = moved[k].unflatten(0, (b, t))  # (B, T, ...)
        if k != "image":
            out[k] = out[v][:, t // 2]
    if "K" in batch:
        out["K"] = _move_K(batch["K"], params, (h, w))
    return out


def _affine_kwargs(params: AugmentParams, i: int, hw: tuple[int, int]) -> dict:
    h, w = hw
    return {
        "angle": float(params.angle[i]),
        "translate": [float(params.tx[i]), float(params.ty[i])],
        "scale": float(params.scale[i]),
        "shear": [0.0, 0.0],
        "center": [w / 2, h / 2],  # continuous coordinates: the image centre
    }


def _affine_image(x: torch.Tensor, params: AugmentParams, i: int, bilinear: bool) -> torch.Tensor:
    squeeze = x.dim() == 2
    img = tv_tensors.Image(x.unsqueeze(0) if squeeze else x)
    mode = F.InterpolationMode.BILINEAR if bilinear else F.InterpolationMode.NEAREST
    kw = _affine_kwargs(params, i, tuple(img.shape[-2:]))
    out = F.affine(img, **kw, interpolation=mode).as_subclass(torch.Tensor)
    return out[0] if squeeze else out


def _affine_points(
    kp: torch.Tensor, params: AugmentParams, i: int, hw: tuple[int, int]
) -> torch.Tensor:
    pts = tv_tensors.KeyPoints(kp + _PIXEL_SHIFT, canvas_size=hw)
    moved = F.affine(pts, **_affine_kwargs(params, i, hw)).as_subclass(torch.Tensor)
    return moved - _PIXEL_SHIFT


def _roll_xyz(xyz: torch.Tensor, angle_deg: torch.Tensor) -> torch.Tensor:
    # F.affine's positive angle turns the picture clockwise on screen (x right, y down: (1, 0)
    # goes to (0, 1)); camera coordinates share those axes, so xyz turns by +angle about z.
    a = torch.deg2rad(angle_deg).to(xyz.dtype)  # (B,)
    c, s = torch.cos(a)[:, None], torch.sin(a)[:, None]  # (B, 1)
    x = c * xyz[..., 0] - s * xyz[..., 1]  # (B, J)
    y = s * xyz[..., 0] + c * xyz[..., 1]  # (B, J)
    return torch.stack([x, y, xyz[..., 2]], dim=-1)  # (B, J, 3)


def _move_K(K: torch.Tensor, params: AugmentParams, hw: tuple[int, int]) -> torch.Tensor:
    # uv' = c + s Rot(uv - c) + t with uv = f xy/z + p, and xyz' = Rot xyz, give
    # uv' = s f xy'/z + (c + s Rot(p - c) + t): the focal scales by s, the principal point moves.
    h, w = hw
    a = torch.deg2rad(params.angle)
    cos, sin = torch.cos(a), torch.sin(a)  # (B,)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)  # handlab px
    p = K[:, :2, 2].double() - centre  # (B, 2)
    rot = torch.stack([cos * p[:, 0] - sin * p[:, 1], sin * p[:, 0] + cos * p[:, 1]], dim=1)
    shift = torch.stack([params.tx, params.ty], dim=1)  # (B, 2)
    out = K.clone()
    out[:, 0, 0] = K[:, 0, 0] * params.scale.to(K.dtype)
    out[:, 1, 1] = K[:, 1, 1] * params.scale.to(K.dtype)
    out[:, :2, 2] = (centre + params.scale[:, None] * rot + shift).to(K.dtype)
    return out


def _jitter(img: torch.Tensor, params: AugmentParams, i: int) -> torch.Tensor:
    img = F.adjust_brightness(img, float(params.brightness[i]))
    img = F.adjust_contrast(img, float(params.contrast[i]))
    return F.adjust_saturation(img, float(params.saturation[i])).clamp(0.0, 1.0)
