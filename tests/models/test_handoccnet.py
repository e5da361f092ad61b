"""HandOccNet: FIT against a naive loop, the necessity split, the contract, gradients, errors."""

import math

import pytest
import torch
from _overfit import loss_curve

from handlab.hand_model import HandModel
from handlab.models.handoccnet import (
    FIT,
    create_handoccnet,
    fit_attention,
    soft_argmax,
    split_features,
)

TINY = {"width": 16, "heads": 2}


def naive_fit(q_soft, k_soft, q_sig, k_sig, v):
    """C[i, j] = softmax_j(q_i.k_j / sqrt d) * sigmoid(q'_i.k'_j / sqrt d); out_i = sum C v_j."""
    b_n, h_n, n, d = q_soft.shape
    out = torch.zeros_like(v, dtype=torch.float64)
    corr = torch.zeros(b_n, h_n, n, n, dtype=torch.float64)
    for b in range(b_n):
        for h in range(h_n):
            for i in range(n):
                logits = [float(q_soft[b, h, i] @ k_soft[b, h, j]) / math.sqrt(d) for j in range(n)]
                top = max(logits)
                exps = [math.exp(x - top) for x in logits]
                for j in range(n):
                    s = float(q_sig[b, h, i] @ k_sig[b, h, j]) / math.sqrt(d)
                    corr[b, h, i, j] = exps[j] / sum(exps) / (1 + math.exp(-s))
                    out[b, h, i] += corr[b, h, i, j] * v[b, h, j].double()
    return out, corr


def test_fit_attention_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    q_soft, k_soft, q_sig, k_sig, v = (torch.randn(2, 2, 5, 4, generator=g) for _ in range(5))
    out, corr = fit_attention(q_soft, k_soft, q_sig, k_sig, v)
    ref_out, ref_corr = naive_fit(q_soft, k_soft, q_sig, k_sig, v)
    torch.testing.assert_close(corr.double(), ref_corr, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.double(), ref_out, atol=1e-6, rtol=1e-5)
    # The sigmoid gate makes rows sum to less than one: no forced full attention.
    assert (corr.sum(-1) < 1).all()


def test_fit_module_queries_secondary_and_keys_primary():
    torch.manual_seed(0)
    fit = FIT(8, 2).eval()
    secondary, primary = torch.randn(1, 6, 8), torch.randn(1, 6, 8)
    out, corr = fit(secondary, primary)
    # Recompute the correlation with the module's own projections and the naive loop.
    q_soft, q_sig = fit.query(fit.norm_s(secondary)).chunk(2, dim=-1)
    k_soft, k_sig = fit.key(fit.norm_p(primary)).chunk(2, dim=-1)
    v = fit.value(fit.norm_p(primary))
    heads = [fit.split_heads(t) for t in (q_soft, k_soft, q_sig, k_sig, v)]
    _, ref_corr = naive_fit(*(t.detach() for t in heads))
    torch.testing.assert_close(corr.detach().double(), ref_corr, atol=1e-6, rtol=1e-5)
    # Values come from the primary features only: permuting secondary tokens permutes the output.
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out_perm, _ = fit(secondary[:, perm], primary)
    torch.testing.assert_close(out_perm, out[:, perm], atol=1e-5, rtol=1e-5)


def test_necessity_map_splits_features_exactly():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 4, 3, 5, generator=g)
    necessity = torch.rand(2, 1, 3, 5, generator=g)
    primary, secondary = split_features(feats, necessity)
    tokens = feats.flatten(2).transpose(1, 2)
    torch.testing.assert_close(primary + secondary, tokens, atol=1e-6, rtol=0)
    # Where M = 1 the secondary part is exactly zero, where M = 0 the primary part is.
    primary, secondary = split_features(feats, (necessity > 0.5).float())
    hand = (necessity > 0.5).flatten(2).transpose(1, 2).expand_as(tokens)
    assert (secondary[hand] == 0).all() and (primary[~hand] == 0).all()


def test_soft_argmax_one_hot_and_uniform():
    logits = torch.full((1, 2, 4, 4), -1e4)
    logits[0, 0, 2, 1] = 0.0  # row 2, column 1
    logits[0, 1] = 0.0  # uniform: the centre of the map
    keypoints, prob = soft_argmax(logits, 4)
    torch.testing.assert_close(keypoints[0, 0], torch.tensor([1 * 4 + 1.5, 2 * 4 + 1.5]))
    torch.testing.assert_close(keypoints[0, 1], torch.tensor([7.5, 7.5]))
    torch.testing.assert_close(prob.sum(-1), torch.ones(1, 2))


@pytest.mark.parametrize("hand_params", [True, False])
def test_forward_contract_and_decode(hand_params):
    torch.manual_seed(0)
    model = create_handoccnet(predict_hand_params=hand_params, **TINY).eval()
    images = torch.rand(2, 3, 64, 64)
    out = model(images)
    assert out["keypoints"].shape == (2, 21, 2)
    assert out["xyz"].shape == (2, 21, 3)
    assert out["heatmaps"].shape == (2, 21, 8, 8)
    assert out["correlation"].shape == (2, 2, 64, 64)
    assert ((out["necessity"] >= 0) & (out["necessity"] <= 1)).all()
    assert all(torch.isfinite(v).all() for v in out.values())
    assert (out["xyz"][:, 0] == 0).all()  # root-relative
    assert ((out["keypoints"] >= 0) & (out["keypoints"] <= 63)).all()
    decoded = model.decode(out)
    torch.testing.assert_close(decoded["keypoints"], out["keypoints"])
    torch.testing.assert_close(decoded["xyz"], out["xyz"])


def test_hand_params_give_xyz_by_forward_kinematics():
    torch.manual_seed(0)
    model = create_handoccnet(**TINY).eval()
    pose = 0.2 * torch.randn(1, 16, 3)
    shape = torch.randn(1, 10)
    out = model.decode({"heatmaps": torch.zeros(1, 21, 8, 8), "pose": pose, "shape": shape})
    ref = HandModel()(pose, shape)
    torch.testing.assert_close(out["xyz"], ref - ref[:, :1])


@pytest.mark.parametrize("hand_params", [True, False])
def test_gradient_reaches_every_parameter(hand_params):
    torch.manual_seed(0)
    model = create_handoccnet(predict_hand_params=hand_params, **TINY)
    images = torch.rand(2, 3, 64, 64)
    batch = {"keypoints": torch.rand(2, 21, 2) * 63, "xyz": torch.randn(2, 21, 3) * 30}
    loss, logs = model.loss(model(images), batch)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
    assert set(logs) == {"keypoints", "xyz"}


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = create_handoccnet(**TINY)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 64, 64, generator=g)
    batch = {
        "keypoints": torch.rand(4, 21, 2, generator=g) * 63,
        "xyz": torch.randn(4, 21, 3, generator=g) * 30,
    }
    losses, _ = loss_curve(model, [images], batch, steps=15)
    assert losses[-1] < 0.8 * losses[0]


def test_bad_input_raises_clear_errors():
    model = create_handoccnet(**TINY)
    with pytest.raises(TypeError, match="images"):
        model([[0.0]])
    with pytest.raises(ValueError, match=r"images: expected shape \(\*, 3, \*, \*\)"):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 3, 64, 48))
    bad = torch.rand(1, 3, 64, 64)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        model(bad)
    with pytest.raises(ValueError, match="width"):
        create_handoccnet(width=30, heads=4)
    with pytest.raises(ValueError, match="backbone"):
        create_handoccnet(backbone="vgg16")
    with pytest.raises(ValueError, match="'xyz'"):
        model.loss(model(torch.rand(1, 3, 64, 64)), {"keypoints": torch.zeros(1, 21, 2)})
