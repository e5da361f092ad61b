"""``handlab attribute``: PoseIG over a dataset (:mod:`handlab.attribution.runner` does the work).

Taught in chapter 11 (``notebooks/11_compare_zoo.py``)::

    handlab attribute --model zoo:NAME|RUN_DIR --data synth|NAME:ROOT --path blur --out DIR
    torchrun --nproc-per-node 2 -m handlab.cli attribute ...   # one shard per rank (gloo)

An option left out takes :class:`~handlab.attribution.runner.RunConfig`'s default, so the
defaults are written in one place.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> args = parser.parse_args(["attribute", "--model", "zoo:cpm", "--data", "synth",
...                           "--out", "o", "--steps", "8"])
>>> _settings(args)
{'steps': 8}
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from handlab.commands import _resolve

__all__ = ["register"]

# RunConfig fields that the command line sets (an option left out keeps RunConfig's default).
_FIELDS = ("path", "baseline", "method", "steps", "folds", "alpha", "batch_size", "limit", "seed",
           "noise_samples")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab attribute`` to the command line."""
    p = subparsers.add_parser(
        "attribute",
        help="PoseIG maps and indices over a dataset",
        description="Options left out take handlab.attribution.runner.RunConfig's defaults.",
    )
    p.add_argument("--model", required=True, help="zoo:NAME or a handlab train run folder")
    p.add_argument("--data", required=True, help="synth or NAME:ROOT (e.g. rhd:/data/RHD)")
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=int, default=128, help="image side (px)")
    p.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    p.add_argument("--path", choices=["blur", "straight"], help="integration path")
    p.add_argument("--baseline", help="straight path: black|mean|blur|uniform|gaussian")
    p.add_argument("--method", help="quadrature rule along the path")
    p.add_argument("--steps", type=int, help="points on the path")
    p.add_argument("--folds", type=int, help="blur path: number of blur levels")
    p.add_argument("--alpha", type=float, help="likelihood decay, 1/px")
    p.add_argument("--batch-size", type=int, help="samples per unit (resume/shard granularity)")
    p.add_argument("--limit", type=int, help="first N samples only")
    p.add_argument("--seed", type=int, help="noise seed (unit u uses seed + u)")
    p.add_argument("--noise-samples", type=int, help="SmoothGrad-style noisy copies per image")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_main)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields given on the command line."""
    return {k: getattr(args, k) for k in _FIELDS if getattr(args, k) is not None}


def _main(args: argparse.Namespace) -> int:
    import torch.distributed as dist  # lazy: the parser builds without torch

    from handlab.attribution.runner import RunConfig, run_attribution

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    config = RunConfig(**_settings(args))
    model = _resolve.resolve_model(args.model)
    dataset = _resolve.resolve_data(args.data, args.split, size=args.size)
    data_spec = f"{args.data} split={args.split} size={args.size}"
    done = run_attribution(
        model, dataset, args.out, config=config, model_spec=str(args.model),
        data_spec=data_spec, progress=not args.no_progress,
    )  # fmt: skip
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    print(f"rank {rank}: computed {len(done['computed'])} units, skipped {len(done['skipped'])}")
    if world > 1:
        dist.destroy_process_group()
    return 0
