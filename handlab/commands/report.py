"""``handlab report``: execute chapters with papermill into an HTML report (:mod:`handlab.report`).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub)
>>> sorted(sub.choices)
['report']
"""

from __future__ import annotations

import argparse

from handlab.commands._resolve import MODEL_HELP

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab report [--chapters 08,09] [--model M] [--data D] [--seed N] [--out DIR]``."""
    p = subparsers.add_parser("report", help="execute chapters with papermill into an HTML report")
    p.add_argument(
        "--chapters", help="comma-separated chapter numbers, e.g. 08,09,10 (default: all)"
    )
    p.add_argument(
        "--model",
        help=f"{MODEL_HELP}, explained/evaluated by chapters 08-11 (default: each chapter's zoo"
        " model)",
    )
    p.add_argument(
        "--data",
        help="synth, synth:KEY=VALUE,... (generator options, e.g. synth:left=1.0) or NAME:ROOT, "
        "evaluated by chapters 08-11 (default: synth, the synthetic test split)",
    )
    p.add_argument("--seed", type=int, default=0, help="the chapters' seed parameter (default: 0)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--fast", action="store_true", help="small workloads (what CI runs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep chapters already rendered with the same settings (model, data, fast, seed, "
        "chapter source); rerun the others",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from handlab.report import run_report

    chapters = [c.strip() for c in args.chapters.split(",")] if args.chapters else None
    # a folder in use raises OutputLockedError, which `handlab` prints as one line (exit 1)
    results = run_report(
        args.out,
        chapters=chapters,
        fast=args.fast,
        seed=args.seed,
        model=args.model,
        data=args.data,
        resume=args.resume,
    )
    return 1 if any(r.status == "failed" for r in results) else 0
