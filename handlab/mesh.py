"""A hand *mesh* for the articulated hand: a fixed-topology template, skinned to the same joints.

Seed 000 introduces MANO (Romero et al. 2017) as a deformable hand mesh: a template of fixed
topology whose vertices follow the joints by linear blend skinning (LBS). handlab's hand model is
a chain of capsules (:class:`handlab.hand_model.HandModel`); this module gives it the same
mesh idea, built from its own surface rather than from MANO's (licensed) data:

1. :func:`template_mesh`: the capsule surface at the rest pose (pose 0, shape 0) as a signed
   distance on a voxel grid, turned into a triangle mesh by scikit-image's marching cubes
   (Lorensen & Cline 1987). The forearm stub is cut at the wrist, as MANO's mesh ends there.
2. Skinning weights: each vertex belongs softly to the 16 rigid parts (the palm, moving with the
   global rotation, and the 15 finger bones), ``w ∝ exp(-d / tau)`` over its distance ``d`` to each
   part's capsule surface, normalised to sum to one (MANO learns its weights; these are the
   classic distance-based initialisation of LBS weights).
3. :func:`pose_mesh`: LBS, ``v' = sum_b w_b (R_b R_b0^T (v - o_b0) + o_b)`` with each part's rest
   and posed frame ``R`` and origin ``o`` from the hand model's kinematics (batched, differentiable
   in pose and shape). Shape changes move and rotate the parts; bone lengths stretch the vertices
   along their bone (the template's thickness stays that of shape 0).

Mesh metrics as the hand-mesh papers report them (FreiHAND's evaluation, Ge et al. 2019):
:func:`mpvpe` (mean per-vertex position error, mm), :func:`pa_mpvpe` (after a similarity
Procrustes fit per sample) and :func:`fscore` at a distance (5 / 15 mm in FreiHAND).

Written by hand because no library skins a capsule hand; marching cubes is scikit-image's, the
Procrustes fit is :func:`handlab.geometry.procrustes`.

>>> mesh = template_mesh()
>>> mesh.vertices.shape[1], mesh.faces.shape[1], mesh.weights.shape[1]
(3, 3, 16)
>>> posed = pose_mesh(mesh, torch.zeros(1, 16, 3))
>>> float((posed[0] - mesh.vertices).abs().max()) < 1e-3  # the rest pose gives the template back
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from handlab import geometry
from handlab._checks import check_finite, check_shape
from handlab.hand_model import POSE_LIMITS, HandModel

__all__ = [
    "HandMesh",
    "MeshLevel",
    "fscore",
    "joint_regressor",
    "mesh_hierarchy",
    "mpvpe",
    "pa_mpvpe",
    "pose_mesh",
    "scene_vertices",
    "template_mesh",
]

NUM_PARTS = 16  # the palm (global rotation) + 15 finger bones, finger-major canonical order
_FINGER_CAPSULES = 15  # capsules 0-14 are finger bones; 15-20 the palm, thenar, wrist; 21 forearm
_FOREARM = 21


@dataclass(frozen=True)
class HandMesh:
    """A template hand mesh at the rest pose (pose 0, shape 0), hand frame, mm.

    Attributes:
        vertices: (V, 3) float32 mm.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from outside.
        weights: (V, 16) float32 skinning weights (rows sum to 1) over the parts: 0 the palm,
            1 + 3 f + k bone ``k`` of finger ``f`` (canonical order: thumb, index, ...).
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    weights: torch.Tensor

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])


def _segment_distance(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(N, 3) points, (P, 3) segments -> (N, P) distance of each point to each segment (mm)."""
    d = end - start  # (P, 3)
    length2 = np.maximum((d * d).sum(-1), 1e-12)  # (P,)
    rel = points[:, None, :] - start[None]  # (N, P, 3)
    t = np.clip((rel * d[None]).sum(-1) / length2, 0.0, 1.0)  # (N, P)
    closest = start[None] + t[..., None] * d[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=-1)


def _part_of_capsule() -> np.ndarray:
    """(21,) the part each capsule belongs to (finger bones 1..15, palm capsules 0)."""
    parts = np.zeros(_FOREARM, dtype=np.int64)
    parts[:_FINGER_CAPSULES] = np.arange(1, _FINGER_CAPSULES + 1)
    return parts


def _capsule_sdf(points: np.ndarray, start, end, radius) -> np.ndarray:
    """(N, 3) -> (N, P) signed distance to each capsule's surface (negative inside)."""
    return _segment_distance(points, start, end) - radius[None]


@lru_cache(maxsize=4)
def template_mesh(*, voxel_mm: float = 3.0, tau_mm: float = 2.0) -> HandMesh:
    """The rest-pose hand as a triangle mesh with skinning weights (cached per setting).

    Args:
        voxel_mm: grid step of the signed distance (mm); smaller gives more vertices
            (3 mm: a few thousand, the order of MANO's 778 x 4).
        tau_mm: softness of the skinning weights (mm of distance per e-fold).

    Returns:
        :class:`HandMesh` in the hand frame (wrist at the origin, +y along the fingers).

    >>> template_mesh(voxel_mm=6.0).num_vertices > 100
    True
    """
    from skimage.measure import marching_cubes

    if not voxel_mm > 0:
        raise ValueError(f"voxel_mm: expected a positive grid step in mm, got {voxel_mm}")
    if not tau_mm > 0:
        raise ValueError(f"tau_mm: expected a positive softness in mm, got {tau_mm}")
    surface = HandModel().surface(torch.zeros(1, 16, 3))
    start = surface["start"][0, :_FOREARM].double().numpy()  # (21, 3), forearm dropped
    end = surface["end"][0, :_FOREARM].double().numpy()
    radius = surface["radius"][0, :_FOREARM].double().numpy()
    lo = np.minimum(start, end).min(0) - radius.max() - 2 * voxel_mm
    hi = np.maximum(start, end).max(0) + radius.max() + 2 * voxel_mm
    axes = [np.arange(a, b + voxel_mm, voxel_mm) for a, b in zip(lo, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    sdf = _capsule_sdf(grid, start, end, radius).min(1)
    # The wrist capsule is cut flat below the wrist joint (y < 0), where MANO's mesh ends.
    sdf = np.maximum(sdf, -(grid[:, 1] + radius[-1] * 0.2))
    volume = sdf.reshape(*(len(a) for a in axes))
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(voxel_mm,) * 3)
    verts = verts + lo[None]
    # Soft part membership from the distance to each capsule surface (palm capsules pooled).
    dist = np.maximum(_capsule_sdf(verts, start, end, radius), 0.0)  # (V, 21)
    parts = _part_of_capsule()
    part_dist = np.full((len(verts), NUM_PARTS), np.inf)
    for c, p in enumerate(parts):
        part_dist[:, p] = np.minimum(part_dist[:, p], dist[:, c])
    logits = -(part_dist - part_dist.min(1, keepdims=True)) / tau_mm
    weights = np.exp(logits)
    weights /= weights.sum(1, keepdims=True)
    # marching_cubes' default ("descent") orients the faces counter-clockwise seen from outside
    # for a signed distance negative inside (positive enclosed volume; tested).
    return HandMesh(
        vertices=torch.as_tensor(verts, dtype=torch.float32),
        faces=torch.as_tensor(faces.copy(), dtype=torch.int64),
        weights=torch.as_tensor(weights, dtype=torch.float32),
    )


def _part_frames(
    pose: torch.Tensor, shape: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rotations (B, 16, 3, 3), origins (B, 16, 3) mm and bone lengths (B, 16) of each part."""
    model = HandModel()
    joints, frames = model._kinematics(pose, shape)  # (B, 21, 3), (B, 5, 3, 3, 3)
    b = pose.shape[0]
    glob = geometry.axis_angle_to_matrix(pose[:, 0])  # (B, 3, 3)
    rots = torch.cat([glob[:, None], frames.reshape(b, 15, 3, 3)], dim=1)
    starts = [4 * f + 1 + k for f in range(5) for k in range(3)]
    origins = torch.cat([joints[:, :1] * 0, joints[:, starts]], dim=1)  # (B, 16, 3)
    ends = [s + 1 for s in starts]
    lengths = (joints[:, ends] - joints[:, starts]).norm(dim=-1)  # (B, 15)
    lengths = torch.cat([lengths.new_ones(b, 1), lengths], dim=1)
    return rots, origins, lengths


def pose_mesh(
    mesh: HandMesh, pose: torch.Tensor, shape: torch.Tensor | None = None
) -> torch.Tensor:
    """Linear blend skinning of the template to a pose: (B, 16, 3) rad -> vertices (B, V, 3) mm.

    The hand frame is the hand model's (wrist at the origin); differentiable in pose and shape.

    >>> mesh = template_mesh(voxel_mm=6.0)
    >>> pose_mesh(mesh, torch.zeros(2, 16, 3)).shape[::2]
    torch.Size([2, 3])
    """
    check_shape("pose", pose, (None, 16, 3))
    check_finite("pose", pose)
    rest_rot, rest_org, rest_len = _part_frames(torch.zeros(1, 16, 3).to(pose), None)
    rot, org, length = _part_frames(pose, shape)  # (B, 16, 3, 3), (B, 16, 3), (B, 16)
    v = mesh.vertices.to(pose)  # (V, 3)
    # Each vertex in each part's rest frame: (16, V, 3) local coordinates (x, y along bone, z).
    local = torch.einsum("pji,pvj->pvi", rest_rot[0], v[None] - rest_org[0][:, None])
    stretch = torch.ones_like(local[None].expand(pose.shape[0], -1, -1, -1)).clone()
    ratio = length / rest_len  # (B, 16): bone length factor, 1 for the palm
    stretch[..., 1] = torch.where(local[None, ..., 1] > 0, ratio[..., None], 1.0)
    local = local[None] * stretch  # (B, 16, V, 3)
    per_part = torch.einsum("bpij,bpvj->bpvi", rot, local) + org[:, :, None]  # (B, 16, V, 3)
    return torch.einsum("vp,bpvi->bvi", mesh.weights.to(pose), per_part)


def scene_vertices(params: dict, mesh: HandMesh | None = None) -> torch.Tensor:
    """Per-vertex ground truth of synthetic samples: (N, V, 3) mm in the camera frame.

    ``params`` come from :func:`handlab.synth.scene.sample_params`; the vertices are placed exactly
    as the renderer places the joints (finger pose in the hand frame, mirrored for left hands,
    then the global rotation and translation), so the skinned mesh and the sample's ``xyz`` share
    one frame. Face winding flips for mirrored (left) hands.

    >>> from handlab.synth.scene import sample_params
    >>> params = sample_params(2, torch.Generator().manual_seed(0))
    >>> scene_vertices(params, template_mesh(voxel_mm=6.0)).shape[::2]
    torch.Size([2, 3])
    """
    mesh = template_mesh() if mesh is None else mesh
    pose = params["pose"]
    local = pose.clone()
    local[:, 0] = 0.0
    verts = pose_mesh(mesh, local, params["shape"])  # (N, V, 3), hand frame
    mirror = torch.where(params["left"][:, None], torch.tensor([-1.0, 1.0, 1.0]), torch.ones(3))
    rot = geometry.axis_angle_to_matrix(pose[:, 0])  # (N, 3, 3)
    return (verts * mirror[:, None]) @ rot.transpose(1, 2) + params["trans"][:, None]


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, gt = torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(gt, dtype=torch.float32)
    check_shape("pred", pred, (None, None, 3))
    if pred.shape != gt.shape:
        raise ValueError(
            f"gt: expected the shape of pred {tuple(pred.shape)}, got {tuple(gt.shape)}"
        )
    check_finite("pred", pred)
    check_finite("gt", gt)
    return pred, gt


def mpvpe(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean per-vertex position error (mm) of (B, V, 3) meshes with the same topology.

    >>> gt = torch.zeros(1, 4, 3)
    >>> mpvpe(gt + torch.tensor([3.0, 4.0, 0.0]), gt)
    5.0
    """
    pred, gt = _check_pair(pred, gt)
    return float((pred - gt).norm(dim=-1).mean())


def pa_mpvpe(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """MPVPE after aligning each predicted mesh to its ground truth by a similarity transform.

    >>> gt = torch.tensor([[[0.0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30]]])
    >>> round(pa_mpvpe(3 * gt - 2, gt), 4)
    0.0
    """
    pred, gt = _check_pair(pred, gt)
    return mpvpe(geometry.procrustes(pred, gt), gt)


def fscore(pred: torch.Tensor, gt: torch.Tensor, threshold_mm: float) -> float:
    """F-score at a distance (mm) between two point sets per sample, averaged over the batch.

    Precision: the share of predicted points within ``threshold_mm`` of some ground-truth point;
    recall the converse; F = 2 P R / (P + R) (Knapitsch et al. 2017, FreiHAND's mesh metric).
    The point sets need not correspond (any V), only the batch must match.

    >>> gt = torch.zeros(1, 5, 3)
    >>> fscore(gt + 1.0, gt, 5.0), fscore(gt + 10.0, gt, 5.0)
    (1.0, 0.0)
    """
    pred = torch.as_tensor(pred, dtype=torch.float32)
    gt = torch.as_tensor(gt, dtype=torch.float32)
    check_shape("pred", pred, (None, None, 3))
    check_shape("gt", gt, (pred.shape[0], None, 3))
    if not threshold_mm > 0:
        raise ValueError(f"threshold_mm: expected a positive distance, got {threshold_mm}")
    scores = []
    for p, g in zip(pred, gt, strict=True):
        d = torch.cdist(p, g)  # (Vp, Vg)
        precision = float((d.min(1).values <= threshold_mm).float().mean())
        recall = float((d.min(0).values <= threshold_mm).float().mean())
        total = precision + recall
        scores.append(0.0 if total == 0 else 2 * precision * recall / total)
    return float(np.mean(scores))


@dataclass(frozen=True)
class MeshLevel:
    """One level of a coarse-to-fine mesh hierarchy (see :func:`mesh_hierarchy`).

    Attributes:
        num_vertices: vertices at this level.
        edges: (E, 2) int64 undirected edges (each once, ``i < j``).
        parent: (V,) int64, for every vertex the vertex of the next coarser level it came from
            (unpooling copies the parent's features, as Ge et al.'s upsampling does); the
            coarsest level has ``parent`` all -1.
    """

    num_vertices: int
    edges: torch.Tensor
    parent: torch.Tensor


def _mesh_edges(faces: np.ndarray) -> np.ndarray:
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def mesh_hierarchy(mesh: HandMesh, cells_mm: tuple[float, ...] = (10.0, 18.0, 32.0)) -> list:
    """Coarsen a mesh graph by vertex clustering on grids of growing cells: finest level first.

    Each coarser level merges the vertices of the previous level that fall in one grid cell (of
    ``cells_mm[k]`` mm) into their mean, and keeps an edge between two clusters when any of their
    vertices shared one. Ge et al. (2019) coarsen with Graclus; a grid clustering gives the same
    kind of hierarchy (a few times fewer vertices per level) deterministically. Written by hand:
    the few lines do not justify a graph library.

    Returns:
        ``[MeshLevel, ...]`` from the full mesh down to the coarsest level.

    >>> levels = mesh_hierarchy(template_mesh(voxel_mm=6.0))
    >>> sizes = [level.num_vertices for level in levels]
    >>> sizes == sorted(sizes, reverse=True) and len(sizes) == 4
    True
    """
    if any(b <= a for a, b in itertools.pairwise(cells_mm)) or min(cells_mm) <= 0:
        raise ValueError(f"cells_mm: expected increasing positive cell sizes, got {cells_mm}")
    points = mesh.vertices.double().numpy()
    edges = _mesh_edges(mesh.faces.numpy())
    levels: list[dict] = [{"n": len(points), "edges": edges}]
    for cell in cells_mm:
        keys = np.floor(points / cell).astype(np.int64)
        _, parent, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        parent = parent.reshape(-1)
        coarse = np.zeros((len(counts), 3))
        np.add.at(coarse, parent, points)
        coarse /= counts[:, None]
        merged = np.sort(parent[edges], axis=1)
        merged = np.unique(merged[merged[:, 0] != merged[:, 1]], axis=0)
        levels[-1]["parent"] = parent
        levels.append({"n": len(counts), "edges": merged})
        points, edges = coarse, merged
    levels[-1]["parent"] = np.full(levels[-1]["n"], -1)
    return [
        MeshLevel(
            num_vertices=int(lvl["n"]),
            edges=torch.as_tensor(lvl["edges"], dtype=torch.int64),
            parent=torch.as_tensor(lvl["parent"], dtype=torch.int64),
        )
        for lvl in levels
    ]


@lru_cache(maxsize=4)
def joint_regressor(mesh: HandMesh, *, samples: int = 64, radius_mm: float = 30.0) -> torch.Tensor:
    """A sparse non-negative (21, V) matrix ``R`` with ``xyz ≈ R @ vertices`` (MANO's idea).

    Fitted by non-negative least squares (scipy) on the skinned template in ``samples`` poses
    drawn uniformly within the joint limits, each joint from the vertices within ``radius_mm`` of
    it at rest, rows normalised to sum to 1 (so the regressor commutes with translation).

    >>> R = joint_regressor(template_mesh(voxel_mm=6.0), samples=8)
    >>> R.shape[0], bool(torch.allclose(R.sum(1), torch.ones(21)))
    (21, True)
    """
    from scipy.optimize import nnls

    # Poses drawn uniformly within the joint limits (the global rotation zero: the hand frame).
    g = torch.Generator().manual_seed(0)
    lim = POSE_LIMITS[1:]
    pose = torch.zeros(samples, 16, 3)
    pose[:, 1:] = lim[..., 0] + (lim[..., 1] - lim[..., 0]) * torch.rand(
        samples, 15, 3, generator=g
    )
    pose = torch.cat([torch.zeros(1, 16, 3), pose])  # the rest pose counts too
    model = HandModel()
    with torch.no_grad():
        verts = pose_mesh(mesh, pose).double().numpy()  # (S, V, 3)
        joints = model(pose).double().numpy()  # (S, 21, 3)
    rest_joints = joints[0]
    rows = np.zeros((21, mesh.num_vertices))
    for j in range(21):
        near = np.nonzero(np.linalg.norm(verts[0] - rest_joints[j], axis=-1) < radius_mm)[0]
        if len(near) == 0:
            raise ValueError(f"radius_mm: no vertex within {radius_mm} mm of joint {j}")
        # Stack x, y, z of every sample as equations; one extra row ties the weights' sum to 1.
        a = verts[:, near].transpose(0, 2, 1).reshape(-1, len(near))  # (S * 3, n)
        b = joints[:, j].reshape(-1)
        a = np.vstack([a, 1e3 * np.ones((1, len(near)))])
        b = np.append(b, 1e3)
        w, _ = nnls(a, b, maxiter=50 * len(near))
        rows[j, near] = w / max(w.sum(), 1e-12)
    return torch.as_tensor(rows, dtype=torch.float32)
