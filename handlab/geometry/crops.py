"""Square crops around a hand: boxes, crops with their exact keypoint and intrinsics transforms,
and turned (upright) crops with the affines that take predictions back to the source image.

Taught in chapter 00 (``notebooks/00_tour.py``); the datasets (:mod:`handlab.data`) crop with
:func:`crop_to_hand` and, for real photos, :func:`upright_box` + :func:`crop_affine` +
:func:`warp_crop`. Pixel centres are at integers (see :mod:`handlab.geometry`).

>>> hand_box(torch.tensor([[10.0, 20.0], [30.0, 30.0]]), margin=1.0).tolist()
[10.0, 15.0, 30.0, 35.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from handlab._checks import Array, check_finite, check_shape
from handlab.geometry._common import _as_tensor, _check_K, _visible

__all__ = [
    "apply_affine",
    "crop_affine",
    "crop_to_hand",
    "hand_box",
    "invert_affine",
    "upright_box",
    "warp_crop",
]


def _image_batch(image: Array) -> tuple[torch.Tensor, bool]:
    """(C, H, W) or (B, C, H, W) -> a (B, C, H, W) float tensor and whether a batch was given."""
    image = _as_tensor("image", image)
    if image.ndim not in (3, 4):
        raise ValueError(
            f"image: expected shape (C, H, W) or (B, C, H, W), got {tuple(image.shape)}"
        )
    batched = image.ndim == 4
    return (image if batched else image[None]), batched


def hand_box(
    keypoints: Array, *, margin: float = 1.3, visibility: Array | None = None
) -> torch.Tensor:
    """Square box around the (visible) keypoints, enlarged by ``margin``.

    Args:
        keypoints: (..., J, 2) pixels (x, y).
        margin: side = ``margin * max(width, height)`` of the tight box (at least 1 px).
        visibility: optional (..., J); joints with 0 are ignored. Each hand needs one visible joint.

    Returns:
        boxes (..., 4) ``(x0, y0, x1, y1)`` in the same pixel coordinates, centred on the tight
        box. ``crop_to_hand`` maps ``x0`` / ``x1`` to the crop's left / right pixel edges.

    >>> hand_box(torch.tensor([[10.0, 20.0], [30.0, 30.0]]), margin=1.0).tolist()
    [10.0, 15.0, 30.0, 35.0]
    """
    keypoints = _as_tensor("keypoints", keypoints)
    check_shape("keypoints", keypoints, ("...", None, 2))
    check_finite("keypoints", keypoints)
    if margin <= 0:
        raise ValueError(f"margin: expected a positive number, got {margin}")
    vis = _visible(visibility, keypoints)
    if not bool(vis.any(dim=-1).all()):
        raise ValueError("visibility: expected at least one visible joint per hand, got none")
    big = torch.finfo(keypoints.dtype).max
    lo = torch.where(vis[..., None], keypoints, big).amin(dim=-2)  # (..., 2)
    hi = torch.where(vis[..., None], keypoints, -big).amax(dim=-2)  # (..., 2)
    centre = (lo + hi) / 2
    half = ((hi - lo).amax(dim=-1, keepdim=True) * margin).clamp(min=1.0) / 2  # (..., 1)
    return torch.cat([centre - half, centre + half], dim=-1)


def _box_affine(box: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 4) boxes -> (B, 2, 3) affines taking source pixels to crop pixels (centres at ints).

    The box edge ``x0`` goes to the crop's left edge ``-0.5``: ``x' = s (x - x0) - 0.5`` with
    ``s = size / (x1 - x0)``.
    """
    sx = size / (box[:, 2] - box[:, 0])
    sy = size / (box[:, 3] - box[:, 1])
    zero = torch.zeros_like(sx)
    row0 = torch.stack([sx, zero, -sx * box[:, 0] - 0.5], dim=-1)
    row1 = torch.stack([zero, sy, -sy * box[:, 1] - 0.5], dim=-1)
    return torch.stack([row0, row1], dim=1)


def _warp(images: torch.Tensor, box: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resample ``box`` of (B, C, H, W) to (B, C, size, size), zeros outside the image.

    ``grid_sample(align_corners=False)`` puts normalised -1 / +1 on the outer pixel edges, which
    is exactly handlab's pixel-centre convention; torchvision's ``resized_crop`` wants integer
    boxes, which would break the exact keypoint transform, so the affine grid is built here.
    """
    B, _, H, W = images.shape
    bw = box[:, 2] - box[:, 0]
    bh = box[:, 3] - box[:, 1]
    zero = torch.zeros_like(bw)
    # normalised crop coords n' -> normalised source coords: n = n' bw / W + (bw + 2 x0 + 1) / W - 1
    theta = torch.stack(
        [
            torch.stack([bw / W, zero, (bw + 2 * box[:, 0] + 1) / W - 1], dim=-1),
            torch.stack([zero, bh / H, (bh + 2 * box[:, 1] + 1) / H - 1], dim=-1),
        ],
        dim=1,
    ).to(images.dtype)
    grid = F.affine_grid(theta, [B, 1, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode=mode, padding_mode="zeros", align_corners=False)


def crop_to_hand(
    image: Array,
    keypoints: Array,
    K: Array | None = None,
    *,
    size: int = 128,
    margin: float = 1.3,
    box: Array | None = None,
    visibility: Array | None = None,
    extra: Sequence[Array] = (),
) -> dict[str, torch.Tensor | tuple[torch.Tensor, ...] | None]:
    """Crop a square box around the hand and resize it to ``size`` x ``size``.

    Args:
        image: (C, H, W) or (B, C, H, W) float; resampled bilinearly, 0 outside the image
            (no anti-aliasing: boxes much larger than ``size`` alias).
        keypoints: (J, 2) or (B, J, 2) pixels (x, y) in ``image``.
        K: optional (3, 3) or (B, 3, 3) intrinsics of ``image``.
        size: output side in pixels.
        margin, visibility: passed to :func:`hand_box` when ``box`` is not given.
        box: optional (4,) or (B, 4) ``(x0, y0, x1, y1)`` to use instead of :func:`hand_box`.
        extra: further (C', H, W) / (B, C', H, W) maps (depth mm, masks) resampled with
            nearest-neighbour so no value is invented; 0 outside the image.

    Returns:
        dict with ``image`` (B?, C, size, size), ``keypoints`` (B?, J, 2) in crop pixels,
        ``K`` (B?, 3, 3) such that ``project(xyz, K_new)`` equals the moved keypoints (or None),
        ``affine`` (B?, 2, 3) source px -> crop px, ``box`` (B?, 4) and ``extra`` (tuple).
        The batch dim is present only if ``image`` had one.

    >>> out = crop_to_hand(torch.rand(3, 64, 64), torch.tensor([[10.0, 10.0], [30.0, 20.0]]),
    ...                    size=32, margin=1.0)
    >>> out["image"].shape, out["keypoints"].tolist()
    (torch.Size([3, 32, 32]), [[-0.5, 7.5], [31.5, 23.5]])
    """
    images, batched = _image_batch(image)
    B, _, H, W = images.shape
    keypoints = _as_tensor("keypoints", keypoints).to(images.dtype)
    check_shape("keypoints", keypoints, (B, None, 2) if batched else (None, 2))
    kps = keypoints if batched else keypoints[None]
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    if box is None:
        vis = None if visibility is None else _as_tensor("visibility", visibility)
        vis = vis if vis is None or batched else vis[None]
        boxes = hand_box(kps, margin=margin, visibility=vis)
    else:
        boxes = _as_tensor("box", box).to(images.dtype)
        check_shape("box", boxes, (B, 4) if batched else (4,))
        boxes = boxes if batched else boxes[None]
        if bool(((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])).any()):
            raise ValueError(f"box: expected x1 > x0 and y1 > y0, got {boxes.tolist()}")
    affine = _box_affine(boxes, size)  # (B, 2, 3)
    new_kps = kps @ affine[:, :, :2].transpose(1, 2) + affine[:, None, :, 2]
    new_K = None
    if K is not None:
        K = _as_tensor("K", K).to(images.dtype)
        _check_K(K)
        A3 = torch.cat([affine, affine.new_tensor([0.0, 0.0, 1.0]).expand(B, 1, 3)], dim=1)
        new_K = A3 @ K  # (B, 3, 3): pixels move by the same affine as the keypoints
    outs = []
    for i, m in enumerate(extra):
        m = _as_tensor(f"extra[{i}]", m)
        m4 = m if batched else m[None]
        if m4.ndim != 4 or m4.shape[0] != B or m4.shape[-2:] != (H, W):
            raise ValueError(
                f"extra[{i}]: expected shape {'(B, C, H, W)' if batched else '(C, H, W)'} with "
                f"H, W = {H}, {W}, got {tuple(m.shape)}"
            )
        warped = _warp(m4.to(images.dtype), boxes, size, "nearest").to(m.dtype)
        outs.append(warped if batched else warped[0])

    def unbatch(t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or batched else t[0]

    return {
        "image": unbatch(_warp(images, boxes, size, "bilinear")),
        "keypoints": unbatch(new_kps),
        "K": unbatch(new_K),
        "affine": unbatch(affine),
        "box": unbatch(boxes),
        "extra": tuple(outs),
    }


# ---------------------------------------------------------------------------------------------
# Rotated square crops (``upright``: wrist -> middle MCP pointing up, as MediaPipe's detector
# hands its landmark model) and their exact inverse for predictions. One (2, 3) affine from source
# pixels to crop pixels carries everything; the image is resampled through its inverse.


def crop_affine(
    centre: Array,
    side: Array,
    size: int,
    *,
    angle: Array | float = 0.0,
    mirror: Array | bool = False,
) -> torch.Tensor:
    """Affines (..., 2, 3) taking source pixels to the pixels of a ``size`` px square crop.

    The square has centre ``centre`` (..., 2) px, side ``side`` (...,) px and is turned by
    ``angle`` (...,) radians (a source direction at ``-angle`` from "up" comes out pointing up);
    ``mirror`` flips the crop left-right (a left hand read as a right one). The square's edge
    maps to the crop's pixel edges (centres at integers): ``x' = size / side * R (x - c) +
    (size - 1) / 2``.

    >>> crop_affine(torch.tensor([10.0, 20.0]), torch.tensor(8.0), 4).tolist()
    [[0.5, 0.0, -3.5], [0.0, 0.5, -8.5]]
    """
    centre = _as_tensor("centre", centre)
    check_shape("centre", centre, ("...", 2))
    side = _as_tensor("side", side).to(centre)
    angle = torch.as_tensor(angle, dtype=centre.dtype)
    mirror = torch.as_tensor(mirror, dtype=torch.bool)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int, got {size!r}")
    if not bool((side > 0).all()):
        raise ValueError(f"side: expected positive crop sides (px), got {side.tolist()}")
    shape = torch.broadcast_shapes(centre.shape[:-1], side.shape, angle.shape, mirror.shape)
    s = (size / side).expand(shape)
    cos, sin = torch.cos(angle).expand(shape), torch.sin(angle).expand(shape)
    flip = torch.where(mirror, -1.0, 1.0).to(centre).expand(shape)
    lin = torch.stack(
        [torch.stack([flip * s * cos, -flip * s * sin], -1), torch.stack([s * sin, s * cos], -1)],
        -2,
    )  # (..., 2, 2): scale, rotate, then mirror x
    shift = (size - 1) / 2 - (lin @ centre.expand(*shape, 2)[..., None])[..., 0]
    return torch.cat([lin, shift[..., None]], -1)


def apply_affine(points: Array, affine: Array) -> torch.Tensor:
    """Move points (..., J, 2) px by affines (..., 2, 3): ``p' = A[:, :2] p + A[:, 2]``.

    >>> apply_affine(torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 0, 1], [0, 2.0, 0]])).tolist()
    [[3.0, 4.0]]
    """
    points = _as_tensor("points", points)
    affine = _as_tensor("affine", affine).to(points)
    check_shape("points", points, ("...", None, 2))
    check_shape("affine", affine, ("...", 2, 3))
    return points @ affine[..., :2].transpose(-1, -2) + affine[..., None, :, 2]


def invert_affine(affine: Array) -> torch.Tensor:
    """The inverse (..., 2, 3) of affines (..., 2, 3): crop pixels back to source pixels.

    >>> A = crop_affine(torch.tensor([5.0, 5.0]), torch.tensor(4.0), 8, angle=0.3)
    >>> p = torch.tensor([[1.0, 2.0]])
    >>> torch.allclose(apply_affine(apply_affine(p, A), invert_affine(A)), p, atol=1e-5)
    True
    """
    affine = _as_tensor("affine", affine)
    check_shape("affine", affine, ("...", 2, 3))
    inv = torch.linalg.inv(affine[..., :2])
    return torch.cat([inv, -(inv @ affine[..., 2:])], -1)


def upright_box(
    keypoints: Array,
    *,
    scale: float = 1.5,
    visibility: Array | None = None,
    box: Array | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre (..., 2), side (...,) and angle (...,) of the upright square crop of a hand.

    The angle turns the wrist (joint 0) -> middle MCP (joint 9) direction to point up; the side
    is ``scale`` x the longer side of the visible keypoints' box in that turned frame, centred on
    it. A hand whose wrist or middle MCP is not visible gets angle 0 and, when ``box``
    (..., 4) ``(x0, y0, x1, y1)`` is given, that box's square instead (the "from a box" case).

    Args:
        keypoints: (..., 21, 2) px, canonical order.
        scale: crop side / hand extent (1.5: the plain crops' default).
        visibility: optional (..., 21); joints with 0 are ignored.
        box: optional (..., 4) fallback box for hands without a usable direction.

    >>> kp = torch.zeros(21, 2); kp[9] = torch.tensor([10.0, 0.0])  # middle MCP right of wrist
    >>> c, s, a = upright_box(kp, scale=1.0)
    >>> round(float(a), 4), float(s)  # a quarter turn anticlockwise on screen (y down)
    (-1.5708, 10.0)
    """
    keypoints = _as_tensor("keypoints", keypoints)
    check_shape("keypoints", keypoints, ("...", 21, 2))
    check_finite("keypoints", keypoints)
    if not scale > 0:
        raise ValueError(f"scale: expected a positive number, got {scale!r}")
    vis = _visible(visibility, keypoints)
    d = keypoints[..., 9, :] - keypoints[..., 0, :]
    usable = vis[..., 0] & vis[..., 9] & (d.norm(dim=-1) > 0)
    # image "up" is -y; rotating d by angle a must give (0, -|d|): a = -pi/2 - atan2(dy, dx)
    angle = torch.where(usable, -math.pi / 2 - torch.atan2(d[..., 1], d[..., 0]), 0.0)
    angle = torch.remainder(angle + math.pi, 2 * math.pi) - math.pi
    cos, sin = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    turned = torch.stack(
        [
            cos * keypoints[..., 0] - sin * keypoints[..., 1],
            sin * keypoints[..., 0] + cos * keypoints[..., 1],
        ],
        -1,
    )  # (..., 21, 2) keypoints in the turned frame
    tight = hand_box(turned, margin=1.0, visibility=vis)  # (..., 4) turned frame
    mid = (tight[..., :2] + tight[..., 2:]) / 2
    centre = torch.stack(
        [
            cos[..., 0] * mid[..., 0] + sin[..., 0] * mid[..., 1],
            -sin[..., 0] * mid[..., 0] + cos[..., 0] * mid[..., 1],
        ],
        -1,
    )  # back to the source frame
    side = (tight[..., 2] - tight[..., 0]) * scale
    if box is not None:
        box = _as_tensor("box", box).to(keypoints)
        check_shape("box", box, (*keypoints.shape[:-2], 4))
        centre = torch.where(usable[..., None], centre, (box[..., :2] + box[..., 2:]) / 2)
        fallback = (box[..., 2:] - box[..., :2]).amax(-1) * scale
        side = torch.where(usable, side, fallback)
    return centre, side, angle


def warp_crop(image: Array, affine: Array, size: int) -> torch.Tensor:
    """Resample (C, H, W) or (B, C, H, W) through ``affine`` (B?, 2, 3) into a ``size`` crop.

    Bilinear, 0 outside the image. When the crop shrinks the source by more than 1.5x the
    image is first downscaled with anti-aliasing (``F.interpolate(antialias=True)``) and the
    affine adjusted exactly, so small crops of large photos do not alias.

    >>> img = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> A = crop_affine(torch.tensor([1.5, 1.5]), torch.tensor(4.0), 4)
    >>> bool(torch.allclose(warp_crop(img, A[None], 4), img))
    True
    """
    images, batched = _image_batch(image)
    affine = _as_tensor("affine", affine).to(images.dtype)
    check_shape("affine", affine, (images.shape[0], 2, 3) if batched else (2, 3))
    affine = affine if batched else affine[None]
    B, _, H, W = images.shape
    shrink = float(torch.linalg.det(affine[:, :, :2]).abs().min().sqrt())  # crop px per source px
    if shrink < 1 / 1.5:
        h, w = max(1, round(H * shrink)), max(1, round(W * shrink))
        images = F.interpolate(
            images, size=(h, w), mode="bilinear", antialias=True, align_corners=False
        )
        # resized px x_r = (x + 0.5) r - 0.5, so crop = A x = (A / r) x_r + A (0.5 / r - 0.5)
        r = torch.tensor([w / W, h / H], dtype=images.dtype)
        lin = affine[:, :, :2] / r
        shift = affine[:, :, 2] + (affine[:, :, :2] @ (0.5 / r - 0.5)[:, None])[..., 0]
        affine = torch.cat([lin, shift[..., None]], -1)
        H, W = h, w
    inv = invert_affine(affine)  # crop px -> source px
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=images.dtype),
        torch.arange(size, dtype=images.dtype),
        indexing="ij",
    )
    grid = apply_affine(torch.stack([xs, ys], -1).reshape(1, -1, 2), inv)  # (B, S*S, 2) source px
    norm = torch.stack([(2 * grid[..., 0] + 1) / W - 1, (2 * grid[..., 1] + 1) / H - 1], -1)
    out = F.grid_sample(
        images,
        norm.reshape(B, size, size, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out if batched else out[0]
