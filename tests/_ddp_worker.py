"""Run by ``torchrun`` from ``tests/test_ddp.py``: ``fit`` the tiny model, one process per rank.

Usage: ``python -m torch.distributed.run --nproc-per-node 2 tests/_ddp_worker.py OUT CONFIG_JSON``;
each rank also writes its final weights to ``OUT/rank<R>.safetensors`` for comparison.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from _tiny_model import TINY, ToyHands, build_tiny
from safetensors.torch import save_file

from handlab.models import registry
from handlab.training import loop
from handlab.training.config import TrainConfig


def main() -> None:
    out, config = Path(sys.argv[1]), TrainConfig.from_dict(json.loads(sys.argv[2]))
    torch.set_num_threads(1)
    registry._BUILDERS.setdefault(TINY, build_tiny)
    loop.open_split = lambda spec, split, size: ToyHands(split, size)
    finish = loop._finish

    def finish_and_dump(config, out_dir, info, model, elapsed, command):
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(state, out / f"rank{info.rank}.safetensors")
        return finish(config, out_dir, info, model, elapsed, command)

    loop._finish = finish_and_dump
    metrics = loop.fit(config, out / "run", progress=False)
    (out / f"rank{os.environ['RANK']}.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    main()
