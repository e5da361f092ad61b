"""Benchmark: errors by per-joint occlusion bucket (0-25, 25-50, 50-75, 75-100 %), three tables.

Taught alongside chapters 06 (HandOccNet) and 07 (Deformer).

1. HandOccNet vs SimpleBaseline: 2D EPE (px) on single synthetic frames that all have occluders
   (and HandOccNet's root-relative MPJPE, mm).
2. Deformer vs its per-frame baseline (the same network, ``temporal=False``) vs that baseline
   plus plain temporal averaging over the clip (``handlab.postprocess.temporal_average``):
   root-relative MPJPE (mm) of the centre frame of synthetic clips with drifting occluders and
   motion blur, like seed 003's DexYCB table.
3. Deformer trained with maxMSE vs with plain MSE, the same clips (the seed's ablation).

Every number is measured here. With ``--steps N`` it first trains each variant for N steps
(SimpleBaseline and HandOccNet with ``handlab.train.fit`` on the synthetic split; the clip
models with a plain loop over freshly generated clips, same optimiser and schedule) into
``--out``; without, it evaluates the finished runs already in ``--out`` (and, for table 1,
zoo models of the same names), and says which are missing.

Run: ``python benchmarks/occlusion_tables.py --steps 300`` (64 px; CPU minutes per 100 steps are
printed) or ``python benchmarks/occlusion_tables.py`` to re-evaluate.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from handlab import zoo
from handlab.models import create
from handlab.occlusion import bucket_table
from handlab.postprocess import temporal_average
from handlab.synth import generate, generate_sequence
from handlab.train import TrainConfig, fit
from handlab.training.checkpoint import atomic_save_model, atomic_write_text
from handlab.training.config import lr_factor

TEST_SEED = 7_000_003  # distinct from the training streams (seed * 1_000_003 + step)
FRAME_MODELS = {  # table 1: name -> model config at --size
    "simplebaseline": {"head_width": 64},
    "handoccnet": {},
}
CLIP_MODELS = {  # tables 2 and 3: run name -> deformer config
    "deformer": {"loss": "maxmse"},
    "deformer_mse": {"loss": "mse"},
    "deformer_perframe": {"loss": "maxmse", "temporal": False},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=0, help="train each variant this long first")
    p.add_argument("--out", type=Path, default=Path("runs/occlusion_tables"))
    p.add_argument("--size", type=int, default=64, help="input side, px (multiple of 32)")
    p.add_argument("--batch-size", type=int, default=16, help="frames (table 1) or clips")
    p.add_argument("--T", type=int, default=7, help="frames per clip")
    p.add_argument("--test", type=int, default=256, help="test frames / test clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p.parse_args(argv)


def train_frame_model(name: str, args: argparse.Namespace) -> None:
    config = TrainConfig(
        model=name,
        model_config={**FRAME_MODELS[name], "input_size": args.size},
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        val_every=args.steps,
        val_limit=64,
        test_limit=64,
        ckpt_every=args.steps,
        seed=args.seed,
    )
    fit(config, args.out / name, resume=False, progress=False, command=_command(args))


def train_clip_model(name: str, args: argparse.Namespace) -> None:
    """The clip models' loop: fresh clips each step (occluders and blur at probability 0.5)."""
    config = {**CLIP_MODELS[name], "T": args.T, "input_size": args.size}
    torch.manual_seed(args.seed)
    model = create("deformer", **config)
    train = TrainConfig(model="deformer", steps=args.steps)  # the defaults fit uses
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, args.steps, train.schedule, train.warmup)
    )
    model.train()
    for step in range(args.steps):
        seed = args.seed * 1_000_003 + step
        batch = generate_sequence(
            args.batch_size, args.T, seed=seed, size=args.size, occluders=0.5, blur=0.5
        )
        loss, _ = model.loss(model(batch["image"]), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        opt.step()
        sched.step()
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out / "model.safetensors")
    card = {
        "model": "deformer",
        "model_config": config,
        "steps": args.steps,
        "seed": args.seed,
        "command": _command(args),
    }
    atomic_write_text(out / "card.json", json.dumps(card, indent=1))


def _command(args: argparse.Namespace) -> str:
    return f"python benchmarks/occlusion_tables.py --steps {args.steps} --size {args.size}"


def load(name: str, args: argparse.Namespace) -> torch.nn.Module | None:
    """A finished run in ``--out``, else a zoo model of that name (table 1), else ``None``."""
    if (args.out / name / "card.json").is_file():
        return zoo.load_run(args.out / name)
    if name in FRAME_MODELS and name in zoo.list():
        return zoo.load(name)
    print(f"  (no finished run {args.out / name}: run with --steps N)")
    return None


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    parts = [model(inputs[i : i + 32]) for i in range(0, len(inputs), 32)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _available(names: dict, args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    models = {name: load(name, args) for name in names}
    return {name: model for name, model in models.items() if model is not None}


def table_frames(args: argparse.Namespace) -> None:
    models = _available(FRAME_MODELS, args)
    if not models:
        print("\n== table 1 (HandOccNet vs SimpleBaseline) skipped: no models")
        return
    data = generate(args.test, seed=TEST_SEED, size=args.size, occluders=1.0, extras=True)
    kp, xyz = {}, {}
    for name, model in models.items():
        out = predict(model, data["image"])
        kp[name] = out["keypoints"]
        if "xyz" in out:
            xyz[name] = out["xyz"]
    _print(
        "2D EPE (px) by joint occlusion, single frames, all with occluders",
        kp,
        data["keypoints"],
        data["occlusion"],
    )
    gt = data["xyz"] - data["xyz"][:, :1]
    _print("root-relative MPJPE (mm)", xyz, gt, data["occlusion"])


def table_clips(args: argparse.Namespace) -> None:
    models = _available(CLIP_MODELS, args)
    if not models:
        print("\n== tables 2 and 3 (Deformer) skipped: no models")
        return
    data = generate_sequence(
        args.test, args.T, seed=TEST_SEED, size=args.size, occluders=1.0, blur=0.5, extras=True
    )
    c = args.T // 2
    gt = data["xyz"][:, c] - data["xyz"][:, c, :1]
    occ = data["occlusion"][:, c]
    rows = {}
    for name, model in models.items():
        out = predict(model, data["image"])
        rows[name] = out["xyz"]
        if name == "deformer_perframe":
            frames = model.pose_to_joints(out["frame_poses"])["xyz"]  # (N, T, J, 3)
            rows["perframe+average"] = temporal_average(frames, c)[:, c]
    head = f"centre frame of {args.T}-frame clips, occluders drifting, blur p=0.5"
    temporal = {k: v for k, v in rows.items() if k != "deformer_mse"}
    _print(f"root-relative MPJPE (mm), {head}", temporal, gt, occ)
    losses = {k: v for k, v in rows.items() if k in ("deformer", "deformer_mse")}
    _print("maxMSE (deformer) vs MSE (deformer_mse), the same clips", losses, gt, occ)


def _print(title: str, preds: dict, target: torch.Tensor, occlusion: torch.Tensor) -> None:
    print(f"\n== {title}")
    if not preds:
        print("  (no models to tabulate)")
        return
    table: pd.DataFrame = bucket_table(preds, target, occlusion)
    text = table.map(lambda v: f"{v:.2f}")
    text.loc["joints"] = table.loc["joints"].map(lambda v: f"{v:.0f}")
    print(text.to_string())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps:
        for name, train in [(n, train_frame_model) for n in FRAME_MODELS] + [
            (n, train_clip_model) for n in CLIP_MODELS
        ]:
            t0 = time.perf_counter()
            train(name, args)
            took = time.perf_counter() - t0
            print(
                f"trained {name}: {args.steps} steps in {took:.0f} s "
                f"({100 * took / args.steps / 60:.1f} min per 100 steps)"
            )
    table_frames(args)
    table_clips(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
