"""Benchmark: torch on a shared CPU, OpenMP threads spinning (libgomp's default) or sleeping.

Why. torch's CPU kernels run in OpenMP parallel regions (libgomp in the pinned pip wheels). At the
end of each region a thread that finished first spins, by default, for a while before it sleeps,
waiting for the others. On an idle machine that saves a wake-up; on a loaded one the thread it
waits for is often descheduled, so the spinning thread burns its time slice for nothing, and a
ResNet's hundreds of small regions per step add up. A report run beside trainings showed it: the
PoseIG chapter (08) took 680 CPU s under load against 169 CPU s idle, for the same work.
``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep at once. handlab sets it, unless the user
set it, for the ``handlab`` command (before torch is imported) and for the report's kernels.

What it measures: one fixed workload (ResNet-18, batch 8, 128 px, 15 forward + backward steps
after 2 warm-ups, 2 torch threads) in a fresh process per setting, each setting ``--repeat``
times, alternating, with ``--load N`` busy-looping processes started beside it (0: as the
machine is). Prints wall and CPU seconds per setting (median) and the ratio default / PASSIVE.

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


def run_once(policy: str | None, threads: int, steps: int) -> dict[str, float]:
    """One fresh process running the workload; ``policy`` None leaves OMP_WAIT_POLICY unset."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
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
    print("| busy processes | OMP_WAIT_POLICY | wall s | CPU s | wall ratio default / PASSIVE |")
    print("|---:|---|---:|---:|---:|")
    for load in args.load:
        spinners = [mp.Process(target=_spin, daemon=True) for _ in range(load)]
        for s in spinners:
            s.start()
        try:
            runs: dict[str, list[dict[str, float]]] = {"default": [], "PASSIVE": []}
            for _ in range(args.repeat):  # alternating, so drifting load hits both alike
                runs["default"].append(run_once(None, args.threads, args.steps))
                runs["PASSIVE"].append(run_once("PASSIVE", args.threads, args.steps))
        finally:
            for s in spinners:
                s.terminate()
        med = {
            k: {m: statistics.median(r[m] for r in v) for m in ("wall", "cpu")}
            for k, v in runs.items()
        }
        ratio = med["default"]["wall"] / med["PASSIVE"]["wall"]
        for k in ("default", "PASSIVE"):
            shown = f"{ratio:.2f}x" if k == "PASSIVE" else ""
            print(f"| {load} | {k} | {med[k]['wall']:.1f} | {med[k]['cpu']:.1f} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
