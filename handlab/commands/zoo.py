"""``handlab zoo list|table|add RUN_DIR NAME``: the shipped models (:mod:`handlab.zoo`).

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> parser.parse_args(["zoo", "add", "runs/sb", "sb", "--storage", "float16"]).storage
'float16'
"""

from __future__ import annotations

import argparse
import json

__all__ = ["STORAGES", "register"]

# handlab.zoo.STORAGES, written here so the parser builds without torch (a test keeps them equal)
STORAGES = ("int8", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab zoo list|table|add RUN_DIR NAME``."""
    p = subparsers.add_parser(
        "zoo", help="list the shipped models, print their results table, or add a finished run"
    )
    p.add_argument(
        "action", choices=("list", "table", "add"),
        help="list the names, print the results table, or add RUN_DIR as NAME",
    )  # fmt: skip
    p.add_argument("run", nargs="?", help="add: a finished handlab train folder")
    p.add_argument("name", nargs="?", help="add: the zoo name")
    p.add_argument("--storage", choices=STORAGES, default="int8", help="add: stored weights")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from handlab import zoo  # lazy: the parser builds without torch

    if args.action == "list":
        print("\n".join(zoo.list_models()))
    elif args.action == "table":
        print(zoo.results_table())
    else:
        if not args.run or not args.name:
            raise SystemExit("handlab zoo add: expected RUN_DIR and NAME")
        path = zoo.save_to_zoo(args.run, args.name, storage=args.storage)
        card = json.loads(path.with_suffix(".json").read_text())
        print(f"{path} ({card['size_mb']} MB, {args.storage})")
        for key in ("metrics", "storage_metrics"):  # summary numbers, not the per-joint rows
            numbers = {k: v for k, v in card.get(key, {}).items() if k != "per_joint"}
            print(f"{key}: {json.dumps(numbers)}")
    return 0
