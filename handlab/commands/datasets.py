"""``handlab datasets check NAME ROOT``: validate a dataset folder (:mod:`handlab.data.check`).

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> parser.parse_args(["datasets", "check", "rhd", "/data/RHD", "--limit", "2"]).limit
2
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab datasets check NAME ROOT [--split S ...] [--limit N]``."""
    from handlab.data import list_datasets  # light: the loaders are imported when opened

    datasets = subparsers.add_parser("datasets", help="real hand-pose datasets")
    sub = datasets.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    check = sub.add_parser(
        "check",
        help="validate a dataset folder: counts per split and every problem found",
        description="Exit status 1 when any problem is found.",
    )
    check.add_argument(
        "name", choices=list_datasets(), metavar="NAME", help=", ".join(list_datasets())
    )
    check.add_argument("root", help="the dataset's folder, in its published layout")
    check.add_argument("--split", action="append", help="split to check (repeatable; default all)")
    check.add_argument(
        "--limit", type=int, default=None, help="check only the first N items of each split"
    )
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from handlab.data.check import check_dataset

    report = check_dataset(args.name, args.root, args.split, limit=args.limit)
    print(report.format())
    return 0 if report.ok else 1
