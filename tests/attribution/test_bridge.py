import numpy as np
import pytest
import torch
from attr_models import TinyHeatmapNet, TinyRegression3D, images, near_targets
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

from handlab.attribution.bridge import captum_forward, explain_joint, explain_joints
from handlab.attribution.engine import poseig
from handlab.attribution.targets import JointLikelihood


@pytest.fixture(scope="module")
def case():
    model = TinyHeatmapNet().double().eval()
    x = images()
    return model, x, near_targets(model, x)


def _grad(model, x, t, j):
    p = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(JointLikelihood(model)(p, t)[:, j].sum(), p)
    return g


def test_saliency_is_the_absolute_gradient(case):
    model, x, t = case
    got = explain_joint(Saliency, model, x, t, joint=2, abs=False)
    torch.testing.assert_close(got, _grad(model, x, t, 2))


def test_input_x_gradient(case):
    model, x, t = case
    torch.testing.assert_close(
        explain_joint(InputXGradient, model, x, t, 1), x * _grad(model, x, t, 1)
    )


def test_integrated_gradients_3d_equals_engine():
    model = TinyRegression3D().double()
    x = images()
    xyz = (model(x)["xyz"] + 3.0).detach()
    base = torch.zeros_like(x)
    ours = poseig(
        model, x, xyz, space="3d", path="straight", steps=7, method="riemann_middle", pilot=0
    )
    got = explain_joints(
        IntegratedGradients,
        model,
        x,
        xyz,
        space="3d",
        baselines=base,
        n_steps=7,
        method="riemann_middle",
    )
    err = (got - ours.attributions).abs().max()
    assert float(err) <= 1e-5 * float(ours.attributions.abs().max())


def test_occlusion_matches_a_manual_patch(case):
    model, x, t = case
    got = explain_joint(
        Occlusion, model, x, t, 0, sliding_window_shapes=(3, 8, 8), strides=(3, 8, 8)
    )
    f = JointLikelihood(model)
    occluded = x.clone()
    occluded[:, :, 8:16, 16:24] = 0
    drop = (f(x, t) - f(occluded, t))[:, 0].detach()  # spread evenly over the 3*8*8 patch
    got = got.to(drop.dtype)
    torch.testing.assert_close(got[:, 1, 10, 20], drop, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(
        got[:, :, 8:16, 16:24].sum((1, 2, 3)), drop * 192, rtol=1e-5, atol=1e-6
    )


def test_gradient_shap_and_noise_tunnel_are_seeded_and_finite(case):
    model, x, t = case
    base = torch.cat([torch.zeros_like(x), torch.ones_like(x) * 0.5])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        np.random.seed(0)  # noqa: NPY002 (captum draws GradientShap path points from it)
        runs.append(explain_joint(GradientShap, model, x, t, 3, baselines=base, n_samples=4))
    torch.testing.assert_close(runs[0], runs[1])
    assert runs[0].shape == x.shape and bool(torch.isfinite(runs[0]).all())
    torch.manual_seed(0)
    nt = explain_joint(lambda f: NoiseTunnel(Saliency(f)), model, x, t, 3, nt_samples=3, stdevs=0.0)
    torch.testing.assert_close(nt, _grad(model, x, t, 3).abs())  # zero noise: plain saliency


def test_layer_gradcam_and_deeplift(case):
    model, x, t = case
    cam = explain_joint(lambda f: LayerGradCam(f, f.model.conv2), model, x, t, 0)
    assert cam.shape == (2, 1, 16, 16) and float(cam.abs().sum()) > 0
    attr, delta = explain_joint(
        DeepLift, model, x, t, 0, baselines=torch.zeros_like(x), return_convergence_delta=True
    )
    assert attr.shape == x.shape and bool(torch.isfinite(attr).all())
    # captum's delta is sum(attr) - (F(x) - F(0)); our own F must agree, so the bridge gave
    # DeepLift's doubled batch (inputs, baselines) the right targets
    f = JointLikelihood(model)
    gap = (f(x, t) - f(torch.zeros_like(x), t))[:, 0].detach()
    torch.testing.assert_close(attr.sum((1, 2, 3)) - delta, gap)


def test_bridge_errors(case):
    model, x, t = case
    with pytest.raises(ValueError, match="joint: expected an int in"):
        explain_joint(Saliency, model, x, t, 4)
    with pytest.raises(TypeError, match="images"):
        explain_joint(Saliency, model, x.numpy(), t, 0)
    with pytest.raises(ValueError, match="target_keypoints"):
        captum_forward(model, t[..., 0])
    with pytest.raises(ValueError, match="images: expected shape"):
        explain_joint(Saliency, model, x[:1], t, 0)
