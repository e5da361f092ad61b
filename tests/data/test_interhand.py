import json

import numpy as np
import pytest

from data.fixtures import make_interhand
from handlab.data import DataError, open_dataset
from handlab.geometry import project


@pytest.fixture
def ih(tmp_path):
    return tmp_path, make_interhand(tmp_path)


def test_items_and_values(ih):
    root, truth = ih
    ds = open_dataset("interhand", root, "test", size=None)
    ids = [ds.sample_id(i) for i in range(len(ds))]
    assert ids == ["100_right", "101_left", "102_right", "102_left"]
    assert ds.skipped == {"hand without valid joints": 1}
    for i, sid in enumerate(ids):
        s = ds[i]
        t = truth[sid]
        assert s["meta"]["side"] == sid.split("_")[1]
        np.testing.assert_allclose(s["xyz"].numpy(), t["xyz"], atol=1e-2)  # world -> camera, mm
        np.testing.assert_allclose(s["keypoints"].numpy(), t["keypoints"], atol=1e-2)
        np.testing.assert_allclose(s["K"].numpy(), t["K"], atol=1e-4)
    s = ds[3]  # the interacting pair's left hand: its wrist is outside the image
    assert s["visibility"][0] == 0 and s["visibility"][1:].all() and s["meta"]["n_outside"] == 1
    assert s["meta"]["hand_type"] == "interacting"


def test_crop(ih):
    root, _ = ih
    s = open_dataset("interhand", root, "test", size=64)[3]
    assert s["image"].shape == (3, 64, 64)
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5


def test_errors(ih):
    root, _ = ih
    data_path = root / "annotations" / "test" / "InterHand2.6M_test_data.json"
    data = json.loads(data_path.read_text())
    data["annotations"] = data["annotations"][:-1]
    data_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="annotation list shorter"):
        open_dataset("interhand", root, "test")
    del data["images"][0]["file_name"]
    data_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"data\.json \(image 10\): missing \['file_name'\]"):
        open_dataset("interhand", root, "test")
    data["images"][0]["file_name"] = "x.jpg"
    data["annotations"].append(
        {"id": 7, "image_id": 99, "joint_valid": [1] * 42, "hand_type": "right"}
    )
    data_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotation 7\): image_id 99"):
        open_dataset("interhand", root, "test")
    data["annotations"][-1] = {
        "id": 8,
        "image_id": 13,
        "joint_valid": [1] * 42,
        "hand_type": "both",
    }
    data_path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="hand_type expected"):
        open_dataset("interhand", root, "test")
    data["annotations"][-1]["hand_type"] = "right"
    data_path.write_text(json.dumps(data))
    cam_path = data_path.with_name("InterHand2.6M_test_camera.json")
    cams = json.loads(cam_path.read_text())
    del cams["0"]["campos"]["400001"]
    cam_path.write_text(json.dumps(cams))
    ds = open_dataset("interhand", root, "test")
    with pytest.raises(DataError, match=r"camera\.json \(sample 101_left\): no camera 400001"):
        ds[1]
    data_path.unlink()
    with pytest.raises(DataError, match="missing file"):
        open_dataset("interhand", root, "test")
