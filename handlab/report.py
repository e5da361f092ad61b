"""Papermill-run reports: execute the chapter notebooks, render HTML, write an index.

``make report`` runs every chapter on the embedded defaults (synthetic data, shipped models);
``handlab report --chapters 08,09 --model DIR|zoo:NAME --data NAME:ROOT --out DIR`` runs chosen
chapters on a user's own checkpoint and dataset. Each chapter is a jupytext percent file
``notebooks/NN_name.py`` with a ``parameters`` cell; it is read with jupytext, executed by
papermill into the (git-ignored) output folder and rendered with nbconvert. Sources are never
written over. Each chapter saves its key numbers with :func:`save_numbers`, which also records the
kernel's CPU time; the runner measures the kernel's own peak memory (:mod:`handlab._kernel`).
The index shows status, run time, peak memory and those numbers, and a
progress line per chapter is printed. A failing chapter is marked failed with the failing cell
(number and first line), the exception and its message (a timeout says so), in the index and in
a banner on its page; the others still run. No cell is cut off by default: on a busy machine a
slow chapter finishes late and is flagged over budget, it is not thrown away.

Every output is written atomically (temporary file, then ``os.replace``), so an interrupted report
never leaves a half-written page; the output folder is locked for the run. ``--resume`` keeps a
chapter whose earlier page is ok and was made with the same model, data, fast, seed and chapter
source (:func:`chapter_settings`), and reruns the others. Pages are made by
:mod:`handlab.report_html` (offline math, static figures for widgets); evaluation data is rendered
once per run (:mod:`handlab.report_data`).

>>> chapter_id(Path("notebooks/08_poseig.py"))
'08'
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handlab._io import atomic_write_text

__all__ = [
    "ChapterResult",
    "ReportLocked",
    "chapter_settings",
    "claims_table",
    "find_chapters",
    "load_numbers",
    "locked",
    "model_cards",
    "run_chapter",
    "run_report",
    "save_numbers",
    "write_index",
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
    peak_memory_mb: float | None
    html: str | None
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # see chapter_settings
    cpu_seconds: float | None = None  # the kernel's CPU time (wall time grows with the load)


def claims_table(
    claims: list[tuple[str, str, str, bool]], *, columns: tuple[str, str, str] | None = None
) -> tuple[Any, int]:
    """A seed's claims next to this run: rows ``(claim, the seed's numbers, ours, holds)`` ->
    a DataFrame with a computed ``verdict`` ("agrees"/"differs") and how many agree.

    ``columns`` renames the first three columns (default: claim, seed, measured here).

    >>> table, agree = claims_table([("a < b", "1 < 2", "3 vs 4", True), ("c", "x", "y", False)])
    >>> agree, list(table["verdict"])
    (1, ['agrees', 'differs'])
    """
    import pandas as pd

    names = list(columns or ("claim", "seed", "measured here"))
    rows = [(c, s, m, "agrees" if ok else "differs") for c, s, m, ok in claims]
    return pd.DataFrame(rows, columns=[*names, "verdict"]), sum(bool(c[3]) for c in claims)


def model_cards(models: dict[str, Any]) -> Any:
    """The card of every model a chapter explains, one row each: what the reader needs before a
    conclusion is drawn from it (family, training steps, test error and on how many samples).

    ``models`` maps a name to a loaded model with a ``card`` dict (zoo models and run folders
    have one), or to the card itself; a model without a card gets an empty row.

    >>> class M:
    ...     card = {"model": "toy", "steps": 10, "metrics": {"epe_px": 3.5, "n": 512}}
    >>> model_cards({"toy": M()}).loc["toy", "test EPE (px)"]
    3.5
    """
    import pandas as pd

    rows = {}
    for name, model in models.items():
        card = (model if isinstance(model, dict) else getattr(model, "card", None)) or {}
        found = card.get("storage_metrics") or card.get("metrics") or {}
        rows[name] = {
            "family": card.get("model"),
            "training steps": card.get("steps"),
            "test EPE (px)": found.get("epe_px"),
            "test MPJPE (mm)": found.get("mpjpe_mm"),
            "test samples": found.get("n"),
            "trained on": (card.get("train_config") or {}).get("data"),
        }
    return pd.DataFrame(rows).T.dropna(axis=1, how="all")


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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"numbers: expected finite values, got {value}")
    return value


def save_numbers(numbers: dict[str, Any], out_dir: str | Path, chapter: str) -> Path:
    """Write a chapter's key numbers to ``out_dir/NN.json`` (called at the end of each chapter).

    Adds ``cpu_seconds`` (the kernel's user + system CPU time; a forked child starts from zero,
    unlike its peak memory, which the runner measures itself: :mod:`handlab._kernel`), and
    refuses NaN/inf, so a chapter that computed nothing real cannot pass its check.
    """
    payload = {"chapter": chapter, "numbers": _jsonable(numbers)}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time of the kernel: unlike wall time it barely moves when the machine is busy
    payload["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    path = Path(out_dir) / f"{chapter}.json"
    atomic_write_text(path, json.dumps(payload, indent=2))
    return path


def load_numbers(out_dir: str | Path, chapter: str) -> dict[str, Any] | None:
    path = Path(out_dir) / f"{chapter}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


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
    peaks: list[float | None],
) -> Any:
    """Run ``nb`` with papermill into ``executed``; the kernel's own peak memory (MB, ``None`` if
    unknown) is appended to ``peaks`` as the kernel shuts down, also after a failure."""
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
def _environment(**values: str) -> Iterator[None]:
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
    as failures. A failure names the cell and the error, in the result and in a banner on the
    page.
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
        peaks: list[float | None] = []  # this attempt's kernel
        try:
            with _environment(MPLBACKEND=INLINE_BACKEND):
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
    peak = max((p for p in peaks if p is not None), default=None)
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
        warnings=notes + _over_budget(seconds, peak),
        settings=chapter_settings(source, parameters),
        cpu_seconds=round(saved["cpu_seconds"], 1) if saved and "cpu_seconds" in saved else None,
    )
    return result


def _over_budget(seconds: float, peak: float | None) -> list[str]:
    out = []
    if seconds > CHAPTER_SECONDS_BUDGET:
        out.append(f"over budget: took {seconds:.0f} s (budget {CHAPTER_SECONDS_BUDGET:.0f} s)")
    if peak is not None and peak > CHAPTER_MEMORY_BUDGET_MB:
        budget = CHAPTER_MEMORY_BUDGET_MB
        out.append(f"over budget: peak memory {peak:.0f} MB (budget {budget:.0f} MB)")
    return out


def chapter_settings(source: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Every setting a chapter's page depends on: the injected parameters (model, data, fast,
    seed) and the SHA-256 of the chapter's source; ``--resume`` reuses a page only if equal."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    keys = ("model", "data", "fast", "seed")
    return {**{k: parameters.get(k) for k in keys}, "source_sha256": digest}


def write_index(results: list[ChapterResult], out_dir: Path, *, settings: dict[str, Any]) -> Path:
    """Write ``out_dir/index.html`` (the chapter table) and ``out_dir/summary.json``."""
    from handlab.report_html import index_page

    rows = []
    for r in results:
        row = asdict(r)
        has_json = (Path(out_dir) / f"{r.chapter}.json").is_file()
        row["json"] = f"{r.chapter}.json" if has_json else None
        rows.append(row)
    index = Path(out_dir) / "index.html"
    atomic_write_text(index, index_page(rows, settings))
    summary = {"settings": settings, "chapters": [asdict(r) for r in results]}
    atomic_write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2))
    return index


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.lock`` (an exclusive ``flock``) for a report run; a second run on the same
    folder fails at once with an error naming the holder, instead of both writing the pages."""
    import fcntl

    path = Path(out_dir) / ".lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ReportLocked(
                f"out: {out_dir} is being written by {holder}; wait for it or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"handlab report, pid {os.getpid()} on {platform.node()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


class ReportLocked(RuntimeError):
    """Another report run holds the output folder."""


def _reusable(before: ChapterResult | None, settings: dict[str, Any], out_dir: Path) -> bool:
    """An earlier ok page made with exactly these settings, its page and numbers still there."""
    if before is None or before.status != "ok" or before.settings != settings:
        return False
    return (
        bool(before.html)
        and (out_dir / before.html).is_file()
        and (load_numbers(out_dir, before.chapter) is not None)
    )


def _why_rerun(before: ChapterResult | None, settings: dict[str, Any]) -> str:
    if before is None:
        return "not in the earlier run"
    if before.status != "ok":
        return f"earlier run {before.status}"
    changed = sorted(k for k in settings if before.settings.get(k) != settings[k])
    return f"changed: {', '.join(changed)}" if changed else "page or numbers missing"


def run_report(
    out: str | Path = "reports",
    *,
    chapters: list[str] | None = None,
    fast: bool = False,
    seed: int = 0,
    model: str | None = None,
    data: str | None = None,
    resume: bool = False,
    notebooks: Path | None = None,
    timeout: int | None = None,
) -> list[ChapterResult]:
    """Run chapters into ``out/`` and write ``out/index.html``; returns one result per chapter.

    The folder is locked for the run (:func:`locked`). Evaluation data is cached under
    ``out/.cache/data`` (:mod:`handlab.report_data`), so a split one chapter rendered is loaded,
    not rendered, by the next. With ``resume``, a chapter whose earlier page is ok and was made
    with the same settings (:func:`chapter_settings`) is kept; any other is rerun, and the
    progress line says why.
    """
    from handlab.report_data import CACHE_ENV

    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = find_chapters(notebooks, chapters)
    parameters: dict[str, Any] = {"fast": fast, "seed": seed}
    if model is not None:
        parameters["model"] = model
    if data is not None:
        parameters["data"] = data
    settings = {**parameters, "python": platform.python_version(), "machine": platform.machine()}
    results: list[ChapterResult] = []
    with _environment(**{CACHE_ENV: str(out_dir / ".cache" / "data")}):  # kernels inherit it
        with locked(out_dir):
            earlier = _earlier_results(out_dir) if resume else {}
            for number, source in enumerate(sources, 1):
                results.append(
                    _one_chapter(
                        source,
                        out_dir,
                        parameters,
                        earlier,
                        resume,
                        timeout,
                        f"{number}/{len(sources)}",
                    )
                )
                write_index(results, out_dir, settings=settings)
            write_index(results, out_dir, settings=settings)
    print(f"[handlab report] wrote {out_dir / 'index.html'}", flush=True)
    return results


def _one_chapter(
    source: Path,
    out_dir: Path,
    parameters: dict[str, Any],
    earlier: dict[str, ChapterResult],
    resume: bool,
    timeout: int | None,
    progress: str,
) -> ChapterResult:
    cid = chapter_id(source)
    settings = chapter_settings(source, parameters)
    before = earlier.get(cid)
    if resume and _reusable(before, settings, out_dir):
        reused = "reused from an earlier run with the same settings"
        before.warnings = [w for w in before.warnings if w != reused] + [reused]
        print(f"[handlab report] {progress} chapter {cid}: kept (same settings)", flush=True)
        return before
    why = f" ({_why_rerun(before, settings)})" if resume else ""
    # A stale JSON must not let a failing rerun pass as done.
    (out_dir / f"{cid}.json").unlink(missing_ok=True)
    print(f"[handlab report] {progress} chapter {cid}: {source.name}{why} ...", flush=True)
    result = run_chapter(source, out_dir, parameters=parameters, timeout=timeout)
    mem = f", peak {result.peak_memory_mb:.0f} MB" if result.peak_memory_mb else ""
    if result.cpu_seconds is not None:
        mem += f", {result.cpu_seconds:.0f} CPU s"
    print(
        f"[handlab report] {progress} chapter {cid}: {result.status} in {result.seconds:.1f} s"
        f"{mem}"
        + "".join(f"; {w}" for w in result.warnings)
        + (f" ({result.error})" if result.error else ""),
        flush=True,
    )
    return result


def _earlier_results(out_dir: Path) -> dict[str, ChapterResult]:
    """The chapters of an earlier run's ``summary.json`` in ``out_dir`` (empty if none)."""
    path = out_dir / "summary.json"
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text())["chapters"]
        return {r["chapter"]: ChapterResult(**r) for r in rows}
    except (ValueError, KeyError, TypeError):
        return {}  # unreadable or from another version: the chapters are simply rerun
