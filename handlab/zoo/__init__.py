"""The model zoo: handlab's own trained weights (safetensors, int8/fp16) with a JSON card each.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02.

One module per job: :mod:`~handlab.zoo.store` (the weights and cards on disk: list, load, save),
:mod:`~handlab.zoo.quantize` (weight-only int8 storage), :mod:`~handlab.zoo.cards` (training
curves, the results table), :mod:`~handlab.zoo.evaluation` (re-evaluating a shipped model) and
:mod:`~handlab.zoo.guard` (no collapsed or barely trained model ships: ``save_to_zoo`` refuses
one).
``zoo.list`` is :func:`list_models` under its short name (kept for notebooks; it shadows the
builtin only as an attribute of this package).

>>> list is list_models
True
>>> load("no_such_model")
Traceback (most recent call last):
...
ValueError: name: expected one of the shipped models [...], got 'no_such_model'
"""

from handlab.zoo.cards import curves, results_table, trained_on
from handlab.zoo.evaluation import reevaluate
from handlab.zoo.quantize import dequantize, quantize_int8
from handlab.zoo.store import (
    RGB_MODELS,
    STORAGES,
    ZOO_DIR,
    folder,
    list_models,
    load,
    load_model,
    load_run,
    save_to_zoo,
)

list = list_models  # the short public name: ``zoo.list()``

__all__ = [
    "RGB_MODELS",
    "STORAGES",
    "ZOO_DIR",
    "curves",
    "dequantize",
    "folder",
    "list",
    "list_models",
    "load",
    "load_model",
    "load_run",
    "quantize_int8",
    "reevaluate",
    "results_table",
    "save_to_zoo",
    "trained_on",
]
