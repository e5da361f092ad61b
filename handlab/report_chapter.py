"""One chapter of the report: find it, execute it with papermill, render its page.

Each chapter is a jupytext percent file ``notebooks/NN_name.py`` with a ``parameters`` cell; it is
read with jupytext, executed by papermill into the output folder and rendered with nbconvert
(:mod:`handlab.report_html`). Sources are never written over. The kernel's own peak memory is
measured as it shuts down (:mod:`handlab._kernel`), its CPU time comes with its numbers
(:func:`handlab.report_numbers.save_numbers`); the budgets are checked in every mode, fast or
full, and reported as warnings, never as failures. A failure names the cell (number and first
line), the exception and its message (a timeout says so), in the result and in a banner on the
page. The whole run, its index and ``--resume`` are :mod:`handlab.report`'s.

>>> chapter_id(Path("notebooks/08_poseig.py"))
'08'
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlab._io import atomic_write_text
from handlab._openmp import openmp_env
from handlab.report_numbers import load_numbers

if TYPE_CHECKING:  # jupyter_client is imported only when a chapter runs
    from handlab._kernel import KernelMemory

__all__ = [
    "CHAPTER_MEMORY_BUDGET_MB",
    "CHAPTER_SECONDS_BUDGET",
    "ChapterResult",
    "chapter_id",
    "chapter_settings",
    "find_chapters",
    "run_chapter",
]

# Budgets from the workbook issue, checked on every run, fast or full (Binder allows 2 GB); a
# chapter over budget is reported in the index and the progress line, not failed.
CHAPTER_SECONDS_BUDGET = 300.0
CHAPTER_MEMORY_BUDGET_MB = 1536.0
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ChapterResult:
    chapter: str
    title: str
    status: str  # "ok" | "failed" | "skipped"
    seconds: float
    peak_memory_mb: float | None  # resident (VmHWM), see handlab._kernel
    html: str | None
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # see chapter_settings
    cpu_seconds: float | None = None  # the kernel's CPU time (wall time grows with the load)
    # the kernel's sampled peak of anonymous memory: the memory budget is checked on it
    peak_anonymous_mb: float | None = None


def chapter_id(path: Path) -> str:
    """The two-digit chapter number of ``notebooks/NN_name.py``."""
    return Path(path).name.split("_", 1)[0]


def default_notebooks() -> Path:
    """The checkout's ``notebooks/`` or, where handlab is installed from a wheel, its chapters."""
    checkout = REPO_ROOT / "notebooks"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "chapters"


def find_chapters(notebooks: Path | None = None, chapters: list[str] | None = None) -> list[Path]:
    """Chapter sources ``NN_*.py`` in ``notebooks`` (default: the repository's), sorted.

    The default is the checkout's ``notebooks/``, else (an installed wheel) the copy shipped as
    ``handlab/chapters/``. ``chapters`` selects by number (``["08", "9"]``); an unknown number
    raises ``ValueError``.
    """
    folder = Path(notebooks) if notebooks is not None else default_notebooks()
    if not folder.is_dir():
        raise ValueError(f"notebooks: expected a folder of chapter .py files, got {folder}")
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.py"))
    if chapters is None:
        return found
    wanted = [c.zfill(2) for c in chapters]
    by_id = {chapter_id(p): p for p in found}
    missing = [c for c in wanted if c not in by_id]
    if missing:
        raise ValueError(f"chapters: expected some of {sorted(by_id)}, got unknown {missing}")
    return [by_id[c] for c in wanted]


def _title(nb: Any, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def _execute(
    nb: Any,
    executed: Path,
    params: dict[str, Any],
    cwd: Path,
    timeout: int | None,
    peaks: list[KernelMemory],
) -> Any:
    """Run ``nb`` with papermill into ``executed``; the kernel's own peak memory
    (:class:`handlab._kernel.KernelMemory`) is appended to ``peaks`` as the kernel shuts down,
    also after a failure."""
    import papermill

    from handlab._kernel import recording_peaks  # a client that cannot miss a reply (see there)

    return papermill.execute_notebook(
        nb,
        str(executed),
        parameters=params,
        kernel_name="python3",
        language="python",
        cwd=str(cwd),
        progress_bar=False,
        execution_timeout=timeout,
        kernel_manager_class=recording_peaks(peaks),
    )


# The kernel inherits the environment: an MPLBACKEND=Agg set for tests or scripts would keep
# every matplotlib figure out of the pages, so the kernel gets the notebook's inline backend.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables (inherited by the kernels started inside), then restore them."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _describe_error(exc: Exception, nb: Any, timeout: int | None) -> str:
    """One line: which cell failed (number and first source line), the exception, its message."""
    from handlab.report_html import failed_cell

    where = failed_cell(nb)
    cell = f"cell {where[0]} (`{where[1]}`)" if where else "a cell"
    if isinstance(exc, TimeoutError):
        return f"{cell} timed out after {timeout} s (TimeoutError)"
    name = getattr(exc, "ename", None) or type(exc).__name__
    message = getattr(exc, "evalue", None)
    if message is None:
        lines = [ln for ln in str(exc).splitlines() if ln.strip(" -")]
        message = lines[-1] if lines else repr(exc)
    return f"{cell} raised {name}: {message}"


def run_chapter(
    source: Path,
    out_dir: Path,
    *,
    parameters: dict[str, Any],
    timeout: int | None = None,
    retries: int = 0,
) -> ChapterResult:
    """Execute one chapter with papermill into ``out_dir`` and render it to HTML.

    ``timeout`` bounds each cell (seconds; default ``None``: no bound, a slow cell on a busy
    machine finishes rather than throwing away the chapter's finished work). A cell that times
    out is retried with a fresh kernel up to ``retries`` times, and the result says so. The
    kernel client is :class:`handlab._kernel.KernelManager`'s (nbclient's own missed replies,
    see there). The chapter budgets (:data:`CHAPTER_SECONDS_BUDGET`,
    :data:`CHAPTER_MEMORY_BUDGET_MB`) are checked in every mode and reported as warnings, never
    as failures, the memory budget on ``peak_anonymous_mb``. ``peak_memory_mb`` is the kernel's
    own peak resident memory (``VmHWM``) and ``peak_anonymous_mb`` its sampled peak of anonymous
    memory (:mod:`handlab._kernel` says why both), read as the kernel shuts down, so a failed
    chapter has them too. A failure names the cell and the error, in the result and in a banner
    on the page.
    """
    import jupytext
    import nbformat

    from handlab.report_html import add_banner, to_html

    cid = chapter_id(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata.setdefault("language_info", {"name": "python"})
    title = _title(nb, source.stem)
    executed = out_dir / f"{source.stem}.ipynb"
    params = {**parameters, "out_dir": str(out_dir)}
    notes: list[str] = []
    for attempt in range(retries + 1):
        start = time.perf_counter()
        error = None
        peaks: list[KernelMemory] = []  # this attempt's kernel
        try:
            with environment(MPLBACKEND=INLINE_BACKEND, **openmp_env()):  # handlab._openmp
                out_nb = _execute(nb, executed, params, out_dir, timeout, peaks)
        except Exception as exc:  # papermill raises after saving the failed notebook
            out_nb = nbformat.read(executed, as_version=4) if executed.exists() else nb
            error = _describe_error(exc, out_nb, timeout)
            if isinstance(exc, TimeoutError) and attempt < retries:
                (out_dir / f"{cid}.json").unlink(missing_ok=True)
                took = time.perf_counter() - start
                notes.append(f"a cell timed out after {timeout} s ({took:.0f} s lost); rerun")
                continue
        break
    seconds = time.perf_counter() - start
    peak = max((p.resident_mb for p in peaks if p.resident_mb is not None), default=None)
    anonymous = max((p.anonymous_mb for p in peaks if p.anonymous_mb is not None), default=None)
    saved = load_numbers(out_dir, cid)
    if error is None and saved is None:
        error = f"chapter {cid} ran but wrote no {cid}.json (did it call save_numbers?)"
    if error is not None:
        add_banner(out_nb, error)
    page = out_dir / f"{source.stem}.html"
    atomic_write_text(page, to_html(out_nb, out_dir))
    result = ChapterResult(
        chapter=cid,
        title=title,
        status="failed" if error else "ok",
        seconds=round(seconds, 2),
        peak_memory_mb=round(peak, 1) if peak is not None else None,
        html=page.name,
        numbers=saved["numbers"] if saved else {},
        error=error,
        warnings=notes + _over_budget(seconds, anonymous),
        settings=chapter_settings(source, parameters),
        cpu_seconds=round(saved["cpu_seconds"], 1) if saved and "cpu_seconds" in saved else None,
        peak_anonymous_mb=round(anonymous, 1) if anonymous is not None else None,
    )
    return result


def _over_budget(seconds: float, anonymous_mb: float | None) -> list[str]:
    """Warnings for a chapter over :data:`CHAPTER_SECONDS_BUDGET` (wall seconds) or
    :data:`CHAPTER_MEMORY_BUDGET_MB` (its peak of anonymous memory, see :mod:`handlab._kernel`).

    >>> _over_budget(10.0, 2000.0)
    ['over budget: peak anonymous memory 2000 MB (budget 1536 MB)']
    >>> _over_budget(10.0, None)
    []
    """
    out = []
    if seconds > CHAPTER_SECONDS_BUDGET:
        out.append(f"over budget: took {seconds:.0f} s (budget {CHAPTER_SECONDS_BUDGET:.0f} s)")
    if anonymous_mb is not None and anonymous_mb > CHAPTER_MEMORY_BUDGET_MB:
        budget = CHAPTER_MEMORY_BUDGET_MB
        out.append(
            f"over budget: peak anonymous memory {anonymous_mb:.0f} MB (budget {budget:.0f} MB)"
        )
    return out


def chapter_settings(source: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Every setting a chapter's page depends on: the injected parameters (model, data, fast,
    seed) and the SHA-256 of the chapter's source; ``--resume`` reuses a page only if equal."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    keys = ("model", "data", "fast", "seed")
    return {**{k: parameters.get(k) for k in keys}, "source_sha256": digest}
