"""``handlab report``: execute chapters with papermill into an HTML report (:mod:`handlab.report`).

>>> import argparse
>>> sub = argparse.ArgumentParser().add_subparsers()
>>> register(sub)
>>> sorted(sub.choices)
['report']
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab report [--chapters 08,09] [--model M] [--data D] [--out DIR]``."""
    p = subparsers.add_parser("report", help="execute chapters with papermill into an HTML report")
    p.add_argument(
        "--chapters", help="comma-separated chapter numbers, e.g. 08,09,10 (default: all)"
    )
    p.add_argument("--model", help="a run folder or zoo:NAME for the chapters that take a model")
    p.add_argument("--data", help="synth or NAME:ROOT for the chapters that take data")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--fast", action="store_true", help="small workloads (what CI runs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse chapters already rendered and newer than their source",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from handlab.report import run_report

    chapters = [c.strip() for c in args.chapters.split(",")] if args.chapters else None
    results = run_report(
        args.out,
        chapters=chapters,
        fast=args.fast,
        model=args.model,
        data=args.data,
        resume=args.resume,
    )
    return 1 if any(r.status == "failed" for r in results) else 0
