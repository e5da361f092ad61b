"""MediaPipe Hands port: TF 'SAME' padding, the shipped weights against the TFLite interpreter's
committed outputs on real crops, decode, PoseIG and the randomisation test on the real model.

``data/mediapipe_reference.npz`` holds four 224 px crops (two InterHand2.6M hands, CC BY-NC 4.0,
plain and upright; see ``data/README.md``) and the interpreter's outputs on them, written by
``benchmarks/mediapipe_real_hands.py --reference``. Two optional dev tests at the end: one
re-runs the interpreter and the conversion where ``ai-edge-litert`` (or ``tflite-runtime``), the
``tflite`` parser and the mediapipe 0.10.14 wheel (``HANDLAB_MEDIAPIPE_WHEEL``) are available;
one (always run) re-scores the 32 real development hands (``tests/data/real_hands``, or
``HANDLAB_REAL_HANDS``) against the cards and the 0.80 floor.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _overfit import loss_curve

from handlab import cli, zoo
from handlab.attribution.engine import poseig
from handlab.attribution.indices import index_table
from handlab.attribution.randomization import randomization_test, randomization_units
from handlab.models import create
from handlab.models.mediapipe import SameConv2d
from handlab.zoo import mediapipe as zm

REFERENCE = Path(__file__).parent / "data" / "mediapipe_reference.npz"
VARIANTS = ("full", "lite")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return zm.read_reference(REFERENCE)


def _images(reference: dict[str, np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(reference["images"]).permute(0, 3, 1, 2).contiguous()


@pytest.mark.parametrize(("size", "kernel", "stride"), [(8, 3, 2), (8, 5, 2), (7, 5, 2), (6, 3, 1)])
def test_same_padding_matches_tensorflow_rule(size, kernel, stride):
    """TF 'SAME': out = ceil(in / s), pad total = (out - 1) s + k - in, the odd pixel after."""
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, kernel, stride=stride)
    x = torch.randn(1, 2, size, size)
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before, after = total // 2, total - total // 2
    ref = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride)
    torch.testing.assert_close(conv(x), ref)
    assert conv(x).shape[-2:] == (out, out)
    if stride == 2 and size % 2 == 0 and kernel == 3:
        assert (before, after) == (0, 1)  # the uneven pad: nothing at the top / left
        symmetric = F.conv2d(x, conv.weight, conv.bias, stride, padding=kernel // 2)
        assert not torch.allclose(conv(x), symmetric)  # what nn.Conv2d's padding would give


def test_both_variants_have_the_published_sizes():
    sizes = {
        v: sum(p.numel() for p in create("mediapipe_hand", variant=v).parameters())
        for v in VARIANTS
    }
    assert sizes == {"full": 2_715_680, "lite": 1_011_712}  # the .tflite weights, counted
    with pytest.raises(ValueError, match="variant"):
        create("mediapipe_hand", variant="heavy")
    with pytest.raises(ValueError, match="input_size"):
        create("mediapipe_hand", input_size=256)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shipped_weights_match_the_interpreter_on_real_crops(variant, reference):
    model = zoo.load(f"mediapipe_hand_{variant}")
    ours = zm.port_outputs(model, reference["images"])
    theirs = {k: reference[f"{variant}_{k}"] for k in ours}
    diff = zm.max_differences(ours, theirs)
    assert diff["landmarks_px"] < 1e-3, diff
    assert diff["world_mm"] < 1e-2 and diff["presence"] < 1e-4 and diff["handedness"] < 1e-4
    assert model.card["licence"] == "Apache-2.0" and model.card["source"]["version"] == "0.10.14"
    for name in model.card["licence_files"]:  # the licence ships next to the weights
        assert (zoo.ZOO_DIR / name).is_file()


def test_decode_follows_the_contract(reference):
    model = zoo.load("mediapipe_hand_lite")
    x = _images(reference)[:2].requires_grad_(True)
    out = model(x)
    dec = model.decode(out)
    # pixel centres at integers: MediaPipe's x, y minus half a pixel
    torch.testing.assert_close(dec["keypoints"], out["landmarks"][..., :2] - 0.5)
    world = out["world_landmarks"]
    torch.testing.assert_close(dec["xyz"], 1000 * (world - world[:, :1]))
    assert dec["xyz"][:, 0].abs().max() == 0 and 50 < dec["xyz"].norm(dim=-1).max() < 300  # mm
    (grad,) = torch.autograd.grad(dec["keypoints"].sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert ((out["presence"] > 0) & (out["presence"] < 1)).all()


def test_rejects_other_input_sizes():
    model = create("mediapipe_hand", variant="lite")
    with pytest.raises(ValueError, match=r"images: expected H, W = \(224, 224\)"):
        model(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="images: expected shape"):
        model(torch.rand(1, 1, 224, 224))


def test_loss_is_zero_at_the_truth_and_rejects_bad_batches(reference):
    model = zoo.load("mediapipe_hand_lite")
    out = model(_images(reference)[:1])
    batch = {"keypoints": out["keypoints"].detach(), "visibility": torch.ones(1, 21)}
    loss, logs = model.loss(out, {**batch, "xyz": out["xyz"].detach()})
    assert float(loss.detach()) == 0 and set(logs) == {"l2_2d", "l2_3d"}
    loss, _ = model.loss(out, {**batch, "keypoints": batch["keypoints"] + 22.4})
    assert float(loss.detach()) == pytest.approx(
        2 * 0.1**2, rel=1e-4
    )  # 22.4 px = 0.1 of 224, x and y
    with pytest.raises(ValueError, match="batch: expected key"):
        model.loss(out, {"image": 1})


def test_fine_tuning_lowers_the_loss_on_a_fixed_batch(reference):
    """Trainable like every family: a few SGD steps from the shipped weights towards shifted
    targets lower the loss."""
    model = zoo.load("mediapipe_hand_lite").train()
    x = _images(reference)[:2]
    with torch.no_grad():
        out = model(x)
    batch = {
        "keypoints": out["keypoints"] + 10.0,
        "visibility": torch.ones(2, 21),
        "xyz": out["xyz"] * 1.1,
    }
    # The published weights have large gains: SGD at 1e-5 learns, SGD at 1e-4 and Adam at 1e-5
    # diverged on this batch (measured), so loss_curve runs SGD here, not its default Adam.
    losses, logs = loss_curve(model, [x], batch, steps=4, lr=1e-5, optimizer=torch.optim.SGD)
    assert losses[-1] < 0.6 * losses[0], losses
    assert set(logs) == {"l2_2d", "l2_3d"}


@pytest.mark.slow
def test_poseig_and_indices_on_a_real_crop_focus_on_the_hand(reference):
    """PoseIG (2D, blur path) on the upright crop of a real hand: finite maps, most of each
    joint's attribution inside the hand's box, and the indices computed from the maps."""
    model = zoo.load("mediapipe_hand_lite")
    x = _images(reference)[3:4]  # upright crop
    with torch.no_grad():
        target = model(x)["keypoints"]
    result = poseig(model, x, target, path="blur", steps=16, folds=None)
    assert result.maps.shape == (1, 21, 224, 224) and torch.isfinite(result.maps).all()
    assert torch.isfinite(result.delta).all()
    lo = target[0].amin(0).floor().int().clamp(0, 223)
    hi = target[0].amax(0).ceil().int().clamp(0, 223)
    maps = result.maps[0].abs()  # (21, 224, 224)
    inside = maps[:, lo[1] : hi[1] + 1, lo[0] : hi[0] + 1].sum((1, 2)) / maps.sum((1, 2))
    box_share = float((hi - lo + 1).prod()) / 224**2
    assert inside.median() > 2 * box_share, (inside.tolist(), box_share)
    table = index_table(result.maps, keypoints=target)
    assert len(table) == 21 and table[["DI", "LI"]].notna().all().all()


@pytest.mark.slow
def test_randomisation_changes_the_maps_of_the_real_model(reference):
    """Cascading randomisation from the heads down (17 conv / linear layers at a time): the
    PoseIG maps decorrelate; the units have readable names."""
    model = zoo.load("mediapipe_hand_lite")
    names = [name for name, _ in randomization_units(model, "block")]
    assert names[:2] == ["stem", "blocks.0"] and names[-4:] == [
        "landmarks",
        "presence",
        "handedness",
        "world_landmarks",
    ]
    x = _images(reference)[3:4]
    with torch.no_grad():
        target = model(x)["keypoints"]
    table = randomization_test(
        model, x, target, unit=17, path="straight", baseline="black", steps=4
    )
    rho = table[table.metric == "spearman_abs"].set_index("step")["value"]
    assert len(rho) == 4 and rho.iloc[0] == 1.0 and rho.iloc[-1] < 0.5, rho.tolist()


def test_import_errors_name_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        zm.import_mediapipe(zoo_dir=tmp_path)
    with pytest.raises(ValueError, match="wheel"):
        zm.import_mediapipe(wheel=tmp_path / "missing.whl", zoo_dir=tmp_path)
    fake = tmp_path / "mediapipe-0.10.21-cp311.whl"  # newer wheels hold no hand landmark model
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr("mediapipe-0.10.21.dist-info/METADATA", "Version: 0.10.21\n")
    with pytest.raises(ValueError, match="holds no mediapipe/modules/hand_landmark"):
        zm.tflite_from_wheel(fake, "full")
    with pytest.raises(ValueError, match="tflite"):
        zm.import_mediapipe(tflite=tmp_path / "hand_landmark_full.tflite", zoo_dir=tmp_path)


def test_cli_import_needs_exactly_one_source(tmp_path, capsys):
    with pytest.raises(SystemExit, match="exactly one of --wheel, --tflite"):
        cli.main(["zoo", "import-mediapipe"])
    # a missing wheel is the user's error: one line naming it, exit status 1, no traceback
    assert cli.main(["zoo", "import-mediapipe", "--wheel", str(tmp_path / "none.whl")]) == 1
    err = capsys.readouterr().err
    assert "wheel: expected a mediapipe .whl file" in err and "Traceback" not in err


def _interpreter_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        try:
            import tflite_runtime.interpreter  # noqa: F401
        except ImportError:
            return False
    return True


WHEEL = os.environ.get("HANDLAB_MEDIAPIPE_WHEEL", "")


@pytest.mark.skipif(not _interpreter_available(), reason="dev test: needs ai-edge-litert")
@pytest.mark.skipif(not Path(WHEEL).is_file(), reason="dev test: HANDLAB_MEDIAPIPE_WHEEL unset")
def test_dev_conversion_and_interpreter_reproduce_the_shipped_files(tmp_path, reference):
    """Where the interpreter, the tflite parser and the wheel are present: converting again gives
    the shipped weights bit for bit, and the interpreter still gives the committed outputs."""
    pytest.importorskip("tflite")
    from safetensors.torch import load_file

    paths = zm.import_mediapipe(
        wheel=WHEEL, zoo_dir=tmp_path, evaluate=False, check_images=reference["images"]
    )
    for path in paths:
        shipped = load_file(zoo.ZOO_DIR / path.name)
        again = load_file(path)
        assert shipped.keys() == again.keys()
        assert all(torch.equal(shipped[k], again[k]) for k in shipped)
        card = json.loads(path.with_suffix(".json").read_text())
        assert card["equivalence"]["landmarks_px"] < 1e-3
    for variant in VARIANTS:
        data, _, _ = zm.tflite_from_wheel(WHEEL, variant)
        live = zm.interpreter_outputs(data, reference["images"])
        stored = {k: reference[f"{variant}_{k}"] for k in live}
        assert zm.max_differences(live, stored)["landmarks_px"] < 1e-4


REAL_HANDS = Path(
    os.environ.get("HANDLAB_REAL_HANDS", Path(__file__).parents[1] / "data/real_hands")
)


@pytest.mark.slow
def test_real_hands_scores_reproduce_the_cards():
    """On the 32 real development hands (the repository's evaluation-only copy): the benchmark's
    PCK@0.2 reproduces the cards, and upright crops meet the issue's floor of 0.80. This is the
    accuracy floor of these real-trained models (the zoo guard does not hold their error on the
    synthetic split, which is not their domain)."""
    spec = importlib.util.spec_from_file_location(
        "mediapipe_real_hands", Path(__file__).parents[2] / "benchmarks/mediapipe_real_hands.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    hands = bench.load_hands(REAL_HANDS)
    assert len(hands) == 32
    for kind in ("plain", "upright"):
        crops, tforms = bench.make_crops(hands, kind == "upright")
        for variant in VARIANTS:
            model = zoo.load(f"mediapipe_hand_{variant}")
            score = bench.pck(bench.predict(model, crops, tforms), hands)
            assert score == pytest.approx(model.card["real_hands"][f"pck@0.2_{kind}"], abs=1e-6)
            if kind == "upright":
                assert score >= 0.80
