"""handlab.synth.poses: the template mixture, coupling, limits, determinism, errors."""

import pytest
import torch

from handlab.hand_model import POSE_LIMITS, POSE_ROWS
from handlab.synth.poses import (
    TEMPLATE_WEIGHTS,
    TEMPLATES,
    sample_pose,
    sample_shape,
    template_pose,
)


def test_sampled_poses_respect_the_limits_and_leave_global_zero():
    pose, kind = sample_pose(2000, torch.Generator().manual_seed(0))
    lim = POSE_LIMITS[1:]
    assert bool(((pose[:, 1:] >= lim[..., 0] - 1e-6) & (pose[:, 1:] <= lim[..., 1] + 1e-6)).all())
    assert bool((pose[:, 0] == 0).all())
    assert int(kind.min()) >= 0 and int(kind.max()) < len(TEMPLATES)


def test_mixture_frequencies_follow_the_weights():
    _, kind = sample_pose(20000, torch.Generator().manual_seed(1))
    freq = torch.bincount(kind, minlength=len(TEMPLATES)).float() / len(kind)
    expected = torch.tensor([TEMPLATE_WEIGHTS[n] for n in TEMPLATES])
    torch.testing.assert_close(freq, expected, atol=0.015, rtol=0)


def test_dip_follows_pip():
    pose, _ = sample_pose(4000, torch.Generator().manual_seed(2))
    for finger in ("index", "middle", "ring", "little"):
        _, pip, dip = POSE_ROWS[finger]
        x, y = pose[:, pip, 0], pose[:, dip, 0]
        corr = torch.corrcoef(torch.stack([x, y]))[0, 1]
        assert float(corr) > 0.9
        ratio = float((y * x).sum() / (x * x).sum())  # least-squares slope through 0
        assert 0.55 < ratio < 0.75


def test_same_generator_same_poses_and_noise_zero_gives_templates():
    a, _ = sample_pose(10, torch.Generator().manual_seed(3))
    b, _ = sample_pose(10, torch.Generator().manual_seed(3))
    c, _ = sample_pose(10, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    pose, kind = sample_pose(50, torch.Generator().manual_seed(5), noise=0.0)
    names = list(TEMPLATES)
    for p, k in zip(pose, kind, strict=True):
        if names[k] != "free":
            torch.testing.assert_close(p, template_pose(names[k]), atol=1e-6, rtol=0)


def test_shape_is_clipped_and_errors_are_clear():
    shape = sample_shape(1000, torch.Generator().manual_seed(0), std=5.0)
    assert float(shape.abs().max()) <= 3.0
    with pytest.raises(ValueError, match="n: expected a value >= 1"):
        sample_pose(0, torch.Generator())
    with pytest.raises(ValueError, match="name: expected one of"):
        template_pose("thumbs-up")
    with pytest.raises(ValueError, match="noise"):
        sample_pose(2, torch.Generator(), noise=-1.0)


def test_pinch_and_ok_bring_thumb_and_index_tips_together():
    from handlab.hand_model import HandModel

    model = HandModel()
    for name in ("pinch", "ok"):
        xyz = model(template_pose(name)[None])[0]
        assert float((xyz[4] - xyz[8]).norm()) < 5.0, name  # mm
    open_hand = model(template_pose("open")[None])[0]
    assert float((open_hand[4] - open_hand[8]).norm()) > 50.0  # the open thumb is spread
