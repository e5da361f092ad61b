"""Training: config, schedule, augmentation geometry, batches, fit/resume, evaluate, the CLI."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from _resume import assert_same_weights, fit_interrupted
from _tiny_model import TINY, ToyHands, build_tiny
from safetensors.torch import load_file

from handlab.geometry import project
from handlab.models import registry
from handlab.synth import SyntheticHands
from handlab.training import loop
from handlab.training.augment import AugmentParams, apply_augment, sample_augment
from handlab.training.config import AugmentConfig, TrainConfig, lr_factor
from handlab.training.data import load_batch, step_indices
from handlab.training.evaluation import evaluate, format_table, predict

SIZE = 32


@pytest.fixture
def tiny(monkeypatch):
    """Register the tiny model and route data specs to the toy data set, for this test only."""
    monkeypatch.setitem(registry._BUILDERS, TINY, build_tiny)
    monkeypatch.setattr(loop, "open_split", lambda spec, split, size: ToyHands(split, size))


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        model=TINY,
        model_config={"size": SIZE},
        size=SIZE,
        steps=6,
        batch_size=4,
        lr=3e-3,
        val_every=3,
        ckpt_every=3,
        val_limit=8,
        test_limit=8,
        seed=7,
        augment=AugmentConfig(rotate_deg=20.0),
    )
    base.update(kw)
    return TrainConfig(**base)


# --- config and schedule -------------------------------------------------------------------


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(model="x", steps=0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(model="x", schedule="step")
    with pytest.raises(TypeError, match="data"):
        TrainConfig(model="x", data=ToyHands("train"))
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig.from_dict({"model": "x", "stpes": 3})


def test_config_round_trips_through_json():
    cfg = tiny_config(model_config={"size": SIZE, "width": 4})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_onecycle_matches_torch_onecyclelr():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=50, pct_start=0.3)
    for step in range(50):
        assert opt.param_groups[0]["lr"] == pytest.approx(
            0.1 * lr_factor(step, 50, "onecycle", 0.3)
        )
        opt.step()
        ref.step()


def test_cosine_schedule_warms_up_then_decays():
    f = [lr_factor(s, 100, "cosine", 0.1) for s in range(101)]
    assert f[0] == 0.0 and f[10] == 1.0 and f[100] == pytest.approx(0.0)
    assert all(a < b for a, b in itertools.pairwise(f[:11]))
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


# --- augmentation: keypoints move with pixels -------------------------------------------------


def _one(angle=0.0, scale=1.0, tx=0.0, ty=0.0) -> AugmentParams:
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return AugmentParams(t(angle), t(scale), t(tx), t(ty), t(1.0), t(1.0), t(1.0))


@pytest.mark.parametrize(
    "kw", [dict(angle=90.0), dict(scale=2.0), dict(tx=5.0, ty=-3.0), dict(angle=35.0, scale=1.3)]
)
def test_keypoint_lands_where_its_pixel_went(kw):
    s = 48
    image = torch.zeros(1, 3, s, s)
    x0, y0 = 27, 19  # pixel centres are integer coordinates in handlab
    image[0, :, y0 - 1 : y0 + 2, x0 - 1 : x0 + 2] = 1.0  # a 3x3 block centred on (x0, y0)
    batch = {"image": image, "keypoints": torch.tensor([[[float(x0), float(y0)]] * 21])}
    out = apply_augment(batch, _one(**kw))
    w = out["image"][0, 0]  # (s, s)
    ys, xs = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    centroid = torch.stack([(w * xs).sum(), (w * ys).sum()]) / w.sum()
    assert torch.allclose(out["keypoints"][0, 0], centroid, atol=0.05)


def test_known_rotation_moves_keypoint_analytically():
    # F.affine turns clockwise on screen: 90 degrees about the centre (23.5, 23.5) of 48 px
    # takes a point 10 px right of the centre to 10 px below it; scale 2 doubles the offset.
    batch = {"image": torch.zeros(1, 3, 48, 48), "keypoints": torch.tensor([[[33.5, 23.5]] * 21])}
    out = apply_augment(batch, _one(angle=90.0))
    assert torch.allclose(out["keypoints"][0, 0], torch.tensor([23.5, 33.5]), atol=1e-4)
    out = apply_augment(batch, _one(scale=2.0, tx=1.0))
    assert torch.allclose(out["keypoints"][0, 0], torch.tensor([44.5, 23.5]), atol=1e-4)


@pytest.mark.parametrize("kw", [dict(angle=-40.0), dict(angle=25.0, scale=1.2, tx=3.0, ty=-5.0)])
def test_xyz_and_K_move_with_the_image(kw):
    g = torch.Generator().manual_seed(1)
    s = 64
    K = torch.tensor([[[80.0, 0, 29.0], [0, 80.0, 35.5], [0, 0, 1]]])  # off-centre principal point
    xyz = torch.randn(1, 21, 3, generator=g) * 30 + torch.tensor([5.0, -8.0, 400.0])
    batch = {"image": torch.zeros(1, 3, s, s), "keypoints": project(xyz, K), "xyz": xyz, "K": K}
    out = apply_augment(batch, _one(**kw))
    assert torch.allclose(project(out["xyz"], out["K"]), out["keypoints"], atol=1e-3)
    assert torch.allclose(out["xyz"][..., 2], xyz[..., 2])
    assert not torch.allclose(out["keypoints"], batch["keypoints"], atol=1.0)


def test_out_of_frame_joints_lose_visibility_and_jitter_keeps_range():
    batch = {
        "image": torch.rand(1, 3, 32, 32),
        "keypoints": torch.tensor([[[2.0, 16.0]] + [[16.0, 16.0]] * 20]),
        "visibility": torch.ones(1, 21),
    }
    out = apply_augment(batch, _one(tx=-10.0))
    assert out["visibility"][0, 0] == 0 and out["visibility"][0, 1:].all()
    g = torch.Generator().manual_seed(0)
    params = sample_augment(3, g, AugmentConfig(brightness=0.9), size=32)
    batch3 = {k: v.expand(3, *v.shape[1:]) for k, v in batch.items()}
    img = apply_augment(batch3, params)["image"]
    assert img.min() >= 0 and img.max() <= 1 and not torch.equal(img[0], img[1])


def test_augment_is_replayable_and_checks_its_input():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    p1, p2 = sample_augment(4, g1, AugmentConfig(), 32), sample_augment(4, g2, AugmentConfig(), 32)
    assert torch.equal(p1.angle, p2.angle) and torch.equal(p1.saturation, p2.saturation)
    with pytest.raises(ValueError, match="params"):
        apply_augment({"image": torch.zeros(2, 3, 8, 8), "keypoints": torch.zeros(2, 21, 2)}, p1)
    with pytest.raises(ValueError, match="keypoints"):
        apply_augment({"image": torch.zeros(4, 3, 8, 8), "keypoints": torch.zeros(4, 21, 3)}, p1)


# --- batches by step ---------------------------------------------------------------------------


def test_step_indices_cover_each_epoch_once_and_replay():
    n, b = 10, 4
    seen = [i for s in range(5) for i in step_indices(s, n, batch_size=b, seed=3)]  # 2 epochs
    assert sorted(seen) == sorted(list(range(n)) * 2)
    assert step_indices(3, n, batch_size=b, seed=3) == step_indices(3, n, batch_size=b, seed=3)
    assert step_indices(0, n, batch_size=b, seed=3) != step_indices(0, n, batch_size=b, seed=4)
    with pytest.raises(ValueError, match="non-empty"):
        step_indices(0, 0, batch_size=b, seed=0)


def test_load_batch_stacks_tensor_fields():
    data = ToyHands("train", SIZE)
    batch = load_batch(data, [3, 1])
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and "meta" not in batch
    assert torch.equal(batch["keypoints"][1], data[1]["keypoints"])


# --- fit, checkpoints, resume ------------------------------------------------------------------


def test_fit_writes_run_folder(tiny, tmp_path):
    metrics = loop.fit(tiny_config(), tmp_path, progress=False)
    assert {"model.safetensors", "card.json", "metrics.jsonl", "checkpoint"} <= {
        p.name for p in tmp_path.iterdir()
    }
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["steps"] == 6 and card["seed"] == 7 and card["model"] == TINY
    assert card["metrics"]["epe_px"] == pytest.approx(metrics["epe_px"])
    assert card["wall_time_s"] >= 0 and card["machine"]["processes"] == 1
    native = loop.bf16_native(torch.device("cpu"))
    assert card["machine"]["bfloat16_autocast"] is native  # amp on: bf16 where the CPU has it
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [ln["step"] for ln in lines] == [3, 6]
    assert all(ln["train_loss"] > 0 and ln["val"]["epe_px"] > 0 for ln in lines)
    ckpt = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert ckpt == ["latest.json", "model-00000006.safetensors", "train-00000006.pt"]
    # a finished run is not trained further when its command is run again
    weights = load_file(tmp_path / "model.safetensors")
    assert loop.fit(tiny_config(), tmp_path, progress=False) == metrics
    again = load_file(tmp_path / "model.safetensors")
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2


def test_on_checkpoint_sees_every_checkpoint(tiny, tmp_path):
    seen = []
    loop.fit(
        tiny_config(), tmp_path, progress=False,
        on_checkpoint=lambda step, model: seen.append((step, model.head.weight.detach().clone())),
    )  # fmt: skip
    assert [s for s, _ in seen] == [3, 6]
    assert not torch.equal(seen[0][1], seen[1][1])
    assert torch.equal(seen[1][1], load_file(tmp_path / "model.safetensors")["head.weight"])


def test_training_reduces_the_error(tiny, tmp_path):
    cfg = tiny_config(steps=40, val_every=40, ckpt_every=40, lr=1e-2, test_limit=24)
    torch.manual_seed(cfg.seed)  # fit starts from these initial weights
    before = evaluate(build_tiny(size=SIZE), ToyHands("test", SIZE), batch_size=8)["epe_px"]
    after = loop.fit(cfg, tmp_path, progress=False)["epe_px"]
    assert after < 0.8 * before, (before, after)


def test_resume_after_interruption_is_bit_identical(tiny, tmp_path, monkeypatch):
    cfg = tiny_config(steps=8, val_every=4, ckpt_every=3)  # resume from 3, validate at 4 and 8
    full = loop.fit(cfg, tmp_path / "full", progress=False)
    # stopped after the checkpoint at 3 and the validation at 4 (replayed on resume)
    fit_interrupted(monkeypatch, cfg, tmp_path / "cut", at_step=5)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    resumed = loop.fit(cfg, tmp_path / "cut", progress=False)

    assert_same_weights(tmp_path / "full", tmp_path / "cut")
    assert resumed == full
    la = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    lb = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lb] == [4, 8]
    assert la == lb


def test_resume_refuses_a_different_config_and_restart_discards(tiny, tmp_path):
    loop.fit(tiny_config(steps=3), tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr"):
        loop.fit(tiny_config(steps=3, lr=0.5), tmp_path, progress=False)
    loop.fit(tiny_config(steps=3, lr=0.5), tmp_path, resume=False, progress=False)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["train_config"]["lr"] == 0.5


def test_init_starts_from_a_run_and_refuses_other_shapes(tiny, tmp_path):
    loop.fit(tiny_config(steps=3), tmp_path / "a", progress=False)
    saved = load_file(tmp_path / "a" / "model.safetensors")
    model = build_tiny(size=SIZE)
    assert not torch.equal(model.head.weight, saved["head.weight"])
    loop.load_init(model, str(tmp_path / "a"))
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    # a fine-tune at lr 0 keeps the starting weights, and the card records where they came from
    loop.fit(tiny_config(steps=1, lr=0.0, init=str(tmp_path / "a")), tmp_path / "b", progress=False)
    tuned = load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(tuned[k], saved[k]) for k in saved)
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card["train_config"]["init"] == str(tmp_path / "a")
    with pytest.raises(ValueError, match=r"init: .* do not fit TinyPose .*head\.weight"):
        loop.load_init(build_tiny(size=SIZE, width=4), str(tmp_path / "a"))
    with pytest.raises(TypeError, match="init"):
        tiny_config(init="")


def test_init_partial_starts_only_the_new_parameters_fresh(tiny, tmp_path):
    loop.fit(tiny_config(steps=3), tmp_path / "a", progress=False)
    saved = load_file(tmp_path / "a" / "model.safetensors")
    model = build_tiny(size=SIZE)
    model.extra = torch.nn.Parameter(torch.full((3,), 7.0))  # a head the source lacks
    with pytest.raises(ValueError, match=r"missing \['extra'\].*--init-partial"):
        loop.load_init(model, str(tmp_path / "a"))
    loop.load_init(model, str(tmp_path / "a"), partial=True)
    own = model.state_dict()
    assert all(torch.equal(own[k], saved[k]) for k in saved)
    assert torch.equal(model.extra.detach(), torch.full((3,), 7.0))
    # the other way round: the source's extra parameters are dropped, the rest copied
    smaller = build_tiny(size=SIZE)
    smaller.head = None  # a module the source has and this model lacks
    with pytest.raises(ValueError, match=r"unexpected \['head\.bias', 'head\.weight'\]"):
        loop.load_init(smaller, str(tmp_path / "a"))
    loop.load_init(smaller, str(tmp_path / "a"), partial=True)
    assert all(torch.equal(v, saved[k]) for k, v in smaller.state_dict().items())
    with pytest.raises(ValueError, match="other shapes"):  # partial is not a shape waiver
        loop.load_init(build_tiny(size=SIZE, width=4), str(tmp_path / "a"), partial=True)
    with pytest.raises(ValueError, match="init_partial: expected it only with init"):
        tiny_config(init_partial=True)
    # a checkpoint made before the field existed resumes (the field counts as its default)
    saved_config = tiny_config().to_dict()
    del saved_config["init_partial"]
    loop._check_same_config(tiny_config(), saved_config, tmp_path)
    with pytest.raises(ValueError, match="init_partial"):
        loop._check_same_config(tiny_config(init="x", init_partial=True), saved_config, tmp_path)


def test_fit_rejects_bad_arguments(tiny, tmp_path):
    with pytest.raises(TypeError, match="config"):
        loop.fit({"model": TINY}, tmp_path)
    with pytest.raises(ValueError, match="name"):
        loop.fit(tiny_config(model="no_such_model"), tmp_path, progress=False)


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_matches_a_naive_loop():
    torch.manual_seed(0)
    model = build_tiny(size=SIZE, with_xyz=True).eval()
    data = ToyHands("test", SIZE, n=10)
    m = evaluate(model, data, batch_size=4, limit=7)
    errs, vis = [], []
    for i in range(7):
        s = data[i]
        with torch.no_grad():
            out = model(s["image"][None])
        errs.append((out["keypoints"][0] - s["keypoints"]).norm(dim=-1))
        vis.append(s["visibility"])
    errs, vis = torch.stack(errs), torch.stack(vis)
    assert m["n"] == 7
    assert m["epe_px"] == pytest.approx(float((errs * vis).sum() / vis.sum()), rel=1e-5)
    assert m["per_joint"][8]["joint"] == "index_tip"
    assert m["per_joint"][8]["epe_px"] == pytest.approx(
        float((errs[:, 8] * vis[:, 8]).sum() / vis[:, 8].sum()), rel=1e-5
    )
    assert "mpjpe_mm" in m and "pa_mpjpe_mm" in m and "mpjpe_mm" in m["per_joint"][0]
    assert "index_tip" in format_table(m)


def test_predict_checks_arguments_and_keeps_mode():
    model = build_tiny(size=SIZE).train()
    p = predict(model, ToyHands("test", SIZE, n=5), batch_size=2)
    assert p["pred_keypoints"].shape == (5, 21, 2) and model.training
    with pytest.raises(TypeError, match="model"):
        predict("model", ToyHands("test", SIZE))
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, ToyHands("test", SIZE), batch_size=0)
    with pytest.raises(ValueError, match="limit"):
        predict(model, ToyHands("test", SIZE), limit=0)


# --- command line ------------------------------------------------------------------------------


def test_cli_train_then_evaluate(tiny, tmp_path, monkeypatch, capsys):
    from handlab import cli
    from handlab.commands import _resolve
    from handlab.training import data as train_data

    monkeypatch.setattr(train_data, "open_split", lambda spec, split, size: ToyHands(split, size))
    monkeypatch.setattr(_resolve, "resolve_data", lambda spec, split, size: ToyHands(split, size))
    run = tmp_path / "run"
    argv = [
        "train",
        "--model",
        TINY,
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--size",
        str(SIZE),
        "--val-every",
        "2",
        "--ckpt-every",
        "2",
        "--test-limit",
        "8",
        "--seed",
        "2",
        "--out",
        str(run),
        "--model-config",
        f"size={SIZE}",
        "width=4",
    ]
    assert cli.main(argv) == 0
    card = json.loads((run / "card.json").read_text())
    assert card["command"].startswith("handlab ") and card["model_config"] == {
        "size": SIZE,
        "width": 4,
    }
    assert card["train_config"]["seed"] == 2 and "epe" in capsys.readouterr().out
    out_json = tmp_path / "eval.json"
    argv = [
        "evaluate",
        "--model",
        str(run),
        "--size",
        str(SIZE),
        "--limit",
        "8",
        "--json",
        str(out_json),
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "index_tip" in printed and "epe_px" in printed
    assert json.loads(out_json.read_text())["epe_px"] == pytest.approx(card["metrics"]["epe_px"])


def test_cli_rejects_bad_model_config():
    from handlab.commands.train import parse_model_config

    assert parse_model_config(["a=[1, 2]", "b=x"]) == {"a": [1, 2], "b": "x"}
    with pytest.raises(ValueError, match="key=value"):
        parse_model_config(["width"])


# --- the real pieces: a registered model on the synthetic generator -----------------------------


def test_fit_simplebaseline_on_synthetic_data(tmp_path):
    from handlab.zoo import load_model

    cfg = TrainConfig(
        model="simplebaseline",
        model_config={"input_size": 64, "head_width": 32},
        size=64,
        steps=2,
        batch_size=4,
        val_every=2,
        ckpt_every=2,
        val_limit=4,
        test_limit=8,
        seed=1,
    )
    metrics = loop.fit(cfg, tmp_path, progress=False)
    assert metrics["n"] == 8 and 0 < metrics["epe_px"] < 100
    model = load_model(tmp_path)
    again = evaluate(model, SyntheticHands("test", size=64), batch_size=4, limit=8)
    assert again["epe_px"] == pytest.approx(metrics["epe_px"], rel=1e-4)
    # integral regression has SimpleBaseline's parameters: it can start from this run
    integral = registry.create("integral", input_size=64, head_width=32)
    loop.load_init(integral, str(tmp_path))
    assert torch.equal(integral.state_dict()["head.final.weight"], model.head.final.weight)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from handlab.training import checkpoint

    model = build_tiny(size=SIZE)
    checkpoint.save_checkpoint(tmp_path, 3, model, {"elapsed_s": 1.0})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.head.weight.add_(1.0)

    def crash(obj, path):
        open(path, "wb").write(b"partial")  # a half-written file, then the process dies
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(tmp_path, 6, model, {"elapsed_s": 2.0})
    fresh = build_tiny(size=SIZE)
    step, state = checkpoint.load_checkpoint(tmp_path, fresh)
    assert step == 3 and state == {"elapsed_s": 1.0}
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in saved.items())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "latest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"latest\.json: expected JSON naming the step"):
        checkpoint.load_checkpoint(tmp_path, fresh)


def test_cpu_autocast_only_where_bfloat16_is_native():
    from handlab.training.loop import autocast, bf16_native

    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 4)
    with autocast(True, cpu):
        out = layer(torch.ones(2, 4))
    assert out.dtype == (torch.bfloat16 if bf16_native(cpu) else torch.float32)
    with autocast(False, cpu):
        assert layer(torch.ones(2, 4)).dtype == torch.float32
    assert bf16_native(torch.device("cuda")) and not bf16_native(torch.device("meta"))


def test_lifting_gets_no_2d_metrics_for_its_own_input():
    from handlab.models import create
    from handlab.synth import SyntheticHands
    from handlab.training.evaluation import evaluate

    torch.manual_seed(0)
    metrics = evaluate(create("lifting"), SyntheticHands("val", size=64), batch_size=2, limit=2)
    assert "epe_px" not in metrics and metrics["mpjpe_mm"] > 0
    assert set(metrics["per_joint"][0]) == {"joint", "mpjpe_mm"}


def test_resume_with_another_thread_count_warns(tiny, tmp_path, monkeypatch):
    cfg = tiny_config(steps=6, ckpt_every=3)
    fit_interrupted(monkeypatch, cfg, tmp_path, at_step=4)
    threads = torch.get_num_threads()
    state = torch.load(next((tmp_path / "checkpoint").glob("train-*.pt")), weights_only=True)
    assert state["threads"] == threads
    try:
        torch.set_num_threads(threads + 1)
        with pytest.warns(RuntimeWarning, match=f"made with {threads} torch threads, resuming"):
            loop.fit(cfg, tmp_path, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_ten_steps_with_the_default_onecycle_schedule_train(tiny, tmp_path):
    cfg = tiny_config(steps=10, val_every=10, ckpt_every=10)  # warm-up 0.1 x 10 = one step
    assert cfg.schedule == "onecycle" and cfg.warmup == 0.1
    metrics = loop.fit(cfg, tmp_path, progress=False)
    assert metrics["n"] == 8 and (tmp_path / "model.safetensors").is_file()
