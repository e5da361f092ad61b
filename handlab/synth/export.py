"""Write generated hands as a COCO-style keypoint folder, so any tool that reads real hand data
(``handlab evaluate --data coco:PATH``, mmpose) reads the generator's images the same way.

No chapter shows it yet; ``docs/real_hands.md`` uses it to measure how real each generator
setting looks: a model trained only on real photographs
(MediaPipe) scores the exported hands through exactly the crops and metric of the real
development set (``benchmarks/synth_realism.py``).

Each sample becomes ``images/NNNNN.png`` (lossless: a randomised JPEG stays as rendered) and one
annotation: ``keypoints`` 21 x (x, y, v) in the canonical order, ``v = 2`` for joints inside the
image and ``0`` outside it (a photograph's annotator cannot click them), ``hand`` (left/right),
and ``bbox``: the labelled keypoints' box grown :data:`BOX_GROWTH` times about its centre and
clipped to the image, as the real hands' annotated boxes are about 1.2x their keypoints' box
(median over the 32 development hands; 1.0-1.6).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = write_coco(tmp, 2, seed=0, size=64)
...     sorted(p.name for p in path.iterdir())
['annotations.json', 'images']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from handlab.synth.renderer import check_size, render
from handlab.synth.scene import SceneOptions, sample_params, scene_options

__all__ = ["BOX_GROWTH", "coco_annotations", "write_coco"]

BOX_GROWTH = 1.2  # annotated box / keypoints' box of the real development hands (median)
_CHUNK = 32  # samples rendered per pass


def coco_annotations(
    keypoints: torch.Tensor, left: torch.Tensor, size: int, first_id: int = 0
) -> list[dict[str, Any]]:
    """COCO hand annotations of keypoints (n, 21, 2) px in ``size`` px images.

    >>> kp = torch.tensor([[[10.0, 10.0]] * 20 + [[70.0, 30.0]]])
    >>> ann = coco_annotations(kp, torch.tensor([False]), 64)[0]
    >>> ann["keypoints"][-3:], ann["bbox"], ann["hand"]
    ([0.0, 0.0, 0], [10.0, 10.0, 0.0, 0.0], 'right')
    """
    px = torch.round(keypoints)  # inside the image as the renderer's visibility has it
    inside = ((px >= 0) & (px < size)).all(-1)  # (n, 21)
    out = []
    for i in range(len(keypoints)):
        kp, vis = keypoints[i], inside[i]
        triples = torch.cat([torch.where(vis[:, None], kp, 0.0), 2.0 * vis[:, None]], -1)
        bbox = [0.0, 0.0, 0.0, 0.0]
        if bool(vis.any()):
            lo, hi = kp[vis].amin(0), kp[vis].amax(0)
            centre, half = (lo + hi) / 2, (hi - lo) / 2 * BOX_GROWTH
            lo, hi = (centre - half).clamp(0, size), (centre + half).clamp(0, size)
            bbox = [*lo.tolist(), *(hi - lo).tolist()]
        out.append(
            {
                "id": first_id + i,
                "image_id": first_id + i,
                "category_id": 1,
                "keypoints": [round(v, 2) if j % 3 < 2 else int(v) for j, v in
                              enumerate(triples.reshape(-1).tolist())],
                "num_keypoints": int(vis.sum()),
                "bbox": [round(v, 2) for v in bbox],
                "hand": "left" if bool(left[i]) else "right",
            }
        )  # fmt: skip
    return out


def write_coco(
    out: str | Path,
    n: int,
    *,
    seed: int,
    size: int = 256,
    options: SceneOptions | None = None,
    **overrides: Any,
) -> Path:
    """Render ``n`` hands (the samples of :func:`handlab.synth.generate` with ``seed``,
    ``size`` and the options) into the folder ``out`` (created; an existing
    ``annotations.json`` is replaced): ``images/NNNNN.png`` and ``annotations.json``. Returns
    the folder."""
    opts = scene_options(options, **overrides)
    folder = Path(out)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    # one generator for all n samples, as generate(n, seed=seed) draws them; rendered in passes
    check_size(size)
    params = sample_params(n, torch.Generator().manual_seed(seed), opts)
    for lo in range(0, n, _CHUNK):
        part = {k: v[lo : lo + _CHUNK] for k, v in params.items()}
        batch = render(part, size)
        for j, image in enumerate(batch["image"]):
            name = f"images/{lo + j:05d}.png"
            pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
            images.append({"id": lo + j, "file_name": name, "width": size, "height": size})
        annotations += coco_annotations(batch["keypoints"], part["left"], size, first_id=lo)
    coco = {
        "info": {"description": f"handlab.synth, seed {seed}, {opts}"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "hand"}],
    }
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder
