import pytest
import torch
from attr_models import TinyHeatmapNet, TinyRegression3D, images, near_targets, targets
from captum.attr import IntegratedGradients

from handlab.attribution.engine import attribution_maps, integrate, poseig
from handlab.attribution.paths import BlurPath, StraightPath, make_baseline
from handlab.attribution.targets import JointLikelihood

METHODS = ["riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


def _rel_close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    err = float((a - b).abs().max())
    assert err <= rel * float(b.abs().max()), (
        f"max error {err:.3g} vs scale {float(b.abs().max()):.3g}"
    )


@pytest.fixture(scope="module")
def model():
    return TinyHeatmapNet().double().eval()


@pytest.mark.parametrize("method", METHODS)
def test_equals_captum_integrated_gradients_joint_by_joint(model, method):
    x, t = images(), targets()
    base = make_baseline(x, "mean")
    res = poseig(
        model, x, t, path="straight", baseline=base, method=method, steps=6, max_batch=5, pilot=0
    )
    ig = IntegratedGradients(JointLikelihood(model))
    scale = 6 / 5 if method == "riemann_trapezoid" else 1.0  # captum's weights sum to 1 - 1/n
    for j in range(t.shape[1]):
        want = ig.attribute(
            x, baselines=base, target=j, additional_forward_args=(t,), n_steps=6, method=method
        )
        _rel_close(res.attributions[:, j], scale * want)


def _naive_blur_ig(model, x, t, steps, folds):
    # The reference's pattern, written plainly: for every joint and every left node, one forward
    # and one backward, times the path velocity.
    path = BlurPath(x, folds=folds)
    f = JointLikelihood(model)
    out = torch.zeros(x.shape[0], t.shape[1], *x.shape[1:], dtype=x.dtype)
    for j in range(t.shape[1]):
        for k in range(steps):
            pts, vel = path.points(torch.tensor([k / steps], dtype=torch.float64))
            p = pts[0].clone().requires_grad_(True)
            f(p, t)[:, j].sum().backward()
            out[:, j] += p.grad * vel[0] / steps
    return out


@pytest.mark.parametrize("folds", [5, None])
def test_blur_path_equals_naive_per_joint_loop(model, folds):
    x, t = images(), targets()
    res = poseig(model, x, t, path="blur", folds=folds, method="riemann_left", steps=5, pilot=0)
    _rel_close(res.attributions, _naive_blur_ig(model, x, t, 5, folds))


def test_reference_blur_sum_telescopes_at_the_fold_points(model):
    # With folds == steps and a left sum, each term is grad(x_i) . (x_{i+1} - x_i) exactly.
    x, t = images(b=1), targets(b=1)
    path = BlurPath(x, folds=4)
    levels = [path.points(torch.tensor([i / 4], dtype=torch.float64))[0][0] for i in range(5)]
    res = poseig(model, x, t, path="blur", folds=4, method="riemann_left", steps=4, pilot=0)
    f = JointLikelihood(model)
    want = torch.zeros_like(res.attributions)
    for i in range(4):
        p = levels[i].clone().requires_grad_(True)
        for j in range(4):
            (g,) = torch.autograd.grad(f(p, t)[:, j].sum(), p)
            want[:, j] += g * (levels[i + 1] - levels[i])
    _rel_close(res.attributions, want)


@pytest.mark.parametrize("method", METHODS)
def test_linear_model_is_exact(method):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 3, 8, 8, generator=g, dtype=torch.float64)  # (J, C, H, W)
    x = images(b=2, size=8)
    base = make_baseline(x, "uniform", generator=g)

    def fn(im):
        return torch.einsum("nchw,jchw->nj", im, weight) + 0.5

    attr, f1, f0 = integrate(fn, StraightPath(x, base), method=method, steps=3)
    torch.testing.assert_close(attr, weight[None] * (x - base)[:, None])
    torch.testing.assert_close(attr.sum((2, 3, 4)), f1 - f0)


def test_completeness_delta_shrinks_with_steps(model):
    x = images(b=2)
    t = near_targets(model, x)
    deltas = {}
    for method in ("riemann_left", "gausslegendre"):
        deltas[method] = [
            float(poseig(model, x, t, path="blur", method=method, steps=n).delta.abs().mean())
            for n in (2, 8, 64)
        ]
        assert deltas[method][0] > deltas[method][1] > deltas[method][2]
    assert deltas["gausslegendre"][1] < deltas["riemann_left"][1]


def test_vectorized_and_chunked_equal_the_loop(model):
    x, t = images(b=3), targets(b=3)
    a = poseig(model, x, t, steps=4, max_batch=64)
    b = poseig(model, x, t, steps=4, max_batch=1, vectorize=True)
    _rel_close(b.attributions, a.attributions, 1e-10)
    torch.testing.assert_close(a.delta, b.delta)


def test_outputs_maps_and_model_state(model):
    x, t = images(), targets()
    model.train()
    model.conv1.weight.grad = None
    res = poseig(model, x, t, steps=3)
    assert model.training and model.conv1.weight.requires_grad and model.conv1.weight.grad is None
    model.eval()
    assert res.attributions.shape == (2, 4, 3, 32, 32) and res.maps.shape == (2, 4, 32, 32)
    torch.testing.assert_close(res.maps, attribution_maps(res.attributions))
    torch.testing.assert_close(res.maps.amax((2, 3)), torch.ones(2, 4, dtype=torch.float64))
    assert float(res.maps.min()) >= 0
    f = JointLikelihood(model)
    torch.testing.assert_close(res.likelihood, f(x, t).detach())
    torch.testing.assert_close(res.baseline_likelihood, f(BlurPath(x).baseline, t).detach())
    torch.testing.assert_close(
        res.delta, res.attributions.sum((2, 3, 4)) - (res.likelihood - res.baseline_likelihood)
    )


def test_attribution_maps_signed_and_zero():
    a = torch.zeros(1, 2, 3, 2, 2)
    a[0, 0, :, 0, 0] = -1.0
    a[0, 0, :, 1, 1] = 0.5
    torch.testing.assert_close(
        attribution_maps(a, signed=True)[0, 0], torch.tensor([[-1.0, 0], [0, 0.5]])
    )
    assert float(attribution_maps(a)[0, 1].abs().max()) == 0  # an all-zero map stays zero


def test_smoothgrad_over_the_path_averages_draws(model):
    x, t = images(b=1), targets(b=1)
    kw = {"path": "straight", "baseline": "black", "steps": 3, "noise_samples": 2, "seed": 5}
    res = poseig(model, x, t, **kw, pilot=0)
    again = poseig(model, x, t, **kw, pilot=0)
    torch.testing.assert_close(res.attributions, again.attributions)
    g = torch.Generator().manual_seed(5)
    f = JointLikelihood(model)
    draws = []
    span = x.max() - x.min()
    for _ in range(2):
        noisy = x + 0.01 * span * torch.randn(x.shape, generator=g, dtype=x.dtype)
        draws.append(
            integrate(
                lambda im: f(im, t), StraightPath(noisy, torch.zeros_like(x)), steps=3, pilot=0
            )[0]
        )
    _rel_close(res.attributions, (draws[0] + draws[1]) / 2)
    sq = poseig(
        model,
        x,
        t,
        path="straight",
        steps=3,
        noise_samples=2,
        seed=5,
        noise_aggregate="mean_square",
        pilot=0,
    )
    _rel_close(sq.attributions, (draws[0] ** 2 + draws[1] ** 2) / 2)
    assert not torch.allclose(
        res.attributions, poseig(model, x, t, path="straight", steps=3).attributions
    )


def test_3d_space(model):
    m3 = TinyRegression3D().double()
    x = images()
    xyz = m3(x)["xyz"].detach() + 2.0
    res = poseig(
        m3, x, xyz, space="3d", path="straight", baseline="mean", steps=8, alpha=0.05,
        method="gausslegendre", pilot=0,
    )  # fmt: skip
    assert res.attributions.shape == (2, 3, 3, 32, 32)
    assert float(res.delta.abs().max()) < 1e-3 * float(
        (res.likelihood - res.baseline_likelihood).abs().max()
    )


def test_poseig_errors(model):
    x, t = images(), targets()
    with pytest.raises(ValueError, match="path: expected"):
        poseig(model, x, t, path="spiral")
    with pytest.raises(ValueError, match="noise_aggregate"):
        poseig(model, x, t, noise_aggregate="median")
    with pytest.raises(ValueError, match="target_keypoints: expected shape"):
        poseig(model, x, t[:1])
    with pytest.raises(ValueError, match="noise_samples"):
        poseig(model, x, t, path=BlurPath(x), noise_samples=2)
    with pytest.raises(ValueError, match="max_batch"):
        poseig(model, x, t, max_batch=0)
    with pytest.raises(TypeError, match="images"):
        poseig(model, x.numpy(), t)
    with pytest.raises(TypeError, match="target_keypoints"):
        poseig(model, x, t.numpy())


def test_registered_simplebaseline_follows_the_engine():
    from handlab.models import create

    torch.manual_seed(0)
    model = create("simplebaseline", backbone="resnet18", head_width=8, head_layers=1)
    model = model.double().eval()  # float64: batch-size-dependent float32 conv rounding aside
    x = images(b=1, size=64)
    t = near_targets(model, x)
    res = poseig(model, x, t, path="blur", steps=2, max_batch=2)
    again = poseig(model, x, t, path="blur", steps=2, max_batch=1, vectorize=True)
    assert res.attributions.shape == (1, 21, 3, 64, 64) and bool(
        torch.isfinite(res.attributions).all()
    )
    _rel_close(again.attributions, res.attributions, 1e-10)
