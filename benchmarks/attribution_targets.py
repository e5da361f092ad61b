"""Benchmark: which per-joint target integrates? Completeness gap against the number of points.

For every candidate target of :mod:`handlab.attribution.targets` (``TARGETS``) that applies to a
model, every quadrature rule (left Riemann, the reference's; Gauss-Legendre) and both paths
(straight from a black image; PoseIG's 50-fold blur), it runs PoseIG at 8, 16, 32 and 64 points and
records the *completeness gap*

    gap = sum |delta_j| / sum |F_j(x) - F_j(x')|     over images and explained joints,

the share of the likelihood change that the attributions fail to account for (0 = they add up).
The models are the trained zoo's ``simplebaseline_r18`` (local-window heatmap decoder: every
candidate applies), ``integral_r18`` (global soft-argmax) and ``regression_r34`` (direct
regression); the last two decode continuously, so only ``decode`` applies there (``fixed_window``
and ``soft_argmax`` fall back to it). Inputs: the first ``--images`` synthetic test hands (seed 0,
128 px) and their true joints, ``--joints`` of the 21 (one per finger and the wrist by default,
to fit the project's 2 CPU cores).

Results go to ``benchmarks/results/attribution_targets.json`` (resumable: finished cells are kept).
Run: ``OMP_NUM_THREADS=1 python benchmarks/attribution_targets.py`` (about 30 min on one core).
Taught alongside chapter 08 (``notebooks/08_poseig.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from handlab import zoo
from handlab.attribution import TARGETS, PoseIGConfig, poseig
from handlab.attribution.targets import JointLikelihood
from handlab.synth import generate

OUT = Path(__file__).parent / "results" / "attribution_targets.json"
MODELS = ("simplebaseline_r18", "integral_r18", "regression_r34")
PATHS = {"straight": {"path": "straight", "baseline": "black"}, "blur": {"path": "blur"}}
RULES = ("riemann_left", "gausslegendre")


def gap(result) -> float:
    """sum |delta| / sum |F(x) - F(x')|: the share of the change the attributions miss."""
    change = (result.likelihood - result.baseline_likelihood).abs().sum()
    return float(result.delta.abs().sum() / change)


def applicable(model, target: str) -> bool:
    try:
        return JointLikelihood(model, target=target).target == target
    except ValueError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--joints", type=int, nargs="+", default=[0, 4, 8, 12, 16, 20])
    parser.add_argument("--points", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    hands = generate(args.images, seed=0, size=128)
    images, keypoints = hands["image"], hands["keypoints"].float()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["setting"] = {
        "images": args.images, "joints": args.joints, "size": 128, "data": "synth seed 0",
        "gap": "sum |delta| / sum |F(x) - F(x')| over images and joints",
        "paths": {k: str(v) for k, v in PATHS.items()}, "torch": torch.__version__,
    }  # fmt: skip
    cells = results.setdefault("cells", [])
    done = {(c["model"], c["target"], c["path"], c["method"], c["points"]) for c in cells}
    for name in args.models:
        model = zoo.load(name).eval()
        for target in TARGETS:
            if not applicable(model, target):
                print(f"{name}: {target} does not apply (decodes continuously or no heatmaps)")
                continue
            for path, path_kw in PATHS.items():
                for method in RULES:
                    for n in args.points:
                        key = (name, target, path, method, n)
                        if key in done:
                            continue
                        config = PoseIGConfig(
                            **path_kw, target=target, method=method, steps=n,
                            joints=tuple(args.joints),
                        )  # fmt: skip
                        t0 = time.perf_counter()
                        res = poseig(model, images, keypoints, config)
                        cell = dict(zip(("model", "target", "path", "method", "points"), key))
                        cell |= {
                            "gap": gap(res), "seconds": time.perf_counter() - t0,
                            "mean_F_x": float(res.likelihood.mean()),
                            "mean_F_baseline": float(res.baseline_likelihood.mean()),
                        }  # fmt: skip
                        cells.append(cell)
                        print(f"{name:20s} {target:14s} {path:8s} {method:14s} {n:3d}: "
                              f"gap {cell['gap']:7.2%}  ({cell['seconds']:.0f} s)", flush=True)  # fmt: skip
                        args.out.parent.mkdir(parents=True, exist_ok=True)
                        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
