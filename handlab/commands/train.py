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
from handlab.commands._resolve import MODEL_HELP

__all__ = ["parse_model_config", "register"]

# AugmentConfig's defaults as --augment words, for the help (the CLI does not import torch to
# build its parser); a test checks them against AugmentConfig.
AUGMENT_DEFAULTS = (
    "rotate_deg=30 scale=[0.85,1.15] translate=0.08 brightness=0.3 contrast=0.3 saturation=0.3"
)


def parse_model_config(items: list[str], option: str = "--model-config") -> dict[str, Any]:
    """Turn ``key=value`` strings into a dict; values are read as JSON when they parse
    (numbers, ``true``/``false``, lists), else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option}: expected key=value, got {item!r}")
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
        "--data",
        default="synth",
        help="synth, synth-dr[:props,KEY=P,...] (domain randomisation on the training split), "
        "synth-clips[:T=N] or NAME:ROOT (default synth)",
    )
    p.add_argument("--out", required=True, help="output folder (one run at a time: locked)")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=32, help="samples per step (all processes)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
    p.add_argument(
        "--schedule", default="onecycle", choices=["constant", "cosine", "onecycle"],
        help="learning-rate schedule (warm-up: 10%% of the steps)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches, augmentation")
    p.add_argument("--size", type=int, default=128, help="input side (px)")
    p.add_argument("--val-every", type=int, default=100, help="steps between validations")
    p.add_argument("--ckpt-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--test-limit", type=int, default=512, help="test samples in the card")
    p.add_argument("--splits", default="train,val,test", help="train,val,test split names")
    p.add_argument("--no-augment", action="store_true", help="no random affine/colour jitter")
    p.add_argument(
        "--augment", nargs="*", default=[], metavar="KEY=VALUE",
        help="fields of the augmentation (AugmentConfig), e.g. rotate_deg=180 'scale=[1.0,1.5]' "
        f"(default: none changed: {AUGMENT_DEFAULTS})",
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    p.add_argument(
        "--no-amp", action="store_true", help="float32 only (default: bfloat16 where native)"
    )
    p.add_argument("--restart", action="store_true", help="discard a checkpoint in --out")
    p.add_argument(
        "--init", default=None, metavar="zoo:NAME|RUN",
        help="start from these weights, same parameters as --model (default: random weights)",
    )  # fmt: skip
    p.add_argument(
        "--init-partial", action="store_true",
        help="with --init: parameters only one side has (a head a --model-config option adds or "
        "leaves out) start fresh or are dropped (default: every parameter must match)",
    )  # fmt: skip
    p.add_argument(
        "--model-config", nargs="*", default=[], metavar="KEY=VALUE",
        help="fields of the model's config dataclass (default: none, the family's defaults)",
    )  # fmt: skip
    p.add_argument(
        "--init-backbone", default=None, metavar="zoo:NAME|RUN",
        help="start the trunk (backbone.* weights) from another model, e.g. zoo:simplebaseline_r18"
        " (default: none)",
    )  # fmt: skip
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate a run folder or zoo:NAME on a data set",
        description="On coco:PATH (real photographs; coco:real-hands, the development set) it "
        "prints PCK@0.2 of the box and EPE / box side per source and overall.",
    )
    e.add_argument("--model", default=None, help=f"{MODEL_HELP} (default: none; required unless"
                   " --all-zoo)")  # fmt: skip
    e.add_argument(
        "--data",
        default="synth",
        help="synth, synth-clips[:T=N], NAME:ROOT or coco:PATH (default: synth)",
    )
    e.add_argument(
        "--crop", choices=["plain", "upright"], default="plain", help="coco crops (default: plain)"
    )
    e.add_argument(
        "--scale", type=float, default=1.5, help="coco crop side / box side (default: 1.5)"
    )
    e.add_argument("--mirror-left", action="store_true", help="coco: flip left hands")
    e.add_argument(
        "--all-zoo", action="store_true", help="coco: every zoo 2D RGB model and the mean pose"
    )
    e.add_argument("--markdown", action="store_true", help="coco: a markdown table")
    e.add_argument("--split", default="test", help="the split to evaluate (default: test)")
    e.add_argument("--size", type=int, default=None, help="input side (default: the card's, 128)")
    e.add_argument("--limit", type=int, default=None, help="first N samples (default: all)")
    e.add_argument(
        "--batch-size", type=int, default=32, help="samples per forward pass (default: 32)"
    )
    e.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    e.add_argument("--json", default=None, help="write the metrics here (default: print only)")
    e.add_argument(
        "--skip-bad", action="store_true",
        help="leave out samples that cannot be read (counted and listed) instead of stopping",
    )  # fmt: skip
    e.add_argument(
        "--model-config", nargs="*", default=[], metavar="KEY=VALUE",
        help="inference-time fields of the model's config, e.g. flip_test=true (SimpleBaseline's "
        "flip test); the weights must still fit (default: the card's config)",
    )  # fmt: skip
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=_evaluate)


def _augment_config(args: argparse.Namespace) -> Any:
    """``--no-augment`` and ``--augment KEY=VALUE ...`` as an ``AugmentConfig``.

    >>> ns = argparse.Namespace(no_augment=False, augment=["rotate_deg=180", "scale=[1, 1.5]"])
    >>> c = _augment_config(ns)
    >>> c.rotate_deg, c.scale, c.enabled
    (180, (1, 1.5), True)
    >>> _augment_config(argparse.Namespace(no_augment=True, augment=["rotate_deg=10"]))
    Traceback (most recent call last):
    ...
    ValueError: --augment: cannot be combined with --no-augment
    >>> _augment_config(argparse.Namespace(no_augment=False, augment=["rotate=10"]))
    Traceback (most recent call last):
    ...
    ValueError: --augment: expected fields of ['brightness', ...], got unknown ['rotate']
    """
    import dataclasses

    from handlab.training import AugmentConfig

    fields = parse_model_config(args.augment, "--augment")
    if fields and args.no_augment:
        raise ValueError("--augment: cannot be combined with --no-augment")
    names = sorted(f.name for f in dataclasses.fields(AugmentConfig) if f.name != "enabled")
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise ValueError(f"--augment: expected fields of {names}, got unknown {unknown}")
    if isinstance(fields.get("scale"), list):
        fields["scale"] = tuple(fields["scale"])
    return AugmentConfig(enabled=not args.no_augment, **fields)


def _train(args: argparse.Namespace) -> int:
    from handlab.training import TrainConfig, fit, format_table

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
        augment=_augment_config(args),
        val_every=args.val_every,
        ckpt_every=args.ckpt_every,
        test_limit=args.test_limit,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        init=args.init,
        init_partial=args.init_partial,
        init_backbone=args.init_backbone,
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


def _model_config(args: argparse.Namespace) -> dict[str, Any] | None:
    """``handlab evaluate --model-config KEY=VALUE ...`` as a dict (None when not given)."""
    return parse_model_config(args.model_config) or None


def _evaluate(args: argparse.Namespace) -> int:
    from handlab.training import evaluate, format_table

    if args.data.startswith("coco:"):
        return _evaluate_real(args)
    if args.model is None:
        raise SystemExit("handlab evaluate: expected --model (a run folder or zoo:NAME)")
    model = _resolve.resolve_model(args.model, device=args.device, config=_model_config(args))
    data = _resolve.resolve_data(args.data, args.split, size=args.size or 128)
    metrics = evaluate(
        model, data, batch_size=args.batch_size, limit=args.limit,
        progress=not args.no_progress, skip_bad=args.skip_bad,
    )  # fmt: skip
    print(format_table(metrics))
    if metrics.get("skipped"):
        print(f"skipped {len(metrics['skipped'])} unreadable samples:")
        print("\n".join(f"  {s['index']}: {s['error']}" for s in metrics["skipped"]))
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
        model = None
        if spec is not None:
            model = _resolve.resolve_model(spec, device=args.device, config=_model_config(args))
        if model is not None and getattr(model, "input_kind", "rgb") != "rgb":
            raise SystemExit(f"handlab evaluate: {spec} reads {model.input_kind}, not RGB photos")
        card_size = 128
        if model is not None:  # a fixed-size model (MediaPipe: 224) first, else its training size
            from handlab.models.base import contract

            fixed = contract(model).input_size
            card_size = fixed or model.card.get("train_config", {}).get("size", 128)
        data = _resolve.resolve_data(args.data, args.split, size=args.size or card_size, **options)
        name = "mean pose (synthetic)" if spec is None else Path(spec.removeprefix("zoo:")).name
        results[name] = evaluate_real(
            model, data, progress=not args.no_progress, batch_size=args.batch_size
        )
    print(format_real(results, markdown=args.markdown))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0
