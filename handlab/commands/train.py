"""``handlab train`` and ``handlab evaluate``: the command line of :mod:`handlab.training`.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``, training curves) and chapter 02::

    handlab train --model simplebaseline --data synth --steps 600 --out runs/sb
    handlab train --model deformer --data synth-clips --batch-size 16 --steps 600 --out runs/df
    torchrun --nproc-per-node 2 -m handlab.cli train --model simplebaseline --out runs/sb2
    handlab evaluate --model runs/sb --data synth --split test --json runs/sb/eval.json
    handlab evaluate --model zoo:simplebaseline --data synth

>>> parse_model_config(["backbone=resnet18", "width=64", "soft=true"])
{'backbone': 'resnet18', 'width': 64, 'soft': True}
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from handlab.commands import _resolve

__all__ = ["parse_model_config", "register"]


def parse_model_config(items: list[str]) -> dict[str, Any]:
    """Turn ``key=value`` strings into a dict; values are read as JSON when they parse
    (numbers, ``true``/``false``, lists), else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-config: expected key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` subcommands."""
    p = subparsers.add_parser("train", help="train a model (resumes if --out has a checkpoint)")
    p.add_argument("--model", required=True, help="registered model name")
    p.add_argument(
        "--data", default="synth", help="synth, synth-clips[:T=N] or NAME:ROOT (default synth)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", default="onecycle", choices=["constant", "cosine", "onecycle"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--val-every", type=int, default=100)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--test-limit", type=int, default=512)
    p.add_argument("--splits", default="train,val,test", help="train,val,test split names")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--no-amp", action="store_true", help="float32 only (default: bfloat16 where native)"
    )
    p.add_argument("--restart", action="store_true", help="discard a checkpoint in --out")
    p.add_argument(
        "--init", default=None, metavar="zoo:NAME|RUN",
        help="start from these weights (same parameters as --model) instead of random ones",
    )  # fmt: skip
    p.add_argument("--model-config", nargs="*", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate a run folder or zoo:NAME on a data set",
        description="On coco:PATH (real photographs; coco:real-hands, the development set) it "
        "prints PCK@0.2 of the box and EPE / box side per source and overall.",
    )
    e.add_argument("--model", default=None, help="run folder or zoo:NAME")
    e.add_argument(
        "--data",
        default="synth",
        help="synth, synth-clips[:T=N], NAME:ROOT or coco:PATH (default synth)",
    )
    e.add_argument("--crop", choices=["plain", "upright"], default="plain", help="coco crops")
    e.add_argument("--scale", type=float, default=1.5, help="coco crop side / box side")
    e.add_argument("--mirror-left", action="store_true", help="coco: flip left hands")
    e.add_argument(
        "--all-zoo", action="store_true", help="coco: every zoo 2D RGB model and the mean pose"
    )
    e.add_argument("--markdown", action="store_true", help="coco: a markdown table")
    e.add_argument("--split", default="test")
    e.add_argument("--size", type=int, default=None, help="input side (default: the card's, 128)")
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", default=None, help="write the metrics here as JSON")
    e.set_defaults(func=_evaluate)


def _train(args: argparse.Namespace) -> int:
    from handlab.training import AugmentConfig, TrainConfig, fit, format_table

    config = TrainConfig(
        model=args.model,
        model_config=parse_model_config(args.model_config),
        data=args.data,
        splits=tuple(args.splits.split(",")),
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        augment=AugmentConfig(enabled=not args.no_augment),
        val_every=args.val_every,
        ckpt_every=args.ckpt_every,
        test_limit=args.test_limit,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        init=args.init,
    )
    # The words this command was given (cli.main records them; sys.argv when called otherwise).
    words = getattr(args, "argv", None) or sys.argv[1:]
    command = shlex.join(["handlab", *words])
    world = os.environ.get("WORLD_SIZE", "1")
    if world != "1":  # launched by torchrun: record how
        nproc = os.environ.get("LOCAL_WORLD_SIZE", world)
        command = f"torchrun --nproc-per-node {nproc} -m handlab.cli {shlex.join(words)}"
    metrics = fit(config, args.out, resume=not args.restart, command=command)
    if metrics:
        print(format_table(metrics))
        print(f"wrote {Path(args.out) / 'model.safetensors'} and card.json")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from handlab.training import evaluate, format_table

    if args.data.startswith("coco:"):
        return _evaluate_real(args)
    if args.model is None:
        raise SystemExit("handlab evaluate: expected --model (a run folder or zoo:NAME)")
    model = _resolve.resolve_model(args.model, device=args.device)
    data = _resolve.resolve_data(args.data, args.split, size=args.size or 128)
    metrics = evaluate(model, data, batch_size=args.batch_size, limit=args.limit)
    print(format_table(metrics))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=1))
    return 0


def _evaluate_real(args: argparse.Namespace) -> int:
    """``--data coco:PATH``: PCK@0.2 / EPE per source of ``--model`` or ``--all-zoo``, and the
    mean pose, on ``--crop`` crops at each model's input size (its card's, else 128)."""
    from handlab.training.realhands import evaluate_real, format_real

    specs = _resolve.zoo_rgb_models() if args.all_zoo else [args.model] if args.model else []
    options = {"crop": args.crop, "scale": args.scale, "mirror_left": args.mirror_left}
    results: dict[str, Any] = {}
    for spec in [*specs, None]:  # None: the synthetic mean pose, last
        model = None if spec is None else _resolve.resolve_model(spec, device=args.device)
        if model is not None and getattr(model, "input_kind", "rgb") != "rgb":
            raise SystemExit(f"handlab evaluate: {spec} reads {model.input_kind}, not RGB photos")
        card_size = model.card.get("train_config", {}).get("size", 128) if model else 128
        data = _resolve.resolve_data(args.data, args.split, size=args.size or card_size, **options)
        name = "mean pose (synthetic)" if spec is None else Path(spec.removeprefix("zoo:")).name
        results[name] = evaluate_real(model, data, progress=True, batch_size=args.batch_size)
    print(format_real(results, markdown=args.markdown))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0
