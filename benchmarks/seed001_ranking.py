"""Seed 001's four networks trained with one recipe at an equal budget, and its ranking tested.

Seed 001 (ETH Machine Perception 2018) ranked, by private Kaggle score (lower is better):
Inception-ResNet-v2 59.71 < ResNet34 81.75 < CPM 85.09 < Inception-v3 125.66, each trained for
its own number of epochs on a GPU. Here the four networks get the *same* recipe and budget on
synthetic hands, one CPU thread each, trained one after the other with ``handlab train``::

    handlab train --model cpm --out runs/seed001_ranking/cpm --steps 300 --batch-size 16 \\
        --lr 1e-3 --schedule onecycle --seed 0 --size 128 --val-every 300 --ckpt-every 50 \\
        --test-limit 256
    handlab train --model regression --model-config backbone=resnet34 ...          (same flags)
    handlab train --model regression --model-config backbone=inception_v3 ...      (same flags)
    handlab train --model regression --model-config backbone=inception_resnet_v2 ...

All four take the seed's 128 px input (Inception-v3 and Inception-ResNet-v2 are stock torchvision
and timm networks, random weights, with global average pooling; at 128 px their last feature
maps are 2x2, smaller than at their native 299 px). Each run is then scored on the synthetic test
split (its card: the first ``--test-limit`` samples, EPE px and PCK) and on the 32 real
development hands (``handlab evaluate --data coco:real-hands``, plain 1.5x crops, PCK@0.2 of the
box). Equal small budgets measure how fast each network learns early on, not its converged
accuracy.

The verdicts are checks that can fail: the Spearman correlation between the seed's order and
ours (+1: same order), and whether Inception-ResNet-v2 is the best of the four.

Resumable: a run with a checkpoint resumes, a finished run (card with the same steps) is reused.
Results go to ``benchmarks/results/seed001_ranking.json``, rewritten after each network.
Read by chapter 02 (``notebooks/02_compare_2d.py``, section 3).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/seed001_ranking.py [--steps 300] [--batch-size 16]
[--runs runs/seed001_ranking]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

OUT = Path(__file__).parent / "results" / "seed001_ranking.json"
# name -> (family, --model-config words, seed 001's private Kaggle score: lower is better)
NETWORKS: dict[str, tuple[str, list[str], float]] = {
    "cpm": ("cpm", [], 85.09),
    "inception_v3": ("regression", ["backbone=inception_v3"], 125.66),
    "resnet34": ("regression", ["backbone=resnet34"], 81.75),
    "inception_resnet_v2": ("regression", ["backbone=inception_resnet_v2"], 59.71),
}
RECIPE = {"lr": 1e-3, "schedule": "onecycle", "seed": 0, "size": 128, "test_limit": 256}


def _cli(*words: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    print("$ handlab " + " ".join(words), flush=True)
    subprocess.run([sys.executable, "-m", "handlab.cli", *words], check=True, env=env)


def _train(name: str, run: Path, steps: int, batch_size: int) -> dict[str, Any]:
    """Train (or resume, or reuse) one network; return its card."""
    family, config, _ = NETWORKS[name]
    card_path = run / "card.json"
    if card_path.exists():
        card = json.loads(card_path.read_text())
        if card["steps"] == steps and card["train_config"]["batch_size"] == batch_size:
            print(f"{name}: reusing {run}", flush=True)
            return card
    words = [
        "train", "--model", family, "--out", str(run), "--steps", str(steps),
        "--batch-size", str(batch_size), "--lr", str(RECIPE["lr"]),
        "--schedule", RECIPE["schedule"], "--seed", str(RECIPE["seed"]),
        "--size", str(RECIPE["size"]), "--val-every", str(steps), "--ckpt-every", "50",
        "--test-limit", str(RECIPE["test_limit"]),
    ]  # fmt: skip
    if card_path.exists():  # a finished run with another budget: start again
        words.append("--restart")
    if config:
        words += ["--model-config", *config]
    _cli(*words)
    return json.loads(card_path.read_text())


def _real(run: Path) -> dict[str, Any]:
    """Overall PCK@0.2 and EPE / box side on the real development hands (plain crops) of the run
    and of the synthetic mean pose (the floor), cached next to the run."""
    path = run / "real_hands.json"
    if not path.exists() or path.stat().st_mtime < (run / "card.json").stat().st_mtime:
        _cli("evaluate", "--model", str(run), "--data", "coco:real-hands", "--crop", "plain",
             "--json", str(path), "--no-progress")  # fmt: skip
    results = json.loads(path.read_text())
    return {
        "run": results[run.name]["overall"],
        "mean_pose": results["mean pose (synthetic)"]["overall"],
    }


def _verdict(table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    names = [n for n in NETWORKS if n in table]
    if len(names) < len(NETWORKS):
        return {}
    seed = [NETWORKS[n][2] for n in names]
    ours = [table[n]["test_epe_px"] for n in names]
    real = [-table[n]["real_pck@0.2"] for n in names]  # negated: lower is better, like the seed's
    rho, _ = spearmanr(seed, ours)
    rho_real, _ = spearmanr(seed, real)
    return {
        "seed_order": sorted(names, key=lambda n: NETWORKS[n][2]),
        "our_order_test_epe": sorted(names, key=lambda n: table[n]["test_epe_px"]),
        "our_order_real_pck": sorted(names, key=lambda n: -table[n]["real_pck@0.2"]),
        "spearman_seed_vs_test_epe": float(rho),
        "spearman_seed_vs_real_pck": float(rho_real),
        "irv2_best_test_epe": min(names, key=lambda n: table[n]["test_epe_px"])
        == "inception_resnet_v2",
        "irv2_best_real_pck": max(names, key=lambda n: table[n]["real_pck@0.2"])
        == "inception_resnet_v2",
    }


def _write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(result, f, indent=1)
    os.replace(f.name, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per network (default 300)")
    parser.add_argument("--batch-size", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--runs", default="runs/seed001_ranking", help="run folders' parent")
    parser.add_argument("--json", default=str(OUT), help=f"results file (default {OUT})")
    parser.add_argument("--only", nargs="*", default=list(NETWORKS), help="networks to run")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(NETWORKS))
    if unknown:
        raise SystemExit(f"--only: unknown networks {unknown}; expected some of {list(NETWORKS)}")
    result: dict[str, Any] = {
        "recipe": {**RECIPE, "steps": args.steps, "batch_size": args.batch_size,
                   "optimiser": "AdamW (handlab train defaults)", "device": "cpu, 1 thread"},
        "seed001_private": {n: v[2] for n, v in NETWORKS.items()},
        "networks": {},
    }  # fmt: skip
    start = time.time()
    for name in args.only:
        run = Path(args.runs) / name
        card = _train(name, run, args.steps, args.batch_size)
        real = _real(run)
        metrics = card["metrics"]
        result["networks"][name] = {
            "model": card["model"],
            "model_config": card["model_config"],
            "command": card["command"],
            "steps": card["steps"],
            "wall_time_s": card["wall_time_s"],
            "s_per_step": card["wall_time_s"] / card["steps"],  # includes the final evaluation
            "threads": card["machine"]["threads"],
            "n_test": metrics["n"],
            "test_epe_px": metrics["epe_px"],
            "test_pck@10px": metrics["pck@10px"],
            "test_auc_0-30px": metrics["auc_0-30px"],
            "real_hands": real["run"]["hands"],
            "real_pck@0.2": real["run"]["pck@0.2"],
            "real_epe_per_box": real["run"]["epe/box"],
        }
        result["real_mean_pose_pck@0.2"] = real["mean_pose"]["pck@0.2"]
        result["verdict"] = _verdict(result["networks"])
        _write(result, Path(args.json))
        print(f"{name}: {json.dumps(result['networks'][name])} ({time.time() - start:.0f} s)")
    print(json.dumps(result["verdict"], indent=1))


if __name__ == "__main__":
    main()
