"""The papermill report runner on tiny throwaway chapters: an ok one, a failing one, resume."""

import json
import re

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
    # the failing cell is named by its number among the chapter's code cells and first line
    error = by_id["02"].error
    assert by_id["02"].status == "failed"
    assert error == 'cell 2 (`raise RuntimeError("boom in chapter two")`) raised RuntimeError: ' + (
        "boom in chapter two"
    )
    assert by_id["03"].status == "failed" and "wrote no 03.json" in by_id["03"].error
    index = (out / "index.html").read_text()
    assert "Tiny chapter" in index and "boom in chapter two" in index
    assert (out / "01_ok.html").exists() and (out / "02_fails.html").exists()
    # the failed page opens with a banner saying the same; the ok page has none
    assert "This chapter failed.</b> cell 2" in (out / "02_fails.html").read_text()
    assert "This chapter failed" not in (out / "01_ok.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [c["status"] for c in summary["chapters"]] == ["ok", "failed", "failed"]
    # sources are never written over
    assert (chapters / "01_ok.py").read_text() == OK


def test_report_resume_reuses_done_chapters(chapters, tmp_path):
    out = tmp_path / "out"
    report.run_report(out, chapters=["1"], fast=True, notebooks=chapters)
    first = json.loads((out / "summary.json").read_text())["chapters"][0]
    again = report.run_report(out, chapters=["01"], fast=True, notebooks=chapters, resume=True)
    reused = "reused from an earlier run with the same settings"
    assert again[0].status == "ok" and again[0].warnings == [reused]
    # the earlier run's measured time and memory stay in the index, not zeros
    assert again[0].seconds == first["seconds"] > 0
    assert again[0].peak_memory_mb == first["peak_memory_mb"]
    third = report.run_report(out, chapters=["01"], fast=True, notebooks=chapters, resume=True)
    assert third[0].warnings == [reused]  # said once, not once per resume


@pytest.mark.parametrize(
    "change",
    [{"fast": False}, {"seed": 3}, {"model": "zoo:other"}, {"data": "synth"}, "source"],
    ids=["fast", "seed", "model", "data", "source"],
)
def test_resume_reruns_a_chapter_made_with_other_settings(chapters, tmp_path, change):
    out = tmp_path / "out"
    report.run_report(out, chapters=["01"], fast=True, notebooks=chapters)
    options = {"fast": True}
    if change == "source":
        (chapters / "01_ok.py").write_text(OK.replace("21 * 2", "2 * 21"))
    else:
        options.update(change)
    again = report.run_report(out, chapters=["01"], notebooks=chapters, resume=True, **options)
    assert again[0].status == "ok" and not any("reused" in w for w in again[0].warnings)
    assert again[0].numbers["fast"] is options["fast"]
    # the new page's settings are recorded, so a third run with them reuses it
    third = report.run_report(out, chapters=["01"], notebooks=chapters, resume=True, **options)
    assert any("reused" in w for w in third[0].warnings)


def test_budgets_are_checked_in_fast_mode_and_reported_not_fatal(chapters, tmp_path, monkeypatch):
    from handlab import report_chapter  # where the budgets are checked

    monkeypatch.setattr(report_chapter, "CHAPTER_MEMORY_BUDGET_MB", 1.0)
    monkeypatch.setattr(report_chapter, "CHAPTER_SECONDS_BUDGET", 0.001)
    result = report.run_report(tmp_path / "out", chapters=["01"], fast=True, notebooks=chapters)[0]
    assert result.status == "ok"
    assert [w.split(":")[0] for w in result.warnings] == ["over budget", "over budget"]
    assert "anonymous memory" in result.warnings[1] and "budget 1 MB" in result.warnings[1]


def test_a_second_run_on_a_locked_folder_fails_naming_the_holder(chapters, tmp_path, capsys):
    from handlab import cli
    from handlab._lock import output_lock
    from handlab.errors import OutputLockedError

    out = tmp_path / "out"
    with output_lock(out, command="handlab report --out out"):
        with pytest.raises(OutputLockedError, match=r"in use by pid \d+ .*\(handlab report --out"):
            report.run_report(out, chapters=["01"], fast=True, notebooks=chapters)
        # on the command line: one line naming the holder, exit status 1, nothing written
        assert cli.main(["report", "--chapters", "01", "--fast", "--out", str(out)]) == 1
        assert "in use by pid" in capsys.readouterr().err
    assert not (out / "01_ok.html").exists()
    assert report.run_report(out, chapters=["01"], fast=True, notebooks=chapters)[0].status == "ok"


ALLOCATES = """# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
import numpy as np
block = np.ones(300 * 2**20, dtype=np.uint8)  # 300 MB, every page written
from handlab.report import save_numbers
save_numbers({"mb": block.nbytes / 2**20}, out_dir, "06")
"""


def test_peak_memory_is_the_kernels_own_not_the_parents(tmp_path):
    """A kernel forked from a big process inherits its ``ru_maxrss``; the report must count only
    what the chapter itself used: at least the 300 MB it wrote, not the parent's 800 MB."""
    import numpy as np

    parent = np.ones(800 * 2**20, dtype=np.uint8)  # this process's peak before the report runs
    source = tmp_path / "06_allocates.py"
    source.write_text(ALLOCATES)
    result = report.run_chapter(source, tmp_path / "out", parameters={"fast": True})
    assert result.status == "ok" and result.numbers == {"mb": 300.0}
    # 300 MB plus the interpreter and numpy (about 60 MB); the parent's buffer alone is 800 MB
    assert 300 <= result.peak_memory_mb < 700
    # the sampled anonymous peak sees the block too (held until the kernel shuts down), and is
    # part of the resident peak
    assert 300 <= result.peak_anonymous_mb <= result.peak_memory_mb
    assert parent[-1] == 1  # the buffer was alive all along


def test_a_failed_chapter_still_reports_its_peak_memory(tmp_path):
    source = tmp_path / "06_allocates.py"
    source.write_text(ALLOCATES.replace("from handlab", "raise RuntimeError('late')\nfrom handlab"))
    result = report.run_chapter(source, tmp_path / "out", parameters={"fast": True})
    assert result.status == "failed" and "late" in result.error
    assert result.peak_memory_mb >= 300 and result.peak_anonymous_mb >= 300


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


def test_a_timed_out_chapter_is_rerun_when_asked_and_says_so(tmp_path):
    source = tmp_path / "04_hangs.py"
    source.write_text(HANGS_ONCE)
    result = report.run_chapter(
        source, tmp_path / "out", parameters={"fast": True}, timeout=5, retries=1
    )
    assert result.status == "ok" and result.numbers == {"attempts": 2}
    timeouts = [w for w in result.warnings if not w.startswith("over budget")]
    assert len(timeouts) == 1 and "timed out after 5 s" in timeouts[0]
    assert result.seconds < 30  # the successful attempt's time, not the hang's


def test_a_timeout_is_reported_as_a_timeout_of_a_named_cell(tmp_path):
    source = tmp_path / "04_hangs.py"
    source.write_text(HANGS_ONCE)
    result = report.run_chapter(source, tmp_path / "out", parameters={"fast": True}, timeout=5)
    assert result.status == "failed"
    assert result.error == "cell 2 (`import pathlib, time`) timed out after 5 s (TimeoutError)"
    assert "timed out after 5 s" in (tmp_path / "out" / "04_hangs.html").read_text()


WIDGET = """# %% [markdown]
# # Widget chapter
# $$f_j(x) = \\exp(-\\alpha d)$$
# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
import ipywidgets as W
import matplotlib.pyplot as plt
out = W.Output()
with out:
    plt.plot([0, 1], [1, 0])
    plt.show()
W.VBox([W.IntSlider(), out])
# %%
from handlab.report import save_numbers
save_numbers({"a": {"b": {"c": 1.5}}, "n": 2}, out_dir, "05")
"""


def test_pages_read_offline_widgets_get_a_static_figure(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "05_widget.py").write_text(WIDGET)
    out = tmp_path / "out"
    result = report.run_report(out, fast=True, notebooks=folder)[0]
    assert result.status == "ok", result.error
    page = (out / "05_widget.html").read_text()
    # the figure drawn into the widget's Output is in the page as an image
    static = page.split("Static view (first setting)", 1)
    assert len(static) == 2 and "data:image/png;base64" in static[1]
    # math is typeset by the MathJax copied into the report, not from a CDN
    assert "_static/mathjax/MathJax.js?config=" in page
    # nothing is loaded from the network (nbconvert's mermaid loader runs only for diagrams)
    assert not re.search(r"<(script|link)[^>]+(src|href)=.https?:", page)
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    # the index shows nested numbers flattened, with a link to the whole JSON
    index = (out / "index.html").read_text()
    assert "<code>a.b.c</code> 1.5" in index and 'href="05.json"' in index


def test_report_rejects_unknown_chapter(chapters):
    with pytest.raises(ValueError, match="unknown"):
        report.find_chapters(chapters, ["07"])


def test_save_numbers_refuses_nan(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        report.save_numbers({"epe": float("nan")}, tmp_path, "05")


def test_make_lab_opens_chapters_as_notebooks_from_the_repository_settings(monkeypatch):
    """`make lab` adds the repository's .jupyter to JUPYTER_CONFIG_PATH (and --allow-root as
    root): JupyterLab then defaults `.py` files to the Jupytext notebook viewer."""
    from jupyterlab_server.settings_utils import _get_overrides

    makefile = (report.REPO_ROOT / "Makefile").read_text()
    assert 'JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter' in makefile
    assert "$(if $(filter 0,$(shell id -u)),--allow-root,)" in makefile
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(report.REPO_ROOT / ".jupyter"))
    overrides, error = _get_overrides("/nonexistent")
    assert not error
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["python"] == "Jupytext Notebook"


def test_check_html_flags_what_does_not_read_offline():
    from handlab.report_check import check_page

    fine = '<div class="plotly-graph-div"></div><p>$$x$$</p>'
    drawn = '<div class="plotly-graph-div"><svg class="main-svg"></svg></div><span class="MathJax">'
    assert check_page(fine, drawn, "ok.html") == []
    bad = (
        '<script src="https://cdn.example/x.js"></script><div class="plotly-graph-div"></div>'
        '<script type="application/vnd.jupyter.widget-view+json">{}</script>'
    )
    problems = check_page(bad + "<p>$$x$$</p>", "<p>$$x$$</p>", "bad.html")
    assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == ["1", "math", "a", "1"]


def test_pages_drop_plotlys_cdn_mathjax(tmp_path):
    import nbformat

    from handlab.report_html import to_html

    cdn = '<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.min.js">'
    cell = nbformat.v4.new_code_cell("fig")
    html_out = {"text/html": f'{cdn}</script><div class="plotly-graph-div"></div>'}
    cell.outputs = [nbformat.v4.new_output("display_data", html_out)]
    page = to_html(nbformat.v4.new_notebook(cells=[cell]), tmp_path)
    assert 'class="plotly-graph-div"' in page and "tex-svg" not in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=.https?:", page)


def test_a_widget_without_a_static_view_is_said_and_flagged(tmp_path):
    import nbformat

    from handlab.report_check import check_page
    from handlab.report_html import NO_STATIC_VIEW, to_html

    cell = nbformat.v4.new_code_cell("explorer.widget")
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}}
    cell.outputs = [nbformat.v4.new_output("display_data", view)]
    page = to_html(nbformat.v4.new_notebook(cells=[cell]), tmp_path)
    assert NO_STATIC_VIEW in page and "make lab" in page
    assert check_page(page, page, "p.html") == ["p.html: a widget view without its static figure"]


def test_anonymous_peak_sees_a_short_allocation_and_not_library_pages(tmp_path):
    """The sampler catches a 200 MB block held for 0.5 s and already freed when it stops, and
    mapping a 300 MB file (library-like pages) raises the resident peak, not the anonymous one."""
    import subprocess
    import sys

    from handlab._kernel import AnonymousPeak, peak_rss_mb

    data = tmp_path / "pages.bin"
    data.write_bytes(b"\1" * (300 * 2**20))
    script = (
        "import mmap, sys, time\n"
        "f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\n"
        "s = sum(m[i] for i in range(0, len(m), 4096))  # touch every page of the file\n"
        "time.sleep(0.3)\n"
        "b = bytearray(200 * 2**20); time.sleep(0.5); del b\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(data)], stdout=subprocess.PIPE, text=True
    )
    try:
        sampler = AnonymousPeak(proc.pid, interval=0.02).start()
        assert proc.stdout.readline().strip() == "ready"  # the block is freed by now
        anonymous = sampler.stop()
        resident = peak_rss_mb(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert 200 <= anonymous < 300  # the block, plus the interpreter; not the file's 300 MB
    assert resident >= 300 + 200  # VmHWM counts the mapped file's pages and the block


READS_OPENMP = """# %% tags=["parameters"]
fast = False
out_dir = "."
# %%
import os
from handlab.report import save_numbers
keys = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
save_numbers({k: os.environ.get(k, "unset") for k in keys}, out_dir, "06")
"""


@pytest.mark.parametrize("user", [None, "ACTIVE"])
def test_kernels_spin_briefly_unless_the_user_chose(tmp_path, monkeypatch, user):
    """The report's kernels get GOMP_SPINCOUNT (benchmarks/omp_wait.py says why); a wait policy
    the user set is passed on unchanged, and then no spin count is added."""
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    if user is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", user)
    source = tmp_path / "06_openmp.py"
    source.write_text(READS_OPENMP)
    result = report.run_chapter(source, tmp_path / "out", parameters={"fast": True})
    assert result.status == "ok", result.error
    expected = {"OMP_WAIT_POLICY": user or "unset", "GOMP_SPINCOUNT": "unset" if user else "3000"}
    assert result.numbers == expected


def test_openmp_spinning_is_set_unless_the_user_chose(monkeypatch):
    from handlab._openmp import openmp_env

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert openmp_env() == {"GOMP_SPINCOUNT": "3000"}
    monkeypatch.setenv("GOMP_SPINCOUNT", "100")
    assert openmp_env() == {}
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert openmp_env() == {}
