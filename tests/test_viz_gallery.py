"""handlab.viz.gallery and the README's gallery recipe: the grid's layout, a written PNG."""

import numpy as np
import pytest
from PIL import Image

from handlab.figures import synth_gallery
from handlab.synth import generate
from handlab.viz.gallery import plot_gallery


def test_plot_gallery_layout_and_errors():
    samples = generate(3, seed=0, size=64)
    fig = plot_gallery(samples, title="three")
    assert len(fig.axes) == 3 * 5  # 4 panels and a colour bar per sample
    assert {"image", "depth (mm)", "mask"} <= {ax.get_title() for ax in fig.axes}
    assert fig.get_suptitle() == "three"
    with pytest.raises(ValueError, match="depth"):
        plot_gallery({k: v for k, v in samples.items() if k != "depth"})


def test_gallery_writes_a_png(tmp_path):
    path = synth_gallery(tmp_path / "g.png", n=2, seed=0, size=64)
    image = np.asarray(Image.open(path))
    assert image.ndim == 3 and image.shape[0] > 150 and image.shape[1] > 4 * 100
    assert image[..., :3].std() > 10  # not blank
    with pytest.raises(ValueError, match="n"):
        synth_gallery(tmp_path / "h.png", n=0)
