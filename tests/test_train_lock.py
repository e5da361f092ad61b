"""``fit`` takes the output folder's lock: a second run on one --out is refused, untouched."""

from __future__ import annotations

import pytest

from handlab._lock import output_lock
from handlab.errors import OutputLockedError
from handlab.training import fit
from handlab.training.config import TrainConfig


def test_a_second_train_on_a_locked_folder_is_refused_and_keeps_its_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "latest.json").write_text("{}")
    (tmp_path / "metrics.jsonl").write_text("")
    config = TrainConfig(model="simplebaseline", steps=2, device="cpu")
    with output_lock(tmp_path, command="handlab train (the first run)"):
        with pytest.raises(OutputLockedError, match="the first run"):
            fit(config, tmp_path, resume=False, progress=False)  # would discard the checkpoint
    assert (ckpt / "latest.json").is_file() and (tmp_path / "metrics.jsonl").is_file()
