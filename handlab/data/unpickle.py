"""A restricted unpickler for dataset annotations (RHD, HO-3D): plain containers and numpy only.

Chapter 00 (``notebooks/00_tour.py``) mentions it; no chapter teaches it yet.

A pickle is a small program: each ``GLOBAL`` opcode imports a name and the file may then call it,
so ``pickle.load`` on a downloaded file can run ``os.system``. The Python documentation's answer
("Restricting Globals") is to override :meth:`pickle.Unpickler.find_class` with an allow-list;
this module does exactly that. Dicts, lists, tuples, strings, numbers and bytes need no import at
all; the allow-list holds only what numpy needs to rebuild arrays, dtypes and scalars (under both
the numpy 1 ``numpy.core`` and numpy 2 ``numpy._core`` names, since the datasets were pickled by
Python 2 / numpy 1), plus ``_codecs.encode`` (protocol 2 stores bytes through it) and the
built-in container types. Anything else raises :class:`UnsafePickleError` naming the file and the
refused global.

>>> import io, pickle
>>> safe_load(io.BytesIO(pickle.dumps({"K": np.eye(3)})))["K"].shape
(3, 3)
>>> try:
...     safe_load(io.BytesIO(b"cos\\nsystem\\n(S'echo hi'\\ntR."), name="evil.pickle")
... except UnsafePickleError as err:
...     print(str(err)[:50])
evil.pickle: refused to load global 'os.system' (o
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "safe_load"]

_NUMPY_NAMES = {
    "multiarray": ("_reconstruct", "scalar"),
    "numeric": ("_frombuffer",),
}
# value types only (no callables that run code); protocols 0-2 rebuild bytes and sets through them
_BUILTIN_TYPES = (
    "bool", "bytes", "bytearray", "complex", "dict", "float", "frozenset", "int", "list", "set",
    "str", "tuple",
)  # fmt: skip
# (module, name) pairs a dataset pickle may reference; everything else is refused.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("codecs", "encode")}
    | {
        (f"{prefix}.{module}", name)
        for prefix in ("numpy.core", "numpy._core")
        for module, names in _NUMPY_NAMES.items()
        for name in names
    }
    | {(module, n) for module in ("builtins", "__builtin__") for n in _BUILTIN_TYPES}
    | {("collections", "OrderedDict")}
)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle referenced a global outside :data:`ALLOWED_GLOBALS` (it could run code)."""


def _resolve(module: str, name: str) -> Any:
    """Import an allowed global; numpy 1 module paths map to numpy 2's ``numpy._core``."""
    if module in ("builtins", "__builtin__"):
        return getattr(builtins, name)
    if module in ("_codecs", "codecs"):
        return codecs.encode
    if module.startswith(("numpy.core.", "numpy._core.")):
        tail = module.split(".", 2)[2]
        core = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
        return getattr(importlib.import_module(f"{core}.{tail}"), name)
    return getattr(importlib.import_module(module), name)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, *, name: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self._name}: refused to load global '{module}.{name}' (only plain containers "
                "and numpy arrays are allowed in dataset annotations; the file may be corrupt "
                "or malicious)"
            )
        return _resolve(module, name)


def safe_load(
    source: str | Path | BinaryIO, *, name: str | None = None, encoding: str = "latin1"
) -> Any:
    """Unpickle ``source`` (a path or a binary file) allowing only containers and numpy arrays.

    Args:
        source: path to a ``.pickle``/``.pkl`` file, or an open binary file.
        name: how errors name the file (defaults to the path).
        encoding: how Python 2 ``str`` objects are decoded; ``"latin1"`` keeps numpy buffers
            byte-exact (RHD and HO-3D were pickled by Python 2).

    Returns:
        the unpickled object.

    Raises:
        FileNotFoundError: the path does not exist.
        UnsafePickleError: the pickle references any other global (e.g. ``os.system``).
        ValueError: the file is truncated or not a pickle.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{name or path}: pickle file not found")
        data = path.read_bytes()
        label = name or str(path)
        return _load(io.BytesIO(data), label, encoding)
    return _load(source, name or "<pickle>", encoding)


def _load(file: BinaryIO, label: str, encoding: str) -> Any:
    try:
        return _RestrictedUnpickler(file, name=label, encoding=encoding).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, TypeError) as err:
        raise ValueError(f"{label}: not a readable pickle ({type(err).__name__}: {err})") from err
