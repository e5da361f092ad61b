"""The ``handlab`` command line: one subcommand per module of :mod:`handlab.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``; this file only lists the modules, so a new command is one line here.
The command modules import torch and the rest inside their functions, so ``handlab --help``
stays fast.

>>> build_parser().prog
'handlab'
"""

from __future__ import annotations

import argparse
import sys

from handlab.commands import attribute, datasets, figures, report, train, zoo

__all__ = ["build_parser", "main"]

COMMANDS = (report, figures, zoo, train, datasets, attribute)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handlab", description="Hand pose estimation: models, data, attribution, reports."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(words)
    args.argv = words  # the exact command, recorded in model cards and manifests
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
