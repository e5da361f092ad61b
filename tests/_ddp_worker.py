"""Run by ``torchrun`` from ``tests/test_ddp.py``: ``handlab train`` on the tiny model, per rank.

Usage: ``python -m torch.distributed.run --nproc-per-node 2 tests/_ddp_worker.py OUT ARGS...``
where ARGS are ``handlab train`` arguments; each rank also writes its final weights to
``OUT/rank<R>.safetensors`` and what ``fit`` returned to ``OUT/rank<R>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from _tiny_model import TINY, ToyHands, build_tiny
from safetensors.torch import save_file

from handlab import cli
from handlab.models import registry
from handlab.training import loop


def main() -> None:
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    torch.set_num_threads(1)
    registry._BUILDERS.setdefault(TINY, build_tiny)
    loop.open_split = lambda spec, split, size: ToyHands(split, size)
    finish = loop._finish

    def finish_and_dump(config, out_dir, info, model, elapsed, command):
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(state, out / f"rank{info.rank}.safetensors")
        metrics = finish(config, out_dir, info, model, elapsed, command)
        (out / f"rank{info.rank}.json").write_text(json.dumps(metrics))
        return metrics

    loop._finish = finish_and_dump
    sys.argv = ["handlab", *argv]  # what the card records as the command
    cli.main(argv)
    assert (out / f"rank{os.environ['RANK']}.json").is_file()


if __name__ == "__main__":
    main()
