"""Seed 004's two V2V-PoseNet tables, measured on handlab's synthetic depth hands.

(a) Input x output (V2V-PoseNet's table 1): ``input`` depth map vs voxels, ``output`` 3D
    coordinates vs per-voxel likelihood; mean 3D error (mm) and parameter counts.
(b) Hrúz's HANDS 2019 post-processing ablation: reference point (refined RoM vs centre of mass
    CoM) x decoder (Max, S-max, Gauss) at the middle and final checkpoints; snapshot ("epoch")
    ensembles with N-best averaging; then, on rendered sequences, the TruncatedSVD pose prior and
    temporal averaging windows.

Every number is measured here: five small V2V variants are trained with ``handlab.training.fit``
(same seed, steps, batch and lr), their checkpoints kept as snapshots, and evaluated on the
first ``--eval`` hands of the synthetic test split with the true ``K`` and the hand mask. The
error is the paper's mean 3D distance (mm, camera frame, all 21 joints). Snapshot selection for
the k-best ensembles uses the validation split, never the test split.

Run: ``python benchmarks/v2v_tables.py --steps 3000 --out runs/v2v_tables`` (hours on 2 CPU
cores at grid 32; a GPU with ``--device cuda`` is much faster). Finished runs are resumed, not
retrained. ``--steps 3 --eval 8 --seq 1 --seq-len 8 --prior-poses 64`` is a smoke test.
Taught alongside chapter 05 (``notebooks/05_v2v.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_model

from handlab import zoo
from handlab._checks import resolve_device
from handlab.models import create
from handlab.models.voxels import voxel_to_xyz
from handlab.postprocess import PosePrior, decode_volume, ensemble, n_best, temporal_average
from handlab.synth import SyntheticHands, generate_sequence
from handlab.training import AugmentConfig, TrainConfig, fit
from handlab.training.checkpoint import atomic_save_model, atomic_write_text

# Table (a)'s four cells, plus the centre-of-mass model of table (b).
VARIANTS: dict[str, dict[str, object]] = {
    "depthmap-coords": {"input": "depthmap", "output": "coords"},
    "depthmap-heatmap": {"input": "depthmap", "output": "heatmap"},
    "voxels-coords": {"input": "voxels", "output": "coords"},
    "voxels-heatmap": {"input": "voxels", "output": "heatmap"},
    "voxels-heatmap-com": {"input": "voxels", "output": "heatmap", "refine": False},
}
DECODER_NAMES = {"argmax": "Max", "subvoxel": "S-max", "gaussian": "Gauss"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1500, help="training steps per variant")
    p.add_argument("--out", default="runs/v2v_tables", help="folder of the runs and tables.json")
    p.add_argument(
        "--results", default="benchmarks/results/v2v_tables.json",
        help="the tables as JSON (chapter 05 shows this file)",
    )  # fmt: skip
    p.add_argument("--grid", type=int, default=32, help="input voxels per side (paper: 88)")
    p.add_argument("--width", type=int, default=8, help="first-stage channels (paper: 16)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--snapshots", type=int, default=5, help="checkpoints kept per run")
    p.add_argument("--eval", type=int, default=256, help="test (and validation) hands")
    p.add_argument("--n-best", type=int, default=100, help="voxels averaged by N-best")
    p.add_argument("--seq", type=int, default=8, help="test sequences for the temporal rows")
    p.add_argument("--seq-len", type=int, default=32, help="frames per sequence")
    p.add_argument("--prior-poses", type=int, default=2000, help="training poses for the prior")
    p.add_argument("--prior-components", type=int, default=24)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--reference", default="zoo:v2v_32",
        help="a trained voxels -> heatmap V2V (zoo:NAME or a run folder) scored beside table (a) "
             "as a longer-trained twin of that cell; '' for none (default zoo:v2v_32)",
    )  # fmt: skip
    p.add_argument(
        "--markdown", action="store_true",
        help="print the tables of docs/results.md from --results and stop (nothing is trained)",
    )  # fmt: skip
    p.add_argument(
        "--train-only", default="",
        help="comma-separated variants to train, then stop without tables (one process per core)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.steps < 1 or args.snapshots < 1 or args.eval < 1:
        p.error("--steps, --snapshots and --eval must be >= 1")
    unknown = sorted(set(filter(None, args.train_only.split(","))) - set(VARIANTS))
    if unknown:
        p.error(f"--train-only: unknown variants {unknown}; expected some of {list(VARIANTS)}")
    return args


def train_variant(name: str, args: argparse.Namespace) -> tuple[dict, dict[int, Path]]:
    """Train (or resume) one variant; returns its model config and {step: snapshot file}."""
    model_config = {"grid": args.grid, "width": args.width, **VARIANTS[name]}
    every = max(1, args.steps // args.snapshots)
    config = TrainConfig(
        model="v2v",
        model_config=model_config,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        augment=AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0),  # depth: no colour
        val_every=every,
        val_limit=min(64, args.eval),
        test_limit=args.eval,
        ckpt_every=every,
        seed=args.seed,
        device=args.device,
    )
    out = Path(args.out) / name
    snaps = out / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    # fit keeps only the latest checkpoint; the ensembles need every snapshot
    fit(
        config, out, progress=False, command="benchmarks/v2v_tables.py",
        on_checkpoint=lambda step, model: atomic_save_model(
            model, snaps / f"model-{step:08d}.safetensors"
        ),
    )  # fmt: skip
    files = {int(f.stem.split("-")[1]): f for f in snaps.glob("model-*.safetensors")}
    return model_config, dict(sorted(files.items()))


def curves(out: Path) -> dict[str, list[dict[str, float]]]:
    """Each variant's validation curve from its ``metrics.jsonl``: step, root-relative MPJPE
    (mm) and 2D EPE (px) on the first ``--eval`` (at most 64) validation hands; shows whether a
    budget has converged."""
    rows: dict[str, list[dict[str, float]]] = {}
    for name in VARIANTS:
        path = out / name / "metrics.jsonl"
        lines = path.read_text().splitlines() if path.is_file() else []
        for record in map(json.loads, filter(None, lines)):
            if "val" in record:
                val = record["val"]
                rows.setdefault(name, []).append(
                    {"step": record["step"], "rr_mpjpe_mm": val["rr_mpjpe_mm"],
                     "epe_px": val["epe_px"]}
                )  # fmt: skip
    return rows


def load(model_config: dict, path: Path, device: torch.device) -> torch.nn.Module:
    model = create("v2v", **model_config)
    load_model(model, str(path))
    return model.to(device).eval()


@torch.no_grad()
def run(model: torch.nn.Module, data: dict[str, torch.Tensor], device: torch.device) -> dict:
    """Raw outputs on hand-masked depth with the true K, in chunks; CPU tensors."""
    parts: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, len(data["depth"]), 32):
        depth = (data["depth"][lo : lo + 32] * (data["mask"][lo : lo + 32] > 0)).to(device)
        out = model(depth, data["K"][lo : lo + 32].to(device))
        for key in ("heatmaps", "coords", "ref_xyz", "xyz_cam"):
            if key in out:
                parts.setdefault(key, []).append(out[key].cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def joints(model: torch.nn.Module, raw: dict, method: str = "subvoxel", n: int = 0) -> torch.Tensor:
    """Camera-frame joints (N, 21, 3) mm by ``method`` (or N-best with ``n`` voxels)."""
    if "coords" in raw:
        return raw["xyz_cam"]
    coords = n_best(raw["heatmaps"], n) if n else decode_volume(raw["heatmaps"], method)
    cfg = model.config
    return voxel_to_xyz(coords, raw["ref_xyz"], grid=model.out_grid, cube_mm=cfg.cube_mm)


def error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean 3D distance (mm) over joints and samples (V2V's and Hrúz's metric)."""
    return float((pred - gt).norm(dim=-1).mean())


def split_data(split: str, args: argparse.Namespace) -> dict[str, torch.Tensor]:
    ds = SyntheticHands(split, size=args.size, length=args.eval)
    return ds.batch(list(range(args.eval)))


def table_a(runs: dict, test: dict, device: torch.device) -> dict[str, dict[str, float]]:
    rows = {}
    for name in ("depthmap-coords", "depthmap-heatmap", "voxels-coords", "voxels-heatmap"):
        config, snaps = runs[name]
        model = load(config, snaps[max(snaps)], device)
        err = error(joints(model, run(model, test, device)), test["xyz"])
        rows[name] = {"mm": err, "params_m": sum(p.numel() for p in model.parameters()) / 1e6}
    return rows


def reference_model(spec: str, device: torch.device) -> torch.nn.Module:
    """Load ``--reference`` and check it is a voxels -> heatmap V2V (main calls this before
    training, so a wrong spec fails in seconds, not after hours)."""
    model = zoo.load_model(spec, device=device)
    cfg = model.config  # the built model's full config, defaults included
    if model.card["model"] != "v2v" or (cfg.input, cfg.output) != ("voxels", "heatmap"):
        raise ValueError(f"--reference: expected a voxels -> heatmap V2V model, got {spec!r}")
    return model


def reference_row(spec: str, test: dict, device: torch.device) -> dict[str, object]:
    """Score a longer-trained twin of table (a)'s voxels -> heatmap cell the same way, so a
    reader sees how much that cell still gains with more training."""
    model = reference_model(spec, device)
    err = error(joints(model, run(model, test, device)), test["xyz"])
    steps = model.card.get("total_steps", model.card.get("steps"))
    batch = model.card.get("train_config", {}).get("batch_size")
    return {"model": spec, "mm": err, "steps": steps, "batch_size": batch}


def table_b(runs: dict, test: dict, val: dict, args: argparse.Namespace, device) -> dict:
    out: dict[str, object] = {"decoders": {}, "ensembles": {}, "sequence": {}}
    for ref, name in (("RoM", "voxels-heatmap"), ("CoM", "voxels-heatmap-com")):
        config, snaps = runs[name]
        steps = sorted(snaps)
        for step in sorted({steps[(len(steps) - 1) // 2], steps[-1]}):
            model = load(config, snaps[step], device)
            raw = run(model, test, device)
            row = {m: error(joints(model, raw, m), test["xyz"]) for m in DECODER_NAMES}
            out["decoders"][f"{ref} step {step}"] = row
    # snapshot ensembles of the refined voxel model, N-best decoded, k best chosen on validation
    config, snaps = runs["voxels-heatmap"]
    n = min(args.n_best, (args.grid // 2) ** 3)
    preds, val_err = {}, {}
    for step, path in snaps.items():
        model = load(config, path, device)
        raw = run(model, test, device)
        preds[step] = (joints(model, raw), joints(model, raw, n=n))
        val_err[step] = error(joints(model, run(model, val, device), n=n), val["xyz"])
    last = max(snaps)
    ranked = sorted(val_err, key=val_err.get)
    rows = {f"step {last} / -": error(preds[last][0], test["xyz"])}
    rows[f"step {last} / {n}"] = error(preds[last][1], test["xyz"])
    rows[f"all {len(snaps)} / {n}"] = error(ensemble([p[1] for p in preds.values()]), test["xyz"])
    for k in (3, 5, 7):
        if k < len(snaps):
            rows[f"{k}-best / {n}"] = error(
                ensemble([preds[s][1] for s in ranked[:k]]), test["xyz"]
            )
    out["ensembles"] = rows
    best = ranked[: min(5, len(ranked))]
    out["sequence"] = sequence_rows(config, [snaps[s] for s in best], n, args, device)
    return out


def sequence_rows(
    config: dict, paths: list[Path], n: int, args: argparse.Namespace, device
) -> dict:
    """Pose prior and temporal windows on rendered test sequences (seed disjoint from training)."""
    seq = generate_sequence(args.seq, args.seq_len, seed=10**9 + args.seed, size=args.size)
    flat = {k: v.flatten(0, 1) for k, v in seq.items() if k in ("depth", "mask", "K", "xyz")}
    preds = []
    for path in paths:
        model = load(config, path, device)
        preds.append(joints(model, run(model, flat, device), n=n))
    pred = ensemble(preds)  # (S * T, 21, 3)
    train = SyntheticHands("train", size=64, length=args.prior_poses)
    poses = torch.cat(
        [train.batch(list(range(lo, min(lo + 256, args.prior_poses))))["xyz"]
         for lo in range(0, args.prior_poses, 256)]
    )  # fmt: skip
    prior = PosePrior.fit(poses - poses[:, :1], min(args.prior_components, 62))
    root = pred[:, :1]
    with_prior = root + prior.project(pred - root)
    gt = flat["xyz"]
    rows = {"ensemble": error(pred, gt), "+ prior": error(with_prior, gt)}
    shaped = with_prior.view(args.seq, args.seq_len, 21, 3)
    for w in (1, 3, 5, 7, 10):
        if 2 * w + 1 <= args.seq_len:
            smooth = temporal_average(shaped, w).flatten(0, 1)
            rows[f"+ prior + window +-{w}"] = error(smooth, gt)
    return rows


def print_tables(a: dict, b: dict, args: argparse.Namespace) -> None:
    print(f"\n(a) mean 3D error (mm) on {args.eval} synthetic test hands; parameters (M)")
    corner = "input \\ output"
    print(f"{corner:<16}{'3D coordinates':>22}{'per-voxel likelihood':>24}")
    for inp, label in (("depthmap", "2D depth map"), ("voxels", "3D voxels")):
        c, h = a[f"{inp}-coords"], a[f"{inp}-heatmap"]
        cells = [f"{r['mm']:.2f} ({r['params_m']:.2f} M)" for r in (c, h)]
        print(f"{label:<16}{cells[0]:>22}{cells[1]:>24}")
    print("seed 004 (NYU): depth map 18.85 / 13.01, voxels 16.78 / 10.37 mm")
    print("\n(b) post-processing, voxels -> heatmap (mm)")
    print(f"{'reference':<22}" + "".join(f"{v:>9}" for v in DECODER_NAMES.values()))
    for row, errs in b["decoders"].items():
        print(f"{row:<22}" + "".join(f"{errs[m]:>9.2f}" for m in DECODER_NAMES))
    print(f"\n{'snapshots / N-best':<22}{'error':>9}")
    for row, err in b["ensembles"].items():
        print(f"{row:<22}{err:>9.2f}")
    print(f"\n{'sequences':<22}{'error':>9}")
    for row, err in b["sequence"].items():
        print(f"{row:<22}{err:>9.2f}")


def markdown(result: dict) -> str:
    """The tables of docs/results.md from a ``tables.json``: (a) beside seed 004's, then (b)."""
    a, b = result["table_a"], result["table_b"]
    seed = {"depthmap": (18.85, 13.01), "voxels": (16.78, 10.37)}
    lines = [
        "| input \\ output | 3D coordinates | per-voxel likelihood | seed 004 (NYU) |",
        "|---|---:|---:|---:|",
    ]
    for inp, label in (("depthmap", "2D depth map"), ("voxels", "3D voxels")):
        cells = [f"{a[f'{inp}-{o}']['mm']:.2f} ({a[f'{inp}-{o}']['params_m']:.2f} M)"
                 for o in ("coords", "heatmap")]  # fmt: skip
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {seed[inp][0]} / {seed[inp][1]} |")
    lines += ["", "| reference, snapshot | Max | S-max | Gauss |", "|---|---:|---:|---:|"]
    for row, errs in b["decoders"].items():
        lines.append(f"| {row} | " + " | ".join(f"{errs[m]:.2f}" for m in DECODER_NAMES) + " |")
    lines += ["", "| snapshots / N-best | error (mm) |", "|---|---:|"]
    lines += [f"| {row} | {err:.2f} |" for row, err in b["ensembles"].items()]
    lines += ["", "| sequences (5 best snapshots, N-best) | error (mm) |", "|---|---:|"]
    lines += [f"| {row} | {err:.2f} |" for row, err in b["sequence"].items()]
    if result.get("reference"):
        ref = result["reference"]
        lines += [
            "",
            f"Longer-trained twin of the voxels -> heatmap cell: `{ref['model']}` "
            f"({ref['steps']} steps of batch {ref['batch_size']}), {ref['mm']:.2f} mm.",
        ]
    if result.get("curves"):  # files written before the curves were recorded have none
        steps = sorted({r["step"] for rows in result["curves"].values() for r in rows})
        lines += ["", "| validation, root-relative mm | " + " | ".join(map(str, steps)) + " |",
                  "|---|" + "---:|" * len(steps)]  # fmt: skip
        for name, rows in result["curves"].items():
            mm = {r["step"]: f"{r['rr_mpjpe_mm']:.1f}" for r in rows}
            lines.append(f"| {name} | " + " | ".join(mm.get(t, "-") for t in steps) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.results).read_text())))
        return 0
    device = resolve_device(args.device)
    if args.reference and not args.train_only:
        reference_model(args.reference, device)
    torch.manual_seed(args.seed)
    if args.train_only:
        for name in args.train_only.split(","):
            train_variant(name, args)
        return 0
    runs = {name: train_variant(name, args) for name in VARIANTS}
    test, val = split_data("test", args), split_data("val", args)
    a = table_a(runs, test, device)
    b = table_b(runs, test, val, args, device)
    print_tables(a, b, args)
    result = {"args": vars(args), "table_a": a, "table_b": b, "curves": curves(Path(args.out))}
    if args.reference:
        result["reference"] = reference_row(args.reference, test, device)
        print(f"reference {args.reference}: {result['reference']['mm']:.2f} mm")
    for path in (Path(args.out) / "tables.json", Path(args.results)):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(result, indent=1))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
