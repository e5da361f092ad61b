"""Import Google's MediaPipe Hands landmark models into the zoo (``handlab zoo import-mediapipe``).

For chapter 08 (PoseIG on a real-trained model); the network is :mod:`handlab.models.mediapipe`.

The ``.tflite`` files ship inside the ``mediapipe==0.10.14`` wheel (newer wheels no longer hold
them) under ``mediapipe/modules/hand_landmark/``. Their weights are float16 constants behind
DEQUANTIZE operators; they are read with the ``tflite`` flatbuffer parser (the conversion-time
extra ``handlab[mediapipe-convert]``, never needed to *use* the models) and stored as float16,
which is lossless. The convolutions are matched to the port in graph order, each checked for its
kind, shape and stride; the four fully connected heads by their TensorFlow names.

Equivalence with the TFLite interpreter (``ai-edge-litert`` or ``tflite-runtime``, a dev extra)
is measured by :func:`compare_with_interpreter`; the reference outputs it produced are committed
under ``tests/models/data`` so CI checks the shipped weights without an interpreter.

>>> sorted(HEAD_NAMES)
['handedness', 'landmarks', 'presence', 'world_landmarks']
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from handlab.models import create
from handlab.models.mediapipe import INPUT_SIZE, MediaPipeHand, SameConv2d

__all__ = [
    "HEAD_NAMES",
    "VERSION",
    "compare_with_interpreter",
    "import_mediapipe",
    "interpreter_outputs",
    "max_differences",
    "port_outputs",
    "read_reference",
    "read_tflite",
    "state_dict_from_tflite",
    "tflite_from_wheel",
]

VERSION = "0.10.14"  # the last mediapipe wheel that ships the hand landmark .tflite files
WHEEL_DIR = "mediapipe/modules/hand_landmark"
# port's head -> the TensorFlow layer name inside the .tflite graph
HEAD_NAMES = {
    "landmarks": "conv_landmarks",
    "presence": "conv_handflag",
    "handedness": "conv_handedness",
    "world_landmarks": "conv_world_landmarks",
}
# the interpreter's output names, in the port's output order
OUTPUT_NAMES = {"landmarks": "Identity", "presence": "Identity_1", "handedness": "Identity_2"}
OUTPUT_NAMES["world_landmarks"] = "Identity_3"
LICENCE_FILE = "mediapipe_hand.LICENSE.txt"
NOTICE_FILE = "mediapipe_hand.NOTICE.txt"


def _tflite():
    try:
        import tflite  # the flatbuffer parser: a conversion-time extra
    except ImportError as err:
        raise ImportError(
            "handlab zoo import-mediapipe needs the 'tflite' parser: "
            "pip install 'handlab[mediapipe-convert]'"
        ) from err
    return tflite


def _constant(tfl: Any, model: Any, graph: Any, index: int, producers: dict) -> np.ndarray:
    """The constant behind tensor ``index`` (through its DEQUANTIZE, if any) as float32."""
    index = producers.get(index, index)
    tensor = graph.Tensors(index)
    dtypes = {tfl.TensorType.FLOAT16: np.float16, tfl.TensorType.FLOAT32: np.float32}
    if tensor.Type() not in dtypes:
        raise ValueError(
            f"tensor {tensor.Name()!r}: expected float16/32 weights, got type {tensor.Type()}"
        )
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    shape = tuple(tensor.ShapeAsNumpy())
    return (
        np.frombuffer(raw.tobytes(), dtype=dtypes[tensor.Type()]).reshape(shape).astype(np.float32)
    )


def read_tflite(data: bytes) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """Parse a hand landmark ``.tflite``: its convolutions in graph order (``kind``, ``weight``
    in TFLite layout, ``bias``, ``stride``) and its fully connected heads by TensorFlow name."""
    tfl = _tflite()
    model = tfl.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    codes = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        ops.append((codes[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())], op))
    producers = {int(op.Outputs(0)): int(op.Inputs(0)) for k, op in ops if k == "DEQUANTIZE"}
    convs, heads = [], {}
    for kind, op in ops:
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opts = (tfl.Conv2DOptions if kind == "CONV_2D" else tfl.DepthwiseConv2DOptions)()
            opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            if opts.Padding() != tfl.Padding.SAME:
                raise ValueError(f"{kind}: expected SAME padding, got {opts.Padding()}")
            weight, bias = (_constant(tfl, model, graph, op.Inputs(j), producers) for j in (1, 2))
            convs.append({"kind": kind, "weight": weight, "bias": bias, "stride": opts.StrideW()})
        elif kind == "FULLY_CONNECTED":
            name = graph.Tensors(producers.get(op.Inputs(1), op.Inputs(1))).Name().decode()
            layer = next((v for v in HEAD_NAMES.values() if f"/{v}/" in name), None)
            if layer is None:
                raise ValueError(f"FULLY_CONNECTED {name!r}: expected one of {HEAD_NAMES.values()}")
            heads[layer] = {
                "weight": _constant(tfl, model, graph, op.Inputs(1), producers),
                "bias": _constant(tfl, model, graph, op.Inputs(2), producers),
            }
    return convs, heads


def state_dict_from_tflite(data: bytes, variant: str) -> dict[str, torch.Tensor]:
    """The port's state dict (float32) from a hand landmark ``.tflite`` of ``variant``.

    TFLite stores convolutions as (O, kh, kw, I) and depthwise ones as (1, kh, kw, C); torch
    wants (O, I, kh, kw) and (C, 1, kh, kw). Raises ``ValueError`` when the graph does not
    match the port (a wrong variant, another model).
    """
    model = create("mediapipe_hand", variant=variant)
    convs, heads = read_tflite(data)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, SameConv2d)]
    if len(layers) != len(convs):
        raise ValueError(
            f"tflite: expected {len(layers)} convolutions for variant {variant!r}, got {len(convs)}"
        )
    state: dict[str, torch.Tensor] = {}
    for (name, layer), conv in zip(layers, convs, strict=True):
        depthwise = conv["kind"] == "DEPTHWISE_CONV_2D"
        if depthwise:
            weight = torch.from_numpy(conv["weight"]).permute(3, 0, 1, 2)  # (C, 1, kh, kw)
        else:
            weight = torch.from_numpy(conv["weight"]).permute(0, 3, 1, 2)  # (O, I, kh, kw)
        if (layer.groups > 1) != depthwise or weight.shape != layer.weight.shape:
            raise ValueError(
                f"tflite: {conv['kind']} {tuple(weight.shape)} does not fit {name} "
                f"{tuple(layer.weight.shape)} (variant {variant!r})"
            )
        if conv["stride"] != layer.stride[0]:
            raise ValueError(f"tflite: stride {conv['stride']} does not fit {name}")
        state[f"{name}.weight"] = weight.contiguous()
        state[f"{name}.bias"] = torch.from_numpy(conv["bias"])
    for head, layer_name in HEAD_NAMES.items():
        if layer_name not in heads:
            raise ValueError(f"tflite: expected a fully connected layer {layer_name!r}")
        for key in ("weight", "bias"):
            value = torch.from_numpy(heads[layer_name][key])
            state[f"{head}.{key}"] = value.reshape(getattr(model, head).get_parameter(key).shape)
    return state


def tflite_from_wheel(wheel: str | Path, variant: str) -> tuple[bytes, str, str]:
    """(``.tflite`` bytes, wheel version, licence text) of ``variant`` from a mediapipe wheel."""
    path = Path(wheel)
    if not path.is_file():
        raise ValueError(f"wheel: expected a mediapipe .whl file, got {path} (not a file)")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        member = f"{WHEEL_DIR}/hand_landmark_{variant}.tflite"
        if member not in names:
            raise ValueError(
                f"wheel: {path.name} holds no {member} (mediapipe {VERSION} does; newer don't)"
            )
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        version = next(
            ln.split(":", 1)[1].strip()
            for ln in z.read(meta).decode().splitlines()
            if ln.startswith("Version:")
        )
        licence = z.read(meta.replace("METADATA", "LICENSE")).decode()
        return z.read(member), version, licence


def _interpreter(data: bytes) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as err:
            raise ImportError(
                "a TFLite interpreter is needed: pip install ai-edge-litert (handlab[dev])"
            ) from err
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    return interpreter


def interpreter_outputs(data: bytes, images: np.ndarray) -> dict[str, np.ndarray]:
    """Run the TFLite interpreter on ``images`` (N, 224, 224, 3) float32 RGB in [0, 1].

    Returns ``landmarks`` / ``world_landmarks`` (N, 21, 3), ``presence`` / ``handedness`` (N,).
    """
    interpreter = _interpreter(data)
    inp = interpreter.get_input_details()[0]["index"]
    by_name = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    out: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUT_NAMES}
    for image in np.asarray(images, dtype=np.float32):
        interpreter.set_tensor(inp, image[None])
        interpreter.invoke()
        for key, name in OUTPUT_NAMES.items():
            out[key].append(interpreter.get_tensor(by_name[name]).reshape(-1).copy())
    shapes = {"landmarks": (-1, 21, 3), "world_landmarks": (-1, 21, 3)}
    return {k: np.stack(v).reshape(shapes.get(k, (-1,))) for k, v in out.items()}


@torch.no_grad()
def port_outputs(model: MediaPipeHand, images: np.ndarray) -> dict[str, np.ndarray]:
    """The port's raw outputs for ``images`` (N, 224, 224, 3) float32 (interpreter layout)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    out = model.eval()(x.contiguous())
    return {k: out[k].numpy() for k in OUTPUT_NAMES}


def max_differences(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest absolute differences: ``landmarks_px`` (x, y), ``world_mm``, ``presence``,
    ``handedness``."""
    return {
        "landmarks_px": float(np.abs(a["landmarks"][..., :2] - b["landmarks"][..., :2]).max()),
        "world_mm": float(1000 * np.abs(a["world_landmarks"] - b["world_landmarks"]).max()),
        "presence": float(np.abs(a["presence"] - b["presence"]).max()),
        "handedness": float(np.abs(a["handedness"] - b["handedness"]).max()),
    }


def compare_with_interpreter(
    model: MediaPipeHand, data: bytes, images: np.ndarray
) -> dict[str, float]:
    """:func:`max_differences` between the port and the interpreter on ``images``."""
    return max_differences(port_outputs(model, images), interpreter_outputs(data, images))


def _notice(version: str) -> str:
    return (
        "MediaPipe Hands landmark models (hand_landmark_full.tflite, hand_landmark_lite.tflite)\n"
        f"Copyright The MediaPipe Authors (Google LLC). From the mediapipe=={version} wheel on\n"
        "PyPI (https://github.com/google/mediapipe), licensed under the Apache License 2.0\n"
        f"(the full text: {LICENCE_FILE}).\n\n"
        "Modifications: the float16 weights were read from the .tflite files and stored\n"
        "unchanged as safetensors (mediapipe_hand_full / _lite) for handlab's PyTorch port\n"
        "(handlab/models/mediapipe.py) by 'handlab zoo import-mediapipe'.\n"
    )


def import_mediapipe(
    *,
    wheel: str | Path | None = None,
    tflite: str | Path | None = None,
    variant: str | None = None,
    zoo_dir: str | Path | None = None,
    command: str = "",
    check_images: np.ndarray | None = None,
    evaluate: bool = True,
) -> list[Path]:
    """Convert MediaPipe's hand landmark models into zoo entries; returns the weights paths.

    Args:
        wheel: a ``mediapipe-0.10.14-*.whl``: both variants and its licence are read from it.
        tflite: instead, one ``hand_landmark_{full,lite}.tflite`` (``variant`` from its name);
            the licence must then already be in the zoo folder.
        zoo_dir: where to write (default the package's ``zoo/weights``).
        command: the command line recorded in the cards.
        check_images: optional (N, 224, 224, 3) float32 crops; with an interpreter installed
            the card records the port's largest differences from it on them (``equivalence``).

    Writes ``mediapipe_hand_VARIANT.safetensors`` (float16, as published) and ``.json`` (the
    card), the licence and a NOTICE. Cards keep keys added later (``metrics``, ``real_hands``).
    """
    from handlab.zoo import folder

    if (wheel is None) == (tflite is None):
        raise ValueError("expected exactly one of wheel= or tflite=")
    d = folder(zoo_dir)
    d.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, bytes, str]] = []
    if wheel is not None:
        for v in (variant,) if variant else ("full", "lite"):
            data, version, licence = tflite_from_wheel(wheel, v)
            sources.append((v, data, f"{Path(wheel).name}:{WHEEL_DIR}/hand_landmark_{v}.tflite"))
        (d / LICENCE_FILE).write_text(licence)
    else:
        path = Path(tflite)
        if not path.is_file():
            raise ValueError(f"tflite: expected a hand_landmark_*.tflite file, got {path}")
        v = variant or next((x for x in ("full", "lite") if x in path.name), None)
        if v is None:
            raise ValueError(f"variant: expected 'full' or 'lite' (not in {path.name!r})")
        if not (d / LICENCE_FILE).is_file():
            raise ValueError(f"{d / LICENCE_FILE}: missing; import once with --wheel")
        sources.append((v, path.read_bytes(), path.name))
        version = VERSION
    (d / NOTICE_FILE).write_text(_notice(version))
    return [
        _write(d, v, data, src, version, command, check_images, evaluate)
        for v, data, src in sources
    ]


def _write(
    d: Path,
    variant: str,
    data: bytes,
    src: str,
    version: str,
    command: str,
    images: Any,
    evaluate: bool,
) -> Path:
    from handlab.zoo import reevaluate

    name = f"mediapipe_hand_{variant}"
    state = state_dict_from_tflite(data, variant)
    weights = d / f"{name}.safetensors"
    save_file({k: v.half().contiguous() for k, v in state.items()}, weights)  # lossless
    card_path = d / f"{name}.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    card.update(
        model="mediapipe_hand",
        model_config={"variant": variant},
        name=name,
        storage="float16",
        size_mb=round(weights.stat().st_size / 2**20, 2),
        command=command,
        source={
            "package": "mediapipe",
            "version": version,
            "file": src,
            "sha256": hashlib.sha256(data).hexdigest(),
            "url": f"https://pypi.org/project/mediapipe/{version}/",
            "trained_on": "real photographs (Google's MediaPipe Hands training set)",
        },
        licence="Apache-2.0",
        licence_files=[LICENCE_FILE, NOTICE_FILE],
        input={"size": INPUT_SIZE, "crop": "square, ideally upright (wrist -> middle MCP up)"},
    )
    model = create("mediapipe_hand", variant=variant)
    model.load_state_dict({k: v.half().float() for k, v in state.items()})
    if evaluate:
        # The synthetic test split at 224 px (square, not upright crops): what the zoo test
        # re-evaluates every shipped model on. The real-hands scores come from the benchmark.
        model.card = {"eval": {"data": "synth", "split": "test", "size": INPUT_SIZE, "limit": 512}}
        card["eval"] = model.card["eval"]
        card["metrics"] = reevaluate(model.eval())
        card["storage_metrics"] = card["metrics"]  # float16 as published: storage is lossless
    if images is not None:
        try:
            card["equivalence"] = {
                "crops": len(images),
                **compare_with_interpreter(model, data, images),
            }
        except ImportError as err:
            print(f"no equivalence figures: {err}")
    card_path.write_text(json.dumps(card, indent=1))
    return weights


def read_reference(path: str | Path) -> dict[str, np.ndarray]:
    """The committed reference: ``images`` (N, 224, 224, 3) float32 in [0, 1] (stored as uint8)
    and the interpreter's outputs per variant (``full_landmarks``, ... ``lite_handedness``)."""
    with np.load(io.BytesIO(Path(path).read_bytes())) as z:
        out = {k: z[k] for k in z.files}
    out["images"] = out["images"].astype(np.float32) / 255.0
    return out
