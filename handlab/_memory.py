"""Give freed memory back to the operating system between the models a chapter explains.

Used by chapters 09 (``notebooks/09_indices.py``) and 11 (``notebooks/11_compare_zoo.py``), which
explain one model after the other within the report's 1.5 GB budget (issue 21).

A PoseIG forward with a graph allocates a few hundred MB of activations; once freed, glibc keeps
most of those pages in its heap (fragmented between smaller live blocks), so the process stays
that large and the next model's graph is partly allocated on top of it. ``malloc_trim(0)`` hands
the free pages back; on a C library without it (macOS, musl) only the garbage collector runs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

__all__ = ["release_memory"]


def release_memory() -> bool:
    """Run the garbage collector, then return the C heap's free pages to the system.

    Returns:
        True where glibc's ``malloc_trim`` ran, False where it is not available.

    >>> isinstance(release_memory(), bool)
    True
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return False
    trim(0)
    return True
