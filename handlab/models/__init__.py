"""Models: the registry and one module per family (see ``base`` for the contract).

Taught in chapters 01-07.
"""

# Importing the RGB family modules registers their builders (chapters 01-03).
from handlab.models import (  # noqa: F401  (registration side effect)
    a2j,
    cpm,
    deformer,
    detnet,
    handmodel_regression,
    handoccnet,
    hrnet,
    iknet,
    integral,
    lifting,
    meshgcn,
    regression,
    rle,
    simplebaseline,
    transpose,
    v2v,
    weak3d,
)
from handlab.models.base import PoseModel, check_images
from handlab.models.registry import create, list_models, register_model

__all__ = ["PoseModel", "check_images", "create", "list_models", "register_model"]
