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

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from handlab._checks import Array, check_finite, check_shape, check_tensor

__all__ = [
    "axis_angle_to_matrix",
    "crop_to_hand",
    "depth_to_points",
    "hand_box",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rot6d",
    "procrustes",
    "project",
    "project_uvd",
    "quaternion_to_matrix",
    "rot6d_to_matrix",
    "unproject",
]


def _as_tensor(name: str, x: Array) -> torch.Tensor:
    check_tensor(name, x)
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.float()


def _check_K(K: torch.Tensor) -> None:
    check_shape("K", K, ("...", 3, 3))
    check_finite("K", K)


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
    xyz = _as_tensor("xyz", xyz)
    K = _as_tensor("K", K).to(xyz)
    check_shape("xyz", xyz, ("...", None, 3))
    _check_K(K)
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
    uvd = _as_tensor("uvd", uvd)
    K = _as_tensor("K", K).to(uvd)
    check_shape("uvd", uvd, ("...", None, 3))
    _check_K(K)
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
    vis = torch.ones(keypoints.shape[:-1], dtype=torch.bool, device=keypoints.device)
    if visibility is not None:
        visibility = _as_tensor("visibility", visibility)
        check_shape("visibility", visibility, tuple(keypoints.shape[:-1]))
        vis = visibility > 0
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
    image = _as_tensor("image", image)
    batched = image.ndim == 4
    if image.ndim not in (3, 4):
        raise ValueError(
            f"image: expected shape (C, H, W) or (B, C, H, W), got {tuple(image.shape)}"
        )
    images = image if batched else image[None]
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
    w = torch.ones(pred.shape[:-1], dtype=pred.dtype, device=pred.device)
    if visibility is not None:
        visibility = _as_tensor("visibility", visibility)
        check_shape("visibility", visibility, tuple(pred.shape[:-1]))
        w = (visibility > 0).to(pred)
        if bool((w.sum(-1) == 0).any()):
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
