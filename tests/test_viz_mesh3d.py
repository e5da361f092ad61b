"""Capsule meshes and overlay skeletons for chapter 03's 3D figures."""

import numpy as np
import pytest
import torch

from handlab.hand_model import HandModel
from handlab.skeleton import BONES
from handlab.viz.mesh3d import capsule_mesh, skeleton_trace, surface_trace


def _segment_distance(points, a, b):
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=-1)


def test_every_vertex_lies_on_its_capsule_surface():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(5, 3, generator=g) * 20
    end = start + torch.randn(5, 3, generator=g) * 15
    end[4] = start[4]  # a degenerate capsule is a sphere
    radius = torch.rand(5, generator=g) * 5 + 1
    vertices, faces = capsule_mesh(start, end, radius, segments=10, rings=4)
    per = 2 * 4 * 10
    assert vertices.shape == (5 * per, 3)
    for p in range(5):
        d = _segment_distance(vertices[p * per : (p + 1) * per], start[p].numpy(), end[p].numpy())
        np.testing.assert_allclose(d, float(radius[p]), rtol=1e-6, atol=1e-6)
    assert faces.min() == 0 and faces.max() == len(vertices) - 1
    # each capsule's triangles only use that capsule's vertices
    assert (faces // per == np.repeat(np.arange(5), len(faces) // 5)[:, None]).all()


def test_the_hand_surface_mesh_covers_the_joints():
    pose = torch.zeros(1, 16, 3)
    surface = HandModel().surface(pose)
    trace = surface_trace(surface["start"][0], surface["end"][0], surface["radius"][0])
    xyz = np.stack([trace.x, trace.y, trace.z], -1)
    joints = surface["xyz"][0].numpy()
    lo, hi = xyz.min(0), xyz.max(0)
    assert ((joints >= lo - 1e-3) & (joints <= hi + 1e-3)).all()


def test_skeleton_trace_draws_each_bone_between_its_joints():
    xyz = torch.randn(21, 3) * 30
    trace = skeleton_trace(xyz, name="pred", color="#123456", dash="dash")
    pts = np.stack([trace.x, trace.y, trace.z], -1).reshape(len(BONES), 3, 3)
    for (parent, child), seg in zip(BONES, pts, strict=True):
        np.testing.assert_allclose(seg[0], xyz[parent].numpy(), rtol=1e-6)
        np.testing.assert_allclose(seg[1], xyz[child].numpy(), rtol=1e-6)
        assert np.isnan(seg[2]).all()
    assert trace.name == "pred" and trace.line.color == "#123456"


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="xyz"):
        skeleton_trace(torch.zeros(20, 3), name="x")
    with pytest.raises(ValueError, match="radius"):
        capsule_mesh(torch.zeros(2, 3), torch.ones(2, 3), torch.ones(3))
    with pytest.raises(ValueError, match="opacity"):
        surface_trace(torch.zeros(1, 3), torch.ones(1, 3), torch.ones(1), opacity=2.0)
    with pytest.raises(ValueError, match="start: expected finite"):
        capsule_mesh(torch.full((1, 3), float("nan")), torch.ones(1, 3), torch.ones(1))
