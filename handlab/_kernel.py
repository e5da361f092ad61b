"""A kernel client for the report runner that cannot miss a reply (used by :mod:`handlab.report`).

Why it exists. Executing chapter 11 in full mode, nbclient's own client stopped in 4 of 7 runs at
the same widget cell: the kernel had executed the cell, published its ``idle`` status and
answered a second client at once, but the runner's client never saw the ``execute_reply`` and
waited for the whole cell timeout (the chapter-04 stall of an earlier report looked the same).
A watchdog polling that client's shell socket found a message readable there for 246 s while
nbclient kept waiting: ``zmq.asyncio``'s edge-triggered wake-up for it had been missed, so an
``await poll(timeout)`` sleeps until the timeout (cf. zeromq/pyzmq#2173, jupyter/nbclient#312).

The fix, written here because nbclient and jupyter_client have no option for it: wait in slices of
:data:`POLL_SLICE_S` and, before every slice, look at the socket with a zero-timeout poll, which
asks libzmq directly and does not depend on the wake-up. A stranded message is then picked up
within one slice; a message that arrives normally still wakes the wait at once. Measured: with
this client chapter 11 passed 8 of 8 runs, and the warning below never fired (the zero-timeout
polls seem to keep the wake-up from being lost rather than recover it).

>>> issubclass(SlicedPollChannel, AsyncZMQSocketChannel)
True
>>> KernelManager().client_factory is KernelClient
True

It also measures the kernel's own peak memory: :func:`recording_peaks` gives a manager class that,
just before it shuts its kernel down, reads the kernel process's ``VmHWM`` (:func:`peak_rss_mb`).
Why not ``getrusage``'s ``ru_maxrss``: Linux carries the parent's high-water mark over ``fork``
and keeps it through ``exec``, so a kernel started from a 3 GB test process reported 3 GB for a
chapter that used 300 MB. ``VmHWM`` belongs to the address space ``exec`` makes afresh, so it
counts only the kernel's own memory, and as a high-water mark kept by the OS it misses no
short-lived peak (polling the RSS from outside would). Read from the parent at shutdown, it covers
every cell, also those of a chapter that failed. Not counted: processes the kernel starts (the
chapters start none; data loading is in-process). Where ``/proc`` is missing (macOS), the peak is
unknown (``None``).

>>> import os
>>> peak_rss_mb(os.getpid()) > 1
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = [
    "POLL_SLICE_S",
    "KernelClient",
    "KernelManager",
    "SlicedPollChannel",
    "peak_rss_mb",
    "recording_peaks",
]

POLL_SLICE_S = 1.0  # longest wait before the socket is asked again
log = logging.getLogger(__name__)


class SlicedPollChannel(AsyncZMQSocketChannel):
    """``get_msg`` that re-checks the socket every :data:`POLL_SLICE_S` seconds (see module)."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        """The next message; raises :class:`queue.Empty` when none came within ``timeout`` s."""
        assert self.socket is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False
        while True:
            if await self.socket.poll(0):  # asks libzmq now, independent of the FD wake-up
                if waited:  # a full slice went by although the message was there
                    log.warning("a message was found by the periodic check, not by its wake-up")
                return await self._recv()
            left = POLL_SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise Empty
            if await self.socket.poll(int(min(left, POLL_SLICE_S) * 1000)):
                return await self._recv()
            waited = True


class KernelClient(AsyncKernelClient):
    """nbclient's async client with :class:`SlicedPollChannel` on shell, IOPub and control."""

    shell_channel_class = Type(SlicedPollChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(SlicedPollChannel)  # type: ignore[assignment]
    control_channel_class = Type(SlicedPollChannel)  # type: ignore[assignment]


class KernelManager(AsyncKernelManager):
    """The kernel manager the report passes to papermill (``kernel_manager_class``)."""

    client_class = DottedObjectName("handlab._kernel.KernelClient")
    client_factory = Type(KernelClient, klass=AsyncKernelClient)
    # called with the kernel's peak memory (MB, or None) before each shutdown; see recording_peaks
    record_peak: Callable[[float | None], None] | None = None

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        if self.record_peak is not None:  # while the process is still there to be read
            pid = getattr(self.provisioner, "pid", None)
            self.record_peak(peak_rss_mb(pid) if pid is not None else None)
        await super()._async_shutdown_kernel(now=now, restart=restart)

    shutdown_kernel = _async_shutdown_kernel  # the async manager's public name (nbclient's call)


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (MB) of process ``pid`` since its ``exec``: ``VmHWM`` in
    ``/proc/PID/status``; ``None`` where that cannot be read (no ``/proc``, process gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # the line reads "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None


def recording_peaks(peaks: list[float | None]) -> type[KernelManager]:
    """A :class:`KernelManager` class (for papermill's ``kernel_manager_class``) that appends its
    kernel's peak memory in MB (:func:`peak_rss_mb`) to ``peaks`` before shutting it down.

    papermill makes the manager itself, so the list travels in the class, one class per run.
    """
    return type("RecordingKernelManager", (KernelManager,), {"record_peak": peaks.append})
