"""The ``handlab`` command line: one subcommand per capability.

Each capability module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``; this file only lists the modules, so a new command is one line here.

>>> build_parser().prog
'handlab'
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["build_parser", "main"]

# Modules that add subcommands (imported lazily by name so ``handlab --help`` stays fast).
COMMAND_MODULES: tuple[str, ...] = (
    "handlab.report",
    "handlab.figures",
    "handlab.zoo",
    "handlab.train",
    "handlab.data.check",
    "handlab.attribution.runner",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handlab", description="Hand pose estimation: models, data, attribution, reports."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(words)
    args.argv = words  # the exact command, recorded in model cards and manifests
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
