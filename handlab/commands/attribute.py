"""``handlab attribute``: PoseIG over a dataset (:mod:`handlab.attribution.runner` does the work).

Taught in chapter 11 (``notebooks/11_compare_zoo.py``)::

    handlab attribute --model zoo:NAME|RUN_DIR --data synth|NAME:ROOT --path blur --out DIR
    handlab attribute --model onnx:PATH|python:MODULE:FUNCTION --data synth --out DIR
    torchrun --nproc-per-node 2 -m handlab.cli attribute ...   # one shard per rank (gloo)

An option left out takes :class:`~handlab.attribution.config.PoseIGConfig`'s (or
:class:`~handlab.attribution.runner.RunConfig`'s) default, so the defaults are written in one
place; the PoseIG options become one ``PoseIGConfig`` that travels whole to the engine.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> args = parser.parse_args(["attribute", "--model", "zoo:cpm", "--data", "synth",
...                           "--out", "o", "--steps", "8"])
>>> _settings(args, _POSEIG), _settings(args, _RUN)
({'steps': 8}, {})
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from handlab.commands import _resolve
from handlab.commands._resolve import MODEL_HELP

__all__ = ["register"]

# PoseIGConfig and RunConfig fields that the command line sets (an option left out keeps the
# dataclass's default).
_POSEIG = ("path", "baseline", "method", "steps", "pilot", "folds", "alpha", "target", "joints",
           "seed", "noise_samples", "max_batch")  # fmt: skip
_RUN = ("batch_size", "limit")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab attribute`` to the command line."""
    p = subparsers.add_parser(
        "attribute",
        help="PoseIG maps and indices over a dataset",
        description="Options left out take handlab.attribution.runner.RunConfig's defaults.",
    )
    p.add_argument("--model", required=True, help=MODEL_HELP)
    p.add_argument("--data", required=True, help="synth or NAME:ROOT (e.g. rhd:/data/RHD)")
    p.add_argument("--split", default="test", help="the split to explain")
    p.add_argument("--size", type=int, default=128, help="image side (px)")
    p.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    # The defaults named in the help are PoseIGConfig's and RunConfig's (literal here so that
    # ``handlab --help`` imports no torch; tests/commands/test_cli_errors.py checks they agree).
    p.add_argument("--path", choices=["blur", "straight"], help="integration path (default: blur)")
    p.add_argument(
        "--baseline", help="straight path: black|mean|blur|uniform|gaussian (default: black)"
    )
    p.add_argument("--method", help="quadrature rule along the path (default: gausslegendre)")
    p.add_argument("--steps", type=int, help="points on the path (default: 32)")
    p.add_argument(
        "--pilot", type=int, help="gradient-free forwards placing the points, 0 off (default: 64)"
    )
    p.add_argument("--folds", type=int, help="blur path: number of blur levels (default: 50)")
    p.add_argument("--alpha", type=float, help="likelihood decay, 1/px (default: 0.3)")
    p.add_argument(
        "--target",
        help="the explained scalar per joint, one of attribution.TARGETS (default: heatmap_match)",
    )
    p.add_argument(
        "--joints", type=int, nargs="+",
        help="explain only these joint indices, cost grows with their number (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--max-batch", type=int, help="images per forward inside the engine (default: 16)"
    )
    p.add_argument(
        "--batch-size", type=int, help="samples per unit, the resume/shard granularity (default: 8)"
    )
    p.add_argument("--limit", type=int, help="first N samples only (default: all)")
    p.add_argument("--seed", type=int, help="noise seed, unit u uses seed + u (default: 0)")
    p.add_argument(
        "--noise-samples", type=int, help="SmoothGrad-style noisy copies per image (default: 0)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_main)


def _settings(args: argparse.Namespace, fields: tuple[str, ...]) -> dict[str, Any]:
    """The config fields among ``fields`` given on the command line."""
    return {k: getattr(args, k) for k in fields if getattr(args, k) is not None}


def config_from_args(args: argparse.Namespace):
    """The :class:`~handlab.attribution.runner.RunConfig` of parsed ``attribute`` arguments."""
    from handlab.attribution.config import PoseIGConfig
    from handlab.attribution.runner import RunConfig

    return RunConfig(poseig=PoseIGConfig(**_settings(args, _POSEIG)), **_settings(args, _RUN))


def _main(args: argparse.Namespace) -> int:
    import torch.distributed as dist  # lazy: the parser builds without torch

    from handlab.attribution.runner import run_attribution

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT
    config = config_from_args(args)
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
