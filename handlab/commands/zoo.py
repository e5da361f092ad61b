"""``handlab zoo list|table|add RUN_DIR NAME``: the shipped models (:mod:`handlab.zoo`);
``handlab zoo import-mediapipe --wheel PATH | --tflite PATH``: Google's MediaPipe Hands landmark
models into the zoo (:mod:`handlab.zoo.mediapipe`; needs ``handlab[mediapipe-convert]``).

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> parser.parse_args(["zoo", "add", "runs/sb", "sb", "--storage", "float16"]).storage
'float16'
>>> parser.parse_args(["zoo", "import-mediapipe", "--wheel", "mp.whl"]).wheel
'mp.whl'
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

__all__ = ["STORAGES", "register"]

# handlab.zoo.STORAGES, written here so the parser builds without torch (a test keeps them equal)
STORAGES = ("int8", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab zoo list|table|add RUN_DIR NAME|import-mediapipe``."""
    p = subparsers.add_parser(
        "zoo", help="list the shipped models, print their results table, or add a finished run"
    )
    p.add_argument("action", choices=("list", "table", "add", "import-mediapipe"))
    p.add_argument("run", nargs="?", help="add: a finished handlab train folder")
    p.add_argument("name", nargs="?", help="add: the zoo name")
    p.add_argument("--storage", choices=STORAGES, default="int8", help="add: stored weights")
    p.add_argument("--wheel", help="import-mediapipe: a mediapipe-0.10.14 wheel (both models)")
    p.add_argument("--tflite", help="import-mediapipe: one hand_landmark_{full,lite}.tflite")
    p.add_argument("--variant", choices=("full", "lite"), help="import-mediapipe: only this one")
    p.add_argument("--check", help="import-mediapipe: reference crops .npz for the equivalence")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from handlab import zoo  # lazy: the parser builds without torch

    if args.action == "import-mediapipe":
        return _import_mediapipe(args)
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


def _import_mediapipe(args: argparse.Namespace) -> int:
    """``handlab zoo import-mediapipe --wheel PATH | --tflite PATH [--variant V] [--check NPZ]``:
    convert, print each card's summary (size, equivalence, synthetic metrics)."""
    from handlab.zoo.mediapipe import import_mediapipe, read_reference

    wheel, tflite = getattr(args, "wheel", None), getattr(args, "tflite", None)
    if (wheel is None) == (tflite is None):
        raise SystemExit("handlab zoo import-mediapipe: expected exactly one of --wheel, --tflite")
    images = None
    check = getattr(args, "check", None) or _default_reference()
    if check is not None:
        images = read_reference(check)["images"]
    words = getattr(args, "argv", None) or sys.argv[1:]  # handlab.cli.main records its words
    command = shlex.join(["handlab", *words]) if words[:1] == ["zoo"] else ""
    paths = import_mediapipe(
        wheel=wheel,
        tflite=tflite,
        variant=getattr(args, "variant", None),
        command=command or "handlab zoo import-mediapipe",
        check_images=images,
    )
    for path in paths:
        card = json.loads(path.with_suffix(".json").read_text())
        metrics = {k: v for k, v in card.get("metrics", {}).items() if k != "per_joint"}
        print(f"{path} ({card['size_mb']} MB, float16)")
        print(f"equivalence: {json.dumps(card.get('equivalence'))}")
        print(f"metrics (synthetic test, 224 px): {json.dumps(metrics)}")
    return 0


def _default_reference() -> Path | None:
    """The repository's committed reference crops, when run from a checkout."""
    path = Path(__file__).parents[2] / "tests" / "models" / "data" / "mediapipe_reference.npz"
    return path if path.is_file() else None
