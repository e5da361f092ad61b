"""Models: the registry and one module per family (see ``base`` for the contract), and foreign
networks behind the same contract (``wrap``, ``from_onnx``, ``from_factory``).

Taught in chapters 01-07; foreign networks in chapter 08.
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
    mediapipe,
    meshgcn,
    regression,
    rle,
    simplebaseline,
    transpose,
    v2v,
    weak3d,
)
from handlab.models.base import ModelContract, PoseModel, check_images, contract
from handlab.models.foreign import from_factory, wrap
from handlab.models.onnx_io import from_onnx
from handlab.models.registry import create, list_models, register_model

__all__ = [
    "ModelContract",
    "PoseModel",
    "check_images",
    "contract",
    "create",
    "from_factory",
    "from_onnx",
    "list_models",
    "register_model",
    "wrap",
]
