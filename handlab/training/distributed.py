"""DistributedDataParallel on an existing engine: ``torchrun`` starts processes, this joins them.

Taught in chapter 02 (``notebooks/02_*.py``, scaling out).

When ``torchrun`` launched the process (``WORLD_SIZE`` > 1 in the environment), ``init`` joins
the process group (NCCL on CUDA, gloo on CPU) and each process takes the CUDA device of its
``LOCAL_RANK``. Without it everything is a one-process no-op.

>>> info = init("cpu", env={})
>>> info.world, info.is_main
(1, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from handlab._checks import resolve_device

__all__ = ["DistInfo", "barrier", "init", "shutdown", "wrap"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world`` processes, its ``device``."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # True when ``init`` created the process group (and must end it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str, env: Mapping[str, str] | None = None) -> DistInfo:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and join the group if > 1 process."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return DistInfo(0, 1, 0, dev)
    rank, local = int(env["RANK"]), int(env.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev, owns)


def wrap(model: nn.Module, info: DistInfo) -> nn.Module:
    """``model`` itself for one process, else a DDP wrapper (gradients averaged across ranks)."""
    if info.world == 1:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for one process)."""
    if info.world > 1:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group if ``init`` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
