"""Benchmark: the zoo's MediaPipe Hands ports on the 32 real development hands (evaluation only).

For each hand of ``../shared/real-hands`` (COCO-style folders) two 224 x 224 crops are cut:

- ``plain``: square, 1.5x the annotated box's longer side, centred on the box, not rotated;
- ``upright``: rotated about the box centre so that wrist -> middle-finger MCP points up (what
  MediaPipe's palm detector provides), square, 1.5x the longer side of the keypoints' box in the
  rotated frame, centred on it.

Predictions are mapped back to the photograph and scored with PCK@0.2 of the annotated box's
longer side (mmpose's strict ``<``; missing joints left out), for each model, for the mean of the
two models' scores and for the ensemble (the mean of the two models' keypoints). With
``--tflite-dir`` (holding ``hand_landmark_{full,lite}.tflite``) and an interpreter installed it
also measures the port's largest differences from the interpreter on all crops. ``--write-cards``
stores the numbers in the zoo cards (``real_hands``, ``equivalence_real``); ``--reference PATH``
writes the compact reference (a few crops as uint8 and the interpreter's outputs on them) that
``tests/models/test_mediapipe.py`` checks the shipped weights against.

Run: ``python benchmarks/mediapipe_real_hands.py --hands ../shared/real-hands`` (about 30 s).
Crops use ``skimage.transform.warp`` (bilinear, black outside the photograph); a private helper
until ``handlab.geometry`` has its own upright crop. Taught alongside chapter 08.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.transform import SimilarityTransform, warp

from handlab import metrics, zoo
from handlab.zoo import mediapipe as zm

SIZE = 224
MARGIN = 1.5
WRIST, MIDDLE_MCP = 0, 9


def load_hands(root: Path) -> list[dict]:
    """Every annotated hand: ``image`` (H, W, 3) float in [0, 1], ``keypoints`` (21, 2) px,
    ``visibility`` (21,), ``bbox`` (x, y, w, h), ``source``."""
    hands = []
    for ann_path in sorted(root.glob("*/annotations.json")):
        coco = json.loads(ann_path.read_text())
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        for ann in coco["annotations"]:
            image = Image.open(ann_path.parent / files[ann["image_id"]]).convert("RGB")
            kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(21, 3)
            hands.append(
                {
                    "image": np.asarray(image, dtype=np.float32) / 255.0,
                    "keypoints": kp[:, :2],
                    "visibility": (kp[:, 2] > 0).astype(np.float64),
                    "bbox": np.asarray(ann["bbox"], dtype=np.float64),
                    "source": f"{ann_path.parent.name}/{files[ann['image_id']]}#{ann['id']}",
                }
            )
    return hands


def crop_transform(hand: dict, upright: bool) -> SimilarityTransform:
    """The similarity taking crop pixels to photograph pixels (pixel centres at integers)."""
    x, y, w, h = hand["bbox"]
    centre, side, angle = np.array([x + w / 2, y + h / 2]), MARGIN * max(w, h), 0.0
    vis = hand["visibility"] > 0
    if upright and vis[WRIST] and vis[MIDDLE_MCP]:
        v = hand["keypoints"][MIDDLE_MCP] - hand["keypoints"][WRIST]
        angle = math.atan2(v[1], v[0]) + math.pi / 2  # rotating by -angle points v up
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        local = (hand["keypoints"][vis] - centre) @ rot  # rows: R^T (p - c)
        lo, hi = local.min(0), local.max(0)
        centre = centre + rot @ ((lo + hi) / 2)
        side = MARGIN * float((hi - lo).max())
    scale = side / SIZE
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    translation = centre - scale * rot @ np.full(2, (SIZE - 1) / 2)
    return SimilarityTransform(scale=scale, rotation=angle, translation=translation)


def make_crops(hands: list[dict], upright: bool) -> tuple[np.ndarray, list]:
    """(N, 224, 224, 3) float32 crops (bilinear, 0 outside) and their transforms."""
    crops, tforms = [], []
    for hand in hands:
        t = crop_transform(hand, upright)
        crop = warp(hand["image"], t, output_shape=(SIZE, SIZE), order=1, mode="constant", cval=0)
        crops.append(crop.astype(np.float32))
        tforms.append(t)
    return np.stack(crops), tforms


@torch.no_grad()
def predict(model: torch.nn.Module, crops: np.ndarray, tforms: list) -> np.ndarray:
    """Keypoints (N, 21, 2) in photograph pixels."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
    kp = model(x)["keypoints"].double().numpy()  # (N, 21, 2) crop px
    return np.stack([t(k) for t, k in zip(tforms, kp, strict=True)])


def pck(pred: np.ndarray, hands: list[dict]) -> float:
    gt = np.stack([h["keypoints"] for h in hands])
    vis = np.stack([h["visibility"] for h in hands])
    size = np.array([max(h["bbox"][2:]) for h in hands])
    return metrics.pck(pred, gt, 0.2, vis, normalize=size, strict=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hands", type=Path, default=Path("../shared/real-hands"))
    p.add_argument("--tflite-dir", type=Path, help="folder with hand_landmark_{full,lite}.tflite")
    p.add_argument("--write-cards", action="store_true", help="store the numbers in the cards")
    p.add_argument("--reference", type=Path, help="write the compact reference .npz here")
    args = p.parse_args()
    torch.set_num_threads(1)
    if not args.hands.is_dir():  # the development hands live outside the repository
        print(f"skipped: --hands {args.hands} is not a folder (the real development hands)")
        return
    hands = load_hands(args.hands)
    if not hands:
        raise SystemExit(f"--hands: no */annotations.json under {args.hands}")
    models = {v: zoo.load(f"mediapipe_hand_{v}") for v in ("full", "lite")}
    results: dict[str, dict] = {v: {"n_hands": len(hands)} for v in models}
    crops = {kind: make_crops(hands, kind == "upright") for kind in ("plain", "upright")}
    summary = {}
    for kind, (images, tforms) in crops.items():
        preds = {v: predict(m, images, tforms) for v, m in models.items()}
        for v in models:
            results[v][f"pck@0.2_{kind}"] = pck(preds[v], hands)
        summary[f"mean_of_both_pck@0.2_{kind}"] = float(
            np.mean([results[v][f"pck@0.2_{kind}"] for v in models])
        )
        summary[f"ensemble_pck@0.2_{kind}"] = pck((preds["full"] + preds["lite"]) / 2, hands)
    print(json.dumps({"per_model": results, "both": summary}, indent=1))
    equivalence = {}
    if args.tflite_dir:
        images = np.concatenate([crops["plain"][0], crops["upright"][0]])
        for v, m in models.items():
            data = (args.tflite_dir / f"hand_landmark_{v}.tflite").read_bytes()
            equivalence[v] = {"crops": len(images), **zm.compare_with_interpreter(m, data, images)}
        print(json.dumps({"equivalence_real": equivalence}, indent=1))
    if args.reference:
        write_reference(args.reference, hands, crops, args.tflite_dir)
    if args.write_cards:
        for v in models:
            path = zoo.ZOO_DIR / f"mediapipe_hand_{v}.json"
            card = json.loads(path.read_text())
            card["real_hands"] = {
                **results[v],
                **summary,
                "protocol": "PCK@0.2 of the box's longer side (strict <), 224 px crops 1.5x: "
                "plain (box-centred) and upright (wrist -> middle MCP up); "
                "benchmarks/mediapipe_real_hands.py",
            }
            if v in equivalence:
                card["equivalence_real"] = equivalence[v]
            path.write_text(json.dumps(card, indent=1))


# The committed reference: the InterHand2.6M hands (CC BY-NC 4.0) of two photographs, both crops.
REFERENCE_SOURCES = (
    "mmpose_interhand26m/images/image2017.jpg",
    "mmpose_interhand26m/images/image29590.jpg",
)


def write_reference(path: Path, hands: list[dict], crops: dict, tflite_dir: Path | None) -> None:
    """A compact .npz: uint8 crops of a few hands (both crop kinds) and the interpreter's outputs
    on exactly those (uint8 / 255) inputs, for each variant."""
    if tflite_dir is None:
        raise SystemExit("--reference needs --tflite-dir (the interpreter's outputs)")
    pick = [i for i, h in enumerate(hands) if h["source"].split("#")[0] in REFERENCE_SOURCES]
    images = np.concatenate([crops[k][0][pick] for k in ("plain", "upright")])
    images = np.round(images * 255).astype(np.uint8)
    out: dict[str, np.ndarray] = {"images": images}
    for v in ("full", "lite"):
        data = (tflite_dir / f"hand_landmark_{v}.tflite").read_bytes()
        ref = zm.interpreter_outputs(data, images.astype(np.float32) / 255.0)
        out.update({f"{v}_{k}": val for k, val in ref.items()})
    sources = [hands[i]["source"] for i in pick]
    out["sources"] = np.array([f"{k}:{s}" for k in ("plain", "upright") for s in sources])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    print(f"{path}: {len(images)} crops, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
