"""Camera geometry, crops, rotations and Procrustes alignment: the shared 3D vocabulary.

Taught in chapter 00 (``notebooks/00_tour.py``).

Conventions used everywhere in handlab:

- ``xyz`` (..., J, 3) are millimetres in the camera frame (x right, y down, z forward).
- ``K`` (..., 3, 3) is the pinhole intrinsic matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.
- ``keypoints`` / ``uv`` (..., J, 2) are pixels ``(x, y)``. **Integer coordinates are pixel
  centres**: the pixel in column 0 covers ``x`` in ``[-0.5, 0.5)``, an image of width ``W`` spans
  ``[-0.5, W - 0.5]``. Every resize, crop and heatmap stride in handlab follows this rule.
- ``uvd`` (..., J, 3) are ``(u px, v px, depth mm)``.

>>> K = torch.tensor([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
>>> project(torch.tensor([[10.0, -20.0, 500.0]]), K).tolist()
[[74.0, 44.0]]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from handlab._checks import Array, check_finite, check_shape, check_tensor

__all__ = [
    "apply_affine",
    "axis_angle_to_matrix",
    "crop_affine",
    "crop_to_hand",
    "depth_to_points",
    "hand_box",
    "invert_affine",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "procrustes",
    "project",
    "project_uvd",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
    "unproject",
    "upright_box",
    "warp_crop",
]


def _as_tensor(name: str, x: Array) -> torch.Tensor:
    check_tensor(name, x)
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.float()


def _check_K(K: torch.Tensor) -> None:
    check_shape("K", K, ("...", 3, 3))
    check_finite("K", K)


def _points_and_K(name: str, points: Array, K: Array) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked float tensors: ``points`` (..., J, 3) and ``K`` (..., 3, 3) in the points' dtype."""
    points = _as_tensor(name, points)
    K = _as_tensor("K", K).to(points)
    check_shape(name, points, ("...", None, 3))
    _check_K(K)
    return points, K


def _visible(visibility: Array | None, points: torch.Tensor) -> torch.Tensor:
    """Bool (..., J): ``visibility > 0`` checked against ``points`` (..., J, C), else all True."""
    if visibility is None:
        return torch.ones(points.shape[:-1], dtype=torch.bool, device=points.device)
    visibility = _as_tensor("visibility", visibility)
    check_shape("visibility", visibility, tuple(points.shape[:-1]))
    return visibility > 0


def _image_batch(image: Array) -> tuple[torch.Tensor, bool]:
    """(C, H, W) or (B, C, H, W) -> a (B, C, H, W) float tensor and whether a batch was given."""
    image = _as_tensor("image", image)
    if image.ndim not in (3, 4):
        raise ValueError(
            f"image: expected shape (C, H, W) or (B, C, H, W), got {tuple(image.shape)}"
        )
    batched = image.ndim == 4
    return (image if batched else image[None]), batched


def project_uvd(xyz: Array, K: Array) -> torch.Tensor:
    """Project camera-frame points to pixels and keep their depth.

    Args:
        xyz: (..., J, 3) mm, camera frame; z must be positive.
        K: (3, 3) or (..., 3, 3) intrinsics, broadcast over the leading dims of ``xyz``.

    Returns:
        uvd (..., J, 3): ``(u px, v px, z mm)`` with ``u = fx x / z + cx``, ``v = fy y / z + cy``.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> project_uvd(torch.tensor([[1.0, 2.0, 10.0]]), K).tolist()
    [[20.0, 40.0, 10.0]]
    """
    xyz, K = _points_and_K("xyz", xyz, K)
    z = xyz[..., 2:3]
    # x' = K @ (x / z); written per entry so skew (K[0, 1]) is honoured and gradients stay simple.
    xn = xyz[..., 0:1] / z
    yn = xyz[..., 1:2] / z
    Kx = K[..., None, :, :]  # (..., 1, 3, 3) broadcasts over joints
    u = Kx[..., 0, 0:1] * xn + Kx[..., 0, 1:2] * yn + Kx[..., 0, 2:3]
    v = Kx[..., 1, 1:2] * yn + Kx[..., 1, 2:3]
    return torch.cat([u, v, z], dim=-1)


def project(xyz: Array, K: Array) -> torch.Tensor:
    """Project camera-frame points (..., J, 3) mm to pixels (..., J, 2) ``(x, y)``.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> project(torch.tensor([[1.0, 2.0, 10.0]]), K).tolist()
    [[20.0, 40.0]]
    """
    return project_uvd(xyz, K)[..., :2]


def unproject(uvd: Array, K: Array) -> torch.Tensor:
    """Inverse of :func:`project_uvd`: ``(u px, v px, depth mm)`` (..., J, 3) -> xyz (..., J, 3) mm.

    >>> K = torch.tensor([[100.0, 0, 10], [0, 100.0, 20], [0, 0, 1]])
    >>> unproject(torch.tensor([[20.0, 40.0, 10.0]]), K).tolist()
    [[1.0, 2.0, 10.0]]
    """
    uvd, K = _points_and_K("uvd", uvd, K)
    Kx = K[..., None, :, :]
    z = uvd[..., 2:3]
    yn = (uvd[..., 1:2] - Kx[..., 1, 2:3]) / Kx[..., 1, 1:2]
    xn = (uvd[..., 0:1] - Kx[..., 0, 2:3] - Kx[..., 0, 1:2] * yn) / Kx[..., 0, 0:1]
    return torch.cat([xn * z, yn * z, z], dim=-1)


def depth_to_points(
    depth: Array, K: Array, mask: Array | None = None, stride: int = 2
) -> torch.Tensor:
    """Back-project a depth map to a point cloud, one point per ``stride``-th pixel centre.

    Args:
        depth: (H, W) or (1, H, W) mm; values <= 0 mean "no measurement" and are dropped.
        K: (3, 3) intrinsics of the depth image.
        mask: optional (H, W) or (1, H, W); pixels where it is 0 are dropped.
        stride: keep every ``stride``-th row and column (2 quarters the point count).

    Returns:
        xyz (N, 3) mm, camera frame, in row-major pixel order.

    >>> K = torch.tensor([[100.0, 0, 1], [0, 100.0, 1], [0, 0, 1]])
    >>> depth_to_points(torch.full((3, 3), 200.0), K, stride=2).tolist()
    [[-2.0, -2.0, 200.0], [2.0, -2.0, 200.0], [-2.0, 2.0, 200.0], [2.0, 2.0, 200.0]]
    """
    depth = _as_tensor("depth", depth)
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    check_shape("depth", depth, (None, None))
    K = _as_tensor("K", K).to(depth)
    check_shape("K", K, (3, 3))
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: expected a positive int, got {stride!r}")
    keep = torch.isfinite(depth) & (depth > 0)
    if mask is not None:
        mask = _as_tensor("mask", mask)
        mask = mask[0] if mask.ndim == 3 and mask.shape[0] == 1 else mask
        check_shape("mask", mask, tuple(depth.shape))
        keep &= mask != 0
    rows = torch.arange(0, depth.shape[0], stride, device=depth.device)
    cols = torch.arange(0, depth.shape[1], stride, device=depth.device)
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    sel = keep[v, u]
    uvd = torch.stack([u[sel].to(depth), v[sel].to(depth), depth[v, u][sel]], dim=-1)
    return unproject(uvd, K)


# ---------------------------------------------------------------------------------------------
# Boxes and crops


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


# ---------------------------------------------------------------------------------------------
# Rotations. Quaternions are (w, x, y, z). Formulas follow pytorch3d's ``rotation_conversions``
# (robust quaternion extraction by the best-conditioned of four candidates; Taylor expansions
# near angle 0), written with masks so gradients stay finite at 0 and pi.


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0 (not NaN) where x <= 0."""
    out = torch.zeros_like(x)
    pos = x > 0
    out[pos] = torch.sqrt(x[pos])
    return out


def quaternion_to_matrix(quaternion: Array) -> torch.Tensor:
    """Unit (or unnormalised) quaternions (..., 4) ``(w, x, y, z)`` -> rotations (..., 3, 3).

    >>> quaternion_to_matrix(torch.tensor([0.0, 0.0, 0.0, 1.0])).round().tolist()
    [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    quaternion = _as_tensor("quaternion", quaternion)
    check_shape("quaternion", quaternion, ("...", 4))
    w, x, y, z = quaternion.unbind(-1)
    s = 2.0 / (quaternion * quaternion).sum(-1)
    m = [
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(m, dim=-1).reshape(quaternion.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> unit quaternions (..., 4) ``(w, x, y, z)`` with ``w >= 0``.

    >>> matrix_to_quaternion(torch.eye(3)).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    matrix = _as_tensor("matrix", matrix)
    check_shape("matrix", matrix, ("...", 3, 3))
    m = matrix.reshape(matrix.shape[:-2] + (9,)).unbind(-1)
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    q_abs = _sqrt_positive(
        torch.stack(
            [
                1 + m00 + m11 + m22,  # 4 w^2
                1 + m00 - m11 - m22,  # 4 x^2
                1 - m00 + m11 - m22,  # 4 y^2
                1 - m00 - m11 + m22,  # 4 z^2
            ],
            dim=-1,
        )
    )
    rows = [
        [q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01],
        [m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20],
        [m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21],
        [m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2],
    ]
    cands = torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)  # (..., 4, 4)
    cands = cands / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = F.one_hot(q_abs.argmax(dim=-1), num_classes=4).to(cands)  # (..., 4)
    q = (cands * best[..., None]).sum(dim=-2)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_matrix(axis_angle: Array) -> torch.Tensor:
    """Axis-angle vectors (..., 3) (direction = axis, norm = angle in radians) -> (..., 3, 3).

    Exact and differentiable at angle 0 (a Taylor branch) and at pi.

    >>> axis_angle_to_matrix(torch.tensor([0.0, 0.0, torch.pi / 2])).round().tolist()
    [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    axis_angle = _as_tensor("axis_angle", axis_angle)
    check_shape("axis_angle", axis_angle, ("...", 3))
    angle2 = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = angle2 < 1e-8
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle2), angle2))
    # sin(a/2)/a = 1/2 - a^2/48 + ...; cos(a/2) = 1 - a^2/8 + ...
    sin_half_over = torch.where(small, 0.5 - angle2 / 48, torch.sin(angle / 2) / angle)
    cos_half = torch.where(small, 1 - angle2 / 8, torch.cos(angle / 2))
    return quaternion_to_matrix(torch.cat([cos_half, axis_angle * sin_half_over], dim=-1))


def matrix_to_axis_angle(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> axis-angle (..., 3) with angle in [0, pi].

    >>> matrix_to_axis_angle(axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.1]))).tolist()
    [0.3..., -0.2..., 0.1...]
    """
    q = matrix_to_quaternion(matrix)
    sin_half2 = (q[..., 1:] ** 2).sum(-1, keepdim=True)
    small = sin_half2 < 1e-12
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_half2), sin_half2))
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    # axis * angle = v * angle / |v|; near 0, angle / |v| -> 2 / w (1 + |v|^2 / (6 w^2)).
    w = q[..., :1]
    factor = torch.where(small, 2 / w * (1 + sin_half2 / (6 * w * w)), angle / sin_half)
    return q[..., 1:] * factor


def rot6d_to_matrix(rot6d: Array) -> torch.Tensor:
    """6D rotation (..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al., CVPR 2019).

    handlab, like pytorch3d, stores the first two ROWS of the matrix (the paper uses columns).

    >>> rot6d_to_matrix(torch.tensor([2.0, 0, 0, 1, 3, 0])).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    rot6d = _as_tensor("rot6d", rot6d)
    check_shape("rot6d", rot6d, ("...", 6))
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-2)


def matrix_to_rot6d(matrix: Array) -> torch.Tensor:
    """Rotations (..., 3, 3) -> 6D (..., 6): the first two rows, flattened.

    >>> matrix_to_rot6d(torch.eye(3)).tolist()
    [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    matrix = _as_tensor("matrix", matrix)
    check_shape("matrix", matrix, ("...", 3, 3))
    return matrix[..., :2, :].reshape(matrix.shape[:-2] + (6,))


# ---------------------------------------------------------------------------------------------
# Procrustes


def procrustes(
    pred: Array, target: Array, *, scale: bool = True, visibility: Array | None = None
) -> torch.Tensor:
    """Align ``pred`` to ``target`` by the best similarity (or rigid) transform, batched.

    Umeyama (1991): centre both, ``H = X0^T Y0 = U S V^T``, rotation ``R = U D V^T`` with
    ``D = diag(1, .., sign det(U V^T))`` (no reflections), scale ``tr(DS) / |X0|^2``.

    Args:
        pred, target: (..., J, C) points, C = 2 or 3 (mm for PA-MPJPE).
        scale: fit the scale too (PA-MPJPE); False gives a rigid fit (rotation + translation).
        visibility: optional (..., J); only joints with weight > 0 determine the fit (all joints
            are transformed).

    Returns:
        aligned pred (..., J, C).

    >>> t = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    >>> R = axis_angle_to_matrix(torch.tensor([0.1, 0.2, 0.3]))
    >>> torch.allclose(procrustes(2 * t @ R.T + 5, t), t, atol=1e-5)
    True
    """
    pred = _as_tensor("pred", pred)
    target = _as_tensor("target", target).to(pred)
    check_shape("pred", pred, ("...", None, None))
    if pred.shape != target.shape:
        raise ValueError(
            f"target: expected the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}"
        )
    check_finite("pred", pred)
    check_finite("target", target)
    w = _visible(visibility, pred).to(pred)
    if visibility is not None and bool((w.sum(-1) == 0).any()):
        raise ValueError("visibility: expected at least one visible joint per sample, got none")
    w = w[..., None]  # (..., J, 1)
    mu_p = (w * pred).sum(-2, keepdim=True) / w.sum(-2, keepdim=True)
    mu_t = (w * target).sum(-2, keepdim=True) / w.sum(-2, keepdim=True)
    X0, Y0 = pred - mu_p, target - mu_t  # (..., J, C)
    H = (w * X0).transpose(-1, -2) @ Y0  # (..., C, C)
    U, S, Vh = torch.linalg.svd(H)
    d = torch.sign(torch.linalg.det(U @ Vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    D = torch.ones_like(S)
    D[..., -1] = d
    R = (U * D[..., None, :]) @ Vh  # (..., C, C), aligned = X0 @ R
    s = torch.ones_like(d)[..., None, None]
    if scale:
        var = (w * X0 * X0).sum((-1, -2))
        s = ((D * S).sum(-1) / var.clamp(min=torch.finfo(pred.dtype).tiny))[..., None, None]
    return s * X0 @ R + mu_t
