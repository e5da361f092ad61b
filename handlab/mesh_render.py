"""Render a triangle mesh to depth, mask and a shaded grey image with a small z-buffer.

The hand mesh of :mod:`handlab.mesh` gets the generator's camera: :func:`render_mesh` draws
(N, V, 3) camera-frame vertices with the intrinsics ``K`` of :func:`handlab.synth.renderer.
camera_matrix`, so a synthetic scene can be seen as its capsules (the generator's ray caster) and
as its skinned mesh side by side (chapter 13 shows both).

Written by hand because none of handlab's dependencies rasterises meshes (pytorch3d, nvdiffrast
or pyrender would be a heavy dependency for a 128-px check image). The method is the textbook
z-buffer (Catmull 1974) with edge functions (Pineda 1988): each triangle is tested on the pixel
centres of its screen bounding box, vectorised over a chunk of triangles of similar box size,
and the nearest depth per pixel is kept by a scatter-min. Depth is interpolated as ``1/z``
linearly in screen space, which is exact for a planar triangle under perspective. Integer
pixel coordinates are pixel centres, as in :func:`handlab.synth.renderer.camera_matrix`; a pixel
whose centre lies on an edge belongs to both triangles. No back-face culling (the winding flips
for mirrored left hands; the z-buffer hides the back anyway) and no anti-aliasing.

>>> verts = torch.tensor([[[-20.0, -20.0, 500.0], [20.0, -20.0, 500.0], [0.0, 20.0, 500.0]]])
>>> K = torch.tensor([[[100.0, 0.0, 7.5], [0.0, 100.0, 7.5], [0.0, 0.0, 1.0]]])
>>> out = render_mesh(verts, torch.tensor([[0, 1, 2]]), K, 16)
>>> out["mask"].shape, float(out["depth"].max()), float(out["depth"][~out["mask"]].max())
(torch.Size([1, 16, 16]), 500.0, 0.0)
"""

from __future__ import annotations

import torch

from handlab import geometry
from handlab._checks import Array, check_finite, check_shape

__all__ = ["hand_side", "mask_iou", "render_mesh"]

_NEAR_MM = 1.0  # triangles with a vertex closer than this to the camera plane are dropped
_BUDGET = 1 << 20  # (triangle, pixel) pairs tested per chunk: a few tens of MB in float64


def _check_inputs(vertices: Array, faces: Array, K: Array, size: int):
    vertices = torch.as_tensor(vertices, dtype=torch.float64)
    faces = torch.as_tensor(faces)
    K = torch.as_tensor(K, dtype=torch.float64)
    check_shape("vertices", vertices, (None, None, 3))
    check_finite("vertices", vertices)
    check_shape("faces", faces, (None, 3))
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise ValueError(f"faces: expected integer vertex indices, got dtype {faces.dtype}")
    if len(faces) and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[1]):
        raise ValueError(
            f"faces: expected indices in [0, {vertices.shape[1]}) (the vertex count), got "
            f"[{int(faces.min())}, {int(faces.max())}]"
        )
    check_shape("K", K, (vertices.shape[0], 3, 3))
    check_finite("K", K)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size: expected a positive int (image side in pixels), got {size!r}")
    return vertices, faces.long(), K


def _chunks(area: torch.Tensor) -> list[tuple[int, int]]:
    """[start, end) ranges over triangles sorted by ascending box ``area`` so that each chunk's
    count x largest box stays within the budget (one triangle at least)."""
    ranges, start, n = [], 0, len(area)
    while start < n:
        end = min(n, start + max(1, _BUDGET // max(int(area[start]), 1)))
        end = start + max(1, _BUDGET // max(int(area[end - 1]), 1))  # the largest box decides
        ranges.append((start, min(end, n)))
        start = min(end, n)
    return ranges


def _raster_one(verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: int):
    """z-buffer of one mesh: depth (H*W,) mm, inf where empty, and the shade of the winner."""
    tri = verts[faces]  # (F, 3, 3) mm, camera frame
    tri = tri[(tri[..., 2] > _NEAR_MM).all(1)]
    uvw = tri @ K.T  # (F, 3, 3)
    xy = uvw[..., :2] / uvw[..., 2:]  # (F, 3, 2) px
    e1, e2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # (F,) twice the signed screen area
    lo = xy.amin(1).ceil().clamp(0, size - 1)  # (F, 2) first pixel centre in the box
    hi = xy.amax(1).floor().clamp(-1, size - 1)
    keep = (area.abs() > 1e-12) & (hi >= lo).all(1)
    tri, xy, area, lo, hi = tri[keep], xy[keep], area[keep], lo[keep], hi[keep]
    # flat shading with a headlight: |cos| between the face normal and the ray to its centre
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ray = tri.mean(1)
    cos = (normal * ray).sum(1).abs() / (normal.norm(dim=1) * ray.norm(dim=1)).clamp_min(1e-12)
    shade = 0.2 + 0.8 * cos  # (F,) in [0.2, 1]: the darkest skin stays off the background
    box = (hi - lo + 1).long()  # (F, 2) box width, height in pixels
    order = torch.argsort(box[:, 0] * box[:, 1])
    zbuf = torch.full((size * size,), torch.inf, dtype=torch.float64)
    shade_buf = torch.zeros(size * size, dtype=torch.float64)
    for start, end in _chunks((box[:, 0] * box[:, 1])[order]):
        idx = order[start:end]
        bw, bh = int(box[idx, 0].max()), int(box[idx, 1].max())
        oy, ox = torch.meshgrid(torch.arange(bh), torch.arange(bw), indexing="ij")
        px = lo[idx, None, 0] + ox.reshape(1, -1)  # (C, P) pixel centres x
        py = lo[idx, None, 1] + oy.reshape(1, -1)
        p0, p1, p2 = (xy[idx, k, :, None] for k in range(3))  # (C, 2, 1) each
        # edge functions, normalised by the area so both windings give weights >= 0 inside
        w0 = (p2[:, 0] - p1[:, 0]) * (py - p1[:, 1]) - (p2[:, 1] - p1[:, 1]) * (px - p1[:, 0])
        w1 = (p0[:, 0] - p2[:, 0]) * (py - p2[:, 1]) - (p0[:, 1] - p2[:, 1]) * (px - p2[:, 0])
        w2 = (p1[:, 0] - p0[:, 0]) * (py - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (px - p0[:, 0])
        w = torch.stack([w0, w1, w2], -1) / area[idx, None, None]  # (C, P, 3)
        inside = (w >= 0).all(-1) & (px <= hi[idx, None, 0]) & (py <= hi[idx, None, 1])
        z = 1.0 / (w / tri[idx, None, :, 2]).sum(-1)  # (C, P): 1/z is linear in screen space
        pix = (py * size + px).long()[inside]
        z, owner = z[inside], idx[:, None].expand_as(inside)[inside]
        zbuf.scatter_reduce_(0, pix, z, reduce="amin")
        won = z <= zbuf[pix]  # ties keep one of the equals: same depth, either shade is right
        shade_buf[pix[won]] = shade[owner[won]]
    return zbuf, shade_buf


def render_mesh(vertices: Array, faces: Array, K: Array, size: int) -> dict[str, torch.Tensor]:
    """Rasterise meshes of one topology with a z-buffer (CPU, float64 inside).

    Args:
        vertices: (N, V, 3) mm in the camera frame (+z forward, as the generator's ``xyz``).
        faces: (F, 3) integer vertex indices, shared by the N meshes.
        K: (N, 3, 3) intrinsics in pixels (:func:`handlab.synth.renderer.camera_matrix`).
        size: image side H = W in pixels.

    Returns:
        ``depth`` (N, H, W) float mm of the nearest surface, 0 on the background (the generator's
        "hole" value); ``mask`` (N, H, W) bool; ``image`` (N, 1, H, W) float grey in [0, 1],
        ``0.2 + 0.8 |cos|`` of the angle between each face's normal and the viewing ray, 0 on the
        background. Triangles with a vertex within 1 mm of the camera plane or behind it are
        dropped. Measured ~0.01 s per 128-px image for the 3 mm-grid hand (~11k faces), one thread.
    """
    vertices, faces, K = _check_inputs(vertices, faces, K, size)
    depth, image = [], []
    for verts, k in zip(vertices, K, strict=True):
        zbuf, shade = _raster_one(verts, faces, k, size)
        depth.append(zbuf.reshape(size, size))
        image.append(shade.reshape(1, size, size))
    depth = torch.stack(depth).float() if depth else torch.zeros(0, size, size)
    mask = torch.isfinite(depth)
    image = torch.stack(image).float() if image else torch.zeros(0, 1, size, size)
    return {"depth": torch.where(mask, depth, 0.0), "mask": mask, "image": image}


def mask_iou(a: Array, b: Array) -> float:
    """Intersection over union of two boolean masks of one shape (1.0 when both are empty).

    >>> mask_iou(torch.tensor([True, True, False]), torch.tensor([False, True, False]))
    0.5
    """
    a, b = torch.as_tensor(a).bool(), torch.as_tensor(b).bool()
    if a.shape != b.shape:
        raise ValueError(f"b: expected the shape of a {tuple(a.shape)}, got {tuple(b.shape)}")
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def hand_side(depth: Array, K: Array, pose: Array, trans: Array, cut_mm: float) -> torch.Tensor:
    """Pixels whose surface lies on the hand's side of a cut across the wrist: (N, H, W) bool.

    The generator's capsule hand goes on into a forearm that the template mesh cuts off at the
    wrist (hand-frame ``y = cut_mm``, the template's lowest vertex). To compare the two masks,
    each pixel of ``depth`` (N, H, W) mm (0 = empty) is lifted to 3D with ``K`` (N, 3, 3) and
    kept where its hand-frame ``y`` (along the fingers; ``pose[:, 0]`` (N, 3) rad is the global
    rotation, ``trans`` (N, 3) mm the wrist) is at least ``cut_mm``.

    >>> K = torch.tensor([[[10.0, 0.0, 1.0], [0.0, 10.0, 1.0], [0.0, 0.0, 1.0]]])
    >>> depth = torch.full((1, 3, 3), 100.0)
    >>> hand_side(depth, K, torch.zeros(1, 16, 3), torch.tensor([[0.0, 0.0, 100.0]]), 0.0)[0]
    tensor([[False, False, False],
            [ True,  True,  True],
            [ True,  True,  True]])
    """
    depth = torch.as_tensor(depth, dtype=torch.float32)
    check_shape("depth", depth, (None, None, None))
    n, h, w = depth.shape
    K = torch.as_tensor(K, dtype=torch.float32)
    check_shape("K", K, (n, 3, 3))
    check_shape("pose", pose, (n, 16, 3))
    check_shape("trans", trans, (n, 3))
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).float().reshape(-1, 3)  # (HW, 3)
    rays = pix @ torch.linalg.inv(K).transpose(1, 2)  # (N, HW, 3), z = 1
    points = rays * depth.reshape(n, -1, 1)  # (N, HW, 3) mm, camera frame
    along = geometry.axis_angle_to_matrix(torch.as_tensor(pose)[:, 0])[:, :, 1]  # (N, 3) hand +y
    y = ((points - torch.as_tensor(trans)[:, None]) * along[:, None]).sum(-1)  # mirror keeps y
    return ((y >= cut_mm) & (depth.reshape(n, -1) > 0)).reshape(n, h, w)
