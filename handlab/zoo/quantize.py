"""Weight-only int8 storage for the zoo: int8 weights with a float16 scale per output channel.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``).

Every conv/linear weight is kept as int8 with one float16 scale per output channel (symmetric,
``scale = max|w| / 127``) and everything else as float16; it halves fp16's size, which is what
lets ResNet-50 and ResNet-34 ship inside the 80 MB budget. Loading dequantises to float32.
Written by hand: torch's quantisation APIs quantise activations too and are not stored by
safetensors; this is weight-only storage, nothing more.
"""

from __future__ import annotations

import torch

__all__ = ["dequantize", "quantize_int8"]

_SCALE = ".__int8_scale"  # suffix of the per-channel scale stored beside an int8 weight


def quantize_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weight-only int8 storage: each float tensor of >= 2 dims and >= 1024 values becomes int8
    plus a float16 scale per output channel (``NAME`` + ``.__int8_scale``); other floats fp16.

    >>> w = torch.randn(8, 16, 3, 3)
    >>> q = quantize_int8({"w": w})
    >>> q["w"].dtype, q["w.__int8_scale"].shape
    (torch.int8, torch.Size([8]))
    >>> bool((dequantize(q)["w"] - w).abs().max() <= w.abs().max() / 127)
    True
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if v.is_floating_point() and v.dim() >= 2 and v.numel() >= 1024:
            flat = v.detach().float().reshape(v.shape[0], -1)
            scale = (flat.abs().amax(dim=1) / 127).clamp_min(1e-12)
            scale = scale.half().float().clamp_min(6e-8)  # the scale as stored
            q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
            out[k] = q.reshape(v.shape).contiguous()
            out[k + _SCALE] = scale.half()
        else:
            out[k] = v.half() if v.is_floating_point() else v
    return out


def dequantize(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`quantize_int8` (float32 out; also accepts fp16/fp32 states)."""
    out = {}
    for k, v in state.items():
        if k.endswith(_SCALE):
            continue
        scale = state.get(k + _SCALE)
        if scale is not None:
            shape = (-1,) + (1,) * (v.dim() - 1)
            out[k] = v.float() * scale.float().reshape(shape)
        else:
            out[k] = v.float() if v.is_floating_point() else v
    return out
