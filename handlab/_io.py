"""Atomic file writes (a temporary file in the target's folder, then ``os.replace``), and
safetensors reads whose errors name the file.

A crash at any moment leaves either the old file or the new one, never half of one. The file gets
the permissions an ordinary ``open(path, "w")`` would give (0666 less the umask), not the 0600 of
``tempfile.mkstemp``, so reports and runs stay readable by the people they are shared with.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.json", "{}")
>>> (d / "a.json").read_text(), oct((d / "a.json").stat().st_mode & 0o777) == oct(_mode())
('{}', True)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from handlab.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["atomic_write", "atomic_write_text", "load_safetensors"]


def _mode() -> int:
    """0666 less the process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_name)`` to fill a temporary file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _what_it_is(path: Path) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return "a file that cannot be opened"
    if head[:1] == b"\x80":
        return "a pickle file, not safetensors (handlab never unpickles weights)"
    if head == b"PK\x03\x04":
        return "a zip (torch.save) file, not safetensors (handlab never unpickles weights)"
    return "truncated or not a safetensors file"


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, or :class:`~handlab.errors.InputError` naming it.

    >>> load_safetensors("/nonexistent/model.safetensors")
    Traceback (most recent call last):
    ...
    handlab.errors.InputError: /nonexistent/model.safetensors: missing file; expected ...
    """
    from safetensors import SafetensorError  # imported late: writing text needs no torch
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: missing file; expected safetensors weights")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise InputError(
            f"{path}: unreadable weights, {_what_it_is(path)} ({err}); expected the safetensors "
            "file written by handlab train (copy or train it again)"
        ) from err
