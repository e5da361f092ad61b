"""The command line's subcommands, one module each: the top layer of handlab.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``func(args) -> int``;
:mod:`handlab.cli` imports them directly. This is the only layer that turns names given on the
command line (``zoo:NAME``, a run folder, ``synth``, ``NAME:ROOT``) into models and datasets
(:mod:`handlab.commands._resolve`); the library below takes objects. Modules here import only the
standard library at import time, so ``handlab --help`` builds the parser without torch, pandas
or h5py; the work is imported inside each command's function.
"""
