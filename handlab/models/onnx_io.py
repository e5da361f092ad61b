"""ONNX networks as handlab pose models, converted to PyTorch by onnx2torch (optional extra).

Taught in chapter 08 (``notebooks/08_poseig.py``), with :mod:`handlab.models.foreign`.

Attribution needs gradients with respect to the input, which an ONNX runtime does not give, so
the graph is converted to an ``nn.Module`` (``onnx2torch``, one torch module per ONNX node, named
after the node) and put behind the model contract with :func:`~handlab.models.foreign.wrap`.
What is read from the graph: a static input side becomes ``input_size`` (checked on every call),
a 4D output means heatmaps and its channels ``num_joints``, a 3D or 2D output coordinates in
input pixels; a graph exported with a fixed batch of 1 runs one image at a time.

Install with ``pip install 'handlab[onnx]'`` (``onnx``, ``onnx2torch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from handlab.models.foreign import Output, WrappedModel

__all__ = ["from_onnx"]


def _import() -> tuple[Any, Any]:
    try:
        import onnx
        import onnx2torch
    except ImportError as err:
        raise ImportError(
            "from_onnx needs the optional packages onnx and onnx2torch: pip install 'handlab[onnx]'"
        ) from err
    return onnx, onnx2torch


def _dims(value_info: Any) -> list[int | None]:
    """Static sizes of a graph input/output; None for symbolic or unknown ones."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _inline_shared_initializers(onnx: Any, graph: Any) -> None:
    # torch's exporter de-duplicates equal weights (e.g. two zero conv biases) into one
    # initializer read through Identity nodes; onnx2torch expects conv weights and biases to be
    # initializers, so each such Identity is replaced by a copy of the tensor under its name.
    inits = {t.name: t for t in graph.initializer}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            graph.initializer.append(copy)
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def _infer_output(dims: list[int | None], path: Path) -> tuple[str, int | None]:
    if len(dims) == 4:
        return "heatmaps", dims[1]
    if len(dims) == 3 and dims[2] in (2, 3, None):
        return "coords", dims[1]
    if len(dims) == 2:
        return "coords", None if dims[1] is None else dims[1] // 2
    raise ValueError(
        f"{path}: cannot tell heatmaps from coordinates in an output of shape {dims}; "
        "pass output='heatmaps', 'coords' or a callable"
    )


def from_onnx(
    path: str | Path,
    *,
    output: Output | None = None,
    input_size: int | None = None,
    normalize: object = None,
    channels: str = "rgb",
    num_joints: int | None = None,
    joint_order: Sequence[int] | None = None,
    sigma: float = 2.0,
) -> WrappedModel:
    """Load the ONNX network at ``path`` as a handlab pose model (eval mode).

    Arguments not given are read from the graph (``output`` from the output's rank,
    ``num_joints`` from its joint axis, ``input_size`` from a static square input); the others
    are :func:`~handlab.models.foreign.wrap`'s. The graph must take one image batch
    ``(B, 3, H, W)``; a graph with several outputs needs ``output=callable(tuple) -> keypoints``.
    """
    onnx, onnx2torch = _import()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: expected an ONNX file, got {str(path)!r} (no such file)")
    proto = onnx.load(str(path))
    graph = proto.graph
    known = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in known]
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ValueError(f"{path}: expected one image input (B, 3, H, W), got inputs {names}")
    dims = _dims(inputs[0])
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ValueError(f"{path}: expected an image input (B, 3, H, W), got shape {dims}")
    if input_size is None and dims[2] is not None and dims[2] == dims[3]:
        input_size = dims[2]
    if output is None or num_joints is None:
        if len(graph.output) != 1:
            raise ValueError(
                f"{path}: {len(graph.output)} outputs; pass output=callable(outputs) -> "
                "keypoints (B, J, 2) px and num_joints"
            )
        kind, joints = _infer_output(_dims(graph.output[0]), path)
        output = kind if output is None else output
        num_joints = (joints or 21) if num_joints is None else num_joints
    _inline_shared_initializers(onnx, graph)
    try:
        net = onnx2torch.convert(proto)
    except (NotImplementedError, KeyError) as err:
        raise ValueError(f"{path}: onnx2torch cannot convert this graph: {err}") from err
    model = WrappedModel(
        net, output=output, input_size=input_size, normalize=normalize, channels=channels,
        num_joints=num_joints, joint_order=joint_order, sigma=sigma, one_at_a_time=dims[0] == 1,
    )  # fmt: skip
    return model.eval()
