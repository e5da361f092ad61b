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
    again = report.run_report(out, chapters=["01"], fast=True, notebooks=chapters, resume=True)
    assert again[0].status == "ok" and again[0].warnings == ["reused from an earlier run"]


def test_report_rejects_unknown_chapter(chapters):
    with pytest.raises(ValueError, match="unknown"):
        report.find_chapters(chapters, ["07"])


def test_save_numbers_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        report.save_numbers({"epe": float("nan")}, tmp_path, "05")
