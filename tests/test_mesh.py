"""The hand mesh: a closed template, skinning that follows the joints, metrics vs references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import cKDTree

from handlab.geometry import axis_angle_to_matrix
from handlab.hand_model import HandModel
from handlab.mesh import fscore, mpvpe, pa_mpvpe, pose_mesh, scene_vertices, template_mesh
from handlab.synth.scene import sample_params

TIPS = [4, 8, 12, 16, 20]


@pytest.fixture(scope="module")
def mesh():
    return template_mesh(voxel_mm=4.0)


def _edges(faces: torch.Tensor) -> dict[tuple[int, int], int]:
    count: dict[tuple[int, int], int] = {}
    for a, b, c in faces.tolist():
        for u, v in ((a, b), (b, c), (c, a)):
            key = (min(u, v), max(u, v))
            count[key] = count.get(key, 0) + 1
    return count


def test_template_is_closed_outward_and_genus_zero(mesh):
    edges = _edges(mesh.faces)
    assert set(edges.values()) == {2}  # every edge shared by exactly two faces: watertight
    euler = mesh.num_vertices - len(edges) + len(mesh.faces)
    assert euler == 2  # one closed surface without handles
    v, f = mesh.vertices.double(), mesh.faces
    volume = float((v[f[:, 0]] * torch.linalg.cross(v[f[:, 1]], v[f[:, 2]])).sum()) / 6
    assert 100e3 < volume < 600e3  # mm^3, positive: faces wind counter-clockwise from outside


def test_weights_are_a_partition_and_tips_belong_to_distal_bones(mesh):
    w = mesh.weights
    assert torch.allclose(w.sum(1), torch.ones(len(w)), atol=1e-5)
    assert bool((w >= 0).all())
    xyz = HandModel()(torch.zeros(1, 16, 3))[0]
    nearest = torch.cdist(xyz[TIPS], mesh.vertices).argmin(1)  # the vertex at each fingertip
    for f, v in enumerate(nearest.tolist()):
        assert int(w[v].argmax()) == 1 + 3 * f + 2  # part of finger f's distal bone


def test_rest_pose_and_global_rotation_are_exact(mesh):
    rest = pose_mesh(mesh, torch.zeros(1, 16, 3))[0]
    assert torch.allclose(rest, mesh.vertices, atol=1e-3)
    pose = torch.zeros(1, 16, 3)
    pose[0, 0] = torch.tensor([0.3, -0.5, 1.0])
    rotated = pose_mesh(mesh, pose)[0]
    R = axis_angle_to_matrix(pose[0, 0])
    assert torch.allclose(rotated, mesh.vertices @ R.T, atol=1e-3)


@pytest.mark.parametrize("flex", [0.4, 1.0])
def test_skin_follows_the_fingertips(mesh, flex):
    pose = torch.zeros(1, 16, 3)
    pose[0, 1:, 0] = flex  # every finger joint flexed
    model = HandModel()
    rest_gap = torch.cdist(model(torch.zeros(1, 16, 3))[0, TIPS], mesh.vertices).min(1).values
    posed = pose_mesh(mesh, pose)[0]
    gap = torch.cdist(model(pose)[0, TIPS], posed).min(1).values
    # The fingertip keypoint stays just under the skin (within 1 mm of its rest depth), and the
    # tips did move (so the check is not satisfied by a mesh that ignores the pose).
    assert torch.allclose(gap, rest_gap, atol=1.0)
    assert float((posed - mesh.vertices).norm(dim=-1).max()) > 20


def test_longer_fingers_stretch_the_skin(mesh):
    shape = torch.zeros(1, 10)
    shape[0, 3] = 3.0  # finger_length: fingers 9 % longer
    model = HandModel()
    verts = pose_mesh(mesh, torch.zeros(1, 16, 3), shape)[0]
    gap = torch.cdist(model(torch.zeros(1, 16, 3), shape)[0, TIPS], verts).min(1).values
    assert float(gap.max()) < 3.0
    assert float(verts[:, 1].max()) > float(mesh.vertices[:, 1].max()) + 6  # tip moved ~8 mm


def test_pose_mesh_is_differentiable(mesh):
    pose = torch.full((1, 16, 3), 0.1, requires_grad=True)
    pose_mesh(mesh, pose).sum().backward()
    assert pose.grad is not None and float(pose.grad.abs().sum()) > 0


def test_scene_vertices_share_the_joints_frame(mesh):
    params = sample_params(4, torch.Generator().manual_seed(3), left=0.5)
    verts = scene_vertices(params, mesh)
    pose = params["pose"].clone()
    pose[:, 0] = 0
    hand = HandModel()(pose, params["shape"])
    mirror = torch.where(params["left"][:, None], torch.tensor([-1.0, 1, 1]), torch.ones(3))
    rot = axis_angle_to_matrix(params["pose"][:, 0])
    xyz = (hand * mirror[:, None]) @ rot.transpose(1, 2) + params["trans"][:, None]
    for i in range(4):
        gap = torch.cdist(xyz[i, TIPS], verts[i]).min(1).values
        assert float(gap.max()) < 4.0  # every fingertip lies on its own sample's skin
    assert bool(params["left"].any()) and not bool(params["left"].all())


def test_mpvpe_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.randn(3, 50, 3, generator=g), torch.randn(3, 50, 3, generator=g)
    naive = np.mean(
        [
            np.linalg.norm(p - t)
            for P, T in zip(pred.numpy(), gt.numpy(), strict=True)
            for p, t in zip(P, T, strict=True)
        ]
    )
    assert mpvpe(pred, gt) == pytest.approx(naive, rel=1e-5)


def test_pa_mpvpe_matches_scipy_procrustes():
    g = torch.Generator().manual_seed(1)
    gt = torch.randn(1, 60, 3, generator=g) * 30
    R = axis_angle_to_matrix(torch.tensor([0.4, -0.2, 0.9]))
    pred = 1.3 * (gt + torch.randn(1, 60, 3, generator=g)) @ R.T + 5.0
    # Independent reference: centre, scipy's orthogonal Procrustes rotation, least-squares scale.
    p0 = pred[0].double().numpy() - pred[0].double().numpy().mean(0)
    t0 = gt[0].double().numpy() - gt[0].double().numpy().mean(0)
    rot, _ = orthogonal_procrustes(p0, t0)
    scale = np.trace((p0 @ rot).T @ t0) / np.trace(p0.T @ p0)
    aligned = scale * p0 @ rot + gt[0].double().numpy().mean(0)
    ref = np.linalg.norm(aligned - gt[0].double().numpy(), axis=-1).mean()
    assert pa_mpvpe(pred, gt) == pytest.approx(ref, rel=1e-4)
    assert pa_mpvpe(pred, gt) < mpvpe(pred, gt)


@pytest.mark.parametrize("threshold", [0.5, 1.5])
def test_fscore_matches_kdtree(threshold):
    g = torch.Generator().manual_seed(2)
    pred, gt = torch.rand(2, 80, 3, generator=g) * 5, torch.rand(2, 60, 3, generator=g) * 5
    scores = []
    for p, t in zip(pred.numpy(), gt.numpy(), strict=True):
        precision = np.mean(cKDTree(t).query(p)[0] <= threshold)
        recall = np.mean(cKDTree(p).query(t)[0] <= threshold)
        scores.append(
            0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        )
    assert fscore(pred, gt, threshold) == pytest.approx(np.mean(scores), abs=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="voxel_mm"):
        template_mesh(voxel_mm=0.0)
    with pytest.raises(ValueError, match="gt"):
        mpvpe(torch.zeros(1, 5, 3), torch.zeros(1, 6, 3))
    with pytest.raises(ValueError, match="threshold_mm"):
        fscore(torch.zeros(1, 5, 3), torch.zeros(1, 6, 3), 0.0)


def test_hierarchy_coarsens_a_connected_graph(mesh):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from handlab.mesh import mesh_hierarchy

    levels = mesh_hierarchy(mesh)
    sizes = [level.num_vertices for level in levels]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0] / 10
    for finer, coarser in itertools.pairwise(levels):
        assert set(finer.parent.tolist()) == set(range(coarser.num_vertices))  # onto
    for level in levels:
        e = level.edges.numpy()
        assert (e[:, 0] < e[:, 1]).all()
        n = level.num_vertices
        graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
        assert connected_components(graph, directed=False)[0] == 1
    with pytest.raises(ValueError, match="cells_mm"):
        mesh_hierarchy(mesh, (10.0, 5.0))


def test_joint_regressor_recovers_joints_of_unseen_poses(mesh):
    from handlab.mesh import joint_regressor
    from handlab.synth.poses import sample_pose

    R = joint_regressor(mesh)
    assert bool((R >= 0).all()) and torch.allclose(R.sum(1), torch.ones(21))
    pose, _ = sample_pose(16, torch.Generator().manual_seed(99))  # not the fitting poses
    err = (R @ pose_mesh(mesh, pose) - HandModel()(pose)).norm(dim=-1)
    assert float(err.mean()) < 1.0 and float(err.max()) < 5.0  # mm
