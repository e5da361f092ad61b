"""Dataset-scale PoseIG runs: resumable, shardable, stored as Parquet + chunked HDF5.

Taught in chapter 11 (``notebooks/11_compare_zoo.py``). Command line: ``handlab attribute``
(:mod:`handlab.commands.attribute`, which resolves the model and data names; this module takes
the model and the dataset as objects).

The samples are cut into fixed *units* of ``batch_size`` consecutive samples. Each unit is
explained on its own (PoseIG against the ground-truth keypoints, indices, relation index) and
written atomically (a unique temporary name, then ``os.replace``) to ``DIR/parts/`` (HDF5 first,
then the Parquet file that marks it done), so a killed run resumes with nothing recomputed, and
rank ``r`` of ``W`` takes the units ``u % W == r``. A unit's result depends only on its samples and
settings (never on the rank or on what ran before), so the merged output is identical to one
uninterrupted process. When every unit is done, rank 0 merges them into:

- ``indices.parquet``: one row per (sample, joint): the columns of
  :func:`~handlab.attribution.indices.index_table` plus ``likelihood`` and ``delta``
  (the completeness gap);
- ``maps.h5``: ``maps`` (N, J, H, W) float16 chunked one sample per chunk, ``ri`` (N, J, J)
  float32 relation index, ``sample`` (N,) ids;
- ``manifest.json``: every setting, the model and data specs, versions, and ``complete``.

Resuming with different settings raises instead of mixing results. One run at a time per
folder: ``DIR/.handlab.lock`` (see :mod:`handlab._lock`) refuses a second run, naming the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from handlab._io import atomic_write, atomic_write_text
from handlab._lock import output_lock_on_main
from handlab.attribution.config import PoseIGConfig
from handlab.attribution.explain import explain_batch

__all__ = ["RunConfig", "run_attribution"]


@dataclass(frozen=True)
class RunConfig:
    """A dataset run: the PoseIG settings, passed whole to the engine, and how to cut the data.

    Unit ``u`` is explained with ``poseig.seed + u`` (noise draws differ between units but not
    between ranks or resumes).
    """

    poseig: PoseIGConfig = field(default_factory=PoseIGConfig)
    batch_size: int = 8  # samples per unit: the resume and sharding granularity
    limit: int | None = None  # first ``limit`` samples only


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _collate(dataset, indices: range) -> dict[str, torch.Tensor]:
    items = [dataset[i] for i in indices]
    for key in ("image", "keypoints", "visibility"):
        if key not in items[0]:
            raise ValueError(f"dataset: expected items with {key!r}, got keys {sorted(items[0])}")
    batch = {
        k: torch.stack([torch.as_tensor(it[k]) for it in items])
        for k in ("image", "keypoints", "visibility")
    }
    if "mask" in items[0]:
        batch["mask"] = torch.stack(
            [torch.as_tensor(it["mask"]).reshape(it["image"].shape[-2:]) for it in items]
        )
    return batch


def _manifest(out: Path, settings: dict) -> None:
    path = out / "manifest.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff:
            raise ValueError(
                f"{path}: an earlier run used other settings for {diff}; "
                "use a new --out or delete it"
            )
        return
    atomic_write_text(path, json.dumps(settings, indent=1))


def _explain_unit(model: nn.Module, batch: dict, config: RunConfig, unit: int, ids: list[int]):
    batch = {**batch, "image": batch["image"].float()}
    cfg = replace(config.poseig, seed=config.poseig.seed + unit)
    res, table, ri = explain_batch(model, batch, cfg, sample_ids=ids)
    return table, res.maps.numpy().astype(np.float16), ri.numpy().astype(np.float32)


def _write_unit(parts: Path, unit: int, table: pd.DataFrame, maps, ri, ids: list[int]) -> None:
    # Unique temporary names (atomic_write): never a file another process is writing.
    stem = parts / f"unit-{unit:06d}"

    def write_h5(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("maps", data=maps)
            f.create_dataset("ri", data=ri)
            f.create_dataset("sample", data=np.asarray(ids))

    atomic_write(stem.with_suffix(".h5"), write_h5)
    # the done marker: written last
    atomic_write(stem.with_suffix(".parquet"), lambda tmp: table.to_parquet(tmp, index=False))


def _merge(out: Path, units: int) -> None:
    parts = [out / "parts" / f"unit-{u:06d}" for u in range(units)]
    tables = [pd.read_parquet(p.with_suffix(".parquet")) for p in parts]
    table = pd.concat(tables, ignore_index=True)
    atomic_write(out / "indices.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    n = sum(t["sample"].nunique() for t in tables)
    atomic_write(out / "maps.h5", lambda tmp: _merge_maps(tmp, parts, n))


def _merge_maps(tmp: str, parts: list[Path], n: int) -> None:
    with h5py.File(parts[0].with_suffix(".h5"), "r") as p:
        j, h, w = p["maps"].shape[1:]
    with h5py.File(tmp, "w") as f:
        maps = f.create_dataset("maps", (n, j, h, w), dtype="float16", chunks=(1, j, h, w))
        ri = f.create_dataset("ri", (n, j, j), dtype="float32", chunks=(1, j, j))
        ids = f.create_dataset("sample", (n,), dtype="int64")
        start = 0
        for part in parts:
            with h5py.File(part.with_suffix(".h5"), "r") as p:
                stop = start + len(p["sample"])
                maps[start:stop], ri[start:stop], ids[start:stop] = p["maps"], p["ri"], p["sample"]
            start = stop


def run_attribution(
    model: nn.Module,
    dataset,
    out_dir: str | Path,
    *,
    config: RunConfig = RunConfig(),
    model_spec: str = "object",
    data_spec: str = "object",
    progress: bool = True,
    on_unit: Callable[[int], None] | None = None,
) -> dict[str, list[int]]:
    """Explain ``dataset`` with PoseIG unit by unit into ``out_dir`` (resumable, shardable).

    Args:
        model: a handlab pose model (2D keypoints are explained against the ground truth).
        dataset: map-style, items with ``image`` (3, H, W), ``keypoints`` (J, 2) px,
            ``visibility`` (J,), optionally ``mask`` (1, H, W) for FI.
        out_dir: output folder (see the module docstring for its layout).
        config: the :class:`RunConfig`; model_spec, data_spec: recorded in the manifest.
        on_unit: called with each unit index after it is written (progress hooks, tests).

    Returns:
        ``{"computed": [...], "skipped": [...]}``: this rank's unit indices.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config: expected a RunConfig, got {type(config).__name__}")
    if not isinstance(config.poseig, PoseIGConfig):
        raise TypeError(f"config.poseig: expected a PoseIGConfig, got {config.poseig!r}")
    if config.batch_size < 1 or (config.limit is not None and config.limit < 1):
        raise ValueError(f"config: expected batch_size and limit >= 1, got {config}")
    n = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    units = -(-n // config.batch_size)
    out = Path(out_dir)
    rank, world = _rank_world()
    settings = config.poseig.settings() | {
        "batch_size": config.batch_size,
        "limit": config.limit,
        "model": model_spec,
        "data": data_spec,
        "samples": n,
        "units": units,
    }
    # One run per folder: a second one (or a second torchrun group) is refused, naming the first.
    with output_lock_on_main(out, rank=rank, world=world):
        return _run_units(model, dataset, out, config, settings, progress, on_unit)


def _run_units(model, dataset, out, config, settings, progress, on_unit) -> dict[str, list[int]]:
    parts, n, units = out / "parts", settings["samples"], settings["units"]
    rank, world = _rank_world()
    if rank == 0:
        parts.mkdir(parents=True, exist_ok=True)
        _manifest(out, settings)
        # Temporary files of a killed run (atomic_write's ".NAME.*.tmp"): the lock is ours, so
        # no other process is writing them.
        for stale in [*parts.glob(".unit-*.tmp"), *out.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)
    _barrier()
    if rank != 0:
        _manifest(out, settings)  # every rank checks the settings it resumes
    done: dict[str, list[int]] = {"computed": [], "skipped": []}
    mine = [u for u in range(units) if u % world == rank]
    for u in tqdm(mine, desc=f"attribute (rank {rank})", disable=not progress):
        if (parts / f"unit-{u:06d}.parquet").is_file():
            done["skipped"].append(u)
            continue
        ids = list(range(u * config.batch_size, min(n, (u + 1) * config.batch_size)))
        batch = _collate(dataset, range(ids[0], ids[-1] + 1))
        _write_unit(parts, u, *_explain_unit(model, batch, config, u, ids), ids)
        done["computed"].append(u)
        if on_unit is not None:
            on_unit(u)
    _barrier()
    if rank == 0:
        _merge(out, units)
        settings = json.loads((out / "manifest.json").read_text())
        settings |= {"complete": True, "torch": torch.__version__, "world_size": world}
        atomic_write_text(out / "manifest.json", json.dumps(settings, indent=1))
    _barrier()
    return done
