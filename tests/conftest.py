"""Shared test settings: deterministic, single-threaded torch per worker (CI has 2 cores and runs
2 pytest-xdist workers), headless matplotlib."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(int(os.environ.get("HANDLAB_TEST_THREADS", "1")))
