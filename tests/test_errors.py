"""Errors name the file or argument and what was expected (handlab.errors), never a bare
library message: the cases a new user met (issue 22)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_model

import handlab.zoo
from handlab._checks import resolve_device
from handlab.data import DataError, open_dataset
from handlab.errors import HandlabError, InputError
from handlab.models import create
from handlab.training.checkpoint import load_checkpoint

WEIGHTS = Path(handlab.zoo.__file__).parent / "weights"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder holding the shipped lifting model (small) as a handlab train run would."""
    shutil.copy(WEIGHTS / "lifting.json", tmp_path / "card.json")
    shutil.copy(WEIGHTS / "lifting.safetensors", tmp_path / "model.safetensors")
    handlab.zoo.load_model(tmp_path)  # loads as it is
    return tmp_path


def test_truncated_weights_name_the_file(run_dir):
    weights = run_dir / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        InputError, match=f"^{re.escape(str(weights))}: unreadable weights, truncated"
    ):
        handlab.zoo.load_model(run_dir)


def test_pickled_weights_are_named_as_a_pickle(run_dir):
    weights = run_dir / "model.safetensors"
    weights.write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    with pytest.raises(
        InputError, match=f"^{re.escape(str(weights))}: unreadable weights, a pickle file"
    ):
        handlab.zoo.load_model(run_dir)
    torch.save({"w": torch.zeros(2)}, weights)  # torch.save's zip format
    with pytest.raises(InputError, match=r"a zip \(torch\.save\) file"):
        handlab.zoo.load_model(run_dir)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_malicious_training_state_is_refused_unread(tmp_path):
    model = torch.nn.Linear(2, 2)
    marker = tmp_path / "payload-ran"
    save_model(model, str(tmp_path / "model-00000001.safetensors"))
    torch.save({"x": _Payload(str(marker))}, tmp_path / "train-00000001.pt")
    names = {"step": 1, "model": "model-00000001.safetensors", "train": "train-00000001.pt"}
    (tmp_path / "latest.json").write_text(json.dumps(names))
    with pytest.raises(InputError) as err:
        load_checkpoint(tmp_path, model)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'train-00000001.pt'}: refused")
    assert "weights_only" not in text and "--restart" in text
    assert not marker.exists()


def test_an_unknown_model_config_key_lists_the_known_ones():
    with pytest.raises(
        InputError, match=r"--model-config.*'simplebaseline': unknown keys \['widht'\]"
    ):
        create("simplebaseline", widht=3)
    with pytest.raises(InputError, match=r"expected some of \[.*'head_width'"):
        create("simplebaseline", widht=3)


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_a_missing_cuda_device_is_named():
    with pytest.raises(InputError, match=r"^device: expected 'cpu' or a CUDA device .*'cuda:7'"):
        resolve_device("cuda:7")
    with pytest.raises(InputError, match="got 'cuda:7'"):
        handlab.zoo.load_model("zoo:lifting", device="cuda:7")
    with pytest.raises(InputError, match="got 'gpu'"):
        resolve_device("gpu")


def test_nan_in_an_annotation_file_names_the_file(tmp_path):
    from data.fixtures import make_freihand

    make_freihand(tmp_path, n=2, n_eval=3)
    path = tmp_path / "evaluation_xyz.json"
    xyz = json.loads(path.read_text())
    xyz[2][5][1] = float("nan")
    path.write_text(json.dumps(xyz))  # Python writes NaN, as a broken export would
    data = open_dataset("freihand", tmp_path, "evaluation")
    data[1]
    where = re.escape(f"{path} (entry 2, image 00000002.jpg): expected finite numbers, got 1 NaN")
    with pytest.raises(DataError, match=f"^{where}"):
        data[2]
    assert issubclass(DataError, HandlabError)
