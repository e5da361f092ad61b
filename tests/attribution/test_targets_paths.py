import pytest
import torch
import torchvision.transforms.functional as TF
from attr_models import ShiftedDecode, TinyHeatmapNet, TinyRegression3D, images, targets
from captum.attr._utils.approximation_methods import approximation_parameters

from handlab.attribution.paths import (
    BlurPath,
    StraightPath,
    gaussian_blur,
    make_baseline,
    quadrature,
)
from handlab.attribution.targets import JointLikelihood, joint_likelihood


def test_likelihood_matches_formula_on_decoded_joints():
    model = TinyHeatmapNet().double().eval()
    x, t = images(), targets()
    pred = model.decode(model(x))["keypoints"]
    want = torch.exp(-0.25 * (pred - t).norm(dim=-1))
    got = joint_likelihood(model, x, t, alpha=0.25)
    torch.testing.assert_close(got, want)
    assert got.shape == (2, 4) and bool((got > 0).all() and (got <= 1).all())


def test_likelihood_uses_decode_not_forward_keypoints():
    model = ShiftedDecode().double().eval()
    x = images()
    decoded = model.decode(model(x))["keypoints"]
    got = joint_likelihood(model, x, decoded)  # distance 0 to the decoded joints
    torch.testing.assert_close(got, torch.ones(2, 2, dtype=torch.float64))
    shifted = joint_likelihood(model, x, model(x)["keypoints"])
    assert float(shifted.detach().max()) < 1e-10  # forward's keypoints are 141 px from the decode


def test_likelihood_3d_uses_xyz_in_mm():
    model = TinyRegression3D().double()
    x = images()
    xyz = model(x)["xyz"].detach()
    t = xyz + torch.tensor([3.0, 0.0, 4.0], dtype=torch.float64)  # 5 mm off
    got = joint_likelihood(model, x, t, alpha=0.1, space="3d")
    torch.testing.assert_close(
        got, torch.full((2, 3), float(torch.exp(torch.tensor(-0.5)))).double()
    )


def test_likelihood_tiles_targets_for_repeated_batches():
    model = TinyHeatmapNet().double().eval()
    x, t = images(), targets()
    f = JointLikelihood(model)
    torch.testing.assert_close(f(torch.cat([x, x, x]), t), f(x, t).repeat(3, 1))
    with pytest.raises(ValueError, match="target_keypoints: expected a batch dividing"):
        f(x[:1].repeat(3, 1, 1, 1), t)


def test_likelihood_errors():
    model = TinyHeatmapNet().double()
    x, t = images(), targets()
    with pytest.raises(TypeError, match="model"):
        JointLikelihood("resnet")
    with pytest.raises(ValueError, match="alpha"):
        JointLikelihood(model, alpha=-1.0)
    with pytest.raises(ValueError, match="space"):
        JointLikelihood(model, space="4d")
    with pytest.raises(ValueError, match="space: expected '2d'"):
        joint_likelihood(model, x, torch.zeros(2, 4, 3), space="3d")
    with pytest.raises(ValueError, match="target_keypoints: expected shape"):
        joint_likelihood(model, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="target_keypoints: expected joints/dims"):
        joint_likelihood(model, x, t[:, :3])
    with pytest.raises(TypeError, match="target_keypoints"):
        joint_likelihood(model, x, [[0.0, 0.0]])
    with pytest.raises(ValueError, match="images: expected shape"):
        joint_likelihood(model, x[:1], t)


@pytest.mark.parametrize(
    "method",
    ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"],
)
def test_quadrature_is_captums(method):
    s, w = quadrature(method, 7)
    step_sizes, alphas = approximation_parameters(method)
    # the same nodes as captum (float32 linspace); captum's trapezoid weights sum to 1 - 1/n
    scale = 7 / 6 if method == "riemann_trapezoid" else 1.0
    torch.testing.assert_close(s, torch.tensor(alphas(7), dtype=torch.float64), atol=0, rtol=0)
    torch.testing.assert_close(w, scale * torch.tensor(step_sizes(7), dtype=torch.float64))
    assert abs(float(w.sum()) - 1) < 1e-12
    # every rule integrates s exactly (trapezoid, middle, Gauss) or within one step (left/right)
    assert abs(float((w * s).sum()) - 0.5) <= 1 / 14 + 1e-7  # float32 nodes


def test_quadrature_errors():
    with pytest.raises(ValueError, match="method: expected one of"):
        quadrature("simpson", 4)
    with pytest.raises(ValueError, match="steps"):
        quadrature("riemann_trapezoid", 1)
    with pytest.raises(ValueError, match="steps"):
        quadrature("gausslegendre", 2.5)


@pytest.mark.parametrize("sigma", [0.7, 3.0, 19.0])
def test_gaussian_blur_matches_torchvision(sigma):
    x = images(b=1, size=40, dtype=torch.float32)
    want = TF.gaussian_blur(x, [31, 31], [sigma, sigma])
    torch.testing.assert_close(gaussian_blur(x, sigma, 31), want, atol=1e-6, rtol=1e-5)


def test_blur_path_endpoints_and_folds():
    x = images(b=2, size=32)
    p = BlurPath(x, folds=10)
    pts, vel = p.points(torch.tensor([0.0, 0.3, 1.0]))
    torch.testing.assert_close(pts[0], gaussian_blur(x, 19.0))
    torch.testing.assert_close(pts[0], p.baseline)
    torch.testing.assert_close(pts[1], gaussian_blur(x, 19.0 * 0.7))
    torch.testing.assert_close(pts[2], x)
    # the discrete path is linear inside a fold: velocity = forward difference * folds
    torch.testing.assert_close(
        vel[1], (gaussian_blur(x, 19 * 0.6) - gaussian_blur(x, 19 * 0.7)) * 10
    )


def test_continuous_blur_velocity_is_the_derivative():
    x = images(b=1, size=32)
    p = BlurPath(x, folds=None)
    s, h = torch.tensor([0.4], dtype=torch.float64), 1e-5
    _, vel = p.points(s)
    fd = (p.points(s + h)[0] - p.points(s - h)[0]) / (2 * h)
    torch.testing.assert_close(vel, fd, atol=1e-6, rtol=1e-5)


def test_baselines():
    x = images(b=2, size=16)
    assert float(make_baseline(x, "black").abs().max()) == 0
    mean = make_baseline(x, "mean")
    torch.testing.assert_close(mean[:, :, 3, 5], x.mean((2, 3)))
    torch.testing.assert_close(
        make_baseline(x, "blur", kernel_size=9, sigma=2.0), gaussian_blur(x, 2.0, 9)
    )
    u1 = make_baseline(x, "uniform", generator=torch.Generator().manual_seed(3))
    u2 = make_baseline(x, "uniform", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(u1, u2)
    assert float(u1.min()) >= float(x.min()) and float(u1.max()) <= float(x.max())
    g = make_baseline(x, "gaussian", generator=torch.Generator().manual_seed(3), noise_std=0.1)
    assert 0.05 < float((g - x).std()) < 0.15
    with pytest.raises(ValueError, match="baseline: expected one of"):
        make_baseline(x, "white")


def test_path_errors():
    x = images(b=1, size=32)
    with pytest.raises(ValueError, match="kernel_size"):
        BlurPath(x, kernel_size=30)
    with pytest.raises(ValueError, match="images: expected H and W >= 16"):
        BlurPath(images(b=1, size=12))
    with pytest.raises(ValueError, match="folds"):
        BlurPath(x, folds=0)
    with pytest.raises(ValueError, match="baseline: expected shape"):
        StraightPath(x, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="images: expected finite"):
        StraightPath(x * float("nan"), x)
