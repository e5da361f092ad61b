"""The explained scalars (targets) and the pilot that places quadrature nodes."""

import math
from types import SimpleNamespace

import pytest
import torch
from attr_models import TinyHeatmapNet, images, near_targets
from torch import nn

from handlab.attribution.engine import integrate, poseig, warp_nodes
from handlab.attribution.paths import StraightPath, quadrature
from handlab.attribution.targets import TARGETS, JointLikelihood, JointSubset
from handlab.codecs import GaussianHeatmap
from handlab.models._heatmaps import SoftDecodeMixin


class GivenHeatmaps(SoftDecodeMixin, nn.Module):
    """A heatmap-family model whose heatmaps are given (scaled by the image mean, so that a path
    from a black image fades them in)."""

    stride = 4
    config = SimpleNamespace(sigma=2.0)

    def __init__(self, maps: torch.Tensor) -> None:
        super().__init__()
        self.maps = maps  # (B, J, h, w)
        self.num_joints = maps.shape[1]

    def forward(self, images):
        scale = images.mean((1, 2, 3))[:, None, None, None] / 0.5
        return {
            "heatmaps": self.maps.repeat(images.shape[0] // self.maps.shape[0], 1, 1, 1) * scale
        }


def _grid_keypoints(h: int = 12, w: int = 16, stride: int = 4) -> torch.Tensor:
    xs = torch.arange(-0.45, w - 0.5, 0.61, dtype=torch.float64)
    ys = torch.arange(-0.45, h - 0.5, 0.97, dtype=torch.float64)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return (torch.stack([gx.flatten(), gy.flatten()], -1) + 0.5) * stride - 0.5  # (N, 2) px


def test_heatmap_match_peaks_exactly_at_clean_peaks_anywhere():
    codec = GaussianHeatmap(heatmap_size=(12, 16), stride=4, sigma=2.0)
    kp = _grid_keypoints()  # border cells included
    maps, _ = codec.encode(kp[:, None])  # (N, 1, h, w) clean peaks
    f = JointLikelihood(GivenHeatmaps(maps.double()), target="heatmap_match")
    x = torch.full((kp.shape[0], 3, 48, 64), 0.5, dtype=torch.float64)
    at_peak = f(x, kp[:, None])  # (N, 1)
    ring = [0.1 * torch.tensor([math.cos(a), math.sin(a)]) for a in torch.arange(8) * math.pi / 4]
    for d in ring:  # 0.1 px away in 8 directions the match is lower: the maximum is within 0.1 px
        assert torch.all(f(x, (kp + d)[:, None]) < at_peak)
    inner = ((kp > 16) & (kp < torch.tensor([47.0, 31.0]))).all(-1)  # 4 cells from the border
    assert int(inner.sum()) > 10
    torch.testing.assert_close(at_peak[inner], torch.ones_like(at_peak[inner]), atol=5e-3, rtol=0)
    # 2 cells away a clean peak scores exp(-d^2 / (4 sigma^2)) (the overlap of two Gaussians)
    shifted = f(x, (kp + torch.tensor([8.0, 0.0]))[:, None])
    want = math.exp(-(2**2) / (4 * 2.0**2))
    assert shifted[inner].sub(want).abs().max() < 0.02


def test_fixed_window_is_the_models_decode_at_the_input_and_has_no_jump():
    codec = GaussianHeatmap(heatmap_size=(12, 16), stride=4, sigma=2.0)
    kp = torch.tensor([[[20.3, 17.8], [41.0, 30.2]]], dtype=torch.float64)
    maps, _ = codec.encode(kp)
    model = GivenHeatmaps(maps)
    x = torch.full((1, 3, 48, 64), 0.5, dtype=torch.float64)
    fixed = JointLikelihood(model, target="fixed_window")
    decode = JointLikelihood(model, target="decode")
    anchors = fixed.anchors(x)
    torch.testing.assert_close(fixed.decoded(x, anchors), decode.decoded(x))
    torch.testing.assert_close(fixed.decoded(x, anchors), kp, atol=0.1, rtol=0)
    with pytest.raises(ValueError, match="anchors"):
        fixed(x, kp)


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_falls_back_to_decode_without_local_window_heatmaps(target):
    model = TinyHeatmapNet(joints=3).double().eval()  # a soft-argmax decoder: continuous already
    f = JointLikelihood(model, target=target)
    assert f.target == "decode"
    x = images(b=2)
    t = near_targets(model, x)
    torch.testing.assert_close(f(x, t, f.anchors(x)), JointLikelihood(model, target="decode")(x, t))


def test_joint_subset_of_a_heatmap_model_reads_the_right_maps():
    codec = GaussianHeatmap(heatmap_size=(12, 16), stride=4, sigma=2.0)
    kp = torch.tensor([[[20.0, 17.0], [41.0, 30.0], [10.0, 10.0]]], dtype=torch.float64)
    maps, _ = codec.encode(kp)
    model = GivenHeatmaps(maps)
    x = torch.full((1, 3, 48, 64), 0.5, dtype=torch.float64)
    for target in ("heatmap_match", "fixed_window"):
        full = JointLikelihood(model, target=target)
        sub = JointLikelihood(JointSubset(JointSubset(model, [2, 1]), [1]), target=target)
        want = full(x, kp, full.anchors(x))[:, [1]]
        torch.testing.assert_close(sub(x, kp[:, [1]], sub.anchors(x)), want)


def test_pilot_keeps_the_integral_and_follows_the_change():
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    path = StraightPath(x, torch.zeros_like(x))
    linear = lambda im: im.sum((2, 3)) * 2  # noqa: E731  (IG of a linear function is exact)
    for pilot in (2, 5, 16):  # any pilot, also one shorter than the smoothing kernel
        attr, _, _ = integrate(linear, path, steps=5, pilot=pilot)
        torch.testing.assert_close(attr[:, 0], 2 * x)
    # a sigmoid that switches at s = 0.9: the pilot moves most nodes there
    steep = lambda im: torch.sigmoid(200 * (im.mean((1, 2, 3)) / x.mean() - 0.9))[:, None]  # noqa: E731
    nodes, weights = quadrature("gausslegendre", 16)
    s, w = warp_nodes(steep, StraightPath(x[:1], torch.zeros_like(x[:1])), nodes, weights, 64)
    assert float(w.sum()) == pytest.approx(1.0) and bool((s[1:] > s[:-1]).all())
    assert int(((s > 0.85) & (s < 0.95)).sum()) >= 8
    gaps = []
    for pilot in (0, 64):
        a, f1, f0 = integrate(
            steep, StraightPath(x[:1], torch.zeros_like(x[:1])), steps=16, pilot=pilot
        )
        gaps.append(float((a.sum() - (f1 - f0).sum()).abs() / (f1 - f0).abs().sum()))
    assert gaps[1] < 0.05 < gaps[0]


def test_poseig_joints_option_equals_a_subset_and_checks_indices():
    model = TinyHeatmapNet(joints=4).double().eval()
    x = images(b=2)
    t = near_targets(model, x)
    kw = {"path": "straight", "baseline": "mean", "steps": 3, "pilot": 0}
    sub = poseig(model, x, t, joints=[3, 1], **kw)
    full = poseig(model, x, t, **kw)
    torch.testing.assert_close(sub.attributions, full.attributions[:, [3, 1]])
    with pytest.raises(ValueError, match="joints"):
        poseig(model, x, t, joints=[4], **kw)
    with pytest.raises(ValueError, match="joints"):
        poseig(model, x, t, joints=[1, 1], **kw)
    with pytest.raises(TypeError, match="stepz"):
        poseig(model, x, t, stepz=3)
