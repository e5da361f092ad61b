"""Benchmark: the model-randomisation sanity check on five attribution methods, with verdicts.

Adebayo et al. (2018): a map that explains what a model learned must change when the model's
parameters are re-initialised. On the shipped flagship (``simplebaseline_r18``), a top-down
cascade re-initialises every parameterised layer (conv, deconv and BatchNorm, six conv layers per
step with their norm layers: 4 steps) and, after each step, recomputes the maps of

- saliency (captum ``Saliency``), SmoothGrad (captum ``NoiseTunnel`` over ``Saliency``, 8
  samples, std 0.15) and occlusion (captum ``Occlusion``, 16 x 16 px patches: gradient-free), via
  the bridge (:class:`handlab.attribution.sanity.CaptumExplain`);
- straight-line IG from a black image and PoseIG's blur path (:func:`handlab.attribution.poseig`,
  Gauss-Legendre 16 points with a 32-forward pilot),

all on the default target (``heatmap_match``), plus PoseIG blur under the *partial* conv-only
randomisation for comparison. :func:`handlab.attribution.sanity.sanity_verdict` judges each run:
the Spearman rank correlation of ``|maps|`` at full randomisation below 0.2 passes (zero maps
counted as 0). Indices (DI, FI, LI) are tabulated at every step for PoseIG blur and their trends
checked against PoseIG's claims (:func:`~handlab.attribution.sanity.randomization_trends`).

Inputs: the first ``--images`` synthetic test hands (seed 0, 128 px), joints wrist, index tip and
little tip. Results: ``benchmarks/results/sanity_methods.json`` (resumable per method).
Run: ``OMP_NUM_THREADS=1 python benchmarks/sanity_methods.py`` (about 20 min on one core).
Taught alongside chapter 10 (``notebooks/10_sanity_checks.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

from captum.attr import NoiseTunnel, Occlusion, Saliency

from handlab import zoo
from handlab.attribution import JointSubset, poseig, randomization_test
from handlab.attribution.sanity import CaptumExplain, randomization_trends, sanity_verdict
from handlab.synth import generate

OUT = Path(__file__).parent / "results" / "sanity_methods.json"
JOINTS = [0, 8, 20]  # wrist, index tip, little tip
IG = {"method": "gausslegendre", "steps": 16, "pilot": 32}
METHODS = {
    "saliency": (CaptumExplain(Saliency), {}),
    "ig_straight": (functools.partial(poseig, path="straight", baseline="black", **IG), {}),
    "poseig_blur": (functools.partial(poseig, path="blur", **IG), {}),
    "smoothgrad": (
        CaptumExplain(
            lambda f: NoiseTunnel(Saliency(f)), nt_type="smoothgrad", nt_samples=8, stdevs=0.15
        ),
        {},
    ),
    "occlusion": (
        CaptumExplain(
            Occlusion,
            sliding_window_shapes=(3, 16, 16),
            strides=(3, 16, 16),
            baselines=0.0,
            perturbations_per_eval=16,
        ),
        {},
    ),
    "poseig_blur_conv_only": (functools.partial(poseig, path="blur", **IG), {"conv_only": True}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--unit", type=int, default=6, help="conv layers per step")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    hands = generate(args.images, seed=0, size=128)
    images = hands["image"]
    kp = hands["keypoints"].float()[:, JOINTS]
    mask = hands["mask"][:, 0]
    model = JointSubset(zoo.load("simplebaseline_r18").eval(), JOINTS)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["setting"] = {
        "model": "simplebaseline_r18", "images": args.images, "joints": JOINTS,
        "unit": f"{args.unit} conv layers per step with their norm layers", "order": "top_down",
        "ig": IG, "criterion": "spearman_abs at full randomisation < 0.2",
    }  # fmt: skip
    runs = results.setdefault("methods", {})
    for name in args.methods:
        if name in runs:
            continue
        explain, options = METHODS[name]
        t0 = time.perf_counter()
        table = randomization_test(
            model, images, kp, order="top_down", unit=args.unit, seed=0, mask=mask, keypoints=kp,
            explain=explain, **options,
        )  # fmt: skip
        verdict = sanity_verdict(table)
        trends = randomization_trends(table)
        runs[name] = {
            "verdict": verdict,
            "ssim_final": float(
                table[table.step == table.step.max()].set_index("metric").value["ssim"]
            ),
            "trends": trends.to_dict(orient="records"),
            "table": table.to_dict(orient="records"),
            "seconds": time.perf_counter() - t0,
        }
        word = "passes" if verdict["passes"] else "fails"
        print(f"{name:24s} spearman_abs at full randomisation {verdict['final']:.3f} "
              f"(constant maps {verdict['constant_maps']:.0%}): {word}", flush=True)  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
