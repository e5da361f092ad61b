"""handlab.hand_model: bone table, kinematics, limits, gradients, errors."""

import math

import pytest
import torch

from handlab.hand_model import (
    BONE_TABLE,
    POSE_LIMITS,
    POSE_ROWS,
    HandModel,
    bone_lengths,
    clamp_pose,
    limit_penalty,
)
from handlab.skeleton import BONES, PARENTS
from handlab.synth.poses import sample_pose, sample_shape

FINGERS = ("thumb", "index", "middle", "ring", "little")


def test_bone_lengths_match_the_anthropometric_table_at_shape_zero():
    lengths = bone_lengths(torch.zeros(1, 10))[0]  # (20,)
    for f, finger in enumerate(FINGERS):
        got = lengths[4 * f + 1 : 4 * f + 4].tolist()  # bones ending at joints 4f+2..4f+4
        assert got == pytest.approx(list(BONE_TABLE[finger]), abs=1e-5)


def test_forward_kinematics_keeps_every_bone_length_for_any_pose_and_shape():
    g = torch.Generator().manual_seed(0)
    pose, _ = sample_pose(16, g)
    pose[:, 0] = torch.randn(16, 3, generator=g)
    shape = sample_shape(16, g)
    xyz = HandModel()(pose, shape)  # (16, 21, 3)
    lengths = torch.stack([(xyz[:, c] - xyz[:, p]).norm(dim=-1) for p, c in BONES], dim=1)
    torch.testing.assert_close(lengths, bone_lengths(shape), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(xyz[:, 0], torch.zeros(16, 3))  # the wrist is the origin


def test_shape_scale_scales_every_length():
    base = bone_lengths(torch.zeros(1, 10))
    scaled = torch.zeros(1, 10)
    scaled[0, 0] = 2.0  # scale factor 1 + 0.05 * 2
    torch.testing.assert_close(bone_lengths(scaled), base * 1.1)


def test_straight_hand_points_up_y_and_flexion_bends_towards_the_palm():
    model = HandModel()
    xyz = model(torch.zeros(1, 16, 3))[0]
    tip = xyz[12]  # middle fingertip
    assert float(tip[1]) == pytest.approx(86 + 44 + 26 + 17, abs=1e-4)
    assert float(tip[0]) == pytest.approx(5.0) and abs(float(tip[2])) < 1e-4  # middle MCP x = 5
    pose = torch.zeros(1, 16, 3)
    pose[0, POSE_ROWS["middle"][0], 0] = math.pi / 2  # MCP flexion 90 degrees
    bent = model(pose)[0]
    # the whole finger now points along +z (palmar), starting at the MCP
    direction = bent[12] - bent[9]
    assert float(direction[2]) == pytest.approx(44 + 26 + 17, abs=1e-3)
    assert abs(float(direction[1])) < 1e-3
    # global rotation: 180 degrees about z turns the fingers to -y
    pose = torch.zeros(1, 16, 3)
    pose[0, 0, 2] = math.pi
    assert float(model(pose)[0, 12, 1]) == pytest.approx(-173.0, abs=1e-3)


def test_parents_of_the_model_follow_the_canonical_skeleton():
    xyz = HandModel()(torch.zeros(1, 16, 3))[0]
    # each finger's joints lie farther from the wrist than their parent at pose 0
    for j in range(1, 21):
        assert float(xyz[j].norm()) > float(xyz[PARENTS[j]].norm())


def test_forward_is_differentiable_gradcheck():
    g = torch.Generator().manual_seed(1)
    pose = (0.3 * torch.randn(1, 16, 3, generator=g, dtype=torch.float64)).requires_grad_()
    shape = (0.5 * torch.randn(1, 10, generator=g, dtype=torch.float64)).requires_grad_()
    model = HandModel()
    assert torch.autograd.gradcheck(lambda p, s: model(p, s), (pose, shape), eps=1e-6, atol=1e-5)


def test_clamp_and_penalty():
    g = torch.Generator().manual_seed(2)
    pose = 4 * torch.randn(8, 16, 3, generator=g)
    clamped = clamp_pose(pose)
    lim = POSE_LIMITS
    assert bool(((clamped[:, 1:] >= lim[1:, :, 0]) & (clamped[:, 1:] <= lim[1:, :, 1])).all())
    torch.testing.assert_close(clamped[:, 0], pose[:, 0])  # global rotation untouched
    assert bool((limit_penalty(clamped) == 0).all())
    # penalty = sum of squared excess, checked by a naive loop
    expected = torch.zeros(8)
    for b in range(8):
        for j in range(1, 16):
            for a in range(3):
                lo, hi = float(lim[j, a, 0]), float(lim[j, a, 1])
                x = float(pose[b, j, a])
                expected[b] += max(lo - x, 0) ** 2 + max(x - hi, 0) ** 2
    torch.testing.assert_close(limit_penalty(pose), expected, rtol=1e-5, atol=1e-5)
    # its gradient pushes back into the limits and is finite everywhere
    p = pose.clone().requires_grad_()
    limit_penalty(p).sum().backward()
    assert bool(torch.isfinite(p.grad).all())
    over = pose[:, 1:] > lim[1:, :, 1]
    assert bool((p.grad[:, 1:][over] > 0).all())


def test_bad_inputs_raise_clear_errors():
    model = HandModel()
    with pytest.raises(ValueError, match=r"pose: expected shape \(\*, 16, 3\)"):
        model(torch.zeros(2, 15, 3))
    with pytest.raises(ValueError, match="pose: expected finite"):
        model(torch.full((1, 16, 3), float("nan")))
    with pytest.raises(TypeError, match="pose"):
        model([[0.0] * 3] * 16)
    with pytest.raises(ValueError, match=r"shape: expected shape \(2, 10\)"):
        model(torch.zeros(2, 16, 3), torch.zeros(2, 9))
    with pytest.raises(ValueError, match="shape"):
        bone_lengths(torch.zeros(3))


def test_kinematics_run_in_float32_under_autocast():
    g = torch.Generator().manual_seed(1)
    pose, _ = sample_pose(4, g)
    model = HandModel()
    ref = model(pose)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(pose.to(torch.bfloat16))
    assert got.dtype == torch.float32
    # only the bf16 rounding of the input pose remains (~0.4 % of an angle)
    torch.testing.assert_close(got, model(pose.to(torch.bfloat16).float()))
    assert float((got - ref).abs().max()) < 2.0  # mm
