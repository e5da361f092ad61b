import pickle

import numpy as np
import pytest
import torch

from data.fixtures import make_ho3d
from handlab.data import DataError, open_dataset
from handlab.data.unpickle import UnsafePickleError
from handlab.geometry import project


@pytest.fixture
def ho3d(tmp_path):
    return tmp_path, make_ho3d(tmp_path)


@pytest.mark.parametrize("version", [2, 3])
def test_train_full_frame(tmp_path, version):
    truth = make_ho3d(tmp_path, version=version)
    ds = open_dataset("ho3d", tmp_path, "train", size=None)
    assert len(ds) == 3 and ds.sample_id(2) == "SEQ2/0000"
    for i in (0, 2):
        s = ds[i]
        t = truth[ds.sample_id(i)]
        assert s["meta"]["side"] == "right" and s["meta"]["file"].endswith(
            ".jpg" if version == 3 else ".png"
        )
        np.testing.assert_allclose(s["xyz"].numpy(), t["xyz"], atol=1e-3)  # OpenGL undone, mm
        np.testing.assert_allclose(s["keypoints"].numpy(), t["keypoints"], atol=0.01)
        np.testing.assert_allclose(s["depth"][0].numpy(), t["depth"], rtol=1e-6)
        assert (s["xyz"][:, 2] > 0).all()


def test_missing_hand_annotation_named(ho3d):
    root, _ = ho3d
    ds = open_dataset("ho3d", root, "train")
    with pytest.raises(DataError, match=r"SEQ1/meta/0001\.pkl \(sample SEQ1/0001\): handJoints3D"):
        ds[1]


def test_crop(ho3d):
    root, _ = ho3d
    s = open_dataset("ho3d", root, "train", size=64)[0]
    assert s["image"].shape == (3, 64, 64) and s["depth"].shape == (1, 64, 64)
    assert (project(s["xyz"], s["K"]) - s["keypoints"]).abs().max() < 0.5


def test_evaluation_split(ho3d):
    root, truth = ho3d
    s = open_dataset("ho3d", root, "evaluation", size=64, margin=1.0)[0]
    t = truth["EV1/0000"]
    assert "keypoints" not in s and "xyz" not in s and s["image"].shape == (3, 64, 64)
    np.testing.assert_allclose(s["meta"]["root_xyz"].numpy(), t["xyz"][0], atol=1e-3)
    # the crop's K maps the hand's joints into the square crop of the annotated box
    kp = project(torch.tensor(t["xyz"]).float(), s["K"])
    assert kp.min() > -0.6 and kp.max() < 63.6 and (kp.amax(0) - kp.amin(0)).max() > 63


def test_errors(ho3d):
    root, _ = ho3d
    with (root / "train" / "SEQ2" / "meta" / "0000.pkl").open("wb") as f:
        pickle.dump({"camMat": np.eye(3), "evil": __import__("os").getcwd}, f)
    with pytest.raises(UnsafePickleError, match=r"SEQ2/0000.*posix\.getcwd|os\.getcwd"):
        open_dataset("ho3d", root, "train")[2]
    (root / "train" / "SEQ2" / "meta" / "0000.pkl").unlink()
    with pytest.raises(DataError, match=r"sample SEQ2/0000\): missing meta pickle"):
        open_dataset("ho3d", root, "train")[2]
    (root / "train.txt").write_text("SEQ1/0000\nbroken\n")
    with pytest.raises(DataError, match=r"train\.txt: line 2 expected 'SEQ/ID'"):
        open_dataset("ho3d", root, "train")
    (root / "train.txt").unlink()
    with pytest.raises(DataError, match=r"train\.txt: missing file"):
        open_dataset("ho3d", root, "train")
