"""The one model contract, over the whole registry (timm's ``test_models.py`` idea): CPU, batch 2,
small configs; output shapes, no NaN, every parameter receives a gradient, ``decode`` consistent
with ``forward``, bad input rejected with a clear error."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from handlab.codecs import GaussianHeatmap
from handlab.models import PoseModel, create, list_models
from handlab.models.base import INPUT_KINDS, ModelContract, check_pose_model, contract
from handlab.training.data import model_inputs

B = 2
# Small configs so the whole registry runs in seconds; defaults are built in test_defaults.
SMALL: dict[str, dict] = {
    "simplebaseline": {"head_width": 32, "input_size": 64},
    "regression": {"backbone": "resnet18", "input_size": 64},
    "integral": {"head_width": 32, "input_size": 64},
    "cpm": {"features": 32, "input_size": 64},
    "hrnet_small": {"width": 8, "input_size": 64},
    "detnet": {"head_width": 32, "input_size": 64},
    "lifting": {"hidden": 64},
    "iknet": {"hidden": 32},
    "handoccnet": {"width": 16, "heads": 2, "input_size": 64},
    "deformer": {"T": 3, "width": 32, "heads": 2, "input_size": 64},
    "mediapipe_hand": {"variant": "lite"},  # fixed 224 px input; the full variant is larger
    "transpose": {"d_model": 32, "heads": 2, "layers": 1, "feedforward": 64, "input_size": 64},
    "rle": {"input_size": 64, "flow_hidden": 16},
    "handmodel_regression": {"input_size": 64},
    "meshgcn": {"input_size": 64, "head_width": 16, "channels": (16, 8, 8, 8)},
    "weak3d": {"input_size": 64, "head_width": 16, "hidden": 32},
}


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = SMALL.get(name, {})
    return create(name, **config)


def example_input(model: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
    """A batch of the model's input kind (images in [0, 1], depth in mm, joints in px / mm)."""
    declared = contract(model)
    kind = declared.input_kind
    size = declared.input_size or getattr(getattr(model, "config", None), "input_size", 64)
    if kind == "keypoints":
        return torch.rand(B, 21, 2, generator=generator) * 128
    if kind == "xyz":
        return torch.randn(B, 21, 3, generator=generator) * 40 + torch.tensor([0.0, 0.0, 500.0])
    if kind == "depth":
        return 300 + 400 * torch.rand(B, 1, size, size, generator=generator)
    if kind == "clip":  # a clip model (Deformer): (B, T, 3, S, S)
        return torch.rand(B, model.config.T, 3, size, size, generator=generator)
    if kind == "rgb":
        return torch.rand(B, 3, size, size, generator=generator)
    raise AssertionError(f"{type(model).__name__}: add an example input for kind {kind!r}")


@pytest.fixture(params=list_models())
def name(request) -> str:
    return request.param


def test_registry_lists_the_rgb_families():
    want = {"simplebaseline", "regression", "integral", "cpm", "hrnet_small", "detnet"}
    assert want | {"lifting", "iknet"} <= set(list_models())


def test_contract(name):
    model = _build(name)
    g = torch.Generator().manual_seed(1)
    x = example_input(model, g)
    out = model(x)
    assert isinstance(out, dict)
    for key, value in out.items():
        assert torch.isfinite(value).all(), f"{name}: {key} has NaN/inf"
        assert value.shape[0] == B, f"{name}: {key} batch {value.shape[0]}"
    if model.input_kind in ("rgb", "depth", "keypoints", "clip"):
        assert out["keypoints"].shape == (B, 21, 2)
    if model.is_3d:
        assert out["xyz"].shape == (B, 21, 3)
        torch.testing.assert_close(out["xyz"][:, 0], torch.zeros(B, 3), atol=1e-4, rtol=0)
    # Every parameter receives a (finite, non-zero) gradient from the outputs. A fixed random
    # projection, not a plain sum: a sum is blind to BatchNorm's scale (its output has zero mean).
    total = sum(
        (v * torch.randn(v.shape, generator=g)).sum() for v in out.values() if v.requires_grad
    )
    total.backward()
    # A model may declare parameters its loss alone trains (RLE's flow); its own test checks them.
    loss_only = tuple(getattr(model, "loss_only_parameters", ()))
    for pname, p in model.named_parameters():
        if loss_only and pname.startswith(loss_only):
            continue
        assert p.grad is not None, f"{name}: {pname} received no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a NaN gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


def test_declared_contract(name):
    """Every model declares the contract in ``models.base`` (issue 20): a PoseModel whose
    ``contract`` reads its own attributes, a valid input kind the batch can feed, a clip length
    exactly for clip models, depth read inside the mask where declared."""
    model = _build(name)
    assert isinstance(model, PoseModel)
    declared = check_pose_model(model)
    assert isinstance(declared, ModelContract)
    assert declared.input_kind in INPUT_KINDS and declared.input_kind == model.input_kind
    assert declared.is_3d == model.is_3d and declared.num_joints == model.num_joints == 21
    assert (declared.clip_length is not None) == (declared.input_kind == "clip")
    assert declared.masked_input == (declared.input_kind == "depth" and name in ("a2j", "v2v"))
    x = example_input(model, torch.Generator().manual_seed(5))
    batch = {declared.batch_key: x}
    if declared.masked_input:
        batch["mask"] = torch.zeros(x.shape[0], *x.shape[-2:])
    fed = model_inputs(model, batch)
    assert torch.equal(fed, torch.zeros_like(x) if declared.masked_input else x)
    if declared.input_size is not None:
        assert x.shape[-1] == declared.input_size
    model(x)  # the declared input is what forward takes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_model_runs_on_cuda():
    """Forward and backward of the whole registry on CUDA: catches tensors a forward makes on the
    CPU (V2V's pixel grid was one, found when the zoo's V2V was first trained on a GPU). CI has no
    GPU; this runs wherever one is present."""
    for name in list_models():
        model = _build(name).cuda()
        x = example_input(model, torch.Generator().manual_seed(1)).cuda()
        out = model(x)
        assert all(v.device.type == "cuda" for v in out.values()), name
        sum(v.float().sum() for v in out.values() if v.requires_grad).backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {pname}"


def test_decode_is_consistent_and_differentiable(name):
    model = _build(name).eval()
    x = example_input(model, torch.Generator().manual_seed(2))
    if model.input_kind in ("rgb", "depth", "clip"):
        x.requires_grad_(True)
    out = model(x)
    dec = model.decode(out)
    for key in ("keypoints", "xyz"):
        if key not in dec:
            continue
        assert dec[key].shape == out[key].shape
        if "heatmaps" in out and key == "keypoints" and name != "integral":
            # forward: the codec's argmax decoder; decode: its local soft-argmax (radius 3) around
            # the same argmax. Untrained maps are flat noise, so they agree only to the window.
            stride = x.shape[-1] / out["heatmaps"].shape[-1]
            assert (dec[key] - out[key]).abs().max() <= 3.5 * stride
        else:
            torch.testing.assert_close(dec[key], out[key], atol=1e-4, rtol=1e-4)
    if x.requires_grad:
        key = "xyz" if model.is_3d else "keypoints"
        (grad,) = torch.autograd.grad(dec[key].sum(), x)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


HEATMAP_FAMILIES = [
    "simplebaseline",
    "cpm",
    "hrnet_small",
    "detnet",
    "transpose",
    "meshgcn",
    "weak3d",
]


@pytest.mark.parametrize("family", HEATMAP_FAMILIES)
def test_decoders_agree_on_clean_peaks(family):
    """On clean Gaussian peaks (what training aims at) decode and the forward decoder agree."""
    model = _build(family)
    g = torch.Generator().manual_seed(3)
    keypoints = 8 + torch.rand(B, 21, 2, generator=g) * 48  # inside a 64 px input
    stride = model.stride
    codec = GaussianHeatmap((64 // stride, 64 // stride), stride=stride, sigma=model.config.sigma)
    heatmaps, _ = codec.encode(keypoints)
    soft = model.decode({**_fake_3d(heatmaps), "heatmaps": heatmaps})["keypoints"]
    hard, _ = codec.decode(heatmaps, model.config.decoder)
    torch.testing.assert_close(soft, keypoints, atol=0.05, rtol=0)
    assert (hard - soft).abs().max() <= 0.25 * stride + 1e-4  # the quarter rule's own error


def _fake_3d(heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
    b, j, h, w = heatmaps.shape
    return {"location_maps": torch.zeros(b, j, 3, h, w)}


@pytest.mark.parametrize(
    "name", sorted(SMALL.keys() & {*HEATMAP_FAMILIES, "regression", "integral", "rle"})
)
def test_rgb_models_reject_bad_images(name):
    model = _build(name)
    size = model.config.input_size
    with pytest.raises(ValueError, match="images: expected shape"):
        model(torch.rand(B, 1, size, size))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((B, 3, size, size), float("nan")))
    with pytest.raises(TypeError, match="images"):
        model(torch.rand(B, 3, size, size).numpy())
    with pytest.raises(ValueError, match="images: expected H"):
        model(torch.rand(B, 3, size + 1, size))


@pytest.mark.parametrize("name", ["lifting", "iknet"])
def test_joint_models_reject_bad_joints(name):
    model = _build(name)
    arg = "keypoints" if name == "lifting" else "xyz"
    with pytest.raises(ValueError, match=f"{arg}: expected shape"):
        model(torch.rand(B, 20, 3))
    width = 2 if name == "lifting" else 3
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((B, 21, width), float("nan")))


@pytest.mark.parametrize("name", ["simplebaseline", "regression", "cpm", "detnet", "lifting"])
def test_loss_rejects_a_batch_without_its_keys(name):
    model = _build(name)
    x = example_input(model, torch.Generator().manual_seed(4))
    out = model(x)
    with pytest.raises(ValueError, match="batch: expected key"):
        model.loss(out, {"image": x})
    with pytest.raises(TypeError, match="batch"):
        model.loss(out, [x])


def test_configs_are_frozen_and_unknown_options_raise():
    model = _build("simplebaseline")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.head_width = 8
    with pytest.raises(ValueError, match="no_such_option"):  # handlab's InputError
        create("simplebaseline", no_such_option=1)
    with pytest.raises(ValueError, match="backbone"):
        create("simplebaseline", backbone="resnet7")
    with pytest.raises(ValueError, match="head_layers"):
        create("simplebaseline", head_layers=4)
    with pytest.raises(ValueError, match="decoder"):
        create("hrnet_small", decoder="median")
    with pytest.raises(ValueError, match="input_size"):
        create("regression", input_size=100)
