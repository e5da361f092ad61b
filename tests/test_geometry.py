"""Tests for handlab.geometry."""

import numpy as np
import pytest
import torch

from handlab import geometry


def _K(batch: int = 0) -> torch.Tensor:
    K = torch.tensor([[500.0, 0.0, 60.0], [0.0, 480.0, 70.0], [0.0, 0.0, 1.0]])
    return K if batch == 0 else K.expand(batch, 3, 3).clone()


def _xyz(batch: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 21, 3, generator=g) * 40 + torch.tensor([10.0, -5.0, 450.0])


def test_project_matches_naive_matrix_product():
    xyz, K = _xyz(), _K()
    uv = geometry.project(xyz, K)
    hom = xyz @ K.T  # (B, J, 3)
    np.testing.assert_allclose(uv, hom[..., :2] / hom[..., 2:], rtol=1e-6, atol=1e-4)


def test_project_batched_K_and_numpy():
    xyz = _xyz()
    K = _K(4)
    K[1, 0, 0] = 300.0
    uv = geometry.project(xyz.numpy(), K.numpy())
    assert isinstance(uv, torch.Tensor) and uv.shape == (4, 21, 2)
    torch.testing.assert_close(uv[1], geometry.project(xyz[1], K[1]))
    assert not torch.allclose(uv[1], geometry.project(xyz[1], _K()))


def test_unproject_inverts_project_uvd():
    xyz, K = _xyz(), _K(4)
    K[:, 0, 1] = 3.0  # skew is honoured both ways
    uvd = geometry.project_uvd(xyz, K)
    torch.testing.assert_close(uvd[..., 2], xyz[..., 2])
    torch.testing.assert_close(geometry.unproject(uvd, K), xyz, rtol=1e-5, atol=1e-3)


def test_project_errors():
    with pytest.raises(ValueError, match="xyz: expected shape"):
        geometry.project(torch.zeros(21, 2), _K())
    with pytest.raises(ValueError, match="K: expected shape"):
        geometry.project(_xyz(), torch.eye(4))
    with pytest.raises(TypeError, match="xyz"):
        geometry.project([[1.0, 2.0, 3.0]], _K())
    with pytest.raises(ValueError, match="K: expected finite"):
        geometry.project(_xyz(), torch.full((3, 3), float("nan")))


def test_depth_to_points_roundtrip_and_mask():
    K = _K()
    depth = torch.full((1, 20, 30), 400.0)
    depth[0, 0, 0] = 0.0  # no measurement
    mask = torch.zeros(20, 30)
    mask[:, :10] = 1
    pts = geometry.depth_to_points(depth, K, stride=1)
    assert pts.shape == (20 * 30 - 1, 3)
    uv = geometry.project(pts, K)
    assert uv[0].tolist() == pytest.approx([1.0, 0.0], abs=1e-4)  # pixel (0, 0) was dropped
    masked = geometry.depth_to_points(depth, K, mask=mask, stride=2)
    assert masked.shape == (10 * 5 - 1, 3)
    assert geometry.project(masked, K)[:, 0].max() <= 9.0 + 1e-4
    with pytest.raises(ValueError, match="stride"):
        geometry.depth_to_points(depth, K, stride=0)
    with pytest.raises(ValueError, match="mask: expected shape"):
        geometry.depth_to_points(depth, K, mask=torch.ones(5, 5))


def test_hand_box_square_margin_and_visibility():
    kps = torch.tensor([[[10.0, 20.0], [30.0, 30.0], [100.0, 100.0]]])
    vis = torch.tensor([[1.0, 1.0, 0.0]])
    box = geometry.hand_box(kps, margin=1.5, visibility=vis)
    assert box.shape == (1, 4)
    assert box[0].tolist() == pytest.approx(
        [5.0, 10.0, 35.0, 40.0]
    )  # side 20 * 1.5, centre (20, 25)
    assert geometry.hand_box(kps[0]).shape == (4,)
    with pytest.raises(ValueError, match="visibility: expected at least one"):
        geometry.hand_box(kps, visibility=torch.zeros(1, 3))
    with pytest.raises(ValueError, match="margin"):
        geometry.hand_box(kps, margin=0)


def test_crop_moves_pixels_keypoints_and_K_together():
    # One bright pixel at every projected joint: after the crop each keypoint lands on its pixel.
    K = _K()
    xyz = _xyz(1, seed=3)[0]
    xyz = xyz.mean(0) + 0.3 * (xyz - xyz.mean(0))  # a hand-sized spread, about 60 px
    uv = geometry.project(xyz, K).round()  # integer pixel centres
    xyz = geometry.unproject(torch.cat([uv, xyz[:, 2:]], -1), K)
    H, W = 140, 130
    image = torch.zeros(1, H, W)
    depth = torch.zeros(1, H, W)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    u, v = uv[inside, 0].long(), uv[inside, 1].long()
    image[0, v, u] = 1.0
    depth[0, v, u] = xyz[inside, 2]
    x0, y0 = float(uv[:, 0].min()) - 5.5, float(uv[:, 1].min()) - 5.5
    side = 64.0  # a 64 px box resized to 64: an integer shift, so pixels stay pixels
    out = geometry.crop_to_hand(
        image, uv, K, size=64, box=torch.tensor([x0, y0, x0 + side, y0 + side]), extra=(depth,)
    )
    kp = out["keypoints"]
    torch.testing.assert_close(kp, uv - torch.tensor([x0 + 0.5, y0 + 0.5]))
    torch.testing.assert_close(geometry.project(xyz, out["K"]), kp, atol=1e-3, rtol=0)
    ok = inside & (kp >= 0).all(-1) & (kp < 64).all(-1)
    assert int(ok.sum()) >= 15
    ku, kv = kp[ok, 0].round().long(), kp[ok, 1].round().long()
    torch.testing.assert_close(
        out["image"][0, kv, ku], torch.ones(int(ok.sum())), atol=1e-4, rtol=0
    )
    n_pixels = len(set(zip(ku.tolist(), kv.tolist(), strict=True)))
    assert float(out["image"].sum()) == pytest.approx(n_pixels, abs=1e-3)
    src_depth = depth[0, uv[ok, 1].long(), uv[ok, 0].long()]  # two joints may share a pixel
    torch.testing.assert_close(out["extra"][0][0, kv, ku], src_depth)


def test_crop_scaled_batched_K_consistency_and_padding():
    K = _K(2)
    xyz = _xyz(2, seed=5)
    uv = geometry.project(xyz, K)
    image = torch.rand(2, 3, 90, 100, generator=torch.Generator().manual_seed(0))
    mask = (torch.rand(2, 1, 90, 100) > 0.5).float()
    out = geometry.crop_to_hand(image, uv, K, size=32, margin=2.5, extra=(mask,))
    assert out["image"].shape == (2, 3, 32, 32)
    assert out["extra"][0].shape == (2, 1, 32, 32)
    assert set(out["extra"][0].unique().tolist()) <= {0.0, 1.0}  # nearest: no invented values
    torch.testing.assert_close(geometry.project(xyz, out["K"]), out["keypoints"], atol=1e-3, rtol=0)
    # keypoints equal the affine applied to the source keypoints, and lie in the crop
    A = out["affine"]
    torch.testing.assert_close(
        out["keypoints"], uv @ A[:, :, :2].transpose(1, 2) + A[:, None, :, 2]
    )
    assert (out["keypoints"] > -0.5).all() and (out["keypoints"] < 31.5).all()
    # a box half outside the image gets zeros there
    box = torch.tensor([[-50.5, -0.5, 49.5, 89.5]] * 2)  # left half outside, full height
    padded = geometry.crop_to_hand(image, uv, size=20, box=box)
    assert padded["K"] is None
    assert torch.all(padded["image"][..., :, :10] == 0)
    assert torch.all(padded["image"][..., :, 10:] > 0)


def test_crop_bilinear_matches_scipy_map_coordinates():
    from scipy.ndimage import map_coordinates

    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 40, 50, generator=g)
    box = torch.tensor([3.3, 5.1, 33.3, 35.1])
    out = geometry.crop_to_hand(image, torch.zeros(21, 2), size=16, box=box)["image"][0]
    # crop pixel centre i maps back to x0 + (i + 0.5) * side / size
    c = 3.3 + (np.arange(16) + 0.5) * 30 / 16
    r = 5.1 + (np.arange(16) + 0.5) * 30 / 16
    rr, cc = np.meshgrid(r, c, indexing="ij")
    ref = map_coordinates(image[0].double().numpy(), [rr, cc], order=1)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


def test_crop_box_follows_visible_joints_only():
    image = torch.rand(3, 100, 100)
    kps = torch.tensor([[20.0, 20.0], [40.0, 40.0], [95.0, 5.0]])
    vis = torch.tensor([1.0, 1.0, 0.0])
    out = geometry.crop_to_hand(image, kps, size=16, margin=1.0, visibility=vis)
    torch.testing.assert_close(out["box"], torch.tensor([20.0, 20.0, 40.0, 40.0]))
    batched = geometry.crop_to_hand(
        image[None], kps[None], size=16, margin=1.0, visibility=vis[None]
    )
    torch.testing.assert_close(batched["box"][0], out["box"])


def test_crop_errors():
    image = torch.zeros(3, 10, 10)
    with pytest.raises(ValueError, match="image: expected shape"):
        geometry.crop_to_hand(torch.zeros(10, 10), torch.zeros(21, 2))
    with pytest.raises(ValueError, match="box: expected x1 > x0"):
        geometry.crop_to_hand(image, torch.zeros(21, 2), box=torch.tensor([5.0, 0, 5, 4]))
    with pytest.raises(ValueError, match=r"extra\[0\]"):
        geometry.crop_to_hand(image, torch.rand(21, 2) * 9, extra=(torch.zeros(1, 8, 8),))
    with pytest.raises(ValueError, match="size"):
        geometry.crop_to_hand(image, torch.rand(21, 2) * 9, size=0)


# ---------------------------------------------------------------------------------------------
# Rotations


def _random_axis_angle(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(
        torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1
    )
    return axis * torch.rand(n, 1, generator=g, dtype=torch.float64) * torch.pi


def test_rotations_match_scipy():
    from scipy.spatial.transform import Rotation

    aa = _random_axis_angle(50)
    R = geometry.axis_angle_to_matrix(aa)
    ref = Rotation.from_rotvec(aa.numpy())
    np.testing.assert_allclose(R.numpy(), ref.as_matrix(), atol=1e-10)
    q = geometry.matrix_to_quaternion(R)
    q_ref = ref.as_quat()[:, [3, 0, 1, 2]]  # scipy is (x, y, z, w)
    q_ref *= np.sign(q_ref[:, :1])
    np.testing.assert_allclose(q.numpy(), q_ref, atol=1e-10)
    torch.testing.assert_close(geometry.quaternion_to_matrix(q), R)
    torch.testing.assert_close(geometry.matrix_to_axis_angle(R), aa)
    torch.testing.assert_close(geometry.rot6d_to_matrix(geometry.matrix_to_rot6d(R)), R)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=R.dtype).expand_as(R))


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 1e-2, np.pi - 1e-2, np.pi - 1e-5, np.pi])
def test_axis_angle_stable_near_zero_and_pi(angle):
    from scipy.spatial.transform import Rotation

    axis = torch.nn.functional.normalize(torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64), dim=0)
    aa = (axis * angle).requires_grad_(True)
    R = geometry.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(
        R.detach().numpy(), Rotation.from_rotvec(aa.detach().numpy()).as_matrix(), atol=1e-12
    )
    back = geometry.matrix_to_axis_angle(R)
    # at exactly pi, aa and -aa are the same rotation
    same = torch.allclose(back, aa, atol=1e-7) or (angle == np.pi and torch.allclose(back, -aa))
    assert same, (back, aa)
    back.sum().backward()
    assert torch.isfinite(aa.grad).all()
    R2 = geometry.axis_angle_to_matrix(aa.detach()).requires_grad_(True)
    geometry.matrix_to_quaternion(R2).sum().backward()
    assert torch.isfinite(R2.grad).all()


def test_rot6d_gram_schmidt_and_gradient():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(10, 6, generator=g, dtype=torch.float64, requires_grad=True)
    R = geometry.rot6d_to_matrix(x)
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(10, dtype=R.dtype))
    R.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.autograd.gradcheck(
        geometry.axis_angle_to_matrix, (_random_axis_angle(3).requires_grad_(),)
    )


def test_rotations_accept_numpy():
    aa = _random_axis_angle(4, seed=3)
    R = geometry.axis_angle_to_matrix(aa.numpy())
    assert isinstance(R, torch.Tensor) and R.dtype == torch.float64
    torch.testing.assert_close(geometry.matrix_to_axis_angle(R.numpy()), aa)
    torch.testing.assert_close(
        geometry.rot6d_to_matrix(geometry.matrix_to_rot6d(R.numpy()).numpy()), R
    )


def test_rotation_shape_errors():
    with pytest.raises(ValueError, match="quaternion"):
        geometry.quaternion_to_matrix(torch.zeros(3))
    with pytest.raises(ValueError, match="matrix"):
        geometry.matrix_to_axis_angle(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="rot6d"):
        geometry.rot6d_to_matrix(torch.zeros(5))
    with pytest.raises(TypeError, match="axis_angle"):
        geometry.axis_angle_to_matrix([0.1, 0.2, 0.3])


# ---------------------------------------------------------------------------------------------
# Procrustes


def test_procrustes_matches_scipy_disparity():
    from scipy.spatial import procrustes as scipy_procrustes

    g = torch.Generator().manual_seed(4)
    target = torch.randn(6, 21, 3, generator=g, dtype=torch.float64) * 30
    R = geometry.axis_angle_to_matrix(_random_axis_angle(6, seed=9))
    pred = 0.7 * target @ R + 12 + torch.randn(6, 21, 3, generator=g, dtype=torch.float64) * 3
    aligned = geometry.procrustes(pred, target)
    for b in range(6):
        _, _, disparity = scipy_procrustes(target[b].numpy(), pred[b].numpy())
        y0 = target[b] - target[b].mean(0)
        ours = float(((aligned[b] - target[b]) ** 2).sum() / (y0**2).sum())
        assert ours == pytest.approx(disparity, rel=1e-9)


def test_procrustes_rigid_matches_orthogonal_procrustes_and_fixes_reflection():
    from scipy.linalg import orthogonal_procrustes

    g = torch.Generator().manual_seed(6)
    target = torch.randn(21, 3, generator=g, dtype=torch.float64)
    pred = target @ geometry.axis_angle_to_matrix(_random_axis_angle(1, 1)[0]) + 0.05 * torch.randn(
        21, 3, generator=g, dtype=torch.float64
    )
    aligned = geometry.procrustes(pred, target, scale=False)
    X0, Y0 = (pred - pred.mean(0)).numpy(), (target - target.mean(0)).numpy()
    R, _ = orthogonal_procrustes(X0, Y0)
    np.testing.assert_allclose(aligned.numpy(), X0 @ R + target.mean(0).numpy(), atol=1e-10)
    # a mirrored hand cannot be aligned by a rotation: the det fix keeps it a rotation
    mirrored = target * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    fit = geometry.procrustes(mirrored, target, scale=False)
    Rm, _ = orthogonal_procrustes((mirrored - mirrored.mean(0)).numpy(), Y0)
    assert np.linalg.det(Rm) < 0  # scipy would reflect ...
    err_reflect = float(np.abs((mirrored - mirrored.mean(0)).numpy() @ Rm - Y0).max())
    assert err_reflect < 1e-10
    assert float((fit - target).abs().max()) > 0.1  # ... handlab does not
    # distances within the fit are preserved (rigid, no reflection: same pairwise distances)
    torch.testing.assert_close(torch.cdist(fit, fit), torch.cdist(target, target))


def test_procrustes_visibility_ignores_outliers():
    target = _xyz(1, seed=7)[0].double()
    R = geometry.axis_angle_to_matrix(torch.tensor([0.2, 0.1, -0.4], dtype=torch.float64))
    pred = 1.3 * target @ R.T - 4
    pred[3] += 500.0  # an invisible outlier must not move the fit
    vis = torch.ones(21)
    vis[3] = 0
    aligned = geometry.procrustes(pred, target, visibility=vis)
    keep = vis > 0
    torch.testing.assert_close(aligned[keep], target[keep])
    assert not torch.allclose(geometry.procrustes(pred, target)[keep], target[keep], atol=1.0)
    with pytest.raises(ValueError, match="target: expected the shape"):
        geometry.procrustes(pred, target[:20])
    with pytest.raises(ValueError, match="visibility"):
        geometry.procrustes(pred, target, visibility=torch.zeros(21))


# ---------------------------------------------------------------------------------------------
# rotated square crops (upright) and their inverse


def _blob(h: int, w: int, x: float, y: float, sigma: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))[None]


def _peak(img: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted centre (x, y) of a (1, H, W) blob."""
    h, w = img.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    m = img[0].clamp(min=0)
    return torch.stack([(m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()])


@pytest.mark.parametrize("angle, mirror", [(0.0, False), (0.7, False), (-2.5, True)])
def test_crop_affine_round_trip_and_pixels_follow_points(angle, mirror):
    A = geometry.crop_affine(torch.tensor([70.0, 50.0]), torch.tensor(60.0), 64, angle=angle,
                             mirror=mirror)  # fmt: skip
    pts = torch.tensor([[70.0, 50.0], [80.0, 40.0], [55.5, 61.25]])
    back = geometry.apply_affine(geometry.apply_affine(pts, A), geometry.invert_affine(A))
    torch.testing.assert_close(back, pts, atol=1e-4, rtol=0)
    # the crop's centre pixel is the square's centre; sizes scale by 64 / 60
    torch.testing.assert_close(geometry.apply_affine(pts[:1], A), torch.tensor([[31.5, 31.5]]))
    d = geometry.apply_affine(pts[1:2], A) - 31.5
    assert abs(float(d.norm()) - float((pts[1] - pts[0]).norm()) * 64 / 60) < 1e-4
    # a blob drawn at a source point lands where the affine sends that point
    img = _blob(100, 140, 80.0, 40.0, 3.0)
    crop = geometry.warp_crop(img, A, 64)
    torch.testing.assert_close(_peak(crop), geometry.apply_affine(pts[1:2], A)[0], atol=0.05,
                               rtol=0)  # fmt: skip


def test_warp_crop_antialiased_path_keeps_geometry():
    """A crop shrinking the source 4x goes through an anti-aliased resize; points still match."""
    img = _blob(400, 400, 230.0, 170.0, 8.0)
    A = geometry.crop_affine(torch.tensor([200.0, 200.0]), torch.tensor(256.0), 64, angle=0.3)
    crop = geometry.warp_crop(img, A, 64)
    want = geometry.apply_affine(torch.tensor([[230.0, 170.0]]), A)[0]
    torch.testing.assert_close(_peak(crop), want, atol=0.1, rtol=0)
    # a batched call gives the same pixels
    torch.testing.assert_close(geometry.warp_crop(img[None], A[None], 64)[0], crop)


def test_upright_box_points_wrist_to_middle_mcp_up():
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(3, 21, 2, generator=g) * 20 + 100
    centre, side, angle = geometry.upright_box(kp, scale=1.5)
    A = geometry.crop_affine(centre, side, 128, angle=angle)
    moved = geometry.apply_affine(kp, A)
    d = moved[:, 9] - moved[:, 0]
    torch.testing.assert_close(d[:, 0], torch.zeros(3), atol=1e-3, rtol=0)
    assert bool((d[:, 1] < 0).all())  # up the image
    # every keypoint inside the crop, the turned hand's longer extent is 128 / 1.5 px
    assert bool(((moved > -0.5) & (moved < 127.5)).all())
    extent = (moved.amax(1) - moved.amin(1)).amax(-1)
    torch.testing.assert_close(extent, torch.full((3,), 128 / 1.5), atol=1e-3, rtol=0)


def test_upright_box_without_a_direction_uses_the_box():
    kp = torch.randn(21, 2) * 10 + 50
    vis = torch.ones(21)
    vis[0] = 0  # no wrist: no direction
    box = torch.tensor([30.0, 40.0, 70.0, 60.0])
    centre, side, angle = geometry.upright_box(kp, visibility=vis, box=box, scale=2.0)
    assert float(angle) == 0.0 and float(side) == 80.0
    torch.testing.assert_close(centre, torch.tensor([50.0, 50.0]))
    with pytest.raises(ValueError, match="scale"):
        geometry.upright_box(kp, scale=0)
    with pytest.raises(ValueError, match="side"):
        geometry.crop_affine(torch.zeros(2), torch.tensor(0.0), 8)
