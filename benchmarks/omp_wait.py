"""Benchmark: torch on a shared CPU, OpenMP threads spinning long (the default), briefly, or not.

Why. torch's CPU kernels run in OpenMP parallel regions (libgomp in the pinned pip wheels). At the
end of each region a thread that finished first spins, by default, for a while before it sleeps,
waiting for the others. On an idle machine that saves a wake-up; on a loaded one the thread it
waits for is often descheduled, so the spinning thread burns its time slice for nothing, and a
ResNet's hundreds of small regions per step add up. A report run beside trainings showed it: the
PoseIG chapter (08) took 680 CPU s under load against 169 CPU s idle, for the same work.
``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep at once, which costs wake-ups on an idle
machine; ``GOMP_SPINCOUNT=3000`` (libgomp's default is 300000) spins briefly, then sleeps.
handlab sets the latter (:func:`handlab._openmp.openmp_env`), unless the user set either, for the
``handlab`` command (before torch is imported) and for the report's kernels.

What it measures: one fixed workload (ResNet-18, batch 8, 128 px, 15 forward + backward steps
after 2 warm-ups, 2 torch threads) in a fresh process per setting, each setting ``--repeat``
times, alternating, with ``--load N`` busy-looping processes started beside it (0: as the
machine is). Prints wall and CPU seconds per setting (median) and the wall ratio default / setting.

Usage: ``python benchmarks/omp_wait.py --load 0 2``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys

WORKLOAD = r"""
import json, resource, time, torch, torchvision
torch.set_num_threads({threads})
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=42)
x = torch.randn(8, 3, 128, 128)
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
for _ in range(2):
    model(x).sum().backward()
t0, c0 = time.perf_counter(), cpu()
for _ in range({steps}):
    model(x).sum().backward()
print(json.dumps({{"wall": time.perf_counter() - t0, "cpu": cpu() - c0}}))
"""


def _spin() -> None:  # a busy process, the load
    while True:
        pass


SETTINGS = {  # name -> environment added (OMP_WAIT_POLICY and GOMP_SPINCOUNT removed first)
    "default": {},
    "GOMP_SPINCOUNT=3000": {"GOMP_SPINCOUNT": "3000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def run_once(setting: dict[str, str], threads: int, steps: int) -> dict[str, float]:
    """One fresh process running the workload with ``setting`` added to the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(setting)
    code = WORKLOAD.format(threads=threads, steps=steps)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--load", type=int, nargs="+", default=[0, 2], help="busy processes beside")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the workload")
    p.add_argument("--steps", type=int, default=15, help="timed forward + backward steps")
    p.add_argument("--repeat", type=int, default=3, help="runs per setting (median)")
    args = p.parse_args(argv)
    print(f"os.cpu_count() = {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    print("| busy processes | OpenMP setting | wall s | CPU s | wall ratio default / setting |")
    print("|---:|---|---:|---:|---:|")
    for load in args.load:
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(load)]
        for s in spinners:
            s.start()
        try:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
            for _ in range(args.repeat):  # alternating, so drifting load hits all alike
                for name, setting in SETTINGS.items():
                    runs[name].append(run_once(setting, args.threads, args.steps))
        finally:
            for s in spinners:
                s.terminate()
        med = {
            k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu")}
            for k, v in runs.items()
        }
        for k in SETTINGS:
            ratio = med["default"]["wall"] / med[k]["wall"]
            print(f"| {load} | {k} | {med[k]['wall']:.1f} | {med[k]['cpu']:.1f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
