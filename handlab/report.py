"""Papermill-run reports: execute the chapter notebooks, render HTML, write an index.

``make report`` runs every chapter on the embedded defaults (synthetic data, shipped models);
``handlab report --chapters 08,09 --model DIR|zoo:NAME --data NAME:ROOT --out DIR`` runs chosen
chapters on a user's own checkpoint and dataset. This module runs the report: the chapters one
after the other, a progress line each, the index (status, run time, CPU time, peak memory, key
numbers) rewritten after each chapter, ``--resume``. A failing chapter is marked failed and the
others still run. No cell is cut off by default: on a busy machine a slow chapter finishes late
and is flagged over budget, it is not thrown away.

The parts: one chapter is executed and its page rendered by :mod:`handlab.report_chapter`; what
a chapter calls inside its kernel (:func:`save_numbers`, :func:`claims_table`,
:func:`model_cards`) is :mod:`handlab.report_numbers`; pages are made by
:mod:`handlab.report_html` (offline math, static figures for widgets); evaluation data is rendered
once per run (:mod:`handlab.report_data`). The names the chapters and tests import stay here.

Every output is written atomically (temporary file, then ``os.replace``), so an interrupted report
never leaves a half-written page; the output folder is locked for the run
(:func:`handlab._lock.output_lock`, the lock every handlab command takes). ``--resume`` keeps a
chapter whose earlier page is ok and was made with the same model, data, fast, seed and chapter
source (:func:`chapter_settings`), and reruns the others.

>>> chapter_id(Path("notebooks/08_poseig.py"))
'08'
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from handlab._io import atomic_write_text
from handlab._lock import output_lock
from handlab.report_chapter import (
    CHAPTER_MEMORY_BUDGET_MB,
    CHAPTER_SECONDS_BUDGET,
    REPO_ROOT,
    ChapterResult,
    chapter_id,
    chapter_settings,
    environment,
    find_chapters,
    run_chapter,
)
from handlab.report_numbers import claims_table, load_numbers, model_cards, save_numbers

__all__ = [
    "CHAPTER_MEMORY_BUDGET_MB",
    "CHAPTER_SECONDS_BUDGET",
    "REPO_ROOT",
    "ChapterResult",
    "chapter_id",
    "chapter_settings",
    "claims_table",
    "find_chapters",
    "load_numbers",
    "model_cards",
    "run_chapter",
    "run_report",
    "save_numbers",
    "write_index",
]


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

    The folder is locked for the run: a second run on it raises
    :class:`~handlab.errors.OutputLockedError` naming the holder. Evaluation data is cached under
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
    with environment(**{CACHE_ENV: str(out_dir / ".cache" / "data")}):  # kernels inherit it
        with output_lock(out_dir):
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
    mem = f", peak {result.peak_memory_mb:.0f} MB resident" if result.peak_memory_mb else ""
    if result.peak_anonymous_mb is not None:
        mem += f" ({result.peak_anonymous_mb:.0f} MB anonymous)"
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
