"""Depth -> occupancy voxels around a reference point, and the reference point itself (V2V-PoseNet).

Taught in chapter 05 (``notebooks/05_v2v.py``).

Moon, Chang & Lee, "V2V-PoseNet: Voxel-to-Voxel Prediction Network for Accurate 3D Hand and Human
Pose Estimation from a Single Depth Map", CVPR 2018, section 4: every depth pixel is back-projected
to 3D, a cube of side ``cube_mm`` (250 mm for hands) is centred on a *reference point*, the cube
is cut into ``grid`` voxels per side and a voxel is 1 when at least one point falls in it. The
reference point is the centre of mass of the depth points, moved by a small 2D network that
predicts the offset to the hand's centre (their "reference point refinement").

Voxel conventions (used by :mod:`handlab.models.v2v` and :mod:`handlab.postprocess`):

- a volume is ``(B, C, G, G, G)`` indexed ``[b, c, z, y, x]`` (``conv3d``'s ``D, H, W``);
- voxel coordinates are ``(x, y, z)`` floats with **integers at voxel centres**, as pixels are in
  :mod:`handlab.geometry`: voxel ``i`` covers ``[i - 0.5, i + 0.5)``; the cube spans
  ``[-0.5, G - 0.5]`` on each axis and its centre, the reference point, sits at ``(G - 1) / 2``.

>>> K = torch.tensor([[100.0, 0.0, 31.5], [0.0, 100.0, 31.5], [0.0, 0.0, 1.0]])
>>> depth = torch.zeros(1, 1, 64, 64)
>>> depth[..., 24:40, 24:40] = 400.0
>>> ref = center_of_mass(depth, K)
>>> [round(v, 3) for v in ref[0].tolist()]
[0.0, 0.0, 400.0]
>>> vox = voxelize(depth, K, ref, grid=16, cube_mm=250.0)
>>> vox.shape, int(vox.sum())  # a flat square 60 mm wide, one layer deep: 4 x 4 voxels
(torch.Size([1, 1, 16, 16, 16]), 16)
"""

from __future__ import annotations

import torch
from torch import nn

from handlab._checks import check_finite, check_range, check_shape
from handlab.geometry import unproject

__all__ = [
    "RefineNet",
    "center_of_mass",
    "check_depth",
    "hand_center",
    "pixel_points",
    "segment_depth",
    "volume_depth_map",
    "voxel_to_xyz",
    "voxelize",
    "xyz_to_voxel",
]


def check_depth(depth: object, name: str = "depth") -> None:
    """Validate a depth batch ``(B, 1, H, W)`` mm: a finite tensor with a measurement in every
    sample (pixels <= 0 are "no measurement"); an empty depth map raises ``ValueError``."""
    if not isinstance(depth, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor (B, 1, H, W) mm, got {type(depth).__name__}"
        )
    check_shape(name, depth, (None, 1, None, None))
    check_finite(name, depth)
    if depth.shape[0] == 0 or depth.shape[-1] == 0 or depth.shape[-2] == 0:
        raise ValueError(
            f"{name}: expected a non-empty batch of depth maps, got {tuple(depth.shape)}"
        )
    empty = ((depth > 0).flatten(1).sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"{name}: expected every depth map to hold pixels with depth > 0 mm, got empty "
            f"depth in samples {empty}"
        )


def _check_K(K: torch.Tensor, batch: int) -> torch.Tensor:
    check_shape("K", K, ("...", 3, 3))
    check_finite("K", K)
    if K.ndim == 2:
        K = K.expand(batch, 3, 3)
    check_shape("K", K, (batch, 3, 3))
    return K


def pixel_points(depth: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-project every pixel: ``depth`` (B, 1, H, W) mm, ``K`` (3, 3) or (B, 3, 3) ->
    ``points`` (B, H*W, 3) mm camera frame and ``valid`` (B, H*W) bool (depth > 0).

    >>> K = torch.tensor([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 1.0]])
    >>> pts, valid = pixel_points(torch.tensor([[[[200.0, 0.0]]]]), K)
    >>> pts[0, 0].tolist(), valid.tolist()
    ([0.0, 0.0, 200.0], [[True, False]])
    """
    B, _, H, W = depth.shape
    K = _check_K(K.to(depth), B)
    v, u = torch.meshgrid(
        torch.arange(H, dtype=depth.dtype, device=depth.device),
        torch.arange(W, dtype=depth.dtype, device=depth.device),
        indexing="ij",
    )
    d = depth.reshape(B, H * W)  # (B, N)
    uvd = torch.stack([u.reshape(-1).expand(B, -1), v.reshape(-1).expand(B, -1), d], dim=-1)
    return unproject(uvd, K), d > 0  # (B, N, 3), (B, N)


def center_of_mass(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """The mean of the back-projected depth points, V2V's unrefined reference point.

    Args:
        depth: (B, 1, H, W) mm, pixels <= 0 are background. Every sample needs one valid pixel.
        K: (3, 3) or (B, 3, 3) intrinsics of ``depth``.

    Returns:
        (B, 3) mm, camera frame.
    """
    check_depth(depth)
    points, valid = pixel_points(depth, K)
    w = valid.to(depth.dtype)[..., None]  # (B, N, 1)
    return (points * w).sum(1) / w.sum(1)  # (B, 3)


def segment_depth(depth: torch.Tensor, window_mm: float) -> torch.Tensor:
    """Keep the hand of an unsegmented crop by depth thresholding, as A2J's and V2V's pipelines
    do on NYU: pixels within ``window_mm`` of the median depth of the crop's central patch (the
    middle half of each side, where a crop around the hand puts the hand) are kept, the rest set
    to 0. ``depth`` (B, 1, H, W) mm -> same shape.

    >>> depth = torch.full((1, 1, 8, 8), 900.0)
    >>> depth[..., 2:6, 2:6] = 400.0
    >>> segment_depth(depth, 150.0)[0, 0, :, 1:4].tolist()[2:4]
    [[0.0, 400.0, 400.0], [0.0, 400.0, 400.0]]
    """
    check_depth(depth)
    check_range("window_mm", window_mm, lo=1e-3)
    H, W = depth.shape[-2:]
    centre = depth[..., H // 4 : H - H // 4, W // 4 : W - W // 4].flatten(1)  # (B, n)
    # median over the valid central pixels: invalid ones become NaN and nanmedian skips them
    z0 = torch.where(centre > 0, centre, torch.full_like(centre, float("nan"))).nanmedian(1).values
    if bool(torch.isnan(z0).any()):
        empty = torch.isnan(z0).nonzero().flatten().tolist()
        raise ValueError(f"depth: expected valid pixels in the central patch, got none in {empty}")
    keep = (depth > 0) & ((depth - z0[:, None, None, None]).abs() <= window_mm)
    return depth * keep.to(depth.dtype)


def hand_center(xyz: torch.Tensor) -> torch.Tensor:
    """The refinement target: the centre of the joints' bounding box, (B, J, 3) -> (B, 3) mm.

    The box centre (not the joint mean) keeps the whole hand inside a cube centred on it.

    >>> hand_center(torch.tensor([[[0.0, 0.0, 0.0], [10.0, 4.0, 2.0], [2.0, 0.0, 0.0]]])).tolist()
    [[5.0, 2.0, 1.0]]
    """
    check_shape("xyz", xyz, (None, None, 3))
    return (xyz.amin(1) + xyz.amax(1)) / 2


def xyz_to_voxel(
    xyz: torch.Tensor, ref_xyz: torch.Tensor, *, grid: int, cube_mm: float
) -> torch.Tensor:
    """Camera-frame points (B, J, 3) mm -> continuous voxel coordinates (B, J, 3) ``(x, y, z)``
    of a ``grid``-voxel cube of side ``cube_mm`` centred on ``ref_xyz`` (B, 3) mm.

    >>> xyz_to_voxel(torch.zeros(1, 1, 3), torch.zeros(1, 3), grid=4, cube_mm=8.0).tolist()
    [[[1.5, 1.5, 1.5]]]
    """
    check_shape("xyz", xyz, (None, None, 3))
    check_shape("ref_xyz", ref_xyz, (xyz.shape[0], 3))
    size = cube_mm / grid  # mm per voxel
    return (xyz - ref_xyz[:, None]) / size + (grid - 1) / 2


def voxel_to_xyz(
    coords: torch.Tensor, ref_xyz: torch.Tensor, *, grid: int, cube_mm: float
) -> torch.Tensor:
    """Inverse of :func:`xyz_to_voxel`: voxel coordinates (B, J, 3) -> (B, J, 3) mm.

    >>> voxel_to_xyz(torch.full((1, 1, 3), 1.5), torch.zeros(1, 3), grid=4, cube_mm=8.0).tolist()
    [[[0.0, 0.0, 0.0]]]
    """
    check_shape("coords", coords, (None, None, 3))
    check_shape("ref_xyz", ref_xyz, (coords.shape[0], 3))
    size = cube_mm / grid
    return (coords - (grid - 1) / 2) * size + ref_xyz[:, None]


def voxelize(
    depth: torch.Tensor,
    K: torch.Tensor,
    ref_xyz: torch.Tensor,
    *,
    grid: int = 32,
    cube_mm: float = 250.0,
) -> torch.Tensor:
    """Binary occupancy of the cube around ``ref_xyz``: 1 where a depth point falls, else 0.

    Args:
        depth: (B, 1, H, W) mm, pixels <= 0 are background.
        K: (3, 3) or (B, 3, 3) intrinsics of ``depth``.
        ref_xyz: (B, 3) mm, the cube centre (camera frame).
        grid: voxels per side (88 in the paper; 32 for the CPU models).
        cube_mm: the cube side in mm (250 for hands).

    Returns:
        (B, 1, grid, grid, grid) float in {0, 1}, indexed ``[b, 0, z, y, x]``. The occupancy is
        binary as in the paper; its gradient with respect to ``depth`` (and ``ref_xyz``) is that
        of a trilinear splat of the points (a straight-through estimator), so attribution
        methods see how moving a depth pixel moves the voxels.

    Raises ``ValueError`` for an empty depth map, or when no point of a sample falls inside its
    cube (an all-background crop, or a reference point far from the hand).
    """
    check_depth(depth)
    check_shape("ref_xyz", ref_xyz, (depth.shape[0], 3))
    check_finite("ref_xyz", ref_xyz)
    if not isinstance(grid, int):
        raise TypeError(f"grid: expected an int, got {type(grid).__name__}")
    check_range("grid", grid, lo=2)
    check_range("cube_mm", cube_mm, lo=1e-3)
    B = depth.shape[0]
    points, valid = pixel_points(depth, K)
    coords = xyz_to_voxel(points, ref_xyz.to(points), grid=grid, cube_mm=cube_mm)  # (B, N, 3)
    offsets = torch.arange(B, device=depth.device)[:, None] * grid**3  # (B, 1)
    # floor of the continuous coordinate + 0.5: the voxel whose [i - 0.5, i + 0.5) holds the point
    idx = torch.floor(coords.detach() + 0.5)
    inside = valid & ((idx >= 0) & (idx < grid)).all(-1)  # (B, N)
    empty = (inside.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"depth: expected depth points inside the {cube_mm} mm cube around ref_xyz, got none "
            f"in samples {empty} (all-background crop or a reference point off the hand)"
        )
    volume = torch.zeros(B * grid**3, dtype=depth.dtype, device=depth.device)
    volume[(_flat_index(idx.long().clamp(0, grid - 1), grid) + offsets)[inside]] = 1.0
    if not (torch.is_grad_enabled() and coords.requires_grad):
        return volume.view(B, 1, grid, grid, grid)
    # Straight-through gradient: the forward value is the binary occupancy above (x - x == 0
    # exactly); the backward pass sees each point splatted trilinearly onto its 8 neighbouring
    # voxel centres, so attribution can reach the depth values through the voxels.
    base = torch.floor(coords.detach())
    frac = coords - base  # (B, N, 3), differentiable in depth
    soft = torch.zeros_like(volume)
    for corner in (
        (0, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (1, 1, 0),
        (0, 0, 1),
        (1, 0, 1),
        (0, 1, 1),
        (1, 1, 1),
    ):
        c = torch.tensor(corner, dtype=frac.dtype, device=frac.device)
        weight = (c * frac + (1 - c) * (1 - frac)).prod(-1)  # (B, N)
        cell = base + c
        ok = valid & ((cell >= 0) & (cell < grid)).all(-1)
        flat = _flat_index(cell.long().clamp(0, grid - 1), grid) + offsets
        soft = soft.index_add(0, flat[ok], weight[ok])
    volume = volume + (soft - soft.detach())
    return volume.view(B, 1, grid, grid, grid)


def _flat_index(idx: torch.Tensor, grid: int) -> torch.Tensor:
    """Integer voxel coordinates (..., 3) ``(x, y, z)`` -> flat index into ``[z, y, x]``."""
    return (idx[..., 2] * grid + idx[..., 1]) * grid + idx[..., 0]


def volume_depth_map(volume: torch.Tensor) -> torch.Tensor:
    """The 2D depth map of the voxel cube seen along +z: (B, 1, G, G, G) -> (B, 1, G, G).

    Each ``(y, x)`` cell holds the normalised depth ``(z + 0.5) / G`` in (0, 1] of its first
    occupied voxel, and 1 (the cube's back face) where the column is empty. This is the "2D depth
    map" input of V2V's table 1, aligned with the cube so that both inputs share one output frame.
    Gradients pass straight through to the occupancy of each column's first voxel.

    >>> v = torch.zeros(1, 1, 4, 2, 2)
    >>> v[0, 0, 1, 0, 0] = 1.0
    >>> volume_depth_map(v)[0, 0].tolist()
    [[0.375, 1.0], [1.0, 1.0]]
    """
    check_shape("volume", volume, (None, 1, None, None, None))
    G = volume.shape[2]
    occupied = volume[:, 0].detach() > 0  # (B, G, G, G) [z, y, x]
    z_first = occupied.to(torch.uint8).argmax(dim=1)  # (B, G, G) first True
    zc = (torch.arange(G, dtype=volume.dtype, device=volume.device) + 0.5) / G  # (G,)
    depth = torch.where(occupied.any(dim=1), zc[z_first], torch.ones_like(zc[z_first]))
    if not (torch.is_grad_enabled() and volume.requires_grad):
        return depth[:, None]
    # straight-through gradient: more occupancy in the front voxel pulls the surface nearer
    front = torch.nn.functional.one_hot(z_first, G).permute(0, 3, 1, 2).to(volume.dtype)
    soft = -(volume[:, 0] * front * (1 - zc)[:, None, None]).sum(1)  # (B, G, G)
    return (depth + (soft - soft.detach()))[:, None]  # (B, 1, G, G)


class RefineNet(nn.Module):
    """V2V's reference point refinement: depth (B, 1, H, W) mm around the centre of mass ->
    offset (B, 3) mm from the centre of mass to the hand centre (:func:`hand_center`).

    Moon et al. crop the depth map around the centre of mass and regress the offset with a small
    2D CNN; here the crop is the model input itself, and two extra channels give each pixel's
    position relative to the projected centre of mass so the network knows where it is. Depth is
    normalised to ``(d - z_com) / (cube_mm / 2)`` clipped to [-1, 1], background set to 1.
    The last layer starts near zero, so an untrained net returns (almost) the centre of mass, and
    the offset is bounded by ``tanh`` to a quarter of the cube.

    >>> net = RefineNet(width=8)
    >>> K = torch.tensor([[100.0, 0.0, 15.5], [0.0, 100.0, 15.5], [0.0, 0.0, 1.0]])
    >>> offset = net(torch.full((2, 1, 32, 32), 300.0), K, torch.tensor([[0.0, 0.0, 300.0]] * 2))
    >>> offset.shape, bool(offset.abs().max() < 1.0)  # mm
    (torch.Size([2, 3]), True)
    """

    def __init__(self, *, width: int = 16, cube_mm: float = 250.0) -> None:
        super().__init__()
        self.cube_mm = cube_mm

        def block(cin: int, cout: int, k: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, k, stride=2, padding=k // 2, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(
            block(3, width, 5), block(width, 2 * width, 3), block(2 * width, 4 * width, 3)
        )
        self.head = nn.Linear(4 * width, 3)
        # V2V's N(0, 0.001)-style start: the offset begins near 0 (the CoM) and gradients still
        # reach every layer (a zero weight would block them)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, depth: torch.Tensor, K: torch.Tensor, com_xyz: torch.Tensor) -> torch.Tensor:
        B, _, H, W = depth.shape
        K = _check_K(K.to(depth), B)
        half = self.cube_mm / 2
        z = com_xyz[:, 2, None, None, None]  # (B, 1, 1, 1)
        norm = ((depth - z) / half).clamp(-1.0, 1.0)
        norm = torch.where(depth > 0, norm, torch.ones_like(norm))  # (B, 1, H, W)
        u_com = K[:, 0, 0] * com_xyz[:, 0] / com_xyz[:, 2] + K[:, 0, 2]  # (B,) px
        v_com = K[:, 1, 1] * com_xyz[:, 1] / com_xyz[:, 2] + K[:, 1, 2]
        us = torch.arange(W, dtype=depth.dtype, device=depth.device)
        vs = torch.arange(H, dtype=depth.dtype, device=depth.device)
        du = ((us[None] - u_com[:, None]) * 2 / W)[:, None, None, :].expand(B, 1, H, W)
        dv = ((vs[None] - v_com[:, None]) * 2 / H)[:, None, :, None].expand(B, 1, H, W)
        x = self.features(torch.cat([norm, du, dv], dim=1)).mean(dim=(2, 3))  # (B, 4w)
        return torch.tanh(self.head(x)) * (self.cube_mm / 4)  # (B, 3) mm
