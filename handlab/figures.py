"""``handlab figures``: regenerate the README's figures in ``figures/`` with matplotlib.

Each figure is a function ``(path) -> None`` listed in :data:`FIGURES`; ``make figures`` runs them
all, ``handlab figures --only synth_gallery`` one.

>>> "synth_gallery" in FIGURES
True
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["FIGURES", "make_figures"]

# name -> "module:function" taking the output path (imported lazily: figures pull in matplotlib).
FIGURES: dict[str, str] = {
    "synth_gallery": "handlab.viz.gallery:synth_gallery",
    "randomization_curve": "handlab.viz.sanity:randomization_curve",
    "attribution_by_family": "handlab.viz.figures_attr:attribution_by_family",
    "indices_by_group": "handlab.viz.figures_attr:indices_by_group",
}


def _resolve(target: str) -> Callable[[Path], None]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def make_figures(out: str | Path = "figures", only: list[str] | None = None) -> list[Path]:
    """Write the selected figures (default: all) as ``out/NAME.png``; returns their paths."""
    names = only or sorted(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"only: expected some of {sorted(FIGURES)}, got unknown {unknown}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = out_dir / f"{name}.png"
        _resolve(FIGURES[name])(path)
        print(f"[handlab figures] wrote {path}", flush=True)
        paths.append(path)
    return paths


def _main(args: argparse.Namespace) -> int:
    make_figures(args.out, args.only)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("figures", help="regenerate the README figures")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--only", nargs="*", help=f"figure names (default: all of {sorted(FIGURES)})")
    p.set_defaults(func=_main)
