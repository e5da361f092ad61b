"""How handlab's processes ask OpenMP to wait: a short spin, then sleep (``GOMP_SPINCOUNT``).

torch's CPU kernels run in OpenMP parallel regions (libgomp in the pinned pip wheels). A thread
that finishes a region first spins, by default for 300000 iterations, waiting for the others; on
a machine shared with other jobs the thread it waits for is often descheduled, and the spinning
burns the time slice for nothing. ``benchmarks/omp_wait.py`` measures it side by side (ResNet-18
steps, 2 threads): with 3000 spins the work took 0.94x the default's speed idle and 1.70x with two
busy processes beside (``OMP_WAIT_POLICY=PASSIVE``: 0.79x and 2.08x). Used by the command line
(:func:`handlab.cli.main`, before any command imports torch) and by the report's kernels
(:mod:`handlab.report_chapter`).

>>> import os
>>> env = openmp_env()
>>> env == {} or env == {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
True
"""

from __future__ import annotations

import os

__all__ = ["SPIN_COUNT", "openmp_env"]

# libgomp's spins before a waiting thread sleeps (its default 300000)
SPIN_COUNT = 3000


def openmp_env() -> dict[str, str]:
    """Environment for handlab's processes: ``GOMP_SPINCOUNT`` = :data:`SPIN_COUNT`, or nothing
    where the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``.

    It acts in a process that has not loaded OpenMP yet (torch not imported) and in those it
    starts.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return {}
    return {"GOMP_SPINCOUNT": str(SPIN_COUNT)}
