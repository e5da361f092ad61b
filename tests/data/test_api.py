"""The package entry points: registry, open_dataset / open_data, and the shared schema."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data.fixtures import make_freihand, make_rhd
from handlab.data import DataError, dataset_class, list_datasets, open_data, open_dataset
from handlab.data.schema import finish_sample, read_image, validate_sample
from handlab.geometry import project

NAMES = ["coco", "dexycb", "freihand", "ho3d", "interhand", "nyu", "panoptic", "rhd", "stb"]


def test_registry():
    assert list_datasets() == NAMES
    for name in NAMES:
        cls = dataset_class(name)
        assert cls.name == name and cls.splits
        assert name.upper() in (cls.__module__.split(".")[-1].upper(), "PANOPTIC")
    with pytest.raises(ValueError, match="name: expected one of"):
        open_dataset("mpii", ".", "train")
    with pytest.raises(TypeError, match="name"):
        dataset_class(3)


@pytest.mark.parametrize("name", NAMES)
def test_missing_root_is_named(tmp_path, name):
    cls = dataset_class(name)
    with pytest.raises(DataError, match=f"{tmp_path / 'absent'}: {name} root folder not found"):
        open_dataset(name, tmp_path / "absent", cls.splits[0])
    with pytest.raises(ValueError, match="split: expected one of"):
        open_dataset(name, tmp_path, "nosuchsplit")
    with pytest.raises(ValueError, match="size"):
        open_dataset(name, tmp_path, cls.splits[0], size=4)


def test_open_data_spec(tmp_path):
    make_rhd(tmp_path, split="evaluation", n=2)
    ds = open_data(f"rhd:{tmp_path}", "evaluation", size=32)
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="spec"):
        open_data("rhd", "evaluation")
    with pytest.raises(ValueError, match="spec"):
        open_data("rhd:", "evaluation")
    with pytest.raises(TypeError, match="spec"):
        open_data(None, "evaluation")


def test_open_data_synth_matches_real_keys(tmp_path):
    synth = open_data("synth", "test", size=64)
    make_freihand(tmp_path, n=1, n_eval=1)
    real = open_data(f"freihand:{tmp_path}", "training", size=64)
    s, r = synth[0], real[0]
    for key in ("image", "mask", "keypoints", "xyz", "K", "visibility"):
        assert r[key].shape == s[key].shape and r[key].dtype == s[key].dtype, key


def test_dataloader_collates_meta(tmp_path):
    make_rhd(tmp_path, n=3)
    batch = next(iter(DataLoader(open_dataset("rhd", tmp_path, "training", size=32), batch_size=3)))
    assert batch["image"].shape == (3, 3, 32, 32) and batch["meta"]["box"].shape == (3, 4)
    assert batch["meta"]["side"] == ["right", "left", "right"]
    assert (project(batch["xyz"], batch["K"]) - batch["keypoints"]).abs().max() < 0.5


def test_index_errors(tmp_path):
    make_rhd(tmp_path, n=2)
    ds = open_dataset("rhd", tmp_path, "training")
    assert ds[-1]["meta"]["id"] == "00001"
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(TypeError, match="index"):
        ds["0"]


def _frame(**changes):
    raw = {
        "image": torch.rand(3, 40, 50),
        "keypoints": torch.tensor([[10.0, 10.0], [30.0, 20.0], [20.0, 30.0]]),
        "visibility": torch.ones(3),
        "xyz": torch.tensor([[0.0, 0.0, 500.0]] * 3),
        "meta": {"file": "f.png", "id": "9"},
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keypoints": torch.zeros(4, 2)}, r"keypoints expected shape \(3, 2\)"),
        ({"image": torch.rand(1, 40, 50)}, r"image expected shape \(3, None, None\)"),
        ({"image": torch.rand(3, 40, 50) * 2}, r"image expected values in \[0, 1\]"),
        ({"visibility": torch.zeros(3)}, "no visible keypoint"),
        ({"visibility": torch.full((3,), 0.5)}, "visibility expected values in"),
        ({"xyz": torch.tensor([[0.0, 0.0, -1.0]] * 3)}, "xyz expected positive depth"),
        (
            {"keypoints": torch.tensor([[10.0, 10.0], [50.0, 20.0], [20.0, 30.0]])},
            r"visible keypoints \[1\] lie outside the 50x40",
        ),
        ({"mask": torch.full((1, 40, 50), 2.0)}, "mask expected values"),
        ({"K": [[1, 0, 0]]}, "K expected a torch.Tensor"),
    ],
)
def test_validate_sample_errors(changes, message):
    with pytest.raises(DataError, match=r"f\.png \(sample 9\): " + message):
        validate_sample(_frame(**changes), num_joints=3)


def test_validate_accepts_edge_and_hidden_keypoints():
    # pixel centres at integers: -0.5 and W - 0.5 are the image's outer edges
    validate_sample(
        _frame(keypoints=torch.tensor([[-0.5, -0.5], [49.5, 39.5], [20.0, 30.0]])), num_joints=3
    )
    hidden = _frame(keypoints=torch.tensor([[10.0, 10.0], [500.0, 20.0], [20.0, 30.0]]))
    hidden["visibility"] = torch.tensor([1.0, 0.0, 1.0])
    validate_sample(hidden, num_joints=3)


def test_finish_sample_crop_matches_geometry():
    raw = _frame(K=torch.tensor([[500.0, 0, 25], [0, 500.0, 20], [0, 0, 1]]))
    raw["keypoints"] = project(
        torch.tensor([[-5.0, -3.0, 500.0], [4.0, 1.0, 500.0], [0.0, 5.0, 450.0]]), raw["K"]
    )
    raw["xyz"] = torch.tensor([[-5.0, -3.0, 500.0], [4.0, 1.0, 500.0], [0.0, 5.0, 450.0]])
    out = finish_sample(raw, num_joints=3, size=24)
    assert out["image"].shape == (3, 24, 24)
    assert (project(out["xyz"], out["K"]) - out["keypoints"]).abs().max() < 1e-3
    full = finish_sample(raw, num_joints=3, size=None)
    assert full["image"] is raw["image"]


def test_read_image_modes(tmp_path):
    from PIL import Image

    arr = (np.arange(12 * 10) * 300 % 65536).astype(np.uint16).reshape(12, 10)
    Image.fromarray(arr).save(tmp_path / "d.png")
    np.testing.assert_array_equal(read_image(tmp_path / "d.png", sample_id="d", mode=None), arr)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"bad\.png \(sample b\): unreadable"):
        read_image(tmp_path / "bad.png", sample_id="b")
