"""Training and evaluation: config, augmentation, batches by step, checkpoints, DDP, the loop.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``) and chapter 02. The public face is
this package (``TrainConfig``, ``fit``, ``evaluate``); the ``handlab train`` / ``handlab
evaluate`` commands are :mod:`handlab.commands.train`.
"""

from handlab.training.config import AugmentConfig, TrainConfig, lr_factor
from handlab.training.evaluation import evaluate, format_table, forward_in_chunks, predict
from handlab.training.loop import fit

__all__ = [
    "AugmentConfig",
    "TrainConfig",
    "evaluate",
    "fit",
    "format_table",
    "forward_in_chunks",
    "lr_factor",
    "predict",
]
