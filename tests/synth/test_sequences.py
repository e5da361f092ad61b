"""handlab.synth.sequences: shapes, smoothness, limits, moving occluders, determinism, errors."""

import pytest
import torch

from handlab.hand_model import POSE_LIMITS
from handlab.synth import generate, generate_sequence, sample_sequence_params
from handlab.synth.scene import check_params


@pytest.fixture(scope="module")
def seq():
    return generate_sequence(3, 20, seed=0, size=64, occluders=1.0, extras=True)


def test_shapes_and_keys(seq):
    assert tuple(seq["image"].shape) == (3, 20, 3, 64, 64)
    assert tuple(seq["depth"].shape) == (3, 20, 1, 64, 64)
    assert tuple(seq["xyz"].shape) == (3, 20, 21, 3)
    assert tuple(seq["visibility"].shape) == (3, 20, 21)
    assert tuple(seq["occlusion"].shape) == (3, 20, 21)
    assert len(seq["params"]["pose"]) == 60


def test_motion_is_smooth(seq):
    step = (seq["xyz"][:, 1:] - seq["xyz"][:, :-1]).norm(dim=-1)  # (3, 19, 21) mm per frame
    assert float(step.max()) < 30.0
    assert float(step.mean()) < 8.0
    # independent samples jump far more: the smoothness comes from the interpolation
    indep = generate(20, seed=0, size=64)["xyz"]
    assert float((indep[1:] - indep[:-1]).norm(dim=-1).mean()) > 5 * float(step.mean())
    # the second difference (acceleration) is small too: no jerks at keyframes
    acc = (seq["xyz"][:, 2:] - 2 * seq["xyz"][:, 1:-1] + seq["xyz"][:, :-2]).norm(dim=-1)
    assert float(acc.max()) < 10.0


def test_every_frame_is_valid_and_constant_parts_stay_constant(seq):
    params = seq["params"]
    check_params(params)  # every frame within limits, finite
    lim = POSE_LIMITS[1:]
    pose = params["pose"][:, 1:]
    assert bool(((pose >= lim[..., 0] - 1e-5) & (pose <= lim[..., 1] + 1e-5)).all())
    shape = params["shape"].reshape(3, 20, 10)
    assert torch.equal(shape, shape[:, :1].expand_as(shape))
    K = seq["K"]
    assert torch.equal(K, K[:, :1].expand_as(K))


def test_occlusion_changes_over_time(seq):
    occ = seq["occlusion"]  # (3, 20, 21)
    assert float((occ.amax(1) - occ.amin(1)).max()) > 0.2


def test_deterministic_and_errors():
    a = sample_sequence_params(2, 5, torch.Generator().manual_seed(1))
    b = sample_sequence_params(2, 5, torch.Generator().manual_seed(1))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(ValueError, match="T: expected a value >= 1"):
        generate_sequence(1, 0, seed=0)
    with pytest.raises(TypeError, match="n_seq: expected an int"):
        generate_sequence(1.5, 4, seed=0)
    with pytest.raises(ValueError, match="size"):
        generate_sequence(1, 4, seed=0, size=16)
