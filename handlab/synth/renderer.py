"""The renderer: a ray-cast z-buffer of capsules and boxes, shaded, over a cluttered background.

Taught in chapter 00 (``notebooks/00_tour.py``).

The hand (:meth:`HandModel.surface`: 15 finger capsules, palm, thenar, wrist and forearm) and
the occluders (spheres, capsule-cylinders, boxes) are ray-cast per primitive in its own patch
(:mod:`handlab.synth.raycast`); normals, shading (wrapped Lambert, Blinn-Phong, a smooth
ellipsoid normal on the palm, nails), depth and visibility are then computed once per foreground
pixel, and the camera and sensor effects added (:mod:`handlab.synth.sensor`).

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

import torch
import torch.nn.functional as F

from handlab._checks import check_range
from handlab.geometry import axis_angle_to_matrix, project
from handlab.hand_model import HandModel
from handlab.synth.backgrounds import render_background
from handlab.synth.props import (
    crease_factor,
    crease_strength,
    long_forearm,
    nail_colors,
    sleeve_capsule,
)
from handlab.synth.randomize import apply_camera, photo_backgrounds, skin_texture
from handlab.synth.raycast import raycast
from handlab.synth.scene import check_params
from handlab.synth.sensor import MAX_SIZE, min_filter, motion_blur, sensor_noise, soften

__all__ = ["KEYS", "hand_geometry", "render"]

KEYS = ("image", "depth", "mask", "keypoints", "xyz", "K", "visibility")
MIN_SIZE = 64

CHUNK = 64  # samples per rendering pass at 128 px (fewer at larger sizes): bounds memory
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
    (N, 5, 3) and ``palm_normal`` (N, 3) unit vectors. A ``params["forearm"]`` prop
    (:func:`handlab.synth.props.long_forearm`) lengthens the last capsule, the forearm.
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
    geo = {
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
    return long_forearm(params, geo)  # a long forearm where the props ask for one


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
    """Primitives of the hand and occluders: spheres and cylinders become capsules; a sleeve
    (``params["sleeve"]``, :mod:`handlab.synth.props`) is one more capsule after the occluders'."""
    kind, on = params["occ_kind"], params["occ_on"]
    rot = axis_angle_to_matrix(params["occ_rot"])  # (n, M, 3, 3)
    c, size = params["occ_center"], params["occ_size"]
    axis = rot[..., :, 2] * size[..., 1:2] * (kind == 1)[..., None]  # cylinders: half length
    cap_a, cap_b, cap_r = (
        [geo["start"], c - axis],
        [geo["end"], c + axis],
        [geo["radius"], size[..., 0]],
    )
    cap_on = [torch.ones_like(geo["radius"], dtype=torch.bool), on & (kind < 2)]
    if "sleeve" in params:
        a, b, r, sleeve_on = sleeve_capsule(
            params, geo["start"][:, -1], geo["end"][:, -1], geo["radius"][:, -1]
        )
        cap_a, cap_b, cap_r = cap_a + [a[:, None]], cap_b + [b[:, None]], cap_r + [r[:, None]]
        cap_on.append(sleeve_on[:, None])
    return {
        "cap_a": torch.cat(cap_a, 1),
        "cap_b": torch.cat(cap_b, 1),
        "cap_r": torch.cat(cap_r, 1),
        "cap_on": torch.cat(cap_on, 1),
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
    sleeve = pid == n_hand + n_occ if "sleeve" in params else torch.zeros_like(hand)
    if bool(sleeve.any()):  # the capsule after the occluders' (``_scene``)
        albedo[:, sleeve] = params["sleeve"][sample[sleeve], 3:6].T
    palmar = (normal * _take(geo["palm_normal"], sample)).sum(0).clamp(min=0)
    albedo = albedo * torch.where(hand, 1.0 + 0.12 * palmar, torch.ones_like(palmar))
    distal = hand & (pid < 15) & (pid % 3 == 2)
    finger = (pid // 3).clamp(max=4)
    facing = (normal * _take(geo["nail"], sample * 5 + finger)).sum(0)
    nail = (distal & (s > 0.45) & (facing > 0.55)).float()
    nail_rgb = _NAIL_COLOR[:, None]
    if "details" in params:  # props: drawn nail colours, creases at the finger joints
        nail_rgb = _take(nail_colors(params, _NAIL_COLOR), sample)
        bone = hand & (pid < 15)
        lengths = (geo["end"][:, :15] - geo["start"][:, :15]).norm(dim=-1)  # (n, 15) mm
        flat = sample * 15 + pid.clamp(0, 14)
        # no crease at a fingertip (the distal bone's far end) nor on a nail
        crease = crease_factor(
            crease_strength(params)[sample] * (bone & (nail == 0)),
            torch.where(distal, s.clamp(max=0.5), s),
            lengths.reshape(-1)[flat],
        )
        albedo = albedo * crease
    albedo = albedo + 0.5 * nail * (nail_rgb - albedo)
    light = _take(params["light"], sample)  # (3, m) unit, towards the light
    view = _unit(-point)
    lam = (((normal * light).sum(0) + 0.35) / 1.35).clamp(min=0)  # wrap lighting
    half = _unit(light + view)
    spec = (normal * half).sum(0).clamp(min=0) ** 24 * params["specular"][sample]
    spec = torch.where(sleeve, 0.2 * spec, spec)  # cloth is matte
    ambient = params["ambient"][sample]
    cos_view = (normal * view).sum(0)
    rim = 0.8 + 0.2 * cos_view.clamp(min=0)  # darker at grazing angles
    color = albedo * ((ambient + (1 - ambient) * lam) * rim)
    color = color + spec * _take(params["light_color"], sample)
    return color.clamp(0, 1), cos_view.abs()


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
    per[:, :, 0] = torch.maximum(per[:, :, 0], r[:, 15:21].amax(1, keepdim=True))  # palm, wrist
    return torch.cat([r[:, 21:22], per.reshape(-1, 20)], dim=1)


def _render_chunk(params: dict[str, torch.Tensor], size: int, extras: bool):
    n = len(params["pose"])
    geo = hand_geometry(params)
    scene = _scene(params, geo)
    K = camera_matrix(params, size)
    zbuf, winner = raycast(scene, K, size)  # (n, HW)
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
    color = color * _crease_shadow(zbuf, size)[sample, pix]
    image = render_background(params, size)
    randomized = "dr_photo" in params
    if randomized:
        image = photo_backgrounds(image, params)
    flat_image = image.view(n, 3, -1)
    for c in range(3):
        flat_image[:, c][sample, pix] = color[c]  # writes through the view
    hand = (winner >= 0) & (winner < n_hand)
    if randomized:
        image = skin_texture(image, hand.reshape(n, 1, size, size), params)
    image = soften(image)
    image = motion_blur(image, params["blur"][:, 0] * size, params["blur"][:, 1])
    # Background depth: a tilted plane behind the hand.
    t = torch.arange(size, dtype=torch.float32) / size - 0.5
    bg = params["bg_depth"]
    plane = bg[:, 0, None, None] * (
        1 + bg[:, 1, None, None] * t[None, None] + bg[:, 2, None, None] * t[None, :, None]
    )
    depth = torch.where(torch.isfinite(zbuf), zbuf, plane.reshape(n, -1)).reshape(n, 1, size, size)
    cos_map = torch.ones(n, size * size)
    cos_map[sample, pix] = cos_view
    grain, depth = sensor_noise(
        depth,
        cos_map.reshape(n, size, size),
        params["noise_seed"],
        params["depth_noise"],
        params["grain"],
        size,
    )
    image = (image + grain).clamp(0, 1)
    if randomized:
        image = apply_camera(image, params)
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


def _crease_shadow(zbuf: torch.Tensor, size: int) -> torch.Tensor:
    """(n, H*W) factors in [0.6, 1]: a screen-space ambient occlusion. A pixel with a surface
    much nearer within 2 px (a finger lying over another, an occluder in front) is darkened, up
    to 40% at 25 mm; this draws the contact lines that separate overlapping fingers."""
    z = torch.where(torch.isfinite(zbuf), zbuf, torch.full_like(zbuf, 1e4)).reshape(-1, size, size)
    nearest = min_filter(z, 2)
    return (1 - 0.4 * ((z - nearest) / 25.0).clamp(0, 1)).reshape(-1, size * size)


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
    check_params(params)
    n = len(params["pose"])
    chunk = max(1, CHUNK * 128 * 128 // (size * size))  # same pixels per pass at any size
    parts = [
        _render_chunk({k: v[i : i + chunk] for k, v in params.items()}, size, extras)
        for i in range(0, n, chunk)
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
