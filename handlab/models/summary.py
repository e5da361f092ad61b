"""What a network is made of and what it costs: a layer table (output shape, parameters, stride)
and the measured inference time per image.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``: the ResNet trunk takes 128 px to
stride 32, the deconvolution head brings it back to stride 4) and chapter 02
(``notebooks/02_compare_2d.py``: parameters, time and the lowest resolution of each family).

The table is read from forward hooks during one real forward pass, so it shows the shapes the
network actually produces, not the ones a diagram promises.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
>>> layer_table(net, torch.zeros(1, 3, 8, 8))[["layer", "output", "params", "stride"]]
  layer        output  params  stride
0     0  (1, 4, 4, 4)     112     2.0
1     1  (1, 4, 4, 4)       0     2.0
2     2       (1, 64)       0     NaN
"""

from __future__ import annotations

import statistics
import time

import pandas as pd
import torch
from torch import nn

from handlab._checks import check_shape, check_tensor

__all__ = ["inference_ms", "layer_table"]


def _selected(model: nn.Module, depth: int) -> list[str]:
    """Module names with ``depth`` parts, and leaves with fewer parts (in definition order)."""
    names = []
    for name, module in model.named_modules():
        if not name:
            continue
        parts = name.count(".") + 1
        if parts == depth or (parts < depth and not any(True for _ in module.children())):
            names.append(name)
    return names


def layer_table(model: nn.Module, images: torch.Tensor, *, depth: int = 2) -> pd.DataFrame:
    """One row per module at ``depth`` (dotted-name parts; shallower leaves included), in the
    order the forward pass calls them.

    Args:
        model: any ``nn.Module``; it is run once, in eval mode, without gradients.
        images: one input batch (B, C, H, W).
        depth: how deep to look: 1 gives the top-level children (``backbone``, ``head``), 2 their
            children (``backbone.4`` = ResNet ``layer1``), and so on.

    Returns:
        DataFrame with ``layer`` (dotted name), ``type`` (class name), ``output`` (shape of the
        first tensor output), ``params`` (parameters of the module and its children) and
        ``stride`` (input H / output H, NaN for outputs that are not (B, C, h, w) maps). A module
        called twice (shared, or a flip test) is listed once, at its first call.
    """
    check_tensor("images", images)
    check_shape("images", images, (None, None, None, None))
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: expected an int >= 1, got {depth!r}")
    modules = dict(model.named_modules())
    rows: dict[str, dict] = {}

    def hook(name: str):
        def record(module: nn.Module, _inputs: object, output: object) -> None:
            if name in rows or not isinstance(output, torch.Tensor):
                return
            stride = images.shape[-2] / output.shape[-2] if output.dim() == 4 else float("nan")
            rows[name] = {
                "layer": name,
                "type": type(module).__name__,
                "output": tuple(output.shape),
                "params": sum(p.numel() for p in module.parameters()),
                "stride": stride,
            }

        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in _selected(model, depth)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return pd.DataFrame(
        list(rows.values()), columns=["layer", "type", "output", "params", "stride"]
    )


def inference_ms(model: nn.Module, images: torch.Tensor, *, repeats: int = 3) -> float:
    """Wall-clock milliseconds per image of ``model(images)`` (eval mode, no gradients): the
    median of ``repeats`` timed passes after one untimed warm-up pass.

    Args:
        images: (B, C, H, W) batch; the time of one pass is divided by B.

    >>> from torch import nn
    >>> inference_ms(nn.Conv2d(3, 1, 1), torch.zeros(2, 3, 8, 8)) > 0
    True
    """
    check_tensor("images", images)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected an int >= 1, got {repeats!r}")
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.no_grad():
            model(images)  # warm-up: first-call allocations and kernel selection
            for _ in range(repeats):
                start = time.perf_counter()
                model(images)
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return 1000.0 * statistics.median(times) / images.shape[0]
