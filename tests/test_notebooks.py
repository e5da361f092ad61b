"""Every chapter executes in fast mode through papermill and writes sane key numbers.

A chapter that silently did nothing fails: the runner requires its JSON, ``save_numbers``
refuses NaN/inf, and each chapter's check below asserts numbers in a sane range.
"""

import math

import pytest

from handlab import report

CHAPTERS = report.find_chapters()


def _finite_numbers(numbers, prefix=""):
    for k, v in numbers.items():
        if isinstance(v, dict):
            yield from _finite_numbers(v, f"{prefix}{k}.")
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


# Sanity ranges for each chapter's headline numbers (key -> (lo, hi)).
CHECKS = {
    "00": {
        "max_reprojection_error_px": (0.0, 0.01),
        "crop_reprojection_error_px": (0.0, 0.05),
        "decode_max_error_px.taylor": (0.0, 0.1),
        "decode_max_error_px.local_soft_argmax": (0.0, 0.1),
        "epe_px_sigma3": (2.5, 5.0),
        "pa_mpjpe_moved_mm": (0.0, 1e-2),
    },
}


@pytest.mark.notebook
@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_fast_mode(source, tmp_path):
    result = report.run_chapter(source, tmp_path, parameters={"fast": True})
    assert result.status == "ok", result.error
    flat = dict(_finite_numbers(result.numbers))
    assert flat, "the chapter saved no numbers"
    assert all(math.isfinite(v) for v in flat.values())
    for key, (lo, hi) in CHECKS.get(result.chapter, {}).items():
        assert key in flat, f"chapter {result.chapter} did not report {key}"
        assert lo <= flat[key] <= hi, f"{key} = {flat[key]} outside [{lo}, {hi}]"
