"""Tests of A2J (handlab.models.a2j): anchors, weighted sums, the loss, the model, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _overfit import loss_curve

from handlab.geometry import unproject
from handlab.models import create
from handlab.models.a2j import A2JConfig, a2j_loss, anchor_positions, weighted_joints
from handlab.models.v2v import default_K


def _batch(b: int = 2, size: int = 64, joints: int = 21) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    depth = torch.zeros(b, 1, size, size)
    depth[..., size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 400.0
    uv = size / 4 + torch.rand(b, joints, 2, generator=g) * size / 2
    z = 380 + 40 * torch.rand(b, joints, 1, generator=g)
    K = default_K(depth, 1.4)
    return {"depth": depth, "K": K, "keypoints": uv, "xyz": unproject(torch.cat([uv, z], -1), K)}


def test_anchor_positions_every_four_pixels() -> None:
    anchors = anchor_positions(32, 48, 4)
    assert anchors.shape == (2 * 3 * 16, 2)
    want = {(4 * i + 1.5, 4 * j + 1.5) for i in range(12) for j in range(8)}
    assert {tuple(a) for a in anchors.tolist()} == want
    # order: cells row-major, then the 4 x 4 anchors of a cell row-major
    assert anchors[16].tolist() == [17.5, 1.5]
    assert anchors[3 * 16].tolist() == [1.5, 17.5]
    assert anchor_positions(16, 16, 16).tolist() == [[7.5, 7.5]]


def test_weighted_joints_match_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(1)
    B, J, N = 2, 3, 7
    logits = torch.randn(B, J, N, generator=g)
    offsets = torch.randn(B, J, N, 2, generator=g) * 3
    depths = 400 + torch.randn(B, J, N, generator=g) * 20
    anchors = torch.rand(N, 2, generator=g) * 64
    out = weighted_joints(logits, offsets, depths, anchors)
    for b in range(B):
        for j in range(J):
            e = [math.exp(float(v)) for v in logits[b, j]]
            w = [x / sum(e) for x in e]
            u = sum(w[a] * float(anchors[a, 0] + offsets[b, j, a, 0]) for a in range(N))
            v = sum(w[a] * float(anchors[a, 1] + offsets[b, j, a, 1]) for a in range(N))
            d = sum(w[a] * float(depths[b, j, a]) for a in range(N))
            su = sum(w[a] * float(anchors[a, 0]) for a in range(N))
            np.testing.assert_allclose(out["uvd"][b, j].numpy(), [u, v, d], rtol=1e-5)
            np.testing.assert_allclose(float(out["surround"][b, j, 0]), su, rtol=1e-5)
            np.testing.assert_allclose(out["anchor_weights"][b, j].numpy(), w, rtol=1e-5)


def test_per_anchor_layout_matches_anchor_positions() -> None:
    """Channel (a * J + j) * c + k at cell (i, x) is anchor (i * w + x) * A + a of joint j."""
    model = create("a2j", head_width=8, head_layers=0)
    A, J, h, w = 16, 21, 2, 3
    maps = torch.arange(A * J * 2 * h * w, dtype=torch.float32).view(1, A * J * 2, h, w)
    out = model._per_anchor(maps, 2)
    assert out.shape == (1, J, h * w * A, 2)
    for a, j, k, i, x in [(0, 0, 0, 0, 0), (5, 3, 1, 1, 2), (15, 20, 0, 0, 1), (7, 11, 1, 1, 0)]:
        assert out[0, j, (i * w + x) * A + a, k] == maps[0, (a * J + j) * 2 + k, i, x]


def test_loss_on_a_hand_made_case() -> None:
    kp = torch.tensor([[[10.0, 20.0], [0.0, 0.0]]])
    depth = torch.tensor([[400.0, 300.0]])
    # joint 0: uv 0.5 px off in x (quadratic zone), depth 5 mm off (linear zone of beta 3)
    # joint 1: exact; surround 2 px off in y for joint 1 only
    uvd = torch.tensor([[[10.5, 20.0, 405.0], [0.0, 0.0, 300.0]]])
    surround = torch.tensor([[[10.0, 20.0], [0.0, 2.0]]])
    loss, logs = a2j_loss(uvd, surround, kp, depth)
    surround_want = (2.0 - 0.5) / 4  # SmoothL1 of a 2 px error, mean over 4 elements
    uv_want = 0.5 * 0.5**2 / 4  # 0.125 over 4 elements
    depth_want = (5.0 - 1.5) / 2  # |x| - beta / 2 for |x| >= beta = 3, mean over 2
    want = surround_want + 3 * (0.5 * uv_want + depth_want)
    assert math.isclose(float(loss), want, rel_tol=1e-6)
    assert math.isclose(logs["depth"], depth_want, rel_tol=1e-6)
    # and the same numbers from torch's own SmoothL1 (an independent reference)
    ref = F.smooth_l1_loss(surround, kp) + 3 * (
        0.5 * F.smooth_l1_loss(uvd[..., :2], kp) + F.smooth_l1_loss(uvd[..., 2], depth, beta=3.0)
    )
    assert math.isclose(float(loss), float(ref), rel_tol=1e-6)


@pytest.mark.parametrize("joints", [21, 14])
def test_model_outputs_loss_and_gradients(joints: int) -> None:
    torch.manual_seed(0)
    model = create("a2j", num_joints=joints, head_width=16, head_layers=1)
    batch = _batch(joints=joints)
    out = model(batch["depth"])  # default K (what the batch used)
    assert out["keypoints"].shape == (2, joints, 2)
    assert out["anchor_weights"].shape == (2, joints, 256)
    assert torch.allclose(out["anchor_weights"].sum(-1), torch.ones(2, joints))
    assert torch.equal(out["xyz"][:, 0], torch.zeros(2, 3))
    assert torch.allclose(unproject(out["uvd"], batch["K"]), out["xyz_cam"], atol=1e-3)
    dec = model.decode(out)
    assert torch.allclose(dec["keypoints"], out["keypoints"])
    loss, logs = model.loss(out, batch)
    loss.backward()
    assert math.isfinite(float(loss.detach())) and logs["epe_px"] > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_resnet50_has_a_dilated_stride_one_stage4() -> None:
    model = create("a2j", backbone="resnet50", head_width=8, head_layers=0)
    convs = [m for m in model.regression.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.stride == (1, 1) for c in convs)
    assert any(c.dilation == (2, 2) for c in convs)
    out = model(_batch(b=1, size=32)["depth"])
    assert out["offsets"].shape == (1, 21, 4 * 16, 2)


def test_loss_falls_on_one_batch() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = create("a2j", head_width=16, head_layers=1)
    one = _batch(b=1, size=32)  # one sample repeated: the targets are learnable from the input
    batch = {k: v.expand(4, *v.shape[1:]) for k, v in one.items()}
    losses, _ = loss_curve(model, [batch["depth"]], batch, steps=15)
    assert losses[-1] < 0.5 * losses[0]


def test_segment_mm_on_an_unsegmented_crop_equals_the_masked_input() -> None:
    hand = _batch(b=1)["depth"]
    scene = torch.where(hand > 0, hand, torch.full_like(hand, 900.0))
    torch.manual_seed(0)
    plain = create("a2j", head_width=8, head_layers=0).eval()
    torch.manual_seed(0)
    segmenting = create("a2j", head_width=8, head_layers=0, segment_mm=150.0).eval()
    assert torch.allclose(plain(hand)["uvd"], segmenting(scene)["uvd"])
    assert not torch.allclose(plain(scene)["uvd"], segmenting(scene)["uvd"])


def test_errors() -> None:
    model = create("a2j", head_width=8, head_layers=0)
    batch = _batch()
    with pytest.raises(
        ValueError, match=r"depth: expected H and W multiples of 16, got \(40, 64\)"
    ):
        model(torch.full((1, 1, 40, 64), 400.0))
    with pytest.raises(ValueError, match=r"empty depth in samples \[0\]"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"depth: expected shape \(\*, 1, \*, \*\)"):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="num_joints: expected 21"):
        A2JConfig(num_joints=20)
    with pytest.raises(ValueError, match="backbone: expected one of"):
        A2JConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="anchor_stride: expected a divisor of 16"):
        A2JConfig(anchor_stride=3)
    out = model(batch["depth"])
    with pytest.raises(ValueError, match=r"batch\['keypoints'\]: expected shape"):
        model.loss(out, {"keypoints": torch.zeros(2, 14, 2), "xyz": batch["xyz"]})
