"""Validation at the public boundary: one readable helper per kind of check.

Every public function validates its inputs with these helpers and raises ``ValueError`` or
``TypeError`` naming the argument, what was expected and what came (STYLE.md rule 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "Array",
    "check_finite",
    "check_range",
    "check_shape",
    "check_tensor",
    "resolve_device",
    "to_numpy",
]

Array = torch.Tensor | np.ndarray  # what the public functions accept wherever both work


def _shape_str(shape: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def check_tensor(name: str, x: object) -> None:
    """Raise ``TypeError`` unless ``x`` is a torch tensor or numpy array.

    >>> check_tensor("images", [1, 2])
    Traceback (most recent call last):
    ...
    TypeError: images: expected a torch.Tensor or numpy.ndarray, got list
    """
    if not isinstance(x, torch.Tensor | np.ndarray):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def check_shape(name: str, x: Array, shape: Sequence[int | str | None]) -> None:
    """Raise ``ValueError`` unless ``x.shape`` matches ``shape``.

    ``None`` matches any size; a leading ``"..."`` matches any number of leading dimensions.

    >>> check_shape("keypoints", torch.zeros(2, 21, 2), ("...", 21, 2))
    >>> check_shape("keypoints", torch.zeros(2, 20, 2), ("...", 21, 2))
    Traceback (most recent call last):
    ...
    ValueError: keypoints: expected shape (..., 21, 2), got (2, 20, 2)
    """
    check_tensor(name, x)
    got = tuple(x.shape)
    want = list(shape)
    ok = True
    if want and want[0] == "...":
        tail = want[1:]
        ok = len(got) >= len(tail) and all(
            w is None or w == g for w, g in zip(tail, got[len(got) - len(tail) :], strict=True)
        )
    else:
        ok = len(got) == len(want) and all(
            w is None or w == g for w, g in zip(want, got, strict=True)
        )
    if not ok:
        raise ValueError(f"{name}: expected shape {_shape_str(want)}, got {_shape_str(got)}")


def check_finite(name: str, x: Array) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values.

    >>> check_finite("xyz", torch.tensor([1.0, float("nan")]))
    Traceback (most recent call last):
    ...
    ValueError: xyz: expected finite values, got 1 NaN/inf of 2
    """
    check_tensor(name, x)
    bad = int((~torch.isfinite(torch.as_tensor(x))).sum())
    if bad:
        total = x.size if isinstance(x, np.ndarray) else x.numel()
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf of {total}")


def to_numpy(
    name: str, x: Array, *, finite: bool = False, dtype: np.dtype | type | None = None
) -> np.ndarray:
    """``x`` (tensor or array) checked and returned as a numpy array: detached, on the CPU, cast
    to ``dtype`` when given; ``finite`` also rejects NaN and infinite values.

    >>> to_numpy("xyz", torch.ones(2, 3), dtype=np.float64).dtype
    dtype('float64')
    >>> to_numpy("xyz", np.array([np.nan]), finite=True)
    Traceback (most recent call last):
    ...
    ValueError: xyz: expected finite values, got 1 NaN/inf of 1
    """
    check_tensor(name, x)
    if finite:
        check_finite(name, x)
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr if dtype is None else arr.astype(dtype)


def check_range(name: str, value: float, lo: float | None = None, hi: float | None = None) -> None:
    """Raise ``ValueError`` unless ``lo <= value <= hi`` (either bound may be ``None``).

    >>> check_range("size", 8, lo=16)
    Traceback (most recent call last):
    ...
    ValueError: size: expected a value >= 16, got 8
    """
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ValueError(f"{name}: expected a value in [{lo}, {hi}], got {value}")
    if lo is not None and value < lo:
        raise ValueError(f"{name}: expected a value >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name}: expected a value <= {hi}, got {value}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when present, else CPU; pass anything else to ``torch.device``.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
