"""Props (sleeves, held objects, truncation, creases and nails, long forearms) and per-effect
randomisation: opt-in, drawn last, and each one changes what it claims to and nothing else."""

import pytest
import torch

from handlab.synth import SceneOptions, generate, render, sample_params
from handlab.synth.props import (
    PROP_SHAPES,
    crease_factor,
    crease_strength,
    long_forearm,
    nail_colors,
)
from handlab.synth.renderer import hand_geometry

N, SIZE, SEED = 12, 96, 5


@pytest.fixture(scope="module")
def plain():
    return generate(N, seed=SEED, size=SIZE, extras=True)


def _render(**options):
    return generate(N, seed=SEED, size=SIZE, extras=True, **options)


def test_off_by_default_and_drawn_last():
    g = torch.Generator
    plain = sample_params(4, g().manual_seed(0))
    assert not set(PROP_SHAPES) & set(plain)
    zero = sample_params(4, g().manual_seed(0), sleeves=0.0, held=0.0, truncation=0.0)
    assert set(zero) == set(plain) and all(torch.equal(zero[k], plain[k]) for k in plain)
    with_props = sample_params(4, g().manual_seed(0), sleeves=1.0, details=1.0)
    assert all(torch.equal(with_props[k], plain[k]) for k in plain)  # only new keys
    with pytest.raises(ValueError, match="sleeves: expected a value in"):
        SceneOptions(sleeves=1.5)
    with pytest.raises(ValueError, match="randomize_parts: expected a tuple of some of"):
        SceneOptions(randomize_parts=("photo", "fog"))


def test_sleeve_covers_the_forearm_behind_the_wrist(plain):
    out = _render(sleeves=1.0)
    colour = out["params"]["sleeve"][:, 3:6]
    covered = (plain["mask"] > 0) & (out["mask"] == 0)  # forearm pixels the sleeve took
    assert int((covered.flatten(1).sum(1) > 0).sum()) >= N - 2  # the forearm is mostly in view
    for i in range(N):
        pix = out["image"][i][:, covered[i, 0]]  # (3, m)
        if pix.shape[1] < 20:
            continue
        chroma = pix.mean(1) / pix.mean(1).sum()
        torch.testing.assert_close(chroma, colour[i] / colour[i].sum(), atol=0.06, rtol=0)
    # the hand itself keeps its pixels and its joints: the sleeve starts behind the wrist
    assert bool(((out["mask"] > 0) <= (plain["mask"] > 0)).all())
    assert float((out["visibility"] == plain["visibility"]).float().mean()) > 0.97


def test_long_forearm_extends_the_stub_and_changes_only_arm_pixels(plain):
    out = _render(forearm=1.0)
    f = out["params"]["forearm"]
    assert bool((f[:, 0] == 1).all()) and bool(((f[:, 1] >= 2.5) & (f[:, 1] <= 4.0)).all())
    # labels are the plain scene's; visibility (a depth test at each joint) changes for a few
    # joints: the longer arm hides some, the thicker one moves the skin around the wrist
    for key in ("keypoints", "xyz"):
        assert torch.equal(out[key], plain[key]), key
    assert float((out["visibility"] == plain["visibility"]).float().mean()) > 0.95
    # the mask only gains pixels (the longer, thicker arm)
    gained = (out["mask"] > 0) & (plain["mask"] == 0)
    assert bool(((plain["mask"] > 0) <= (out["mask"] > 0)).all())
    assert int((gained.flatten(1).sum(1) > 0).sum()) >= N // 2  # most stubs ended in view
    # the forearm capsule is the plain one scaled about the wrist end; the rest is unchanged
    params = {k: v for k, v in out["params"].items() if k != "forearm"}
    short, long = hand_geometry(params), hand_geometry(out["params"])
    torch.testing.assert_close(long["start"], short["start"])
    torch.testing.assert_close(long["end"][:, :-1], short["end"][:, :-1])
    axis = lambda g: g["end"][:, -1] - g["start"][:, -1]  # noqa: E731
    torch.testing.assert_close(axis(long), axis(short) * f[:, 1:2])
    torch.testing.assert_close(long["radius"][:, -1], short["radius"][:, -1] * f[:, 2])
    off = {**out["params"], "forearm": f * torch.tensor([0.0, 1.0, 1.0])}  # drawn, switched off
    assert torch.equal(long_forearm(off, short)["end"], short["end"])


def test_held_object_is_in_the_palm_and_occludes_joints(plain):
    out = _render(held=1.0, occluders=0.0)
    params = out["params"]
    assert bool(params["occ_on"][:, 0].all()) and not bool(params["occ_on"][:, 1:].any())
    # the object's centre lies within a hand's reach of the knuckles (joints 5, 9, 13, 17)
    knuckles = out["xyz"][:, [5, 9, 13, 17]].mean(1)
    assert float((params["occ_center"][:, 0] - knuckles).norm(dim=-1).max()) < 70.0
    # fingers close around it: the PIP flexion is a grasp's, larger than in most plain poses
    pip = params["pose"][:, [2, 5, 8, 11], 0]  # index, middle, ring, little PIP rows
    assert float(pip.mean()) > 0.7
    hidden = (out["occlusion"] > 0.5).any(1)
    assert int(hidden.sum()) >= N // 2
    assert float(out["occluder_mask"].mean()) > 0.01
    # the joint centroid stays where the scene framed it (same camera, near the same pixel)
    shift = (out["keypoints"].mean(1) - plain["keypoints"].mean(1)).norm(dim=-1)
    assert float(shift.median()) < 0.15 * SIZE


def test_truncation_moves_joints_out_of_the_image_and_marks_them_hidden(plain):
    out = _render(truncation=1.0)
    torch.testing.assert_close(out["xyz"], plain["xyz"])  # only the camera moved
    kp = torch.round(out["keypoints"])
    outside = ((kp < 0) | (kp >= SIZE)).any(-1)  # (N, 21)
    before = (torch.round(plain["keypoints"]) < 0) | (torch.round(plain["keypoints"]) >= SIZE)
    assert int(outside.any(1).sum()) >= N // 2
    assert int(outside.sum()) > int(before.any(-1).sum()) + N
    assert bool((out["visibility"][outside] == 0).all())


def test_details_darken_joints_and_change_only_the_hand(plain):
    out = _render(details=1.0)
    torch.testing.assert_close(out["mask"], plain["mask"])
    far = torch.nn.functional.max_pool2d(plain["mask"] + plain["occluder_mask"], 9, 1, 4) == 0
    far = far.expand_as(out["image"])
    torch.testing.assert_close(out["image"][far], plain["image"][far])
    hand = (plain["mask"] > 0).expand_as(out["image"])
    assert float(out["image"][hand].mean()) < float(plain["image"][hand].mean())


def test_crease_and_nail_helpers():
    params = {"details": torch.tensor([[1.0, 0.3, 0.9, 0.8, 0.7], [0.0, 0.3, 0.1, 0.1, 0.1]])}
    torch.testing.assert_close(crease_strength(params), torch.tensor([0.3, 0.0]))
    s, length = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([30.0, 30.0, 10.0])
    got = crease_factor(torch.full((3,), 0.3), s, length)
    torch.testing.assert_close(got, torch.tensor([0.7, 1.0, 0.7]))
    default = torch.tensor([0.93, 0.80, 0.78])
    colors = nail_colors(params, default)
    torch.testing.assert_close(colors, torch.stack([torch.tensor([0.9, 0.8, 0.7]), default]))


def test_randomize_parts_switch_effects_off(plain):
    full = sample_params(4, torch.Generator().manual_seed(1), randomize=0.8)
    same = sample_params(
        4, torch.Generator().manual_seed(1), randomize=0.8,
        randomize_parts=("photo", "skin", "camera"),
    )  # fmt: skip
    assert all(torch.equal(full[k], same[k]) for k in full)
    skin = _render(randomize=1.0, randomize_parts=("skin",))
    far = torch.nn.functional.max_pool2d(plain["mask"], 5, 1, 2) == 0  # beyond the softening
    off_hand = far.expand_as(plain["image"])
    # no photo, no camera effect: away from the hand the plain image, to the bit
    assert torch.equal(skin["image"][off_hand], plain["image"][off_hand])
    on_hand = (plain["mask"] > 0).expand_as(plain["image"])
    assert float((skin["image"][on_hand] - plain["image"][on_hand]).abs().mean()) > 0.005


def test_nails_sit_at_the_fingertips_in_the_drawn_colour():
    params = sample_params(N, torch.Generator().manual_seed(SEED), details=1.0, occluders=0.0)
    white, dark = dict(params), dict(params)
    white["details"], dark["details"] = params["details"].clone(), params["details"].clone()
    white["details"][:, 2:5], dark["details"][:, 2:5] = 1.0, 0.2
    a, b = render(white, SIZE), render(dark, SIZE)
    changed = (a["image"] - b["image"]).abs().amax(1) > 0.05  # (N, H, W) nail pixels
    assert bool((a["image"].mean(1)[changed] > b["image"].mean(1)[changed]).all())
    assert int(changed.flatten(1).any(1).sum()) >= N // 2  # most hands show a nail (10 of 12)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    tips = a["keypoints"][:, [4, 8, 12, 16, 20]]  # (N, 5, 2)
    for i in range(N):
        pix = torch.stack([xs[changed[i]], ys[changed[i]]], -1).float()  # (m, 2)
        if len(pix):
            nearest = torch.cdist(pix, tips[i]).amin(1)  # px to the nearest fingertip
            assert float(nearest.median()) < 0.06 * SIZE
