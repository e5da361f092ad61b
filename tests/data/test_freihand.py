import json

import numpy as np
import pytest
import torch

from data.fixtures import make_freihand
from handlab.data import DataError, open_dataset
from handlab.geometry import project


@pytest.fixture
def frei(tmp_path):
    return tmp_path, make_freihand(tmp_path, n=2, n_eval=2)


def test_full_frame_values(frei):
    root, truth = frei
    ds = open_dataset("freihand", root, "training", size=None)
    assert len(ds) == 8  # 2 samples x 4 versions
    for i in range(len(ds)):
        s = ds[i]
        idx = i % 2
        assert s["meta"]["id"] == f"{i:08d}" and s["meta"]["side"] == "right"
        assert s["image"].shape == (3, 224, 224)
        torch.testing.assert_close(s["xyz"], torch.tensor(truth["training"]["xyz"][idx]).float())
        torch.testing.assert_close(
            s["keypoints"],
            torch.tensor(truth["training"]["keypoints"][idx]).float(),
            atol=1e-3,
            rtol=0,
        )
        assert s["mask"].shape == (1, 224, 224)
        assert s["mask"][0, 100, 100] == 1 and s["mask"][0, 10, 10] == 0


def test_crop_and_versions(frei):
    root, _ = frei
    ds = open_dataset("freihand", root, "training", versions=(2,), size=64)
    assert len(ds) == 2 and ds[1]["meta"]["id"] == f"{2 * 2 + 1:08d}"
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["mask"].shape == (1, 64, 64)
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5
    assert s["keypoints"].min() > -0.5 and s["keypoints"].max() < 63.5


def test_evaluation_split(frei):
    root, truth = frei
    ds = open_dataset("freihand", root, "evaluation", size=None)
    assert len(ds) == 2 and "mask" not in ds[0]
    torch.testing.assert_close(ds[1]["K"], torch.tensor(truth["evaluation"]["K"][1]).float())


def test_errors(frei):
    root, _ = frei
    with pytest.raises(DataError, match="root folder not found"):
        open_dataset("freihand", root / "nope", "training")
    with pytest.raises(ValueError, match="split"):
        open_dataset("freihand", root, "test")
    with pytest.raises(ValueError, match="versions"):
        open_dataset("freihand", root, "training", versions=(4,))
    # annotation list shorter than the image list
    xyz = json.loads((root / "training_xyz.json").read_text())
    (root / "training_xyz.json").write_text(json.dumps(xyz[:1]))
    with pytest.raises(DataError, match=r"training_xyz\.json"):
        open_dataset("freihand", root, "training")
    (root / "training_xyz.json").write_text(json.dumps(xyz))
    (root / "training_K.json").write_text(json.dumps([np.eye(3).tolist()] * 1))
    (root / "training_xyz.json").write_text(json.dumps(xyz[:1]))
    with pytest.raises(DataError, match="annotation list shorter"):
        open_dataset("freihand", root, "training")


def test_bad_samples_named(frei):
    root, _ = frei
    xyz = json.loads((root / "training_xyz.json").read_text())
    xyz[1][3][0] = float("nan")
    (root / "training_xyz.json").write_text(json.dumps(xyz))
    (root / "training" / "rgb" / "00000000.jpg").write_bytes(
        (root / "training" / "rgb" / "00000000.jpg").read_bytes()[:300]
    )
    ds = open_dataset("freihand", root, "training")
    with pytest.raises(DataError, match=r"00000000.jpg \(sample 00000000\): unreadable"):
        ds[0]
    with pytest.raises(DataError, match=r"training_xyz.json \(entry 1, image 00000001.jpg\): exp"):
        ds[1]
    (root / "training" / "rgb" / "00000002.jpg").unlink()
    with pytest.raises(DataError, match=r"00000002\.jpg.*missing image"):
        ds[2]


def test_joints_outside_the_image_become_invisible(frei):
    root, truth = frei
    xyz = json.loads((root / "training_xyz.json").read_text())
    K = truth["training"]["K"][0]
    z = xyz[0][8][2]
    xyz[0][8][0] = (230.0 - K[0, 2]) * z / K[0, 0]  # index tip projects to x = 230 > 223.5
    for j in range(21):
        K1 = truth["training"]["K"][1]
        xyz[1][j][0] = (-20.0 - K1[0, 2]) * xyz[1][j][2] / K1[0, 0]  # whole hand left of the image
    (root / "training_xyz.json").write_text(json.dumps(xyz))
    ds = open_dataset("freihand", root, "training", size=None)
    s = ds[0]
    assert s["visibility"][8] == 0 and s["visibility"].sum() == 20 and s["meta"]["n_outside"] == 1
    assert s["keypoints"][8, 0] == pytest.approx(230.0, abs=1e-3)
    assert open_dataset("freihand", root, "training", size=32)[0]["visibility"][8] == 0
    with pytest.raises(DataError, match=r"sample 00000001\): no visible keypoint"):
        ds[1]
