"""Notebook set-up shared by every chapter: headless-safe matplotlib and a plotly renderer whose
figures survive nbconvert's HTML export (``plotly_mimetype`` alone is dropped from HTML, plotly.py
issue 5365; ``notebook_connected`` keeps them but needs the plotly.js CDN to view, so the default
here is the self-contained ``notebook`` renderer: no network when reading a report).

Used by all chapters (``notebooks/NN_*.py``).

>>> setup_notebook(plotly_renderer="json")
'json'
"""

from __future__ import annotations

import warnings

__all__ = ["setup_notebook"]


def setup_notebook(*, plotly_renderer: str = "plotly_mimetype+notebook", dpi: int = 90) -> str:
    """Configure matplotlib and plotly for a chapter; returns the plotly renderer in use."""
    import matplotlib.pyplot as plt
    import plotly.io as pio

    plt.rcParams.update({"figure.dpi": dpi, "image.interpolation": "nearest", "axes.grid": False})
    warnings.filterwarnings("ignore", message=".*IProgress not found.*")
    pio.renderers.default = plotly_renderer
    return pio.renderers.default
