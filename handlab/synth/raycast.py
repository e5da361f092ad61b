"""Ray casting of capsules and boxes into a z-buffer, per primitive in its own patch.

Taught in chapter 00 (``notebooks/00_tour.py``).

Why it is fast on a CPU: each primitive (a finger bone, a palm capsule, an occluder) is ray-cast
analytically only inside its projected bounding box (a patch), never against the full frame.
Patches are grouped by size (each group at most 1.3x its smallest), each group padded to its
largest patch, so the whole batch is a handful of vectorised tensor ops. The nearest hit per
pixel is a ``scatter_reduce(amin)`` (the z-buffer); the winner's id a second
``scatter_reduce(amax)`` among the hits at that depth (deterministic ties). Ray-capsule
intersection: I. Quilez, "Capsule - intersection" (iquilezles.org); ray-box: the slab method in
the box's frame. Rays start at the camera centre with direction ``(dx, dy, 1)``, so a hit's ray
parameter along that direction is its depth z.

>>> K = torch.tensor([[[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]]])
>>> scene = {
...     "cap_a": torch.tensor([[[0.0, 0, 500]]]), "cap_b": torch.tensor([[[0.0, 0, 500]]]),
...     "cap_r": torch.tensor([[20.0]]), "cap_on": torch.tensor([[True]]),
...     "box_c": torch.zeros(1, 0, 3), "box_rot": torch.zeros(1, 0, 3, 3),
...     "box_half": torch.zeros(1, 0, 3), "box_on": torch.zeros(1, 0, dtype=torch.bool),
... }
>>> zbuf, winner = raycast(scene, K, 64)
>>> round(float(zbuf.min()), 3), int((winner == 0).sum()) > 0  # sphere front at 480 mm
(480.0, True)
"""

from __future__ import annotations

import math

import torch

from handlab.geometry import project

__all__ = ["raycast"]

_MIN_PATCH = 8  # patches up to 8 px wide form the first size group
_LOG_STEP = math.log(1.3)  # each further group is 1.3x wider


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


def raycast(scene: dict[str, torch.Tensor], K: torch.Tensor, size: int):
    """Z-buffer (n, H*W) mm (inf = no hit) and winner id (n, H*W) (-1 = none) of all primitives.

    ``scene`` holds capsules ``cap_a``/``cap_b`` (n, P, 3), ``cap_r`` (n, P), ``cap_on`` (n, P)
    and boxes ``box_c`` (n, Q, 3), ``box_rot`` (n, Q, 3, 3), ``box_half`` (n, Q, 3),
    ``box_on`` (n, Q). Ids: capsules 0..P-1, boxes P..P+Q-1.
    """
    n, p = scene["cap_r"].shape
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
    return zbuf.reshape(n, size * size), winner.reshape(n, size * size)
