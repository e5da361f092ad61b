"""``fit``: a plain PyTorch training loop with validation, atomic checkpoints and exact resume.

Taught in chapter 01 (``notebooks/01_simplebaseline.py``, the training curves) and chapter 02.

One step: the global batch of the step (``data.step_indices``), augmentation parameters drawn
from a generator seeded by (seed, step), this process's slice of both, the model's own
``loss(outputs, batch)``, AdamW, gradient clipping and the lr schedule. Every ``val_every``
steps a line goes to ``metrics.jsonl``; every ``ckpt_every`` steps a checkpoint is written. At
the end: ``model.safetensors``, the test-split metrics and ``card.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import platform
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from handlab._lock import output_lock_on_main
from handlab.models import create
from handlab.models.base import contract
from handlab.training import distributed
from handlab.training.augment import apply_augment, apply_clip_augment, sample_augment
from handlab.training.checkpoint import (
    atomic_save_model,
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
)
from handlab.training.collapse import SPREAD_FLOOR, prediction_spread
from handlab.training.config import TrainConfig, lr_factor
from handlab.training.data import (
    check_data,
    load_batch,
    model_inputs,
    open_split,
    refuse_evaluation_only,
    step_generator,
    step_indices,
)
from handlab.training.evaluation import evaluate, mean_epe, predict, summarize

__all__ = ["fit", "load_backbone", "load_init"]

_RESUME_MAY_DIFFER = ("device", "num_workers")  # settings that do not change the result


def fit(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    command: str | None = None,
    on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
) -> dict[str, Any]:
    """Train ``config.model`` on ``config.data``; return the final test-split metrics.

    ``out_dir`` receives ``model.safetensors``, ``card.json``, ``checkpoint/`` and
    ``metrics.jsonl``; while it runs, ``.handlab.lock`` keeps other runs out of the folder
    (:class:`~handlab.errors.OutputLockedError`). With ``resume`` a checkpoint there is continued
    (its config must match); without, the folder's previous run is discarded. Under ``torchrun``
    only rank 0 writes, and ranks other than 0 return ``{}``. ``on_checkpoint(step, model)`` is
    called on rank 0 after each checkpoint is written (e.g. to keep every snapshot for an ensemble:
    ``fit`` itself keeps only the latest).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    refuse_evaluation_only(config.data)  # before anything is opened or written
    out = Path(out_dir)
    info = distributed.init(config.device)
    try:
        # One run per folder: a second one is refused, naming the first (handlab._lock).
        with output_lock_on_main(out, rank=info.rank, world=info.world):
            return _fit(
                config, out, info, resume=resume, progress=progress, command=command,
                on_checkpoint=on_checkpoint,
            )  # fmt: skip
    finally:
        distributed.shutdown(info)


def load_init(model: torch.nn.Module, source: str | Path, *, partial: bool = False) -> None:
    """Copy the weights of ``source`` (``"zoo:NAME"`` or a run folder) into ``model``.

    The two must match key for key and shape for shape (the family may differ: integral
    regression starts from a SimpleBaseline with the same backbone and head); anything else is a
    ValueError naming the keys, never a silent partial copy. With ``partial`` the two may differ
    in which parameters they have (a head a config option adds, or modules it leaves out, e.g.
    the Deformer's per-frame baseline started from the temporal model, without its temporal
    layers): the model's own keep their initialisation, the source's extra ones are dropped, and
    both lists go to stderr; other shapes are still refused.
    """
    from handlab.zoo import load_model  # the zoo imports the models, not the training loop

    src = load_model(source).state_dict()
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
    shapes = [k for k in own if k in src and src[k].shape != own[k].shape]
    if ((missing or extra) and not partial) or shapes:
        raise ValueError(
            f"init: the weights of {source} do not fit {type(model).__name__} (missing "
            f"{missing[:5]}, unexpected {extra[:5]}, other shapes {shapes[:5]}); expected a "
            "model with the same parameters" + ("" if partial else " (or --init-partial)")
        )
    if missing:
        print(
            f"init: {len(missing)} parameters not in {source} start fresh: {missing}",
            file=sys.stderr,
        )
    if extra:
        print(
            f"init: {len(extra)} parameters of {source} not in the model: {extra}", file=sys.stderr
        )
    model.load_state_dict({k: v for k, v in src.items() if k in own}, strict=not missing)


def load_backbone(model: torch.nn.Module, source: str | Path) -> None:
    """Copy the trunk of ``source`` (``"zoo:NAME"`` or a run folder): its ``backbone.*``
    weights into ``model``'s, which must have the same keys and shapes (e.g. SimpleBaseline's
    ResNet-18 into HandOccNet's); the other parameters keep their initialisation. A model whose
    trunk is called ``trunk`` (the Deformer's per-frame ResNet) takes it under that name."""
    from handlab.zoo import load_model  # the zoo imports the models, not the training loop

    state = model.state_dict()
    name = "backbone" if any(k.startswith("backbone.") for k in state) else "trunk"
    src = {
        name + k[len("backbone") :]: v
        for k, v in load_model(source).state_dict().items()
        if k.startswith("backbone.")
    }
    own = {k: v for k, v in state.items() if k.startswith(name + ".")}
    if not own or not src:
        side = "model" if not own else str(source)
        raise ValueError(f"init_backbone: {side} has no 'backbone.*' weights; expected a trunk")
    missing, extra = sorted(set(own) - set(src)), sorted(set(src) - set(own))
    shapes = [k for k in own if k in src and src[k].shape != own[k].shape]
    # A shallower trunk (TransPose keeps a ResNet's first stages) takes the source's leading
    # stages: extra keys are accepted only when their whole stage is absent from the model.
    own_stages = {_stage(k) for k in own}
    deeper = [k for k in extra if _stage(k) not in own_stages]
    partial = sorted(set(extra) - set(deeper))
    if missing or partial or shapes:
        raise ValueError(
            f"init_backbone: the trunk of {source} does not fit {type(model).__name__}'s "
            f"(missing {missing[:5]}, unexpected {partial[:5]}, other shapes {shapes[:5]})"
        )
    if deeper:
        dropped = sorted({_stage(k) for k in deeper})
        print(
            f"init_backbone: {source}'s stages {dropped} are deeper than the model's; not copied",
            file=sys.stderr,
        )
    model.load_state_dict({k: v for k, v in src.items() if k in own}, strict=False)


def _stage(key: str) -> str:
    """``"backbone.6.0.conv1.weight"`` -> ``"backbone.6"``: the trunk stage a key belongs to."""
    return ".".join(key.split(".")[:2])


def bf16_native(device: torch.device) -> bool:
    """Whether bfloat16 autocast pays on ``device``: CUDA, or a CPU with AVX512-BF16 or AMX.

    Measured on the 2-core AMD EPYC (Zen 4) CI machine, SimpleBaseline ResNet-18 at 128 px, batch
    32: 1.32 -> 0.45 s per step with the paper's 256-filter head, 0.64 -> 0.36 s with 64 filters.
    On CPUs without native bfloat16 it would be slower, so it stays off there.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast(enabled: bool, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``enabled`` and :func:`bf16_native`, else a no-op."""
    if enabled and bf16_native(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _float(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    if isinstance(value, list | tuple):
        return type(value)(_float(v) for v in value)
    return value


def _fit(config, out, info, *, resume, progress, command, on_checkpoint) -> dict[str, Any]:
    if config.batch_size % info.world:
        raise ValueError(
            f"batch_size: expected a multiple of {info.world} (processes), got {config.batch_size}"
        )
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = create(config.model, **config.model_config)
    if config.init is not None:
        load_init(model, config.init, partial=config.init_partial)
    if config.init_backbone is not None:
        load_backbone(model, config.init_backbone)
    model = model.to(info.device)
    train_data = open_split(config.data, config.splits[0], config.size)
    check_data(model, train_data, config.data)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = functools.partial(
        lr_factor, steps=config.steps, schedule=config.schedule, warmup=config.warmup
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start, elapsed, running = _restore(config, out, info, model, optimizer, scheduler, resume)
    net = distributed.wrap(model, info)
    amp = autocast(config.amp, info.device)
    local = config.batch_size // info.world
    vertices = vertex_targets(model, train_data)
    bar = tqdm(total=config.steps, initial=start, disable=not (progress and info.is_main))
    t0 = time.perf_counter()
    for step in range(start, config.steps):
        batch = _step_batch(config, train_data, step, info, local, vertices)
        model.train()
        with amp:
            outputs = net(model_inputs(model, batch))
        # Losses in float32: bfloat16 keeps ~3 digits, too few for heatmap MSE.
        outputs = {k: _float(v) for k, v in outputs.items()}
        loss, _ = _loss(model, outputs, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"loss is {value} at step {step}: lower the lr or clip grads")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        running.append([value, mean_epe(outputs, batch)])  # (loss, train EPE) since validation
        bar.update(1)
        bar.set_postfix(loss=f"{running[-1][0]:.4f}", epe=f"{running[-1][1]:.2f}px")
        done = step + 1
        if done % config.val_every == 0 or done == config.steps:
            _validate(config, out, info, model, done, running, optimizer)
            running = []
        if done % config.ckpt_every == 0 or done == config.steps:
            now = elapsed + time.perf_counter() - t0
            if info.is_main:
                state = _train_state(config, optimizer, scheduler, now, running)
                save_checkpoint(out / "checkpoint", done, model, state)
                if on_checkpoint is not None:
                    on_checkpoint(done, model)
            distributed.barrier(info)
    bar.close()
    elapsed += time.perf_counter() - t0
    return _finish(config, out, info, model, elapsed, command)


def vertex_targets(model: torch.nn.Module, data: Any) -> Callable[[list[int]], torch.Tensor] | None:
    """For a model that learns a mesh (``vertex_template``, e.g. ``meshgcn``) on data that knows
    its scenes (the synthetic generator's ``params``): a function from sample indices to their
    per-vertex ground truth (N, V, 3) mm, placed as the renderer places the joints. ``None``
    otherwise: such a model then learns from the joints alone (its loss allows batches without
    vertices, as for real images)."""
    template = getattr(model, "vertex_template", None)
    if template is None or not hasattr(data, "params"):
        return None
    from handlab.mesh import scene_vertices  # only mesh models need it

    return lambda idx: scene_vertices(data.params([int(i) for i in idx]), template)


def _step_batch(config, data, step, info, local, vertices=None) -> dict[str, torch.Tensor]:
    # The global batch and its augmentation are drawn for all ranks; each keeps its slice.
    idx = step_indices(step, len(data), batch_size=config.batch_size, seed=config.seed)
    lo, hi = info.rank * local, (info.rank + 1) * local
    batch = load_batch(data, idx[lo:hi])
    if vertices is not None:
        batch["vertices"] = vertices(idx[lo:hi])
    if config.augment.enabled:
        gen = step_generator(config.seed, step, stream=2)
        params = sample_augment(config.batch_size, gen, config.augment, config.size)
        augment = apply_clip_augment if "clip" in batch else apply_augment
        batch = augment(batch, params[lo:hi])
    return {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}


def _loss(model, outputs, batch) -> tuple[torch.Tensor, dict[str, float]]:
    if not contract(model).trainable:
        raise TypeError(f"model: {type(model).__name__} has no loss(outputs, batch) method")
    loss, logs = model.loss(outputs, batch)
    return loss.float(), logs


def _train_state(config, optimizer, scheduler, elapsed: float, running) -> dict[str, Any]:
    state = {
        "running": running,  # so the next metrics line averages the same steps after a resume
        "config": config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "elapsed_s": elapsed,
        "threads": torch.get_num_threads(),  # CPU kernels split sums by thread: see _check_threads
    }
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore(config, out, info, model, optimizer, scheduler, resume) -> tuple[int, float, list]:
    ckpt = out / "checkpoint"
    if not resume:
        if info.is_main:
            shutil.rmtree(ckpt, ignore_errors=True)
            (out / "metrics.jsonl").unlink(missing_ok=True)
        distributed.barrier(info)
        return 0, 0.0, []
    loaded = load_checkpoint(ckpt, model)
    if loaded is None:
        return 0, 0.0, []
    step, state = loaded
    _check_same_config(config, state["config"], ckpt)
    _check_threads(state.get("threads"), ckpt)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    if info.is_main:  # validations after the checkpoint are replayed, so drop their lines
        _truncate_metrics(out / "metrics.jsonl", step)
    distributed.barrier(info)
    return step, float(state["elapsed_s"]), [list(r) for r in state["running"]]


def _check_same_config(config: TrainConfig, saved: dict[str, Any], where: Path) -> None:
    now = config.to_dict()
    # A field added since the checkpoint was made counts as its default (old runs resume).
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    diff = sorted(
        k for k in now if k not in _RESUME_MAY_DIFFER and now[k] != saved.get(k, defaults.get(k))
    )
    if diff:
        raise ValueError(
            f"{where}: checkpoint was made with a different config (fields {diff}); "
            "use another --out folder or resume=False to start over"
        )


def _check_threads(saved: int | None, where: Path) -> None:
    """Warn when a resume runs with another torch thread count than the checkpointed steps.

    CPU kernels (convolutions, reductions) split their sums by thread, so the same seed gives
    other float roundings, and training amplifies them: SimpleBaseline ResNet-18 (head 64, batch
    16, float32, 10 steps) trained with 1 and with 2 threads ended with 117 of its 140 weight
    tensors different (max 0.48). The resumed run is then correct but not bit-identical to an
    uninterrupted one. (Old checkpoints without the count: nothing to compare.)
    """
    now = torch.get_num_threads()
    if saved is not None and int(saved) != now:
        warnings.warn(
            f"{where}: checkpoint was made with {saved} torch threads, resuming with {now}; the "
            f"result will not be bit-identical to an uninterrupted run (set OMP_NUM_THREADS="
            f"{saved} or torch.set_num_threads({saved}) to keep it)",
            RuntimeWarning,
            stacklevel=3,
        )


def _truncate_metrics(path: Path, step: int) -> None:
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if json.loads(ln)["step"] <= step]
        atomic_write_text(path, "".join(ln + "\n" for ln in lines))


def _validate(config, out, info, model, step, running, optimizer) -> None:
    if info.is_main:
        val = open_split(config.data, config.splits[1], config.size)
        p = predict(model, val, batch_size=config.batch_size, limit=config.val_limit)
        metrics = summarize(p)
        spread = prediction_spread(p) if len(p["keypoints"]) > 1 else {}
        line = {
            "step": step,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": sum(r[0] for r in running) / len(running),
            "train_epe": sum(r[1] for r in running) / len(running),
            "val": {k: v for k, v in metrics.items() if k != "per_joint"},
            "val_spread": spread,  # predicted over labelled spread across images (collapse)
        }
        _warn_if_collapsed(spread, step)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
    distributed.barrier(info)


def _warn_if_collapsed(spread: dict[str, float], step: int) -> None:
    """Warn when validation predictions stop varying with the input (a collapsed model, like
    the HandOccNet whose necessity map saturated: the same pose for every image)."""
    low = {k: round(v, 4) for k, v in spread.items() if v < SPREAD_FLOOR}
    if low:
        warnings.warn(
            f"step {step}: validation predictions barely vary across images (spread {low} of "
            f"the labels', expected >= {SPREAD_FLOOR}): the model may have collapsed to one pose",
            RuntimeWarning,
            stacklevel=2,
        )


def _finish(config, out, info, model, elapsed, command) -> dict[str, Any]:
    if not info.is_main:
        distributed.barrier(info)
        return {}
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_model(model, out / "model.safetensors")
    test = open_split(config.data, config.splits[2], config.size)
    metrics = evaluate(model, test, batch_size=config.batch_size, limit=config.test_limit)
    card = {
        "model": config.model,
        "model_config": config.model_config,
        "command": command or "handlab.training.fit (Python API)",
        "seed": config.seed,
        "steps": config.steps,
        "wall_time_s": round(elapsed, 1),
        "machine": _machine(info, config),
        "train_config": config.to_dict(),
        "eval": {
            "data": config.data,
            "split": config.splits[2],
            "size": config.size,
            "limit": config.test_limit,
        },
        "metrics": metrics,
    }
    atomic_write_text(out / "card.json", json.dumps(card, indent=1))
    distributed.barrier(info)
    return metrics


def _machine(info, config) -> dict[str, Any]:
    dev = info.device
    return {
        # whether the steps ran under bfloat16 (the same run is ~2x slower in float32 on a CPU)
        "bfloat16_autocast": bool(config.amp and bf16_native(dev)),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "processes": info.world,
    }
