"""One writer per output folder: an exclusive lock file naming its holder.

``handlab train``, ``handlab attribute`` and ``handlab report`` write into an output folder and
resume what they find there; two runs on one folder would both do the work and overwrite each
other. :func:`output_lock` creates ``FOLDER/.handlab.lock`` with ``O_CREAT | O_EXCL`` (atomic on
local file systems and NFSv3+) holding the pid, host, start time and command; a second process
gets :class:`~handlab.errors.OutputLockedError` naming the holder. The lock is removed on exit,
also after an exception. A lock left by a process that died (same host, pid gone) is stale and
taken over; a lock from another host is never guessed stale: the message says how to remove it.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> with output_lock(d):
...     with output_lock(d):
...         pass
Traceback (most recent call last):
...
handlab.errors.OutputLockedError: ...: in use by pid ... on ... since ...
>>> (d / LOCK_NAME).exists()
False
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from handlab.errors import OutputLockedError

__all__ = ["LOCK_NAME", "output_lock", "output_lock_on_main"]

LOCK_NAME = ".handlab.lock"


def _holder_text(folder: Path, info: dict) -> str:
    return (
        f"{folder}: in use by pid {info.get('pid', '?')} on {info.get('host', '?')} since "
        f"{info.get('time', '?')} ({info.get('command', '?')}); wait for it to finish or use "
        f"another output folder (if that process is gone, delete {folder / LOCK_NAME})"
    )


def _read(path: Path) -> dict | None:
    """The lock's content; ``None`` if it vanished; ``{}`` while its holder is still writing it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _dead(info: dict) -> bool:
    """Whether the holder is known to be gone: this host and no process with its pid."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _try_create(path: Path, info: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(info))
    return True


def _break_stale(path: Path, seen: dict) -> None:
    """Remove the stale lock ``seen``; under a second lock so two takers cannot both remove."""
    breaker = path.with_name(path.name + ".break")
    if not _try_create(breaker, {"pid": os.getpid()}):
        return  # someone else is breaking it; the caller retries
    try:
        if _read(path) == seen:  # still the dead holder's lock, not a new live one
            path.unlink(missing_ok=True)
    finally:
        breaker.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(folder: str | Path, command: str | None = None) -> Iterator[Path]:
    """Hold ``folder``'s lock for the ``with`` block (``folder`` is created if needed).

    Raises :class:`~handlab.errors.OutputLockedError` naming the holder (pid, host, start time,
    command) when another live process holds it. Yields the lock file's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "token": uuid.uuid4().hex,  # tells our lock from a later one with a reused pid
    }
    for _ in range(3):
        if _try_create(path, info):
            break
        seen = _read(path)
        if seen is None:
            continue  # released meanwhile: try again
        if not _dead(seen):
            raise OutputLockedError(_holder_text(folder, seen))
        _break_stale(path, seen)
    else:
        raise OutputLockedError(_holder_text(folder, _read(path) or {}))
    try:
        yield path
    finally:
        if (_read(path) or {}).get("token") == info["token"]:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock_on_main(folder: str | Path, *, rank: int, world: int) -> Iterator[None]:
    """:func:`output_lock` taken by rank 0 of a ``torchrun`` group; every rank raises if refused.

    The other ranks of the group write into the same folder under rank 0's lock; without the
    shared verdict they would wait at the next barrier for a rank 0 that already failed.
    """
    with contextlib.ExitStack() as stack:
        refused = None
        if rank == 0:
            try:
                stack.enter_context(output_lock(folder))
            except OutputLockedError as err:
                refused = str(err)
        if world > 1:
            import torch.distributed as dist  # only under torchrun: keeps this module light

            shared = [refused]
            dist.broadcast_object_list(shared, src=0)
            refused = shared[0]
        if refused is not None:
            raise OutputLockedError(refused)
        yield
