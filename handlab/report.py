"""Papermill-run reports: execute the chapter notebooks, render HTML, write an index.

``make report`` runs every chapter on the embedded defaults (synthetic data, shipped models);
``handlab report --chapters 08,09 --model DIR|zoo:NAME --data NAME:ROOT --out DIR`` runs chosen
chapters on a user's own checkpoint and dataset. Each chapter is a jupytext percent file
``notebooks/NN_name.py`` with a ``parameters`` cell; it is read with jupytext, executed by
papermill into the (git-ignored) output folder and rendered with nbconvert. Sources are never
written over. Each chapter saves its key numbers with :func:`save_numbers`, which also records the
kernel's peak memory; the index shows status, run time, peak memory and those numbers. A failing
chapter is marked failed with its error and the others still run.

Every output is written atomically (temporary file, then ``os.replace``), so an interrupted report
never leaves a half-written page; ``--resume`` skips chapters whose outputs are newer than their
sources.

>>> chapter_id(Path("notebooks/08_poseig.py"))
'08'
"""

from __future__ import annotations

import html
import json
import math
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from handlab._io import atomic_write_text

__all__ = [
    "ChapterResult",
    "claims_table",
    "find_chapters",
    "load_numbers",
    "run_chapter",
    "run_report",
    "save_numbers",
    "write_index",
]

# Budgets from the workbook issue, checked on every full-mode run (Binder allows 2 GB).
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


def chapter_id(path: Path) -> str:
    """The two-digit chapter number of ``notebooks/NN_name.py``."""
    return Path(path).name.split("_", 1)[0]


def find_chapters(notebooks: Path | None = None, chapters: list[str] | None = None) -> list[Path]:
    """Chapter sources ``NN_*.py`` in ``notebooks`` (default: the repository's), sorted.

    ``chapters`` selects by number (``["08", "9"]``); an unknown number raises ``ValueError``.
    """
    folder = Path(notebooks) if notebooks is not None else REPO_ROOT / "notebooks"
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

    Adds ``peak_memory_mb`` (the kernel's peak resident memory, from ``getrusage``) and refuses
    NaN/inf, so a chapter that computed nothing real cannot pass its check.
    """
    payload = {"chapter": chapter, "numbers": _jsonable(numbers)}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    payload["peak_memory_mb"] = rss / (1024 * 1024 if sys.platform == "darwin" else 1024)
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


def _execute(nb: Any, executed: Path, params: dict[str, Any], cwd: Path, timeout: int) -> Any:
    import papermill

    from handlab._kernel import KernelManager  # a client that cannot miss a reply (see there)

    return papermill.execute_notebook(
        nb,
        str(executed),
        parameters=params,
        kernel_name="python3",
        language="python",
        cwd=str(cwd),
        progress_bar=False,
        execution_timeout=timeout,
        kernel_manager_class=KernelManager,
    )


def run_chapter(
    source: Path, out_dir: Path, *, parameters: dict[str, Any], timeout: int = 600, retries: int = 1
) -> ChapterResult:
    """Execute one chapter with papermill into ``out_dir`` and render it to HTML.

    ``timeout`` bounds each cell (seconds; twice the full-mode chapter budget). A cell that times
    out is retried with a fresh kernel up to ``retries`` times, and the result says so. The
    kernel client is :class:`handlab._kernel.KernelManager`'s: nbclient's own client missed the
    reply to a widget cell (chapters 04 and 11 waited on an idle kernel until the timeout; 4 of
    7 full-mode runs of chapter 11), see :mod:`handlab._kernel`. The timeout and the retry stay
    as a bound on anything else. The reported seconds are the successful attempt's; the budget
    check flags a late chapter.
    """
    import jupytext
    import nbformat
    from nbconvert import HTMLExporter

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
        try:
            out_nb = _execute(nb, executed, params, out_dir, timeout)
        except Exception as exc:  # papermill raises after saving the failed notebook
            lines = str(exc).strip().splitlines()
            error = f"{type(exc).__name__}: {lines[-1] if lines else repr(exc)}"
            out_nb = nbformat.read(executed, as_version=4) if executed.exists() else nb
            if isinstance(exc, TimeoutError) and attempt < retries:
                (out_dir / f"{cid}.json").unlink(missing_ok=True)
                took = time.perf_counter() - start
                notes.append(f"a cell timed out after {timeout} s ({took:.0f} s lost); rerun")
                continue
        break
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter().from_notebook_node(out_nb)
    page = out_dir / f"{source.stem}.html"
    atomic_write_text(page, body)
    saved = load_numbers(out_dir, cid)
    if error is None and saved is None:
        error = f"chapter {cid} ran but wrote no {cid}.json (did it call save_numbers?)"
    result = ChapterResult(
        chapter=cid,
        title=title,
        status="failed" if error else "ok",
        seconds=round(seconds, 2),
        peak_memory_mb=round(saved["peak_memory_mb"], 1) if saved else None,
        html=page.name,
        numbers=saved["numbers"] if saved else {},
        error=error,
        warnings=notes,
    )
    if not parameters.get("fast", False):
        if seconds > CHAPTER_SECONDS_BUDGET:
            result.warnings.append(f"took {seconds:.0f} s (budget {CHAPTER_SECONDS_BUDGET:.0f} s)")
        if result.peak_memory_mb and result.peak_memory_mb > CHAPTER_MEMORY_BUDGET_MB:
            budget = CHAPTER_MEMORY_BUDGET_MB
            result.warnings.append(
                f"peak memory {result.peak_memory_mb:.0f} MB (budget {budget:.0f} MB)"
            )
    return result


def _fmt_numbers(numbers: dict[str, Any], limit: int = 8) -> str:
    items = []
    for k, v in list(numbers.items())[:limit]:
        if isinstance(v, float):
            v = f"{v:.4g}"
        elif isinstance(v, dict | list):
            v = "…"
        items.append(f"<code>{html.escape(str(k))}</code> {html.escape(str(v))}")
    return "<br>".join(items)


def write_index(results: list[ChapterResult], out_dir: Path, *, settings: dict[str, Any]) -> Path:
    """Write ``out_dir/index.html`` (the chapter table) and ``out_dir/summary.json``."""
    rows = []
    for r in results:
        link = f'<a href="{html.escape(r.html)}">{html.escape(r.title)}</a>' if r.html else r.title
        status = r.status if not r.error else f"{r.status}: {html.escape(r.error)}"
        mem = f"{r.peak_memory_mb:.0f}" if r.peak_memory_mb is not None else "–"
        notes = "<br>".join(html.escape(w) for w in r.warnings)
        rows.append(
            f'<tr class="{r.status}"><td>{r.chapter}</td><td>{link}</td><td>{status}</td>'
            f"<td>{r.seconds:.1f}</td><td>{mem}</td><td>{_fmt_numbers(r.numbers)}</td>"
            f"<td>{notes}</td></tr>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>handlab report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}tr.failed{{background:#fdd}}
tr.ok td:nth-child(3){{color:#060}}</style></head><body>
<h1>handlab report</h1>
<p>Settings: <code>{html.escape(json.dumps(settings))}</code></p>
<table><tr><th>#</th><th>chapter</th><th>status</th><th>seconds</th><th>peak MB</th>
<th>key numbers</th><th>notes</th></tr>
{"".join(rows)}
</table></body></html>
"""
    index = out_dir / "index.html"
    atomic_write_text(index, page)
    summary = {"settings": settings, "chapters": [asdict(r) for r in results]}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return index


def run_report(
    out: str | Path = "reports",
    *,
    chapters: list[str] | None = None,
    fast: bool = False,
    model: str | None = None,
    data: str | None = None,
    resume: bool = False,
    notebooks: Path | None = None,
) -> list[ChapterResult]:
    """Run chapters into ``out/`` and write ``out/index.html``; returns one result per chapter."""
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = find_chapters(notebooks, chapters)
    parameters: dict[str, Any] = {"fast": fast}
    if model is not None:
        parameters["model"] = model
    if data is not None:
        parameters["data"] = data
    settings = {**parameters, "python": platform.python_version(), "machine": platform.machine()}
    results = []
    earlier = _earlier_results(out_dir) if resume else {}
    for source in sources:
        cid = chapter_id(source)
        page = out_dir / f"{source.stem}.html"
        saved = load_numbers(out_dir, cid)
        if resume and saved and page.exists() and page.stat().st_mtime > source.stat().st_mtime:
            before = earlier.get(cid)
            if before is not None and before.status == "ok":  # keep the measured time and notes
                reused = "reused from an earlier run"
                before.warnings = [w for w in before.warnings if w != reused] + [reused]
                results.append(before)
                continue
            results.append(
                ChapterResult(
                    cid,
                    source.stem,
                    "ok",
                    0.0,
                    saved["peak_memory_mb"],
                    page.name,
                    saved["numbers"],
                    warnings=["reused from an earlier run (its time was not recorded)"],
                )
            )
            continue
        # A stale JSON must not let a failing rerun pass as done.
        (out_dir / f"{cid}.json").unlink(missing_ok=True)
        print(f"[handlab report] chapter {cid}: {source.name} ...", flush=True)
        result = run_chapter(source, out_dir, parameters=parameters)
        print(
            f"[handlab report] chapter {cid}: {result.status} in {result.seconds:.1f} s"
            + (f" ({result.error})" if result.error else ""),
            flush=True,
        )
        results.append(result)
        write_index(results, out_dir, settings=settings)
    write_index(results, out_dir, settings=settings)
    print(f"[handlab report] wrote {out_dir / 'index.html'}", flush=True)
    return results


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
