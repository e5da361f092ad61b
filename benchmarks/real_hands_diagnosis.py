"""Benchmark: *how* a model fails on the real development hands, beyond its PCK@0.2.

Issue 17's synthetic-trained models score near the mean pose on the 32 real photographs. This
prints, for each model (and the synthetic mean pose) on plain 1.5x crops, the numbers that say
what kind of failure it is:

- PCK@0.2 of the box per joint group (wrist, MCP, PIP, DIP, TIP);
- the median wrist error and the median error of the hand's centre (mean of the 21 joints), as
  a fraction of the box: finding the hand vs reading it;
- the median absolute error of the hand's in-plane orientation, the angle of the vector from the
  middle finger's MCP to the wrist (degrees; 90 is what a random direction scores on average),
  and the share of hands turned by more than 90 degrees (wrist and fingers swapped);
- the spread of the predicted poses' shapes (each hand's joints around their own centroid, in
  box units; mean per-joint standard deviation across hands, over the ground truth's): a model
  that predicts one pose in every crop has a ratio of 0.

It also compares the framing of the real crops with the generator's test split (the keypoint
box's longer side over the crop side, 10th/50th/90th percentiles) and the share of hands whose
wrist lies below the middle MCP ("upright" within 90 degrees) in each.

Usage: ``python benchmarks/real_hands_diagnosis.py [--models zoo:simplebaseline_r18 RUN ...]
[--json PATH]``. Taught alongside chapter 12 (``notebooks/12_synthetic_to_real.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from handlab.data.coco import REAL_HANDS, COCOHands
from handlab.models.base import contract
from handlab.synth import SyntheticHands
from handlab.training.realhands import diagnose, mean_pose, orientation, predict_real
from handlab.zoo import load_model


def framing(kps: torch.Tensor, vis: torch.Tensor, size: int) -> dict[str, Any]:
    """Keypoint-box side over the crop side (10/50/90th percentiles) and the upright share."""
    sides = []
    for k, v in zip(kps, vis > 0, strict=True):
        pts = k[v] if v.any() else k
        sides.append(float((pts.amax(0) - pts.amin(0)).max()) / size)
    q = torch.tensor(sides).quantile(torch.tensor([0.1, 0.5, 0.9]))
    upright = float((orientation(kps).abs() < 90).float().mean())
    return {"box side / crop (p10, p50, p90)": [round(float(x), 3) for x in q], "upright": upright}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", nargs="+", default=["zoo:simplebaseline_r18", "zoo:mediapipe_hand_full"],
        help="zoo:NAME or a training run folder (default: the flagship and MediaPipe full)",
    )  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    rows: dict[str, dict[str, float]] = {}
    frames: dict[str, Any] = {}
    for spec in args.models:
        model = load_model(spec).eval()
        # a fixed-size model (MediaPipe: 224) first, else its training size, as handlab evaluate
        size = contract(model).input_size or model.card.get("train_config", {}).get("size", 128)
        data = COCOHands(REAL_HANDS, crop="plain", size=size)
        rows[spec] = diagnose(predict_real(model, data))
    data = COCOHands(REAL_HANDS, crop="plain", size=128)
    rows["mean pose (synthetic)"] = diagnose(
        predict_real(None, data, constant=mean_pose("plain", 128))
    )
    items = [data[i] for i in range(len(data))]
    frames["real hands (plain crops)"] = framing(
        torch.stack([it["keypoints"] for it in items]),
        torch.stack([it["visibility"] for it in items]), 128,
    )  # fmt: skip
    synth = SyntheticHands("test", size=128).batch(list(range(512)))
    frames["synthetic test split"] = framing(synth["keypoints"], synth["visibility"], 128)
    names = list(next(iter(rows.values())))
    width = max(len(n) for n in rows) + 2
    print(" " * width + " ".join(f"{n:>12.12}" for n in names))
    for model, row in rows.items():
        print(f"{model:<{width}}" + " ".join(f"{row[n]:>12.3f}" for n in names))
    for name, f in frames.items():
        print(f"{name}: {f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"models": rows, "framing": frames}, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
