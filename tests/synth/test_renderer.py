"""handlab.synth.render / generate: outputs, determinism, geometry against a ray-marching
reference, visibility with a deliberate occluder, sizes, noise, blur, handedness, errors."""

import numpy as np
import pytest
import torch

from handlab.geometry import project
from handlab.synth import KEYS, generate, render, sample_params
from handlab.synth.renderer import _scene, camera_matrix, hand_geometry
from handlab.synth.scene import PARAM_SHAPES


@pytest.fixture(scope="module")
def batch():
    return generate(6, seed=0, size=64, occluders=0.5, extras=True)


def test_keys_shapes_dtypes_ranges(batch):
    out = generate(3, seed=1, size=64)
    assert tuple(sorted(out)) == tuple(sorted(KEYS))
    shapes = {
        "image": (3, 3, 64, 64),
        "depth": (3, 1, 64, 64),
        "mask": (3, 1, 64, 64),
        "keypoints": (3, 21, 2),
        "xyz": (3, 21, 3),
        "K": (3, 3, 3),
        "visibility": (3, 21),
    }
    for key, shape in shapes.items():
        assert tuple(out[key].shape) == shape, key
        assert out[key].dtype == torch.float32, key
        assert bool(torch.isfinite(out[key]).all()), key
    assert float(out["image"].min()) >= 0 and float(out["image"].max()) <= 1
    assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
    assert set(out["visibility"].unique().tolist()) <= {0.0, 1.0}
    assert float(out["depth"].min()) > 100  # mm, no holes without depth noise
    assert bool((out["xyz"][..., 2] > 100).all())
    assert 0.02 < float(out["mask"].mean()) < 0.7  # a hand, not empty, not everything
    assert {"occlusion", "occluder_mask", "params"} <= set(batch)


def test_same_seed_is_bit_identical_and_other_seeds_differ():
    a = generate(3, seed=7, size=64, occluders=1.0, blur=0.5, depth_noise=True)
    b = generate(3, seed=7, size=64, occluders=1.0, blur=0.5, depth_noise=True)
    c = generate(3, seed=8, size=64, occluders=1.0, blur=0.5, depth_noise=True)
    for key in KEYS:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["image"], c["image"])
    assert not torch.equal(a["xyz"], c["xyz"])


def test_keypoints_are_the_projection_of_xyz(batch):
    torch.testing.assert_close(batch["keypoints"], project(batch["xyz"], batch["K"]))


def test_params_replay_at_any_size(batch):
    params = batch["params"]
    big = render(params, 128)
    # pixel centres at integers: x_128 = 2 x_64 + 0.5
    torch.testing.assert_close(big["keypoints"], 2 * batch["keypoints"] + 0.5, atol=1e-3, rtol=0)
    torch.testing.assert_close(big["xyz"], batch["xyz"])
    assert abs(float(big["mask"].mean() - batch["mask"].mean())) < 0.01


def test_visible_joints_lie_on_hand_pixels():
    out = generate(16, seed=3, size=64, occluders=0.5)
    px = out["keypoints"].round().long()
    vis = out["visibility"] > 0
    assert int(vis.sum()) > 16 * 5  # many joints are visible
    b, j = torch.nonzero(vis, as_tuple=True)
    on_mask = out["mask"][b, 0, px[b, j, 1], px[b, j, 0]]
    assert bool((on_mask == 1).all())


def _rays(K: np.ndarray, size: int) -> np.ndarray:
    v, u = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    return d.reshape(-1, 3) / np.linalg.norm(d.reshape(-1, 3), axis=-1, keepdims=True)


def _sdf(p: np.ndarray, s: dict) -> tuple[np.ndarray, np.ndarray]:
    """Distance (R,) from points p (R, 3) to the nearest active primitive, and its id."""
    a, ba = s["cap_a"][None], (s["cap_b"] - s["cap_a"])[None]  # (1, C, 3)
    pa = p[:, None] - a  # (R, C, 3)
    h = np.clip((pa * ba).sum(-1) / np.maximum((ba * ba).sum(-1), 1e-12), 0, 1)
    d_cap = np.linalg.norm(pa - h[..., None] * ba, axis=-1) - s["cap_r"][None]
    local = np.einsum("rqk,qkj->rqj", p[:, None] - s["box_c"][None], s["box_rot"])
    e = np.abs(local) - s["box_half"][None]
    d_box = np.linalg.norm(np.maximum(e, 0), axis=-1) + np.minimum(e.max(-1), 0)
    dists = np.concatenate([d_cap, d_box], 1)
    dists[:, ~np.concatenate([s["cap_on"], s["box_on"]])] = np.inf
    return dists.min(-1), dists.argmin(-1)


def test_depth_and_mask_match_a_ray_marching_reference():
    """An independent renderer: sphere tracing of the capsule/box SDF, every pixel, float64."""
    size = 64
    params = sample_params(2, torch.Generator().manual_seed(11), occluders=1.0)
    out = render(params, size, extras=True)
    scene = _scene(params, hand_geometry(params))
    K = camera_matrix(params, size)
    n_hand = 22
    for i in range(2):
        s = {
            k: v[i].double().numpy() if v.is_floating_point() else v[i].numpy()
            for k, v in scene.items()
        }
        d = _rays(K[i].double().numpy(), size)
        t = np.full(len(d), 50.0)
        active = np.arange(len(d))
        for _ in range(300):
            dist, _ = _sdf(t[active, None] * d[active], s)
            t[active] += dist
            active = active[(dist > 1e-4) & (t[active] < 3000)]
            if len(active) == 0:
                break
        dist, prim = _sdf(t[:, None] * d, s)
        hit = dist < 1e-2
        z_ref = t * d[:, 2]
        hand_ref = hit & (prim < n_hand)
        got_hit = (out["mask"][i, 0] + out["occluder_mask"][i, 0]).reshape(-1).numpy() > 0
        assert (got_hit == hit).mean() > 0.99
        both = got_hit & hit
        depth = out["depth"][i, 0].reshape(-1).double().numpy()
        assert np.abs(depth[both] - z_ref[both]).max() < 0.5  # mm
        mask = out["mask"][i, 0].reshape(-1).numpy() > 0
        assert (mask == hand_ref).mean() > 0.99


def test_visibility_flips_when_an_occluder_is_put_in_front_of_a_joint():
    params = sample_params(2, torch.Generator().manual_seed(5), occluders=0.0)
    clean = render(params, 96, extras=True)
    j = int(torch.nonzero(clean["visibility"][0])[-1])  # a visible joint of sample 0
    assert float(clean["occlusion"][0, j]) == 0.0
    target = clean["xyz"][0, j]
    for ahead, expect_visible in ((70.0, False), (-80.0, True)):  # in front of / behind it
        p = {k: v.clone() for k, v in params.items()}
        p["occ_on"][0, 0] = True
        p["occ_kind"][0, 0] = 0  # sphere
        p["occ_center"][0, 0] = target * (1 - ahead / target.norm())
        p["occ_size"][0, 0] = torch.tensor([18.0, 0.0, 0.0])
        out = render(p, 96, extras=True)
        assert bool(out["visibility"][0, j]) is expect_visible
        assert (float(out["occlusion"][0, j]) > 0.9) is not expect_visible
        for key in ("visibility", "image", "xyz"):  # the other sample is untouched
            assert torch.equal(out[key][1], clean[key][1])


def test_depth_noise_blur_and_left_hands():
    clean = generate(4, seed=2, size=64)
    noisy = generate(4, seed=2, size=64, depth_noise=True)
    holes = noisy["depth"] == 0
    assert 0.001 < float(holes.float().mean()) < 0.3
    diff = (noisy["depth"] - clean["depth"])[~holes].abs()
    assert 0.2 < float(diff.median()) < 5.0  # mm
    assert torch.equal(noisy["image"], clean["image"])
    blurred = generate(4, seed=2, size=64, blur=1.0)
    assert not torch.equal(blurred["image"], clean["image"])
    # blur changes pixels, never labels
    assert torch.equal(blurred["mask"], clean["mask"])
    # a left hand is the mirror image of the right hand in the hand frame
    params = sample_params(2, torch.Generator().manual_seed(0))
    params["pose"][:, 0] = 0.0
    params["trans"][:] = torch.tensor([0.0, 0.0, 500.0])
    right = hand_geometry(params)["xyz"]
    params["left"][:] = True
    left = hand_geometry(params)["xyz"]
    torch.testing.assert_close(left[..., 0], -right[..., 0])
    torch.testing.assert_close(left[..., 1:], right[..., 1:])


def test_bad_inputs_raise_clear_errors():
    params = sample_params(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"size: expected a value in \[64, 512\], got 32"):
        render(params, 32)
    with pytest.raises(ValueError, match="size"):
        generate(1, seed=0, size=1024)
    with pytest.raises(TypeError, match="size: expected an int"):
        generate(1, seed=0, size=128.0)
    with pytest.raises(TypeError, match="seed"):
        generate(1, seed="0")
    with pytest.raises(ValueError, match="occluders: expected a value in"):
        generate(1, seed=0, occluders=1.5)
    with pytest.raises(ValueError, match="n: expected a value >= 1"):
        generate(0, seed=0)
    bad = dict(params)
    del bad["pose"]
    with pytest.raises(ValueError, match=r"params: expected keys .* missing \['pose'\]"):
        render(bad, 64)
    bad = {k: v.clone() for k, v in params.items()}
    bad["pose"][1, 2, 0] = 3.0  # index PIP flexion 172 degrees
    with pytest.raises(ValueError, match=r"params\['pose'\]: expected finger angles within"):
        render(bad, 64)
    bad = {k: v.clone() for k, v in params.items()}
    bad["trans"][0, 1] = float("nan")
    with pytest.raises(ValueError, match=r"params\['trans'\]: expected finite"):
        render(bad, 64)
    bad = {k: v.clone() for k, v in params.items()}
    bad["shape"][0, 0] = 5.0
    with pytest.raises(ValueError, match=r"params\['shape'\]: expected values in \[-3, 3\]"):
        render(bad, 64)
    bad = {k: v[:1] if k == "skin" else v for k, v in params.items()}
    with pytest.raises(ValueError, match=r"params\['skin'\]: expected shape \(2, 3\)"):
        render(bad, 64)
    bad = {k: v.float() if k == "left" else v for k, v in params.items()}
    with pytest.raises(TypeError, match=r"params\['left'\]: expected a bool tensor"):
        render(bad, 64)
    assert set(PARAM_SHAPES) == set(params)


def test_soften_equals_a_replicate_padded_conv():
    from handlab.synth.sensor import soften as _soften

    x = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    k = torch.tensor([0.25, 0.5, 0.25])
    kern = (k[:, None] * k[None]).expand(3, 1, 3, 3)
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kern, groups=3
    )
    torch.testing.assert_close(_soften(x), ref, atol=1e-6, rtol=0)


def test_crease_shadow_equals_a_min_pool():
    from handlab.synth.renderer import _crease_shadow

    z = 300 + 100 * torch.rand(2, 24 * 24, generator=torch.Generator().manual_seed(0))
    z[:, ::7] = float("inf")  # background pixels
    zz = torch.where(torch.isfinite(z), z, torch.full_like(z, 1e4)).reshape(2, 1, 24, 24)
    nearest = -torch.nn.functional.max_pool2d(-zz, 5, stride=1, padding=2)
    ref = (1 - 0.4 * ((zz - nearest) / 25).clamp(0, 1)).reshape(2, -1)
    torch.testing.assert_close(_crease_shadow(z, 24), ref)
    assert float(ref.min()) < 0.7  # the test pattern does darken some pixels


def test_largest_size_renders_and_agrees_with_the_smallest():
    params = sample_params(1, torch.Generator().manual_seed(4))
    small, big = render(params, 64), render(params, 512)
    assert big["image"].shape == (1, 3, 512, 512)
    # pixel centres at integers: x_512 = 8 x_64 + 3.5
    torch.testing.assert_close(big["keypoints"], 8 * small["keypoints"] + 3.5, atol=1e-2, rtol=0)
    assert abs(float(big["mask"].mean() - small["mask"].mean())) < 0.01


def _posed(template: str, global_rot: list[float]) -> dict:
    from handlab.synth.poses import template_pose

    params = sample_params(1, torch.Generator().manual_seed(0), occluders=0.0)
    params["pose"] = template_pose(template)[None].clone()
    params["pose"][0, 0] = torch.tensor(global_rot)
    params["shape"] = torch.zeros(1, 10)
    params["left"] = torch.zeros(1, dtype=torch.bool)
    params["trans"] = torch.tensor([[0.0, -90.0, 500.0]])
    params["camera"] = torch.tensor([[1.4, 1.4, 0.0, 0.0]])
    return params


def test_self_occlusion_follows_the_anatomy():
    import math

    # a flat open hand is fully visible from the back (identity: palm faces away) and the front
    for rot in ([0.0, 0.0, 0.0], [0.0, math.pi, 0.0]):
        out = render(_posed("open", rot), 128)
        assert out["visibility"].sum() == 21, rot
    # a fist seen from the back hides the four fingertips curled under the palm
    out = render(_posed("fist", [0.0, 0.0, 0.0]), 128)
    tips = [8, 12, 16, 20]
    assert out["visibility"][0, tips].sum() == 0
    assert out["visibility"][0, [5, 9, 13, 17]].sum() == 4  # the knuckles face the camera
