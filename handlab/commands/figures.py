"""``handlab figures``: regenerate the README's figures (the recipes: :mod:`handlab.figures`).

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> register(parser.add_subparsers())
>>> parser.parse_args(["figures", "--only", "synth_gallery"]).only
['synth_gallery']
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``handlab figures [--out DIR] [--only NAME ...]``."""
    p = subparsers.add_parser("figures", help="regenerate the README figures")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument(
        "--only", nargs="*", help="figure names (default: all of handlab.figures.FIGURES)"
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from handlab.figures import make_figures  # lazy: the recipes import torch and matplotlib

    make_figures(args.out, args.only)
    return 0
