"""``handlab datasets check NAME ROOT``: validate a dataset folder (:mod:`handlab.data.check`);
``handlab datasets export-synth OUT``: write generated hands as a COCO-style folder
(:mod:`handlab.synth.export`), which ``handlab evaluate --data coco:OUT`` reads like photographs.

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
        "--limit", type=int, default=None,
        help="check the first N items of each split (default: all)",
    )  # fmt: skip
    check.set_defaults(func=_check)
    export = sub.add_parser(
        "export-synth",
        help="write generated hands as a COCO-style folder (images and annotations.json)",
        description="Evaluate a real-trained model on it with handlab evaluate --data coco:OUT "
        "(docs/real_hands.md: the generator's realism).",
    )
    export.add_argument("out", help="output folder (created; several make the sources of a root)")
    export.add_argument("--n", type=int, default=160, help="number of hands (default: 160)")
    export.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    export.add_argument("--size", type=int, default=256, help="image side px (default: 256)")
    export.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE",
        help="SceneOptions fields, e.g. randomize=0.8 left=0.5 sleeves=1 "
        "'randomize_parts=[\"photo\"]' (default: none, the plain generator)",
    )  # fmt: skip
    export.set_defaults(func=_export)


def _check(args: argparse.Namespace) -> int:
    from handlab.data.check import check_dataset

    report = check_dataset(args.name, args.root, args.split, limit=args.limit)
    print(report.format())
    return 0 if report.ok else 1


def _export(args: argparse.Namespace) -> int:
    from handlab.commands.train import parse_model_config
    from handlab.synth.export import write_coco

    options = parse_model_config(args.set)
    if isinstance(options.get("randomize_parts"), list | str):
        parts = options["randomize_parts"]
        options["randomize_parts"] = (parts,) if isinstance(parts, str) else tuple(parts)
    folder = write_coco(args.out, args.n, seed=args.seed, size=args.size, **options)
    print(f"wrote {args.n} hands to {folder} (annotations.json, images/)")
    return 0
