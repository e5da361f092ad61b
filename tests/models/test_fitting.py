"""Fitting the articulated hand: recovery of known poses, limits, 2D fits, the Kabsch start."""

from __future__ import annotations

import pytest
import torch

from handlab.geometry import axis_angle_to_matrix, project
from handlab.hand_model import POSE_LIMITS, HandModel
from handlab.models.fitting import fit_hand_model, kabsch

K = torch.tensor([[500.0, 0.0, 64.0], [0.0, 500.0, 64.0], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
ROOT = torch.tensor([10.0, -15.0, 480.0])


def _known(seed: int, spread: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    """Poses inside the limits (away from the bounds), any orientation, and random shapes."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = POSE_LIMITS[1:, :, 0], POSE_LIMITS[1:, :, 1]
    u = 0.5 + spread * (torch.rand(2, 15, 3, generator=g) - 0.5)
    pose = torch.cat([torch.randn(2, 1, 3, generator=g), lo + (hi - lo) * u], dim=1)
    shape = torch.randn(2, 10, generator=g)
    return pose, shape


def _within_limits(pose: torch.Tensor) -> bool:
    lim = POSE_LIMITS[1:]
    return bool((pose[:, 1:] >= lim[..., 0]).all() and (pose[:, 1:] <= lim[..., 1]).all())


def test_fitting_recovers_a_known_hands_joints_from_its_own_kinematics():
    pose, shape = _known(0)
    xyz = HandModel()(pose, shape) + ROOT
    fit = fit_hand_model(xyz=xyz, steps=200)
    error = (fit["xyz"] - xyz).norm(dim=-1).mean(-1)  # (2,) mm
    assert (error < 1.5).all(), error
    assert _within_limits(fit["pose"])
    assert fit["shape"].abs().max() <= 3.0
    torch.testing.assert_close(fit["translation"], ROOT.expand(2, 3))


def test_fitted_poses_stay_within_the_limits_for_unreachable_targets():
    pose, _ = _known(1)
    pose[:, 1:, 0] = 2.5  # every flexion far beyond its upper limit
    xyz = HandModel()(pose) + ROOT
    fit = fit_hand_model(xyz=xyz, steps=60)
    assert _within_limits(fit["pose"])
    # Unclamped, the same optimisation would have left the limits: the projection matters.
    assert not _within_limits(pose)


def test_fitting_2d_keypoints_reprojects_them():
    pose, shape = _known(2, spread=0.4)
    pose[:, 0] = torch.tensor([0.2, 0.1, 0.3])  # roughly facing the camera
    xyz = HandModel()(pose, shape) + ROOT
    keypoints = project(xyz, K)
    fit = fit_hand_model(keypoints=keypoints, K=K, steps=200)
    reprojection = (fit["keypoints"] - keypoints).norm(dim=-1).mean(-1)  # (2,) px
    assert (reprojection < 1.5).all(), reprojection
    assert _within_limits(fit["pose"])


def test_2d_and_3d_terms_together_fit_both():
    pose, shape = _known(3)
    xyz = HandModel()(pose, shape) + ROOT
    keypoints = project(xyz, K)
    fit = fit_hand_model(keypoints=keypoints, xyz=xyz, K=K, steps=200)
    assert ((fit["keypoints"] - keypoints).norm(dim=-1).mean(-1) < 1.5).all()
    # L3D is root-relative (networks predict root-relative xyz); the root depth comes from 2D.
    rel_error = (fit["xyz"] - fit["xyz"][:, :1]) - (xyz - xyz[:, :1])
    assert (rel_error.norm(dim=-1).mean(-1) < 1.0).all()


def test_root_relative_xyz_with_keypoints_takes_the_translation_from_2d():
    # A 3D model's root-relative xyz has its root at z = 0: starting the translation there made
    # the 2D term project through the camera centre (NaN pose after the first step).
    pose, shape = _known(6)  # sample 1's palm faces the camera: a flat-hand start is 350 mm off
    xyz = HandModel()(pose, shape) + ROOT
    keypoints = project(xyz, K)
    fit = fit_hand_model(keypoints=keypoints, xyz=xyz - xyz[:, :1], K=K, steps=200)
    assert torch.isfinite(fit["pose"]).all()
    assert ((fit["keypoints"] - keypoints).norm(dim=-1).mean(-1) < 1.5).all()
    assert ((fit["translation"] - ROOT).norm(dim=-1) < 10.0).all(), fit["translation"]


def test_kabsch_recovers_a_rotation_and_refuses_reflections():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(3, 6, 3, generator=g)
    R = axis_angle_to_matrix(torch.randn(3, 3, generator=g))
    torch.testing.assert_close(kabsch(a, a @ R.transpose(1, 2)), R, atol=1e-5, rtol=0)
    mirrored = a * torch.tensor([-1.0, 1.0, 1.0])
    det = torch.linalg.det(kabsch(a, mirrored))
    torch.testing.assert_close(det, torch.ones(3), atol=1e-5, rtol=0)


def test_fitting_errors():
    xyz = HandModel()(torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="keypoints, xyz"):
        fit_hand_model(steps=1)
    with pytest.raises(ValueError, match="K: expected"):
        fit_hand_model(keypoints=torch.zeros(2, 21, 2), steps=1)
    with pytest.raises(ValueError, match="xyz: expected shape"):
        fit_hand_model(xyz=torch.zeros(2, 20, 3), steps=1)
    with pytest.raises(ValueError, match="NaN"):
        fit_hand_model(xyz=torch.full((2, 21, 3), float("nan")), steps=1)
    with pytest.raises(ValueError, match="batch size"):
        fit_hand_model(keypoints=torch.zeros(3, 21, 2), xyz=xyz, K=K, steps=1)
    with pytest.raises(ValueError, match="weights"):
        fit_hand_model(xyz=xyz, steps=1, weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="steps"):
        fit_hand_model(xyz=xyz, steps=-1)
