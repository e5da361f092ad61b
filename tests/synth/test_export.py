"""Generated hands as a COCO-style folder: read back by the real-data loader with the generator's
labels, joints outside the image unlabelled, and written by ``handlab datasets export-synth``."""

import json

import torch

from handlab import cli
from handlab.data.coco import COCOHands
from handlab.synth import generate
from handlab.synth.export import write_coco


def test_coco_folder_reads_back_with_the_generators_labels(tmp_path):
    folder = write_coco(tmp_path / "trunc", 6, seed=2, size=96, truncation=1.0)
    ref = generate(6, seed=2, size=96, truncation=1.0)
    raw = COCOHands(tmp_path, size=None)  # full frames, in file order
    assert len(raw) == 6 and raw[0]["meta"]["source"] == "trunc"
    inside = ((torch.round(ref["keypoints"]) >= 0) & (torch.round(ref["keypoints"]) < 96)).all(-1)
    assert not bool(inside.all())  # truncation put some joints outside the image
    for i in range(6):
        item = raw[i]
        torch.testing.assert_close(item["visibility"], inside[i].float())
        lab = inside[i]
        torch.testing.assert_close(
            item["keypoints"][lab], ref["keypoints"][i][lab], atol=0.01, rtol=0
        )
        # PNG is lossless: the image is the render quantised to 8 bits
        assert float((item["image"] - ref["image"][i]).abs().max()) <= 0.5 / 255 + 1e-6
        x0, y0, x1, y1 = item["meta"]["box"].tolist()
        kp = item["keypoints"][lab]
        assert x0 <= float(kp[:, 0].min()) and float(kp[:, 0].max()) <= x1
        assert y0 <= float(kp[:, 1].min()) and float(kp[:, 1].max()) <= y1
    crops = COCOHands(folder, crop="upright", size=64)
    assert crops[0]["image"].shape == (3, 64, 64)


def test_export_synth_command(tmp_path, capsys):
    out = tmp_path / "photo"
    argv = ["datasets", "export-synth", str(out), "--n", "3", "--size", "64", "--seed", "1",
            "--set", "randomize=0.8", 'randomize_parts=["photo"]', "left=1"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "wrote 3 hands" in capsys.readouterr().out
    coco = json.loads((out / "annotations.json").read_text())
    assert [a["hand"] for a in coco["annotations"]] == ["left"] * 3
    assert len(list((out / "images").glob("*.png"))) == 3
    assert cli.main(["datasets", "export-synth", str(out), "--set", "fog=1"]) == 1
