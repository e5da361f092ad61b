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

It also measures the kernel's own memory, two ways, handed to :func:`recording_peaks`'s list as a
:class:`KernelMemory` just before the kernel shuts down (so a failed chapter has them too):

- ``resident_mb``: the kernel process's ``VmHWM`` (:func:`peak_rss_mb`), its peak resident set
  kept by the OS, which misses no short-lived peak. Why not ``getrusage``'s ``ru_maxrss``: Linux
  carries the parent's high-water mark over ``fork`` and keeps it through ``exec``, so a kernel
  started from a 3 GB test process reported 3 GB for a chapter that used 300 MB. But the resident
  set also counts the pages of the shared libraries it maps (torch's are about 1 GB of files),
  and how many of those are resident depends on the page cache, not on the chapter: the same
  ``import torch, torchvision, pandas, scipy`` is 0.75 GB resident from one venv and 1.02 GB from
  a fresh copy of the same wheels, with the same 407 MB of anonymous memory (measured).
- ``anonymous_mb``: the peak of ``RssAnon`` (the memory the chapter allocated: arrays, tensors,
  Python objects), sampled by :class:`AnonymousPeak` every :data:`SAMPLE_S` seconds from a
  thread of the report process. It does not depend on the install, and it is what a memory
  limit without swap (Binder's 2 GB) cannot reclaim; clean library pages can be dropped and read
  again. A peak shorter than one sampling interval can be missed; the resident peak cannot.

The report's memory budget is checked on the anonymous peak; both numbers are shown. Not counted:
processes the kernel starts (the chapters start none; data loading is in-process). Where
``/proc`` is missing (macOS), both are unknown (``None``).

>>> import os
>>> peak_rss_mb(os.getpid()) > 1
True
>>> memory_fields(os.getpid())["RssAnon"] > 0
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = [
    "POLL_SLICE_S",
    "SAMPLE_S",
    "AnonymousPeak",
    "KernelClient",
    "KernelManager",
    "KernelMemory",
    "SlicedPollChannel",
    "memory_fields",
    "peak_rss_mb",
    "recording_peaks",
]

POLL_SLICE_S = 1.0  # longest wait before the socket is asked again
SAMPLE_S = 0.05  # interval of the anonymous-memory samples (20 a second, ~30 us each)
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


@dataclass(frozen=True)
class KernelMemory:
    """A kernel's peak memory in MB (see the module): ``resident_mb`` from ``VmHWM``,
    ``anonymous_mb`` the sampled peak of ``RssAnon``; ``None`` where unknown."""

    resident_mb: float | None
    anonymous_mb: float | None


def memory_fields(pid: int) -> dict[str, int]:
    """The ``Vm*`` and ``Rss*`` lines of ``/proc/PID/status`` in kB (``{}`` where unreadable)."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key.startswith(("Vm", "Rss")):
                    fields[key] = int(value.split()[0])  # the line reads "VmHWM:   123456 kB"
    except (OSError, ValueError, IndexError):
        return {}
    return fields


class AnonymousPeak:
    """Samples ``RssAnon`` of process ``pid`` every ``interval`` s in a daemon thread.

    ``start()``, then ``stop()`` returns the largest sample in MB (``None`` if none could be
    read). A sample is also taken at ``stop()``, so a process read at least once has a peak.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_S) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"anon-peak-{pid}", daemon=True)

    def _sample(self) -> None:
        anon = memory_fields(self.pid).get("RssAnon")
        if anon is not None and (self.peak_kb is None or anon > self.peak_kb):
            self.peak_kb = anon

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def start(self) -> AnonymousPeak:
        self._thread.start()
        return self

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sample()
        return None if self.peak_kb is None else self.peak_kb / 1024


class KernelManager(AsyncKernelManager):
    """The kernel manager the report passes to papermill (``kernel_manager_class``)."""

    client_class = DottedObjectName("handlab._kernel.KernelClient")
    client_factory = Type(KernelClient, klass=AsyncKernelClient)
    # called with the kernel's KernelMemory before each shutdown; see recording_peaks
    record_peak: Callable[[KernelMemory], None] | None = None
    _anonymous: AnonymousPeak | None = None

    def _kernel_pid(self) -> int | None:
        return getattr(self.provisioner, "pid", None)

    async def _async_post_start_kernel(self, **kw: Any) -> None:
        await super()._async_post_start_kernel(**kw)
        pid = self._kernel_pid()
        if self.record_peak is not None and pid is not None:
            self._anonymous = AnonymousPeak(pid).start()

    post_start_kernel = _async_post_start_kernel  # the async manager's public name

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        if self.record_peak is not None:  # while the process is still there to be read
            pid = self._kernel_pid()
            anonymous = self._anonymous.stop() if self._anonymous is not None else None
            self._anonymous = None
            resident = peak_rss_mb(pid) if pid is not None else None
            self.record_peak(KernelMemory(resident_mb=resident, anonymous_mb=anonymous))
        await super()._async_shutdown_kernel(now=now, restart=restart)

    shutdown_kernel = _async_shutdown_kernel  # the async manager's public name (nbclient's call)


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (MB) of process ``pid`` since its ``exec``: ``VmHWM`` in
    ``/proc/PID/status``; ``None`` where that cannot be read (no ``/proc``, process gone)."""
    hwm = memory_fields(pid).get("VmHWM")
    return None if hwm is None else hwm / 1024


def recording_peaks(peaks: list[KernelMemory]) -> type[KernelManager]:
    """A :class:`KernelManager` class (for papermill's ``kernel_manager_class``) that appends its
    kernel's :class:`KernelMemory` to ``peaks`` before shutting it down (the anonymous peak is
    sampled from the kernel's start).

    papermill makes the manager itself, so the list travels in the class, one class per run.
    """
    return type("RecordingKernelManager", (KernelManager,), {"record_peak": peaks.append})
