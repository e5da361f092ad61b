"""The 3D families: DetNet's peak reading and losses, the Z&B canonical frame, lifting, IKNet."""

from __future__ import annotations

import pytest
import torch
from _overfit import loss_curve

from handlab.codecs import GaussianHeatmap
from handlab.geometry import axis_angle_to_matrix, project
from handlab.hand_model import POSE_LIMITS, HandModel
from handlab.models import create
from handlab.models.detnet import read_at_peaks
from handlab.models.lifting import canonical_frame, from_canonical, normalize_keypoints


def _hands(n: int, seed: int) -> torch.Tensor:
    """Plausible hands: random poses within the limits, random orientation, camera frame mm."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = POSE_LIMITS[1:, :, 0], POSE_LIMITS[1:, :, 1]
    fingers = lo + (hi - lo) * torch.rand(n, 15, 3, generator=g)
    pose = torch.cat([torch.randn(n, 1, 3, generator=g), fingers], dim=1)
    return HandModel()(pose) + torch.tensor([20.0, -10.0, 450.0])


# ---------------------------------------------------------------------------------------------
# DetNet


def test_read_at_peaks_matches_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    heatmaps = torch.rand(2, 4, 5, 6, generator=g)
    maps = torch.randn(2, 4, 3, 5, 6, generator=g)
    got = read_at_peaks(heatmaps, maps)
    for b in range(2):
        for j in range(4):
            flat = int(heatmaps[b, j].argmax())
            y, x = divmod(flat, 6)
            torch.testing.assert_close(got[b, j], maps[b, j, :, y, x])


def test_detnet_loss_vanishes_for_perfect_maps_and_grows_with_error():
    model = create("detnet", head_width=16, input_size=64)
    xyz = _hands(2, seed=1)
    g = torch.Generator().manual_seed(2)
    batch = {
        "keypoints": 8 + torch.rand(2, 21, 2, generator=g) * 48,
        "visibility": torch.ones(2, 21),
        "xyz": xyz,
    }
    codec = GaussianHeatmap((16, 16), stride=4, sigma=model.config.sigma)
    heatmaps, _ = codec.encode(batch["keypoints"])
    rel = (xyz - xyz[:, :1]) / model.config.xyz_unit_mm  # (2, 21, 3) decimetres
    bones = torch.stack([rel[:, c] - rel[:, p] for p, c in model_bones()], dim=1)
    bones = bones / bones.norm(dim=-1, keepdim=True)
    perfect = {
        "heatmaps": heatmaps,
        "location_maps": rel[..., None, None].expand(-1, -1, -1, 16, 16),
        "delta_maps": bones[..., None, None].expand(-1, -1, -1, 16, 16),
    }
    perfect["xyz"] = model.decode(perfect)["xyz"]
    loss, logs = model.loss(perfect, batch)
    assert float(loss) < 1e-10 and logs["mpjpe_mm"] < 1e-3
    # xyz is read at the peak: constant location maps give the true root-relative joints in mm.
    torch.testing.assert_close(perfect["xyz"], xyz - xyz[:, :1], atol=1e-3, rtol=0)
    shifted = {**perfect, "location_maps": perfect["location_maps"] + 0.1}
    assert float(model.loss(shifted, batch)[0]) > 0.01


def model_bones() -> list[tuple[int, int]]:
    from handlab.skeleton import BONES

    return list(BONES)


def test_detnet_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = create("detnet", head_width=32, input_size=64)
    xyz = _hands(2, seed=1)
    K = torch.tensor([[250.0, 0.0, 32.0], [0.0, 250.0, 32.0], [0.0, 0.0, 1.0]])
    batch = {"keypoints": project(xyz, K), "visibility": torch.ones(2, 21), "xyz": xyz}
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    losses, logs = loss_curve(model, [images], batch, steps=12)
    assert losses[-1] < 0.4 * losses[0]
    assert set(logs) == {"heatmap", "location", "delta", "mpjpe_mm"}


def test_detnet_xyz_gradient_reaches_the_image():
    torch.manual_seed(0)
    model = create("detnet", head_width=16, input_size=64).eval()
    images = torch.rand(1, 3, 64, 64, requires_grad=True)
    xyz = model.decode(model(images))["xyz"]
    (grad,) = torch.autograd.grad(xyz[0, 8, 2], images)
    assert grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Zimmermann & Brox canonical frame and the lifting network


def test_canonical_frame_round_trip_and_definition():
    xyz = _hands(4, seed=3)
    canonical, rotation, scale = canonical_frame(xyz)
    rel = xyz - xyz[:, :1]  # mm
    torch.testing.assert_close(from_canonical(canonical, rotation, scale), rel, atol=1e-4, rtol=0)
    # A proper rotation; root at 0; reference bone of length 1; middle MCP on +y; little MCP z=0.
    eye = torch.eye(3).expand(4, 3, 3)
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(4), atol=1e-5, rtol=0)
    assert canonical[:, 0].abs().max() < 1e-6
    torch.testing.assert_close((canonical[:, 10] - canonical[:, 9]).norm(dim=-1), torch.ones(4))
    assert canonical[:, 9, [0, 2]].abs().max() < 1e-5 and (canonical[:, 9, 1] > 0).all()
    assert canonical[:, 17, 2].abs().max() < 1e-5
    torch.testing.assert_close(scale, (xyz[:, 10] - xyz[:, 9]).norm(dim=-1))


def test_canonical_frame_ignores_rotation_translation_and_scale():
    xyz = _hands(3, seed=4)
    R = axis_angle_to_matrix(torch.tensor([[0.3, -1.2, 2.0]]))  # (1, 3, 3)
    moved = 1.7 * xyz @ R.transpose(1, 2) + torch.tensor([5.0, 6.0, 7.0])
    torch.testing.assert_close(
        canonical_frame(moved)[0], canonical_frame(xyz)[0], atol=1e-4, rtol=0
    )


def test_canonical_frame_mirrors_selected_hands():
    xyz = _hands(2, seed=5)
    mirror = torch.tensor([True, False])
    canonical, rotation, scale = canonical_frame(xyz, mirror=mirror)
    plain = canonical_frame(xyz)[0]
    torch.testing.assert_close(canonical[0], plain[0] * torch.tensor([1.0, 1.0, -1.0]))
    torch.testing.assert_close(canonical[1], plain[1])
    back = from_canonical(canonical, rotation, scale, mirror=mirror)
    torch.testing.assert_close(back, xyz - xyz[:, :1], atol=1e-4, rtol=0)


def test_canonical_frame_errors():
    with pytest.raises(ValueError, match="xyz: expected shape"):
        canonical_frame(torch.zeros(2, 20, 3))
    with pytest.raises(ValueError, match="reference bone"):
        canonical_frame(torch.zeros(2, 21, 3))
    with pytest.raises(ValueError, match="mirror: expected one flag or 2"):
        canonical_frame(_hands(2, seed=8), mirror=torch.tensor([True, False, True]))


def test_lifting_input_is_translation_and_scale_free():
    k = torch.rand(2, 21, 2)
    torch.testing.assert_close(normalize_keypoints(2.5 * k - 3), normalize_keypoints(k))
    model = create("lifting", hidden=32).eval()
    torch.testing.assert_close(model(4 * k + 10)["xyz"], model(k)["xyz"], atol=1e-4, rtol=0)


def test_lifting_learns_on_a_tiny_batch():
    torch.manual_seed(0)
    xyz = _hands(8, seed=6)
    keypoints = xyz[..., :2] / xyz[..., 2:] * 500 + 64  # a pinhole camera, f = 500 px
    model = create("lifting", hidden=64, dropout=0.0)
    losses, logs = loss_curve(model, [keypoints], {"xyz": xyz}, steps=60)
    assert losses[-1] < 0.2 * losses[0] and set(logs) == {"canonical", "viewpoint", "mpjpe_mm"}


# ---------------------------------------------------------------------------------------------
# IKNet


def test_iknet_poses_respect_the_limits_and_xyz_is_their_kinematics():
    model = create("iknet", hidden=16)
    raw = torch.randn(3, 51) * 50  # far outside any sensible range
    out = model.decode({"raw": raw})
    lim = POSE_LIMITS[1:]
    assert (out["pose"][:, 1:] >= lim[..., 0] - 1e-6).all()
    assert (out["pose"][:, 1:] <= lim[..., 1] + 1e-6).all()
    torch.testing.assert_close(out["xyz"], HandModel()(out["pose"]))


def test_iknet_learns_on_a_tiny_batch_with_rotational_supervision():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    lo, hi = POSE_LIMITS[1:, :, 0], POSE_LIMITS[1:, :, 1]
    pose = torch.cat(
        [
            0.3 * torch.randn(8, 1, 3, generator=g),
            lo + (hi - lo) * torch.rand(8, 15, 3, generator=g),
        ],
        1,
    )
    batch = {"xyz": HandModel()(pose), "pose": pose}
    model = create("iknet", hidden=64, layers=2)
    losses, logs = loss_curve(model, [batch["xyz"]], batch, steps=40)
    assert losses[-1] < 0.3 * losses[0] and "rotation" in logs


def test_iknet_rejects_an_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        create("iknet", activation="tanh")
