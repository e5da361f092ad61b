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
with ``handlab.training.fit`` into ``--out`` (the frame models on the synthetic split, the clip
models on ``synth-clips``; one-cycle schedule, no augmentation; a finished run is kept, an
interrupted one resumes); then it evaluates the finished runs in ``--out`` (for table 1, zoo
models of the same names otherwise), says which are missing, prints the tables and writes them
as JSON to ``--out/tables.json`` and ``--results`` (``benchmarks/results/occlusion_tables.json``,
which chapters 06 and 07 show).

Run: ``python benchmarks/occlusion_tables.py --steps 300`` (64 px; CPU minutes per 100 steps are
printed) or ``python benchmarks/occlusion_tables.py`` to re-evaluate. ``--zoo`` tabulates the
shipped models instead (:data:`ZOO_MODELS`, 128 px, trained far longer than any equal-budget run
here; the per-frame and MSE Deformers are not shipped) into ``occlusion_tables_zoo.json``.
``--run NAME=FOLDER`` reads one variant from any finished run, e.g. twins fine-tuned from the
shipped Deformer with the same recipe (docs/results.md)::

    python benchmarks/occlusion_tables.py --size 128 --out runs/seed003_converged \
        --run deformer=runs/deformer_r18d deformer_mse=runs/deformer_mse_ft \
        --results benchmarks/results/occlusion_tables_converged.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from handlab import zoo
from handlab.occlusion import bucket_table
from handlab.postprocess import temporal_average
from handlab.synth import generate, generate_sequence
from handlab.training import AugmentConfig, TrainConfig, fit
from handlab.training.checkpoint import atomic_write_text

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


# --zoo: the shipped models standing in for the variants they are (all read 128 px); the
# per-frame and MSE Deformers are not shipped, so tables 2 and 3 hold the Deformer alone.
ZOO_MODELS = {
    "simplebaseline": "simplebaseline_r18",
    "handoccnet": "handoccnet_r18",
    "deformer": "deformer_r18",
}
ZOO_SIZE = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=0, help="train each variant this long first")
    p.add_argument("--out", type=Path, default=Path("runs/occlusion_tables"))
    p.add_argument("--size", type=int, default=64, help="input side, px (multiple of 32)")
    p.add_argument("--batch-size", type=int, default=16, help="frames (table 1) or clips")
    p.add_argument("--lr", type=float, default=2e-3, help="peak of the one-cycle schedule")
    p.add_argument("--T", type=int, default=7, help="frames per clip")
    p.add_argument("--test", type=int, default=256, help="test frames / test clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--results", type=Path, default=None,
        help="the tables as JSON (default: benchmarks/results/occlusion_tables.json, which "
        "chapters 06 and 07 show; with --zoo occlusion_tables_zoo.json)",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--zoo", action="store_true",
        help="tabulate the shipped, longer-trained models instead of runs in --out "
        f"({', '.join(ZOO_MODELS.values())}; at their 128 px; no training)",
    )  # fmt: skip
    p.add_argument(
        "--run", nargs="*", default=[], metavar="NAME=FOLDER",
        help="read variant NAME from this finished run instead (e.g. deformer_mse=runs/x: twins "
        "fine-tuned from the shipped Deformer); it wins over --out and --zoo (default: none)",
    )  # fmt: skip
    args = p.parse_args(argv)
    args.runs = {}
    for item in args.run:
        name, sep, where = item.partition("=")
        if not sep or name not in {**FRAME_MODELS, **CLIP_MODELS}:
            p.error(f"--run: expected NAME=FOLDER with NAME one of "
                    f"{[*FRAME_MODELS, *CLIP_MODELS]}, got {item!r}")  # fmt: skip
        if not (Path(where) / "card.json").is_file():
            p.error(f"--run: {where} is not a finished handlab train run (no card.json)")
        args.runs[name] = Path(where)
    if args.zoo and args.steps:
        p.error("--zoo tabulates shipped models: it trains nothing, so --steps does not apply")
    if args.zoo:
        args.size = ZOO_SIZE
    if args.results is None:
        name = "occlusion_tables_zoo.json" if args.zoo else "occlusion_tables.json"
        args.results = Path("benchmarks/results") / name
    return args


def train_model(name: str, args: argparse.Namespace) -> bool:
    """Train variant ``name`` into ``--out/NAME`` with :func:`handlab.training.fit` (resumable).

    Frame models read the synthetic frames, the clip models ``synth-clips`` (fresh clips with
    drifting occluders and motion blur at probability 0.5, T frames). A finished run (its
    ``card.json`` exists) is kept, not retrained; an interrupted one resumes from its last
    checkpoint. Returns whether it trained.
    """
    out = args.out / name
    if (out / "card.json").is_file():
        print(f"  {name}: finished run in {out}, kept")
        return False
    if name in FRAME_MODELS:
        model, model_config, data = name, {**FRAME_MODELS[name], "input_size": args.size}, "synth"
    else:
        model, data = "deformer", f"synth-clips:T={args.T}"
        model_config = {**CLIP_MODELS[name], "T": args.T, "input_size": args.size}
    config = TrainConfig(
        model=model,
        model_config=model_config,
        data=data,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule="onecycle",
        augment=AugmentConfig(enabled=False),
        val_every=args.steps,
        val_limit=64,
        test_limit=64,
        ckpt_every=max(1, args.steps // 4),
        seed=args.seed,
    )
    fit(config, out, resume=True, progress=False, command=_command(args))
    return True


def _command(args: argparse.Namespace) -> str:
    return (
        f"python benchmarks/occlusion_tables.py --steps {args.steps} --size {args.size} "
        f"--batch-size {args.batch_size} --lr {args.lr} --T {args.T} --seed {args.seed}"
    )


def load(name: str, args: argparse.Namespace) -> torch.nn.Module | None:
    """With ``--zoo`` the shipped model of :data:`ZOO_MODELS`; else a finished run in ``--out``,
    else a zoo model of that name (table 1), else ``None``; a ``--run NAME=FOLDER`` first."""
    if name in args.runs:
        return zoo.load_run(args.runs[name])
    if args.zoo:
        if name in ZOO_MODELS:
            return zoo.load(ZOO_MODELS[name])
        print(f"  ({name} is not shipped: left out of the --zoo tables)")
        return None
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


def table_frames(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    models = _available(FRAME_MODELS, args)
    if not models:
        print("\n== table 1 (HandOccNet vs SimpleBaseline) skipped: no models")
        return {}
    data = generate(args.test, seed=TEST_SEED, size=args.size, occluders=1.0, extras=True)
    kp, xyz = {}, {}
    for name, model in models.items():
        out = predict(model, data["image"])
        kp[name] = out["keypoints"]
        if "xyz" in out:
            xyz[name] = out["xyz"]
    gt = data["xyz"] - data["xyz"][:, :1]
    return _tables(
        [
            ("2D EPE (px) by joint occlusion, single frames, all with occluders", kp,
             data["keypoints"]),
            ("root-relative MPJPE (mm), the same frames", xyz, gt),
        ],
        data["occlusion"],
    )  # fmt: skip


def table_clips(args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    models = _available(CLIP_MODELS, args)
    if not models:
        print("\n== tables 2 and 3 (Deformer) skipped: no models")
        return {}
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
    losses = {k: v for k, v in rows.items() if k in ("deformer", "deformer_mse")}
    if len(losses) < 2:  # a comparison of one model says nothing
        losses = {}
    return _tables(
        [
            (f"root-relative MPJPE (mm), {head}", temporal, gt),
            ("maxMSE (deformer) vs MSE (deformer_mse), the same clips", losses, gt),
        ],
        occ,
    )


def _tables(specs: list, occlusion: torch.Tensor) -> dict[str, pd.DataFrame]:
    """Print and return one bucket table (rows: buckets and ``joints``) per (title, preds, gt)."""
    tables = {}
    for title, preds, target in specs:
        print(f"\n== {title}")
        if not preds:
            print("  (no models to tabulate)")
            continue
        table: pd.DataFrame = bucket_table(preds, target, occlusion)
        text = table.map(lambda v: f"{v:.2f}")
        text.loc["joints"] = table.loc["joints"].map(lambda v: f"{v:.0f}")
        print(text.to_string())
        tables[title] = table
    return tables


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps:
        for name in [*FRAME_MODELS, *CLIP_MODELS]:
            t0 = time.perf_counter()
            if train_model(name, args):
                took = time.perf_counter() - t0
                print(
                    f"trained {name}: {args.steps} steps in {took:.0f} s "
                    f"({100 * took / args.steps / 60:.1f} min per 100 steps)"
                )
    tables = {**table_frames(args), **table_clips(args)}
    if tables:
        result = {title: table.to_dict() for title, table in tables.items()}
        for path in (args.out / "tables.json", args.results):
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(result, indent=1))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
