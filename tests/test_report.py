"""The papermill report runner on tiny throwaway chapters: an ok one, a failing one, resume."""

import json

import pytest

from handlab import report

OK = """# %% [markdown]
# # Tiny chapter
# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
from handlab.report import save_numbers
x = 21 * 2
save_numbers({"answer": x, "fast": fast}, out_dir, "01")
"""
FAILS = """# %% [markdown]
# # Broken chapter
# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
raise RuntimeError("boom in chapter two")
"""
SILENT = """# %% [markdown]
# # Chapter that forgets its numbers
# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
y = 1
"""


@pytest.fixture
def chapters(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_ok.py").write_text(OK)
    (folder / "02_fails.py").write_text(FAILS)
    (folder / "03_silent.py").write_text(SILENT)
    return folder


def test_report_marks_failures_and_keeps_going(chapters, tmp_path):
    out = tmp_path / "out"
    results = report.run_report(out, fast=True, notebooks=chapters)
    by_id = {r.chapter: r for r in results}
    assert by_id["01"].status == "ok"
    assert by_id["01"].numbers == {"answer": 42, "fast": True}  # parameters were injected
    assert by_id["01"].peak_memory_mb > 10
    assert by_id["02"].status == "failed" and "boom in chapter two" in by_id["02"].error
    assert by_id["03"].status == "failed" and "wrote no 03.json" in by_id["03"].error
    index = (out / "index.html").read_text()
    assert "Tiny chapter" in index and "boom in chapter two" in index
    assert (out / "01_ok.html").exists() and (out / "02_fails.html").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["chapters"]] == ["ok", "failed", "failed"]
    # sources are never written over
    assert (chapters / "01_ok.py").read_text() == OK


def test_report_resume_reuses_done_chapters(chapters, tmp_path):
    out = tmp_path / "out"
    report.run_report(out, chapters=["1"], fast=True, notebooks=chapters)
    first = json.loads((out / "summary.json").read_text())["chapters"][0]
    again = report.run_report(out, chapters=["01"], fast=True, notebooks=chapters, resume=True)
    assert again[0].status == "ok" and again[0].warnings == ["reused from an earlier run"]
    # the earlier run's measured time and memory stay in the index, not zeros
    assert again[0].seconds == first["seconds"] > 0
    assert again[0].peak_memory_mb == first["peak_memory_mb"]
    third = report.run_report(out, chapters=["01"], fast=True, notebooks=chapters, resume=True)
    assert third[0].warnings == ["reused from an earlier run"]  # said once, not once per resume


HANGS_ONCE = """# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
import pathlib, time
marker = pathlib.Path(out_dir) / "first-attempt"
if not marker.exists():
    marker.write_text("")
    time.sleep(60)  # the first attempt hangs past the cell timeout
from handlab.report import save_numbers
save_numbers({"attempts": 2}, out_dir, "04")
"""


def test_a_timed_out_chapter_is_rerun_once_and_says_so(tmp_path):
    source = tmp_path / "04_hangs.py"
    source.write_text(HANGS_ONCE)
    result = report.run_chapter(source, tmp_path / "out", parameters={"fast": True}, timeout=5)
    assert result.status == "ok" and result.numbers == {"attempts": 2}
    assert len(result.warnings) == 1 and "timed out after 5 s" in result.warnings[0]
    assert result.seconds < 30  # the successful attempt's time, not the hang's


def test_a_chapter_that_keeps_timing_out_fails(tmp_path):
    source = tmp_path / "04_hangs.py"
    source.write_text(HANGS_ONCE)
    result = report.run_chapter(
        source, tmp_path / "out", parameters={"fast": True}, timeout=5, retries=0
    )
    assert result.status == "failed" and "Timeout" in result.error


def test_report_rejects_unknown_chapter(chapters):
    with pytest.raises(ValueError, match="unknown"):
        report.find_chapters(chapters, ["07"])


def test_save_numbers_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        report.save_numbers({"epe": float("nan")}, tmp_path, "05")
