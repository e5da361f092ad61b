"""The ``handlab`` command line: one subcommand per module of :mod:`handlab.commands`.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int``; this file only lists the modules, so a new command is one line here.
The command modules import torch and the rest inside their functions, so ``handlab --help``
stays fast.

Before any command imports torch, OpenMP threads are told to spin only briefly before they sleep
while waiting (:func:`handlab._openmp.openmp_env`, unless the user set ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT``): about as fast as the default on an idle machine, 1.7x faster on one shared
with other jobs, where libgomp's default spinning burns the time slices of the threads it waits
for (``benchmarks/omp_wait.py``).

Errors in what the user gave (a :class:`~handlab.errors.HandlabError`, or a ``ValueError`` /
``TypeError`` raised by handlab's own argument checks) print as one line, ``handlab: error:
...``, with exit status 1; ``--debug`` anywhere on the line shows the traceback instead.

>>> build_parser().prog
'handlab'
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from handlab import __version__
from handlab._openmp import openmp_env
from handlab.commands import attribute, datasets, figures, report, train, zoo
from handlab.errors import HandlabError

__all__ = ["build_parser", "main"]

COMMANDS = (report, figures, zoo, train, datasets, attribute)
PACKAGE = Path(__file__).resolve().parent


class _HelpWithDefaults(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless it names its default itself (and
    not for flags, required options or options without a default)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        flag = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
        if (
            "default" in text
            or flag
            or action.required
            or not action.option_strings
            or action.default in (None, [], argparse.SUPPRESS)
        ):
            return text
        return text + " (default: %(default)s)"


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handlab", description="Hand pose estimation: models, data, attribution, reports."
    )
    parser.add_argument("--version", action="version", version=f"handlab {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show its traceback (anywhere in line)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    for each in parsers(parser):
        each.formatter_class = _HelpWithDefaults
    return parser


def _users_error(err: BaseException) -> bool:
    """A handlab error, or a ValueError/TypeError raised by handlab's own code (its argument
    checks, which name the argument); anything else is a bug and keeps its traceback."""
    if isinstance(err, HandlabError):
        return True
    if not isinstance(err, ValueError | TypeError) or err.__traceback__ is None:
        return False
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(PACKAGE)


def main(argv: list[str] | None = None) -> int:
    os.environ.update(openmp_env())  # before any command imports torch
    words = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in words
    words = [w for w in words if w != "--debug"]
    args = build_parser().parse_args(words)
    args.argv = words  # the exact command, recorded in model cards and manifests
    try:
        return int(args.func(args) or 0)
    except Exception as err:
        if debug or not _users_error(err):
            raise
        print(f"handlab: error: {err} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
