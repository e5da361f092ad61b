"""Tests of V2V-PoseNet and its voxel helpers (handlab.models.v2v, handlab.models.voxels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _overfit import loss_curve

from handlab.codecs import GaussianVolume
from handlab.geometry import depth_to_points, project
from handlab.models import create
from handlab.models.v2v import V2VConfig, default_K
from handlab.models.voxels import (
    RefineNet,
    center_of_mass,
    hand_center,
    segment_depth,
    volume_depth_map,
    voxel_to_xyz,
    voxelize,
    xyz_to_voxel,
)
from handlab.postprocess import decode_volume

K = torch.tensor([[60.0, 0.0, 7.5], [0.0, 55.0, 6.0], [0.0, 0.0, 1.0]])


def _depth(seed: int = 0, b: int = 2, h: int = 12, w: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    depth = 300 + 150 * torch.rand(b, 1, h, w, generator=g)
    return depth * (torch.rand(b, 1, h, w, generator=g) > 0.3)  # holes = background


def _hand_batch(b: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    """A box-shaped 'hand' with joints on its surface: depth, K, keypoints, xyz."""
    g = torch.Generator().manual_seed(3)
    depth = torch.zeros(b, 1, size, size)
    depth[..., 8:24, 10:22] = 400.0
    Kb = default_K(depth, 1.4)
    uv = torch.stack(
        [10 + 12 * torch.rand(b, 21, generator=g), 8 + 16 * torch.rand(b, 21, generator=g)], -1
    )
    z = 380 + 40 * torch.rand(b, 21, 1, generator=g)
    from handlab.geometry import unproject

    xyz = unproject(torch.cat([uv, z], -1), Kb)
    return {"depth": depth, "K": Kb, "keypoints": uv, "xyz": xyz}


def test_voxelize_matches_a_naive_loop() -> None:
    depth = _depth()
    ref = torch.tensor([[0.0, 0.0, 380.0], [20.0, -10.0, 400.0]])
    vox = voxelize(depth, K, ref, grid=8, cube_mm=200.0)
    want = np.zeros((2, 1, 8, 8, 8), dtype=np.float32)
    size = 200.0 / 8
    fx, fy, cx, cy = 60.0, 55.0, 7.5, 6.0
    for b in range(2):
        for v in range(12):
            for u in range(16):
                d = float(depth[b, 0, v, u])
                if d <= 0:
                    continue
                p = np.array([(u - cx) * d / fx, (v - cy) * d / fy, d])
                idx = np.floor((p - ref[b].numpy() + 100.0) / size).astype(int)  # x, y, z
                if ((idx >= 0) & (idx < 8)).all():
                    want[b, 0, idx[2], idx[1], idx[0]] = 1.0
    assert want.sum() > 10
    np.testing.assert_array_equal(vox.numpy(), want)


def test_voxel_gradient_reaches_depth_through_a_binary_forward() -> None:
    depth = _depth().requires_grad_(True)
    ref = torch.tensor([[0.0, 0.0, 380.0], [20.0, -10.0, 400.0]])
    vox = voxelize(depth, K, ref, grid=8, cube_mm=200.0)
    assert set(vox.detach().unique().tolist()) == {0.0, 1.0}
    weights = torch.rand(vox.shape, generator=torch.Generator().manual_seed(5))
    (vox * weights).sum().backward()
    holes = depth.detach() <= 0
    assert float(depth.grad[holes].abs().sum()) == 0.0  # background pixels carry no point
    assert float(depth.grad[~holes].abs().sum()) > 0
    dmap = volume_depth_map(voxelize(depth, K, ref, grid=8, cube_mm=200.0))
    (grad,) = torch.autograd.grad(dmap.sum(), depth)
    assert float(grad.abs().sum()) > 0


def test_one_point_sets_the_right_voxel() -> None:
    depth = torch.zeros(1, 1, 12, 16)
    depth[0, 0, 6, 13] = 300.0  # x = (13 - 7.5) * 300 / 60 = 27.5 mm, y = 0, z = 300
    vox = voxelize(depth, K, torch.tensor([[0.0, 0.0, 300.0]]), grid=10, cube_mm=100.0)
    # voxels are 10 mm; the cube starts at -50 mm: x 27.5 -> voxel 7, y 0 -> 5, z 300 -> 5
    assert int(vox.sum()) == 1
    assert vox[0, 0, 5, 5, 7] == 1


def test_center_of_mass_matches_geometry_depth_to_points() -> None:
    depth = _depth(seed=1)
    com = center_of_mass(depth, K)
    for b in range(2):
        points = depth_to_points(depth[b, 0], K, stride=1)
        assert torch.allclose(com[b], points.mean(0), atol=1e-3)


def test_voxel_coordinates_round_trip() -> None:
    xyz = torch.randn(3, 21, 3) * 60 + torch.tensor([0.0, 0.0, 400.0])
    ref = torch.randn(3, 3) * 10 + torch.tensor([0.0, 0.0, 400.0])
    vox = xyz_to_voxel(xyz, ref, grid=44, cube_mm=250.0)
    assert torch.allclose(voxel_to_xyz(vox, ref, grid=44, cube_mm=250.0), xyz, atol=1e-3)
    # the reference point is the cube centre; one voxel is cube / grid mm
    centre = xyz_to_voxel(ref[:, None], ref, grid=44, cube_mm=250.0)
    assert torch.allclose(centre, torch.full_like(centre, 21.5))


def test_coordinates_to_heatmaps_and_back() -> None:
    """xyz -> voxels -> GaussianVolume heatmaps -> each decoder -> xyz."""
    g = torch.Generator().manual_seed(2)
    ref = torch.tensor([[0.0, 0.0, 400.0]])
    xyz = ref[:, None] + (torch.rand(1, 21, 3, generator=g) - 0.5) * 200
    coords = xyz_to_voxel(xyz, ref, grid=16, cube_mm=250.0)
    maps, weights = GaussianVolume(size=(16, 16, 16), sigma=1.7).encode(coords)
    assert bool((weights == 1).all())
    voxel_mm = 250.0 / 16
    for method, tol in (("gaussian", 1e-3), ("subvoxel", 0.01 * voxel_mm)):
        back = voxel_to_xyz(decode_volume(maps, method), ref, grid=16, cube_mm=250.0)
        assert float((back - xyz).abs().max()) < tol
    argmax = voxel_to_xyz(decode_volume(maps, "argmax"), ref, grid=16, cube_mm=250.0)
    assert float((argmax - xyz).abs().max()) <= 0.5 * voxel_mm + 1e-3


def test_volume_depth_map_matches_a_loop() -> None:
    g = torch.Generator().manual_seed(4)
    vol = (torch.rand(2, 1, 6, 5, 4, generator=g) > 0.8).float()
    got = volume_depth_map(vol)
    for b in range(2):
        for y in range(5):
            for x in range(4):
                zs = [z for z in range(6) if vol[b, 0, z, y, x] > 0]
                want = (zs[0] + 0.5) / 6 if zs else 1.0
                assert math.isclose(float(got[b, 0, y, x]), want, abs_tol=1e-6)


def test_refine_net_shapes_start_and_bound() -> None:
    net = RefineNet(width=4, cube_mm=200.0)
    depth = _depth(h=32, w=32)
    Kb = default_K(depth, 1.4)
    com = center_of_mass(depth, Kb)
    offset = net(depth, Kb, com)
    assert offset.shape == (2, 3)
    assert float(offset.detach().abs().max()) < 1.0  # near-zero head: about the CoM (mm)
    torch.nn.init.normal_(net.head.weight, std=100.0)
    offset = net(depth, Kb, com).detach()
    assert float(offset.abs().max()) <= 50.0 + 1e-4  # tanh bound: a quarter cube
    assert float(offset.abs().max()) > 1.0
    assert torch.equal(
        hand_center(torch.tensor([[[0.0, 2, 4], [2, 0, 0]]])), torch.tensor([[1.0, 1, 2]])
    )


@pytest.mark.parametrize("inp", ["voxels", "depthmap"])
@pytest.mark.parametrize("out", ["heatmap", "coords"])
def test_model_contract(inp: str, out: str) -> None:
    torch.manual_seed(0)
    model = create("v2v", grid=16, width=4, input=inp, output=out)
    batch = _hand_batch()
    outputs = model(batch["depth"])  # no K: the config's default, which the batch used
    assert outputs["keypoints"].shape == (2, 21, 2)
    assert outputs["xyz"].shape == (2, 21, 3)
    assert torch.equal(outputs["xyz"][:, 0], torch.zeros(2, 3))
    raw = "heatmaps" if out == "heatmap" else "coords"
    assert outputs[raw].shape == ((2, 21, 8, 8, 8) if out == "heatmap" else (2, 21, 3))
    assert torch.allclose(project(outputs["xyz_cam"], batch["K"]), outputs["keypoints"], atol=1e-3)
    decoded = model.decode(outputs)
    assert torch.allclose(decoded["keypoints"], outputs["keypoints"], atol=1e-4)
    loss, logs = model.loss(outputs, batch)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and "refine" in logs
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_depthmap_heatmap_head_is_not_confined_to_a_low_rank_subspace() -> None:
    # The 2D model's J*g channels are z slices; a lone 1x1 conv from 2c features would keep all
    # pixels' outputs in a (2c+1)-dimensional affine subspace, too few for 21 z profiles.
    torch.manual_seed(0)
    model = create("v2v", grid=16, width=4, input="depthmap", output="heatmap").eval()
    features = torch.randn(4, 8, 16, 16)  # 2c = 8 channels, 1024 pixels
    out = model.head(features).permute(0, 2, 3, 1).reshape(-1, 21 * 8)
    assert int(torch.linalg.matrix_rank(out)) > 100  # the old head: at most 9


def test_targets_are_the_batch_joints_when_k_is_right() -> None:
    model = create("v2v", grid=16, width=4)
    batch = _hand_batch()
    outputs = model(batch["depth"], batch["K"])
    assert torch.allclose(model.targets(outputs, batch), batch["xyz"], atol=1e-3)


def test_loss_falls_on_one_batch() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create("v2v", grid=16, width=4, refine=False)
    batch = _hand_batch(b=4)
    losses, _ = loss_curve(model, [batch["depth"]], batch, steps=25)
    assert losses[-1] < 0.5 * losses[0]


def test_segment_depth_keeps_the_hand_of_an_unsegmented_crop() -> None:
    batch = _hand_batch()
    hand = batch["depth"]
    scene = torch.where(hand > 0, hand, torch.full_like(hand, 800.0))  # a wall behind the hand
    scene[..., 0, 0] = 0.0  # a hole stays a hole
    assert torch.equal(segment_depth(scene, 125.0), hand)
    torch.manual_seed(0)
    plain = create("v2v", grid=16, width=4).eval()
    torch.manual_seed(0)
    segmenting = create("v2v", grid=16, width=4, segment_mm=125.0).eval()
    a, b = plain(hand), segmenting(scene)
    assert torch.allclose(a["xyz_cam"], b["xyz_cam"]) and torch.allclose(
        a["heatmaps"], b["heatmaps"]
    )
    ring = torch.zeros(1, 1, 32, 32)
    ring[..., :4, :] = 400.0  # nothing in the central patch
    with pytest.raises(ValueError, match=r"depth: expected valid pixels in the central patch"):
        segment_depth(ring, 125.0)
    with pytest.raises(ValueError, match="segment_mm: expected a value >= 1"):
        V2VConfig(segment_mm=0.0)


def test_errors() -> None:
    model = create("v2v", grid=16, width=4)
    with pytest.raises(
        ValueError, match=r"depth: expected every depth map .* empty depth in samples \[1\]"
    ):
        model(torch.cat([_hand_batch(1)["depth"], torch.zeros(1, 1, 32, 32)]))
    with pytest.raises(ValueError, match=r"depth: expected shape \(\*, 1, \*, \*\)"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(TypeError, match=r"depth: expected a torch\.Tensor"):
        model(np.zeros((1, 1, 32, 32)))
    far = torch.zeros(1, 1, 12, 16)
    far[..., 2, 3] = 400.0
    with pytest.raises(ValueError, match=r"all-background crop"):
        voxelize(far, K, torch.tensor([[0.0, 0.0, 1000.0]]), grid=8, cube_mm=100.0)
    with pytest.raises(ValueError, match="grid: expected a multiple of 8"):
        V2VConfig(grid=20)
    with pytest.raises(ValueError, match="input: expected one of"):
        V2VConfig(input="points")
    with pytest.raises(ValueError, match="output: expected one of"):
        V2VConfig(output="mesh")
    with pytest.raises(ValueError, match="decoder: expected one of"):
        V2VConfig(decoder="soft")
    with pytest.raises(ValueError):
        create("v2v", gird=16)
    batch = _hand_batch(2)
    with pytest.raises(
        ValueError, match=r"K: expected shape \(3, 3\) or \(2, 3, 3\), got \(3, 3, 3\)"
    ):
        model(batch["depth"], torch.eye(3).expand(3, 3, 3))
    with pytest.raises(TypeError, match="K: expected a torch"):
        model(batch["depth"], K.numpy())
    outputs = model(batch["depth"])
    with pytest.raises(ValueError, match=r"batch: expected key 'xyz'"):
        model.loss(outputs, {"keypoints": torch.zeros(2, 21, 2)})
