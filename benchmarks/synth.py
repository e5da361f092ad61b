"""Benchmark: synthetic samples per second (image + depth + mask + labels) on this CPU.

Measures :func:`handlab.synth.generate` (sampling + rendering, batch 64) at 128 x 128 without
and with occluders (probability 1), with depth noise and motion blur, and the data-loader path
:meth:`handlab.synth.SyntheticHands.batch` (per-index seeded params). Each row is the median of
``--repeat`` timed batches after one warm-up, as wall-clock samples/s and as samples per
CPU-second per thread (which hardly drops when other jobs share the cores). The bar is 300
samples/s on 2 cores (a naive renderer testing every pixel against every capsule made ~58).

The ``synth-dr`` row adds domain randomisation (:mod:`handlab.synth.randomize`: photo
backgrounds, skin texture, camera effects) as ``handlab train --data synth-dr`` renders it; the
``props`` rows add every prop of :mod:`handlab.synth.props` (sleeve, held object, truncation,
creases and nails) to every sample, alone and on top of ``synth-dr``.

A last row times a training-style ``DataLoader`` with two worker processes.

Usage: ``python benchmarks/synth.py [--threads 1 2] [--batch 64] [--size 128] [--repeat 5]``.
Data-loader workers run torch with one thread each, which is why 1 is measured too; several
threads collapse when other jobs already load the cores (they wait on each other).
Taught alongside chapter 00 (``notebooks/00_tour.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader

from handlab.synth import SyntheticHands, generate

# every prop of handlab.synth.props on every sample: the worst case of their cost
PROPS = {"sleeves": 1.0, "held": 1.0, "truncation": 1.0, "details": 1.0}


def rate(fn, batch: int, repeat: int) -> tuple[float, float]:
    """Median samples/s of ``fn()`` (which makes ``batch`` samples) over ``repeat`` runs, by the
    wall clock and by this process's CPU time divided by the threads (the wall rate the same
    work would reach on a quiet machine, when other jobs share the cores)."""
    fn()  # warm-up (first calls build caches)
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append((time.process_time() - c0) / torch.get_num_threads())
    return batch / statistics.median(wall), batch / statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default 1 2)"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for threads in args.threads:
        torch.set_num_threads(threads)
        run(args.batch, args.size, args.repeat)
    print(f"{'DataLoader, 2 workers (1 thread each)':45s} {loader_rate(args):8.0f}")


def loader_rate(args: argparse.Namespace) -> float:
    """Wall samples/s of a training-style ``DataLoader(SyntheticHands, num_workers=2)`` (each
    worker runs torch with one thread and renders whole batches through ``__getitems__``)."""
    ds = SyntheticHands("train", size=args.size, occluders=0.5)
    loader = DataLoader(ds, batch_size=args.batch, num_workers=2, persistent_workers=True)
    batches = iter(loader)
    next(batches)  # start-up and warm-up
    next(batches)
    t0 = time.perf_counter()
    count = 2 * args.repeat
    for _ in range(count):
        next(batches)
    return count * args.batch / (time.perf_counter() - t0)


def run(b: int, size: int, repeat: int) -> None:
    """Print one table of rates at the current torch thread count."""
    seeds = iter(range(10**6))
    ds = SyntheticHands("train", size=size, occluders=0.5)
    starts = iter(range(0, 10**6, b))
    dr = SyntheticHands("train", size=size, occluders=0.5, randomize=0.8, left=0.5)
    props = SyntheticHands("train", size=size, occluders=0.5, **PROPS)
    dr_props = SyntheticHands("train", size=size, occluders=0.5, randomize=0.8, left=0.5, **PROPS)

    def loader_batch(data: SyntheticHands = ds) -> dict[str, torch.Tensor]:
        start = next(starts)
        return data.batch(list(range(start, start + b)))

    rows = {
        "generate, no occluders": lambda: generate(b, seed=next(seeds), size=size, occluders=0),
        "generate, occluders": lambda: generate(b, seed=next(seeds), size=size, occluders=1.0),
        "generate, occluders + depth noise + blur": lambda: generate(
            b, seed=next(seeds), size=size, occluders=1.0, depth_noise=True, blur=1.0
        ),
        "SyntheticHands.batch (occluders 0.5)": loader_batch,
        "SyntheticHands.batch, synth-dr (randomize 0.8)": lambda: loader_batch(dr),
        "SyntheticHands.batch, props (each at 1.0)": lambda: loader_batch(props),
        "SyntheticHands.batch, synth-dr + props": lambda: loader_batch(dr_props),
    }
    print(f"handlab.synth: {size}x{size}, batch {b}, {torch.get_num_threads()} torch threads")
    print(f"{'':45s} {'wall':>8s} {'cpu/thr':>8s}  samples/s")
    for name, fn in rows.items():
        wall, cpu = rate(fn, b, repeat)
        print(f"{name:45s} {wall:8.0f} {cpu:8.0f}", flush=True)


if __name__ == "__main__":
    main()
