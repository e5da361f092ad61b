"""handlab.viz.gallery: the PNG grid is written and has the expected layout."""

import numpy as np
from PIL import Image

from handlab.viz.gallery import synth_gallery


def test_gallery_writes_a_png(tmp_path):
    path = synth_gallery(tmp_path / "g.png", n=2, seed=0, size=64)
    image = np.asarray(Image.open(path))
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 4 * 100
    assert image[..., :3].std() > 10  # not blank
