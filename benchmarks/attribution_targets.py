"""Benchmark: which per-joint target integrates? Completeness gap against the number of points.

For the candidate targets of :mod:`handlab.attribution.targets` (``TARGETS``), three quadrature
rules (left Riemann, the reference's; Gauss-Legendre; Gauss-Legendre with nodes placed by 64
gradient-free pilot forwards) and both paths (straight from a black image; PoseIG's 50-fold
blur), it runs PoseIG at 8-32 points for the default target and at 32 for the others
(``GRID``) and records the *completeness gap*

    gap = sum |delta_j| / sum |F_j(x) - F_j(x')|     over images and explained joints,

the share of the likelihood change that the attributions fail to account for (0 = they add up).
The models are the trained zoo's ``simplebaseline_r18`` (local-window heatmap decoder: every
candidate applies), ``integral_r18`` (global soft-argmax) and ``regression_r34`` (direct
regression); the last two decode continuously, so only ``decode`` applies there (every target
falls back to it). Inputs: the first ``--images`` synthetic test hands (seed 0,
128 px) and their true joints, ``--joints`` of the 21 (one per finger and the wrist by default,
to fit the project's 2 CPU cores).

Results go to ``benchmarks/results/attribution_targets.json`` (resumable: finished cells are kept).
Run: ``OMP_NUM_THREADS=1 python benchmarks/attribution_targets.py`` (about 40 min on one core).
Taught alongside chapter 08 (``notebooks/08_poseig.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from handlab import zoo
from handlab.attribution import PoseIGConfig, poseig
from handlab.attribution.targets import JointLikelihood
from handlab.synth import generate

OUT = Path(__file__).parent / "results" / "attribution_targets.json"
PATHS = {"straight": {"path": "straight", "baseline": "black"}, "blur": {"path": "blur"}}
# (rule, pilot forwards): the reference's left Riemann sum, Gauss-Legendre, Gauss-Legendre with
# nodes placed by a pilot (engine.warp_nodes)
RULES = {"left": ("riemann_left", 0), "gl": ("gausslegendre", 0), "gl+pilot": ("gausslegendre", 64)}
# (model, target) -> (rules, points): the full grid for the default target and the continuous
# decoders, a smaller one for the other candidates (the project's CPU budget)
GRID = {
    ("simplebaseline_r18", "heatmap_match"): (("left", "gl", "gl+pilot"), (8, 16, 32)),
    ("simplebaseline_r18", "decode"): (("gl", "gl+pilot"), (32,)),
    ("integral_r18", "decode"): (("left", "gl", "gl+pilot"), (32,)),
    ("regression_r34", "decode"): (("left", "gl", "gl+pilot"), (32,)),
    ("simplebaseline_r18", "fixed_window"): (("gl", "gl+pilot"), (32,)),
    ("simplebaseline_r18", "soft_argmax"): (("gl", "gl+pilot"), (32,)),
    ("simplebaseline_r18", "heatmap_value"): (("gl", "gl+pilot"), (32,)),
}


def gap(result) -> float:
    """sum |delta| / sum |F(x) - F(x')|: the share of the change the attributions miss."""
    change = (result.likelihood - result.baseline_likelihood).abs().sum()
    return float(result.delta.abs().sum() / change)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--joints", type=int, nargs="+", default=[0, 4, 8, 12, 16, 20])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    hands = generate(args.images, seed=0, size=128)
    images, keypoints = hands["image"], hands["keypoints"].float()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["setting"] = {
        "images": args.images, "joints": args.joints, "size": 128, "data": "synth seed 0",
        "gap": "sum |delta| / sum |F(x) - F(x')| over images and joints",
        "paths": {k: str(v) for k, v in PATHS.items()}, "rules": RULES,
        "torch": torch.__version__,
    }  # fmt: skip
    cells = results.setdefault("cells", [])
    done = {(c["model"], c["target"], c["path"], c["rule"], c["points"]) for c in cells}
    models = {}
    for (name, target), (rules, points) in GRID.items():
        model = models.setdefault(name, zoo.load(name).eval())
        used = JointLikelihood(model, target=target).target
        for path, path_kw in PATHS.items():
            for rule in rules:
                for n in points:
                    key = (name, target, path, rule, n)
                    if key in done:
                        continue
                    method, pilot = RULES[rule]
                    config = PoseIGConfig(
                        **path_kw, target=target, method=method, steps=n, pilot=pilot,
                        joints=tuple(args.joints),
                    )  # fmt: skip
                    t0 = time.perf_counter()
                    res = poseig(model, images, keypoints, config)
                    cell = {"model": name, "target": target, "path": path, "rule": rule}
                    cell |= {
                        "points": n, "effective_target": used, "gap": gap(res),
                        "seconds": time.perf_counter() - t0,
                        "mean_F_x": float(res.likelihood.mean()),
                        "mean_F_baseline": float(res.baseline_likelihood.mean()),
                    }  # fmt: skip
                    cells.append(cell)
                    line = f"{name:18s} {target:13s} {path:8s} {rule:8s} {n:3d}: "
                    print(f"{line}gap {cell['gap']:7.2%} ({cell['seconds']:.0f} s)", flush=True)
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
