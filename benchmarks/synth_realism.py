"""Benchmark: how real the generator looks, per setting: MediaPipe's accuracy on its images.

MediaPipe's hand landmark models (zoo ``mediapipe_hand_full`` / ``_lite``) were trained on real
photographs only, so their accuracy on generated hands measures how close the images come to
what they learnt (issue 17's "realism" row). Each setting of :class:`handlab.synth.SceneOptions`
below is exported as a COCO-style folder (:func:`handlab.synth.export.write_coco`, ``--n`` hands
of 256 px, the same seed, so settings that only add effects share their hands and poses) and
scored exactly as the 32 real development hands are (``handlab evaluate --data coco:...``: plain
1.5x or upright crops at the model's 224 px, PCK@0.2 of the annotated box in the image). The real
hands are scored in the same run as the reference.

One cell by hand, with the command line::

    handlab datasets export-synth runs/realism/photo --n 160 --seed 0 \\
        --set randomize=0.8 'randomize_parts=["photo"]'
    handlab evaluate --model zoo:mediapipe_hand_full --data coco:runs/realism --crop upright

(each setting folder under ``runs/realism`` is one source column of ``handlab evaluate``).

Usage: ``python benchmarks/synth_realism.py [--n 160] [--models mediapipe_hand_full]
[--out runs/realism] [--json benchmarks/results/synth_realism.json] [--reuse]`` (``--reuse``:
score the folders a previous run exported). Taught alongside chapter
12 (``notebooks/12_synthetic_to_real.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from handlab.data.coco import REAL_HANDS, COCOHands
from handlab.models.base import contract
from handlab.synth.export import write_coco
from handlab.training.realhands import THRESHOLD, evaluate_real, predict_real, real_scores
from handlab.zoo import load_model

_DR = {"randomize": 0.8, "left": 0.5}  # handlab.data's synth-dr training split
_PROPS = {"sleeves": 0.5, "held": 0.3, "truncation": 0.3, "details": 0.8}
# setting name -> SceneOptions overrides (the test split's occluders, 0.5, everywhere)
SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "synth-dr": _DR,
    "dr photo only": {"randomize": 0.8, "randomize_parts": ("photo",)},
    "dr skin only": {"randomize": 0.8, "randomize_parts": ("skin",)},
    "dr camera only": {"randomize": 0.8, "randomize_parts": ("camera",)},
    "left hands only": {"left": 0.5},
    "sleeves": {"sleeves": 1.0},
    "held objects": {"held": 1.0},
    "truncation": {"truncation": 1.0},
    "creases + nails": {"details": 1.0},
    "long forearm": {"forearm": 1.0},
    "synth-dr + props": {**_DR, **_PROPS},
}


def export_all(out: Path, n: int, seed: int) -> None:
    """One COCO folder per setting under ``out`` (its name without spaces or '+')."""
    for name, options in SETTINGS.items():
        write_coco(out / folder_name(name), n, seed=seed, size=256, **options)


def folder_name(setting: str) -> str:
    return setting.replace(" + ", "+").replace(" ", "_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=160, help="hands per setting (default 160)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--models", nargs="+", default=["mediapipe_hand_full"])
    parser.add_argument(
        "--out", default="runs/realism", help="export folder (default runs/realism)"
    )
    parser.add_argument("--json", default=None, help="write the scores here (default: none)")
    parser.add_argument(
        "--reuse", action="store_true", help="score the folders already in --out (same --n, --seed)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # shared CPU: one thread is as fast as two
    out = Path(args.out)
    t0 = time.perf_counter()
    if not args.reuse:
        export_all(out, args.n, args.seed)
        print(f"exported {len(SETTINGS)} x {args.n} hands in {time.perf_counter() - t0:.0f} s")
    scores: dict[str, dict[str, Any]] = {}
    for name in args.models:
        model = load_model(f"zoo:{name}")
        size = contract(model).input_size or 128
        for crop in ("plain", "upright"):
            pred = predict_real(model, COCOHands(out, crop=crop, size=size), batch_size=16)
            synth = real_scores(*(pred[k] for k in ("pred", "gt", "visibility", "box_side")),
                                pred["sources"])  # fmt: skip
            for setting, interval in paired_intervals(pred, args.seed).items():
                synth[setting]["diff_vs_plain_95"] = interval
            real = evaluate_real(model, COCOHands(REAL_HANDS, crop=crop, size=size))
            scores[f"{name} {crop}"] = {**synth, "real hands": real["overall"]}
            print(f"{name} {crop}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(table(scores))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        record = {"n": args.n, "seed": args.seed, "settings": SETTINGS, "scores": scores}
        Path(args.json).write_text(json.dumps(record, indent=1, default=list))


def paired_intervals(
    pred: dict[str, Any], seed: int, resamples: int = 2000
) -> dict[str, list[float]]:
    """Per setting, a 95 % bootstrap interval of its PCK@0.2 minus the plain generator's,
    resampling hand indices jointly (hand ``i`` of every setting comes from the same seed row, so
    the differences are paired)."""
    ok = ((pred["pred"] - pred["gt"]).norm(dim=-1) / pred["box_side"][:, None]) <= THRESHOLD
    lab = pred["visibility"] > 0
    rows = {}
    for i, source in enumerate(pred["sources"]):
        rows.setdefault(source, []).append(i)
    base = torch.tensor(rows["plain"])
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(base), (resamples, len(base)), generator=g)  # (R, n) hand indices

    def pooled(idx: torch.Tensor) -> torch.Tensor:  # (R,) PCK pooled over the resampled hands
        return (ok[idx] & lab[idx]).flatten(1).sum(1) / lab[idx].flatten(1).sum(1).clamp(min=1)

    out = {}
    for source, idx in rows.items():
        if source != "plain" and len(idx) == len(base):
            diff = pooled(torch.tensor(idx)[pick]) - pooled(base[pick])
            out[source] = [round(float(q), 3) for q in diff.quantile(torch.tensor([0.025, 0.975]))]
    return out


def table(scores: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per setting (and the real hands), PCK@0.2 per model and crop, with the
    95 % interval of the paired difference from the plain generator in brackets."""
    columns = list(scores)
    lines = [
        "| generator setting | options | " + " | ".join(f"{c} PCK@0.2" for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    rows = [(name, folder_name(name), SETTINGS[name]) for name in SETTINGS]
    rows.append(("real hands (32 photographs, reference)", "real hands", None))
    for name, key, options in rows:
        text = "-" if options is None else ", ".join(f"{k}={v}" for k, v in options.items())
        cells = [_cell(scores[c][key]) for c in columns]
        lines.append(f"| {name} | {text or 'defaults'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(score: dict[str, Any]) -> str:
    """PCK, and the 95 % interval of its difference from the plain generator where there is one."""
    if "diff_vs_plain_95" not in score:
        return f"{score['pck@0.2']:.2f}"
    lo, hi = score["diff_vs_plain_95"]
    return f"{score['pck@0.2']:.2f} ({lo:+.2f} to {hi:+.2f})"


if __name__ == "__main__":
    main()
