"""The COCO-style loader: layouts, joint orders, crops and their inverse, the real hands."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from handlab.cli import main
from handlab.data import DataError, open_data, open_dataset
from handlab.data.coco import REAL_HANDS, is_evaluation_only
from handlab.geometry import apply_affine, invert_affine
from handlab.skeleton import from_canonical


def _hand(seed: int, x0: float = 40.0, y0: float = 30.0) -> np.ndarray:
    """(21, 2) px: a hand-like fan of points (wrist low, fingers up)."""
    g = np.random.default_rng(seed)
    kp = np.zeros((21, 2))
    kp[0] = [x0 + 20, y0 + 60]
    for f in range(5):
        for k in range(4):
            kp[1 + 4 * f + k] = [x0 + 5 + 8 * f + g.normal(0, 1), y0 + 40 - 10 * k + g.normal(0, 1)]
    return kp


def _flat(kp: np.ndarray, labelled=None) -> list[float]:
    v = np.full(len(kp), 2.0) if labelled is None else np.where(labelled, 2.0, 0.0)
    return np.concatenate([kp, v[:, None]], 1).ravel().tolist()


def _write(folder, annotations, size=(160, 120)):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "images" / "a.png")
    data = {
        "images": [{"id": 7, "file_name": "images/a.png", "width": size[0], "height": size[1]}],
        "annotations": [{"id": i + 1, "image_id": 7, **a} for i, a in enumerate(annotations)],
    }
    (folder / "annotations.json").write_text(json.dumps(data))
    return folder / "annotations.json"


def test_hand_layout_sides_order_and_exact_inverse(tmp_path):
    kp = _hand(0)
    labelled = np.ones(21, bool)
    labelled[3] = False
    tip_first = from_canonical(kp, "rhd")  # the file lists each finger tip -> base
    anns = [
        {"keypoints": _flat(kp, labelled), "bbox": [40, 0, 50, 100], "hand": "left"},
        {"keypoints": _flat(kp), "bbox": [40, 0, 50, 100], "hand_type": "right"},
    ]
    path = _write(tmp_path / "src", anns)
    ds = open_dataset("coco", path, size=64)
    assert len(ds) == 2 and [ds[i]["meta"]["side"] for i in range(2)] == ["left", "right"]
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["visibility"][3] == 0
    back = apply_affine(item["keypoints"], invert_affine(item["meta"]["affine"]))
    np.testing.assert_allclose(back[labelled], kp[labelled], atol=1e-3)
    assert item["meta"]["box"].tolist() == [40, 0, 90, 100] and item["meta"]["source"] == "src"
    # plain crop: the box's centre is the crop's, its longer side x 1.5 spans the crop
    centre = apply_affine(torch.tensor([[65.0, 50.0]]), item["meta"]["affine"])
    np.testing.assert_allclose(centre, [[31.5, 31.5]], atol=1e-4)
    np.testing.assert_allclose(item["meta"]["affine"][0, 0], 64 / 150, rtol=1e-6)
    # the same hand written tip-first reads back in the canonical order
    tip = _write(tmp_path / "tip", [{"keypoints": _flat(tip_first), "bbox": [40, 0, 50, 100]}])
    same = open_dataset("coco", tip, size=64, joints="rhd")[0]
    torch.testing.assert_close(same["keypoints"], ds[1]["keypoints"])
    assert same["meta"]["side"] == "unknown"


def test_mirror_left_and_upright(tmp_path):
    kp = _hand(1)
    path = _write(
        tmp_path / "s", [{"keypoints": _flat(kp), "bbox": [40, 0, 50, 100], "hand": "left"}]
    )
    plain = open_dataset("coco", path, size=64)[0]
    mirrored = open_dataset("coco", path, size=64, mirror_left=True)[0]
    assert mirrored["meta"]["mirrored"] and not plain["meta"]["mirrored"]
    torch.testing.assert_close(mirrored["image"], plain["image"].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(mirrored["keypoints"][:, 0], 63 - plain["keypoints"][:, 0])
    up = open_dataset("coco", path, size=64, crop="upright")[0]
    d = up["keypoints"][9] - up["keypoints"][0]
    assert abs(float(d[0])) < 1e-3 and float(d[1]) < 0
    back = apply_affine(up["keypoints"], invert_affine(up["meta"]["affine"]))
    np.testing.assert_allclose(back, kp, atol=1e-3)


def test_wholebody_and_halpe_layouts(tmp_path):
    left, right = _hand(2), _hand(3, x0=90)
    wb = {
        "lefthand_kpts": _flat(left), "lefthand_box": [40, 30, 50, 60], "lefthand_valid": True,
        "righthand_kpts": _flat(right), "righthand_box": [90, 30, 50, 60],
        "righthand_valid": False, "keypoints": [0.0] * 51,
    }  # fmt: skip
    ds = open_dataset("coco", _write(tmp_path / "wb", [wb]), size=32)
    assert len(ds) == 1 and ds[0]["meta"]["side"] == "left"
    assert ds[0]["meta"]["id"] == "wb/1-left"
    body = np.zeros((136, 3))
    body[94:115, :2], body[115:136, :2] = left, right
    body[94:136, 2] = 2
    halpe = open_dataset("coco", _write(tmp_path / "halpe", [{"keypoints": body.ravel().tolist()}]))
    assert [halpe[i]["meta"]["side"] for i in range(2)] == ["left", "right"]
    np.testing.assert_allclose(halpe.load_frame(1)["keypoints"], right, atol=1e-4)
    assert halpe[1]["meta"]["box"].tolist() == pytest.approx(
        [*right.min(0).tolist(), *right.max(0).tolist()], abs=1e-4
    )


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="expected 'keypoints' of 21, 133 or 136"):
        open_dataset("coco", _write(tmp_path / "bad", [{"keypoints": [1.0] * 30}]))
    path = _write(tmp_path / "gone", [{"keypoints": _flat(_hand(0)), "bbox": [40, 0, 50, 100]}])
    (tmp_path / "gone" / "images" / "a.png").unlink()
    with pytest.raises(DataError, match=r"a.png \(sample gone/1\): missing image file"):
        open_dataset("coco", path)[0]
    with pytest.raises(ValueError, match="crop: expected one of"):
        open_dataset("coco", path, crop="tight")
    with pytest.raises(DataError, match=r"no annotations\.json"):
        open_dataset("coco", tmp_path / "gone" / "images")


def test_real_development_hands():
    ds = open_dataset("coco", REAL_HANDS, crop="upright")
    assert len(ds) == 32 and ds.evaluation_only and is_evaluation_only(REAL_HANDS)
    sources = {ds.sample_id(i).split("/")[0] for i in range(len(ds))}
    assert len(sources) == 5
    assert (REAL_HANDS / "README.md").is_file()
    for source in sources:  # every source keeps its licence notice
        assert "Licence" in (REAL_HANDS / source / "README.md").read_text()
    assert len(open_data("coco:real-hands", "test", size=64)) == 32


def test_datasets_check_coco(tmp_path, capsys):
    assert main(["datasets", "check", "coco", str(REAL_HANDS)]) == 0
    out = capsys.readouterr().out
    assert "problems: 0" in out and out.splitlines()[2].split()[:3] == ["all", "32", "32"]
    kp = _hand(0)
    kp[5] = [500.0, 10.0]  # a labelled joint outside the 160 x 120 image
    _write(tmp_path / "s", [{"keypoints": _flat(kp), "bbox": [40, 0, 50, 100]}])
    assert main(["datasets", "check", "coco", str(tmp_path)]) == 1
    assert "visible keypoints [5] lie outside" in capsys.readouterr().out
