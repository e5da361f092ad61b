"""The renderer: a ray-cast z-buffer of capsules and boxes, shaded, over a cluttered background.

Taught in chapter 00 (``notebooks/00_tour.py``).

Why it is fast on a CPU: each primitive (a finger bone, a palm capsule, an occluder) is ray-cast
analytically only inside its projected bounding box (a patch), never against the full frame.
Patches are sorted by size and cut into a few groups, each padded to its largest patch, so the
whole batch is a handful of vectorised tensor ops. The nearest hit per pixel is a
``scatter_reduce(amin)`` (the z-buffer); the winner's id a second ``scatter_reduce(amax)`` among
the hits at that depth (deterministic ties). Normals, shading, nails, depth and visibility are
then computed once per foreground pixel. Ray-capsule intersection: I. Quilez, "Capsule -
intersection" (iquilezles.org); ray-box: the slab method in the box's frame.

Depth is the z coordinate (mm) of the surface, as depth cameras report it. Visibility of a joint
is a real depth test: joint ``j`` is visible when its keypoint lies in the image, the pixel there
shows the hand, and the rendered surface there is not nearer than ``z_j - (r_j + 4 mm)`` (the
joint's own skin is ``r_j`` in front of its centre).

>>> from handlab.synth.scene import sample_params
>>> out = render(sample_params(2, torch.Generator().manual_seed(0)), 64)
>>> sorted(out)
['K', 'depth', 'image', 'keypoints', 'mask', 'visibility', 'xyz']
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from handlab._checks import check_range
from handlab.geometry import axis_angle_to_matrix, project
from handlab.synth.backgrounds import render_background
from handlab.synth.hand_model import HandModel

__all__ = ["KEYS", "hand_geometry", "render"]

KEYS = ("image", "depth", "mask", "keypoints", "xyz", "K", "visibility")
MIN_SIZE, MAX_SIZE = 64, 512
CHUNK = 64  # samples per rendering pass: bounds memory, keeps tensors in cache
_MIN_PATCH = 8  # patches up to 8 px wide form the first size group
_LOG_STEP = math.log(1.3)  # each further group is 1.3x wider
_MODEL = HandModel()
_NAIL_COLOR = torch.tensor([0.93, 0.80, 0.78])
_MIRROR = torch.tensor([-1.0, 1.0, 1.0])
# Palm pixels are shaded with the normal of this ellipsoid (hand frame, mm) blended with their
# capsule's: one smooth palm instead of four ridged metacarpals.
_PALM_CENTER = torch.tensor([0.0, 45.0, 0.0])
_PALM_AXES = torch.tensor([38.0, 48.0, 13.0])


def hand_geometry(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Joints and capsules of each hand in the camera frame (mm).

    Left hands (``params["left"]``) are right hands mirrored in the hand frame (x -> -x) before
    the global rotation; the joint order stays canonical.

    Returns ``xyz`` (N, 21, 3), ``start``/``end`` (N, 22, 3), ``radius`` (N, 22), ``nail``
    (N, 5, 3) and ``palm_normal`` (N, 3) unit vectors.
    """
    pose = params["pose"]
    local = pose.clone()
    local[:, 0] = 0.0
    surface = _MODEL.surface(local, params["shape"])
    joints, start, end = surface["xyz"], surface["start"], surface["end"]
    radius, nail = surface["radius"], surface["nail"]
    mirror = torch.where(params["left"][:, None], _MIRROR, torch.ones(3))[:, None]  # (N, 1, 3)
    rot = axis_angle_to_matrix(pose[:, 0])  # (N, 3, 3)
    trans = params["trans"][:, None]

    def place(p: torch.Tensor) -> torch.Tensor:
        return (p * mirror) @ rot.transpose(1, 2) + trans

    palm = torch.tensor([0.0, 0.0, 1.0]).expand(len(pose), 1, 3)
    scale = 1 + 0.05 * params["shape"][:, 0, None, None]
    return {
        "palm_center": place(_PALM_CENTER.expand(len(pose), 1, 3) * scale)[:, 0],
        # (N, 3, 3) R diag(1 / axes^2) R^T: the palm ellipsoid's quadratic form, camera frame
        "palm_metric": (rot / (_PALM_AXES * scale[:, 0])[:, None] ** 2) @ rot.transpose(1, 2),
        "xyz": place(joints),
        "start": place(start),
        "end": place(end),
        "radius": radius,
        "nail": (nail * mirror) @ rot.transpose(1, 2),
        "palm_normal": ((palm * mirror) @ rot.transpose(1, 2))[:, 0],
    }


def _boxes_2d(
    center: torch.Tensor, reach: torch.Tensor, K: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel boxes (x0, y0) and extents of spheres ``center`` (n, k, 3) mm, ``reach`` (n, k)."""
    uv = project(center, K)  # (n, k, 2)
    z = (center[..., 2] - reach).clamp(min=1.0)
    r_px = K[:, None, 0, 0] * reach / z + 1.0  # conservative projected radius
    lo = (uv - r_px[..., None]).floor().clamp(0, size - 1)
    hi = (uv + r_px[..., None]).ceil().clamp(0, size - 1)
    return lo.long(), (hi - lo).amax(-1).long() + 1


def _rays(K: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray directions (dx, dy, 1) through pixels u, v (g, S, S); K (g, 3, 3)."""
    dx = (u - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None]
    dy = (v - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None]
    return dx, dy


def _dot(vec: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """vec (g, 3) . (dx, dy, 1) for each pixel: (g, S, S)."""
    return vec[:, 0, None, None] * dx + vec[:, 1, None, None] * dy + vec[:, 2, None, None]


def _hit_capsules(dx, dy, a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Depth z (g, S, S) mm where rays (dx, dy, 1) from the origin first hit capsules a-b (g, 3)
    of radius r (g,); inf on a miss. Per-primitive terms are scalars, per-pixel terms scale the
    unit ray by ``inv`` = 1 / |(dx, dy, 1)| (which is also the ray's z component)."""
    inv = torch.rsqrt(dx * dx + dy * dy + 1)
    ba, oa = b - a, -a
    baba = (ba * ba).sum(-1)[:, None, None]
    baoa = (ba * oa).sum(-1)[:, None, None]
    oaoa = (oa * oa).sum(-1)[:, None, None]
    r2 = (r * r)[:, None, None]
    bard = _dot(ba, dx, dy) * inv
    rdoa = _dot(oa, dx, dy) * inv
    qa = baba - bard * bard
    qb = baba * rdoa - baoa * bard
    qc = baba * oaoa - baoa * baoa - r2 * baba
    h = qb * qb - qa * qc
    t_body = (-qb - h.clamp(min=0).sqrt()) / qa.clamp(min=1e-9)
    y = baoa + t_body * bard
    body = (h >= 0) & (y > 0) & (y < baba) & (qa > 1e-9)
    # caps: the sphere at the nearer end of the segment (oc = oa, or oa - ba at the far end)
    near = y <= 0
    cb = torch.where(near, rdoa, rdoa - bard)
    obob = oaoa - 2 * baoa + baba
    cc = torch.where(near, oaoa, obob) - r2
    ch = cb * cb - cc
    t = torch.where(body, t_body, -cb - ch.clamp(min=0).sqrt())
    hit = (body | (ch > 0)) & (t > 0)
    return torch.where(hit, t * inv, torch.inf)


def _hit_boxes(dx, dy, c: torch.Tensor, rot: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """Depth z (g, S, S) of rays (dx, dy, 1) hitting oriented boxes (centre, rotation, half)."""
    o = (-c[:, None, :] @ rot)[:, None]  # (g, 1, 1, 3): camera origin in the box frame
    # ray in the box frame; its camera z is 1, so the slab parameter t is the depth
    dl = torch.stack([_dot(rot[:, :, k], dx, dy) for k in range(3)], dim=-1)
    inv = 1.0 / torch.where(dl.abs() < 1e-9, torch.full_like(dl, 1e-9), dl)
    t1 = (-half[:, None, None] - o) * inv
    t2 = (half[:, None, None] - o) * inv
    near = torch.minimum(t1, t2).amax(-1)
    far = torch.maximum(t1, t2).amin(-1)
    return torch.where((near <= far) & (near > 0), near, torch.full_like(near, torch.inf))


def _raycast(scene: dict[str, torch.Tensor], K: torch.Tensor, size: int):
    """Z-buffer (n, H*W) mm (inf = no hit) and winner id (n, H*W) (-1 = none) of all primitives.

    ``scene`` holds capsules ``cap_a``/``cap_b`` (n, P, 3), ``cap_r`` (n, P), ``cap_on`` (n, P)
    and boxes ``box_c`` (n, Q, 3), ``box_rot`` (n, Q, 3, 3), ``box_half`` (n, Q, 3),
    ``box_on`` (n, Q). Ids: capsules 0..P-1, boxes P..P+Q-1.
    """
    n, p = scene["cap_r"].shape
    q = scene["box_on"].shape[1]
    reach = torch.cat([scene["cap_r"], scene["box_half"].norm(dim=-1)], dim=1)  # (n, P+Q)
    lo_a, ext_a = _boxes_2d(scene["cap_a"], torch.cat([reach[:, :p]], 1), K, size)
    lo_b, ext_b = _boxes_2d(scene["cap_b"], reach[:, :p], K, size)
    lo_c, ext_c = _boxes_2d(scene["box_c"], reach[:, p:], K, size)
    lo_cap = torch.minimum(lo_a, lo_b)
    hi_cap = torch.maximum(lo_a + ext_a[..., None], lo_b + ext_b[..., None])
    lo = torch.cat([lo_cap, lo_c], dim=1)  # (n, P+Q, 2)
    ext = torch.cat([(hi_cap - lo_cap).amax(-1), ext_c], dim=1).clamp(max=size)  # (n, P+Q)
    on = torch.cat([scene["cap_on"], scene["box_on"]], dim=1)
    sample, prim = torch.nonzero(on, as_tuple=True)  # active primitives, row-major: deterministic
    zbuf = torch.full((n * size * size,), torch.inf)
    hits = []
    sizes = ext[sample, prim]
    # Groups of similar patch size (each at most ~1.3x its smallest), so padding wastes little.
    bucket = torch.ceil(torch.log(sizes.float().clamp(min=_MIN_PATCH) / _MIN_PATCH) / _LOG_STEP)
    for level in torch.unique(bucket):
        group = torch.nonzero(bucket == level).flatten()
        s_idx, p_idx = sample[group], prim[group]
        width = int(ext[s_idx, p_idx].max())
        # Shift patches left/up where they would leave the image: they still cover their box.
        corner = lo[s_idx, p_idx].clamp(max=size - width)  # (g, 2)
        ar = torch.arange(width)
        u = corner[:, 0, None, None] + ar[None, None, :]  # (g, 1, S)
        v = corner[:, 1, None, None] + ar[None, :, None]  # (g, S, 1)
        dx, dy = _rays(K[s_idx], u.float(), v.float())  # (g, 1, S), (g, S, 1)
        is_box = p_idx >= p
        if bool(is_box.any()):
            z = torch.full((len(group), width, width), torch.inf)
            cap = ~is_box
            ci, pi = s_idx[cap], p_idx[cap]
            bi, qi = s_idx[is_box], p_idx[is_box] - p
            z[cap] = _hit_capsules(
                dx[cap],
                dy[cap],
                scene["cap_a"][ci, pi],
                scene["cap_b"][ci, pi],
                scene["cap_r"][ci, pi],
            )
            z[is_box] = _hit_boxes(
                dx[is_box],
                dy[is_box],
                scene["box_c"][bi, qi],
                scene["box_rot"][bi, qi],
                scene["box_half"][bi, qi],
            )
        else:
            z = _hit_capsules(
                dx,
                dy,
                scene["cap_a"][s_idx, p_idx],
                scene["cap_b"][s_idx, p_idx],
                scene["cap_r"][s_idx, p_idx],
            )
        flat = ((s_idx[:, None, None] * size + v) * size + u).reshape(-1)  # (g * S * S,)
        z = z.reshape(-1)
        # no compaction of the misses: inf is neutral for amin, and -1 below for amax
        zbuf.scatter_reduce_(0, flat, z, reduce="amin")
        hits.append((flat, z, p_idx, width))
    winner = torch.full((n * size * size,), -1, dtype=torch.long)
    for flat, z, p_idx, width in hits:
        ids = p_idx[:, None, None].expand(-1, width, width).reshape(-1)
        won = (z == zbuf.index_select(0, flat)) & (z < torch.inf)
        winner.scatter_reduce_(0, flat, torch.where(won, ids, -1), reduce="amax")
    return zbuf.reshape(n, size * size), winner.reshape(n, size * size), q


def _take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` (m,) of ``table`` (..., 3) flattened to (R, 3), as columns (3, m).

    Per-pixel vectors live as (3, m) (one contiguous row per component): dot products and
    normalisations on that layout are several times faster on a CPU than on (m, 3).
    """
    return table.reshape(-1, 3).T.contiguous().index_select(1, index)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Normalise the columns of (3, m)."""
    return x / (x * x).sum(0).sqrt().clamp(min=1e-12)


def _normals(scene, sample, pid, point, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit normals (3, m) at hit points (3, m) of primitives ``pid`` and the capsule axis param."""
    is_box = pid >= p
    flat = sample * p + pid.clamp(max=p - 1)
    a = _take(scene["cap_a"], flat)
    ba = _take(scene["cap_b"], flat) - a
    pa = point - a
    s = ((pa * ba).sum(0) / (ba * ba).sum(0).clamp(min=1e-9)).clamp(0, 1)
    normal = pa - s * ba
    if bool(is_box.any()):
        bs, bq = sample[is_box], pid[is_box] - p
        rot, half = scene["box_rot"][bs, bq], scene["box_half"][bs, bq]  # (m', 3, 3), (m', 3)
        # elementwise products, not batched 3x3 matmuls: far faster for many tiny matrices
        local = ((point[:, is_box].T - scene["box_c"][bs, bq])[:, :, None] * rot).sum(1)
        face = (local.abs() / half).argmax(-1)
        n_local = F.one_hot(face, 3).float() * local.sign()
        normal[:, is_box] = (rot * n_local[:, None, :]).sum(2).T
    return _unit(normal), torch.where(is_box, torch.zeros_like(s), s)


def _scene(params: dict[str, torch.Tensor], geo: dict[str, torch.Tensor]):
    """Primitives of the hand and occluders: spheres and cylinders become capsules."""
    kind, on = params["occ_kind"], params["occ_on"]
    rot = axis_angle_to_matrix(params["occ_rot"])  # (n, M, 3, 3)
    c, size = params["occ_center"], params["occ_size"]
    axis = rot[..., :, 2] * size[..., 1:2] * (kind == 1)[..., None]  # cylinders: half length
    return {
        "cap_a": torch.cat([geo["start"], c - axis], 1),
        "cap_b": torch.cat([geo["end"], c + axis], 1),
        "cap_r": torch.cat([geo["radius"], size[..., 0]], 1),
        "cap_on": torch.cat([torch.ones_like(geo["radius"], dtype=torch.bool), on & (kind < 2)], 1),
        "box_c": c,
        "box_rot": rot,
        "box_half": size,
        "box_on": on & (kind == 2),
    }


def _shade(params, geo, scene, sample, pid, point, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Colours (3, m) in [0, 1] of foreground hits at points (3, m) mm, and |cos| of the viewing
    angle (m,): wrapped Lambert (skin scatters light), a Blinn-Phong highlight, lighter palms,
    nails on the distal bones, occluders in their own colour."""
    normal, s = _normals(scene, sample, pid, point, p)
    n_hand = geo["radius"].shape[1]
    palm = (pid >= 15) & (pid < 21)
    if bool(palm.any()):
        ps = sample[palm]
        # ellipsoid normal A (p - c) with A = R diag(1 / axes^2) R^T (a mirror cancels out)
        d = point[:, palm] - _take(geo["palm_center"], ps)
        rows = geo["palm_metric"].reshape(-1, 9).T.contiguous().index_select(1, ps)  # (9, m')
        smooth = torch.stack([(rows[3 * j : 3 * j + 3] * d).sum(0) for j in range(3)])
        normal[:, palm] = _unit(normal[:, palm] + 2 * _unit(smooth))
    hand = pid < n_hand
    n_occ = params["occ_color"].shape[1]
    occ_id = torch.where(pid >= p, pid - p, pid - n_hand).clamp(0, n_occ - 1)
    albedo = torch.where(
        hand, _take(params["skin"], sample), _take(params["occ_color"], sample * n_occ + occ_id)
    )
    palmar = (normal * _take(geo["palm_normal"], sample)).sum(0).clamp(min=0)
    albedo = albedo * torch.where(hand, 1.0 + 0.12 * palmar, torch.ones_like(palmar))
    distal = hand & (pid < 15) & (pid % 3 == 2)
    finger = (pid // 3).clamp(max=4)
    facing = (normal * _take(geo["nail"], sample * 5 + finger)).sum(0)
    nail = (distal & (s > 0.45) & (facing > 0.55)).float()
    albedo = albedo + 0.5 * nail * (_NAIL_COLOR[:, None] - albedo)
    light = _take(params["light"], sample)  # (3, m) unit, towards the light
    view = _unit(-point)
    lam = (((normal * light).sum(0) + 0.35) / 1.35).clamp(min=0)  # wrap lighting
    half = _unit(light + view)
    spec = (normal * half).sum(0).clamp(min=0) ** 24 * params["specular"][sample]
    ambient = params["ambient"][sample]
    cos_view = (normal * view).sum(0)
    rim = 0.8 + 0.2 * cos_view.clamp(min=0)  # darker at grazing angles
    color = albedo * ((ambient + (1 - ambient) * lam) * rim)
    color = color + spec * _take(params["light_color"], sample)
    return color.clamp(0, 1), cos_view.abs()


def _soften(image: torch.Tensor) -> torch.Tensor:
    """A camera's optics: a separable [1, 2, 1] / 4 blur (edges replicated) softens the aliased
    silhouette; in-place slice arithmetic is much faster than a depthwise ``conv2d`` on a CPU."""
    for dim in (-1, -2):
        n = image.shape[dim]
        out = image * 0.5
        out.narrow(dim, 1, n - 1).add_(image.narrow(dim, 0, n - 1), alpha=0.25)
        out.narrow(dim, 0, n - 1).add_(image.narrow(dim, 1, n - 1), alpha=0.25)
        out.narrow(dim, 0, 1).add_(image.narrow(dim, 0, 1), alpha=0.25)
        out.narrow(dim, n - 1, 1).add_(image.narrow(dim, n - 1, 1), alpha=0.25)
        image = out
    return image


def _line_kernels(length: torch.Tensor, angle: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised motion-blur kernels (m, k, k): a line of ``length`` px at ``angle`` rad."""
    r = torch.arange(k, dtype=torch.float32) - k // 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    dx, dy = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along = (x * dx + y * dy).clamp(-length[:, None, None] / 2, length[:, None, None] / 2)
    dist = torch.sqrt((x - along * dx) ** 2 + (y - along * dy) ** 2)
    w = (1 - dist).clamp(min=0)
    return w / w.sum(dim=(1, 2), keepdim=True)


def _motion_blur(image: torch.Tensor, length: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Blur images (n, 3, H, W) of samples with ``length`` > 0 px along ``angle``."""
    idx = torch.nonzero(length > 0.5).flatten()
    if len(idx) == 0:
        return image
    k = 2 * (int(length[idx].max().ceil()) // 2) + 3  # odd, covers the longest line
    kern = _line_kernels(length[idx], angle[idx], k).repeat_interleave(3, 0)[:, None]
    sub = image[idx].reshape(1, -1, *image.shape[-2:])
    blurred = F.conv2d(F.pad(sub, (k // 2,) * 4, mode="replicate"), kern, groups=sub.shape[1])
    out = image.clone()
    out[idx] = blurred.reshape(len(idx), 3, *image.shape[-2:])
    return out


@functools.cache
def _noise_texture() -> torch.Tensor:
    """A frozen (6, 2 MAX, 2 MAX) noise texture (channels 0-3 normal, 4-5 uniform), seeded once:
    each sample reads a window at its own offset, which is far cheaper than a generator per
    sample and still depends on nothing but that sample's params."""
    g = torch.Generator().manual_seed(20240601)
    side = 2 * MAX_SIZE
    return torch.cat(
        [torch.randn(4, side, side, generator=g), torch.rand(2, side, side, generator=g)]
    )


def _sensor_noise(depth, cos_view, seeds, on, grain, size):
    """Image grain (n, 3, H, W) and, where ``on``, depth noise, 1 mm quantisation and holes
    (Kinect-like: sigma = 1 + 2.85e-6 z^2 mm; depth edges, grazing surfaces and random blobs
    read 0). All noise is read from :func:`_noise_texture` at offsets set by ``seeds``."""
    tex = _noise_texture()
    span = tex.shape[-1] - size
    n = len(seeds)
    noise = torch.empty(n, 3, size, size)
    depth = depth.clone()
    for i in range(n):
        seed = int(seeds[i])
        oy, ox = (seed // span) % span, seed % span
        window = tex[:, oy : oy + size, ox : ox + size]
        noise[i] = window[:3] * grain[i]
        if not bool(on[i]):
            continue
        z = depth[i, 0]
        sigma = 1.0 + 2.85e-6 * z * z  # mm
        z = torch.round(z + sigma * window[3])
        pooled = F.max_pool2d(torch.stack([depth[i], -depth[i]]), 3, 1, 1)
        edge = (pooled[0, 0] + pooled[1, 0]) > 15.0
        u = window[4]
        blob = tex[5, oy : oy + 8, ox : ox + 8][None, None]
        blob = F.interpolate(blob, size=(size, size), mode="bilinear")[0, 0] < 0.08
        hole = (edge & (u < 0.5)) | ((cos_view[i] < 0.25) & (u < 0.7)) | blob
        depth[i, 0] = torch.where(hole, torch.zeros_like(z), z)
    return noise, depth


def camera_matrix(params: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """Intrinsics K (n, 3, 3) in pixels for an image of ``size`` from ``params["camera"]``
    (n, 4) = (fx, fy, cx offset, cy offset) in units of the image width; offsets are from the
    image centre ``(size - 1) / 2`` (integer pixel coordinates are pixel centres)."""
    cam = params["camera"]
    K = torch.zeros(len(cam), 3, 3)
    K[:, 0, 0] = cam[:, 0] * size
    K[:, 1, 1] = cam[:, 1] * size
    K[:, 0, 2] = (size - 1) / 2 + cam[:, 2] * size
    K[:, 1, 2] = (size - 1) / 2 + cam[:, 3] * size
    K[:, 2, 2] = 1.0
    return K


def _joint_radius(geo: dict[str, torch.Tensor]) -> torch.Tensor:
    """(n, 21) mm: how far in front of each joint centre its own skin can be (palm at the
    knuckles, forearm at the wrist)."""
    r = geo["radius"]  # (n, 22): 15 finger bones, then palm capsules
    fingers = r[:, :15].reshape(-1, 5, 3)
    per = torch.cat([fingers, fingers[:, :, 2:]], dim=2)  # (n, 5, 4): tip takes the distal r
    per[:, :, 0] = torch.maximum(per[:, :, 0], r[:, 15:20].amax(1, keepdim=True))  # palm
    return torch.cat([r[:, 21:22], per.reshape(-1, 20)], dim=1)


def _render_chunk(params: dict[str, torch.Tensor], size: int, extras: bool):
    n = len(params["pose"])
    geo = hand_geometry(params)
    scene = _scene(params, geo)
    K = camera_matrix(params, size)
    zbuf, winner, _ = _raycast(scene, K, size)  # (n, HW)
    p = scene["cap_r"].shape[1]
    n_hand = geo["radius"].shape[1]
    sample, pix = torch.nonzero(winner >= 0, as_tuple=True)
    pid = winner[sample, pix]
    z = zbuf[sample, pix]
    u, v = (pix % size).float(), (pix // size).float()
    point = torch.stack(
        [
            (u - K[sample, 0, 2]) / K[sample, 0, 0] * z,
            (v - K[sample, 1, 2]) / K[sample, 1, 1] * z,
            z,
        ]
    )  # (3, m) mm
    color, cos_view = _shade(params, geo, scene, sample, pid, point, p)
    image = render_background(params, size)
    flat_image = image.view(n, 3, -1)
    for c in range(3):
        flat_image[:, c][sample, pix] = color[c]  # writes through the view
    image = _soften(image)
    image = _motion_blur(image, params["blur"][:, 0] * size, params["blur"][:, 1])
    # Background depth: a tilted plane behind the hand.
    t = torch.arange(size, dtype=torch.float32) / size - 0.5
    bg = params["bg_depth"]
    plane = bg[:, 0, None, None] * (
        1 + bg[:, 1, None, None] * t[None, None] + bg[:, 2, None, None] * t[None, :, None]
    )
    depth = torch.where(torch.isfinite(zbuf), zbuf, plane.reshape(n, -1)).reshape(n, 1, size, size)
    cos_map = torch.ones(n, size * size)
    cos_map[sample, pix] = cos_view
    grain, depth = _sensor_noise(
        depth,
        cos_map.reshape(n, size, size),
        params["noise_seed"],
        params["depth_noise"],
        params["grain"],
        size,
    )
    image = (image + grain).clamp(0, 1)
    hand = (winner >= 0) & (winner < n_hand)
    xyz = geo["xyz"]
    keypoints = project(xyz, K)  # (n, 21, 2)
    visibility = _visibility(keypoints, xyz[..., 2], _joint_radius(geo), zbuf, hand, size)
    out = {
        "image": image,
        "depth": depth,
        "mask": hand.reshape(n, 1, size, size).float(),
        "keypoints": keypoints,
        "xyz": xyz,
        "K": K,
        "visibility": visibility,
    }
    if extras:
        occ_mask = (winner >= n_hand).reshape(n, 1, size, size)
        out["occluder_mask"] = occ_mask.float()
        out["occlusion"] = _occlusion(keypoints, xyz[..., 2], _joint_radius(geo), K, occ_mask)
    return out


def _pixel(keypoints: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat pixel index (n, J) of keypoints (rounded) and whether they lie in the image."""
    px = torch.round(keypoints).long()
    inside = ((px >= 0) & (px < size)).all(-1)
    px = px.clamp(0, size - 1)
    return px[..., 1] * size + px[..., 0], inside


def _visibility(keypoints, z, radius, zbuf, hand, size) -> torch.Tensor:
    """(n, 21) float 0/1: in the image, on a hand pixel, and no surface nearer than z - (r + 4)."""
    flat, inside = _pixel(keypoints, size)
    surface = zbuf.gather(1, flat)
    on_hand = hand.gather(1, flat)
    return (inside & on_hand & (surface >= z - (radius + 4.0))).float()


def _occlusion(keypoints, z, radius, K, occ_mask) -> torch.Tensor:
    """(n, 21) fraction of each joint's projected disk (radius f r / z px, >= 2 px) that shows an
    occluder; samples of the disk outside the image are left out."""
    n, _, size, _ = occ_mask.shape
    r = torch.linspace(-1, 1, 7)
    off = torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)
    off = off[off.norm(dim=-1) <= 1]  # (D, 2) points of the unit disk
    r_px = (K[:, None, 0, 0] * radius / z).clamp(min=2.0)  # (n, 21)
    pts = keypoints[:, :, None] + off[None, None] * r_px[..., None, None]  # (n, 21, D, 2)
    flat, inside = _pixel(pts.reshape(n, -1, 2), size)
    covered = occ_mask.reshape(n, -1).gather(1, flat) & inside
    covered = covered.reshape(n, 21, -1).float().sum(-1)
    count = inside.reshape(n, 21, -1).float().sum(-1)
    return torch.where(count > 0, covered / count.clamp(min=1), torch.zeros_like(count))


def render(
    params: dict[str, torch.Tensor], size: int = 128, *, extras: bool = False
) -> dict[str, torch.Tensor]:
    """Render sampled scenes, deterministically: the same params give the same pixels.

    Args:
        params: a dict from :func:`handlab.synth.sample_params` (leading dim N).
        size: image side in pixels, 64..512.
        extras: also return ``occlusion`` (N, 21), the fraction of each joint's neighbourhood
            covered by occluders, ``occluder_mask`` (N, 1, H, W) and ``params``.

    Returns:
        ``image`` (N, 3, H, W) float in [0, 1]; ``depth`` (N, 1, H, W) mm (0 = hole);
        ``mask`` (N, 1, H, W) 1 on hand pixels; ``keypoints`` (N, 21, 2) px (x, y);
        ``xyz`` (N, 21, 3) mm, camera frame; ``K`` (N, 3, 3); ``visibility`` (N, 21) 0/1.
    """
    check_size(size)
    from handlab.synth.scene import check_params

    check_params(params)
    n = len(params["pose"])
    parts = [
        _render_chunk({k: v[i : i + CHUNK] for k, v in params.items()}, size, extras)
        for i in range(0, n, CHUNK)
    ]
    out = {k: torch.cat([part[k] for part in parts]) for k in parts[0]}
    if extras:
        out["params"] = params
    return out


def check_size(size: object) -> None:
    """Raise unless ``size`` is an int in [64, 512]."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise TypeError(f"size: expected an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    check_range("size", size, lo=MIN_SIZE, hi=MAX_SIZE)
