"""Render a report in headless Chromium and check that the pages and their plotly figures load.

``make check-html`` runs it on ``reports/`` (kept out of ``make test``: it needs Debian's
``chromium`` package). A plotly figure counts as loaded when plotly.js has drawn its SVG
(``main-svg``) into the page, i.e. the figure survived nbconvert's HTML export and its script ran.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["check_report", "render_dom"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no Chromium found: install Debian's `chromium` package (apt-get install chromium)"
    )


def render_dom(page: Path, *, screenshot: Path | None = None, timeout: int = 120) -> str:
    """The DOM of ``page`` after its scripts ran (and optionally a PNG screenshot)."""
    with tempfile.TemporaryDirectory() as profile:
        base = [_browser(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        url = page.resolve().as_uri()
        dom = subprocess.run(
            [*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
        if screenshot is not None:
            subprocess.run(
                [*base, f"--screenshot={screenshot.resolve()}", "--window-size=1280,1600", url],
                capture_output=True,
                timeout=timeout,
                check=True,
            )
    return dom


def check_report(folder: str | Path = "reports") -> list[str]:
    """Problems found in ``folder/index.html`` and every chapter page it links (empty = fine)."""
    folder = Path(folder)
    index = folder / "index.html"
    if not index.exists():
        return [f"{index}: missing (run `make report` first)"]
    problems = []
    dom = render_dom(index, screenshot=folder / "index.png")
    if "handlab report" not in dom:
        problems.append(f"{index}: did not render")
    for page in sorted(folder.glob("[0-9][0-9]_*.html")):
        source = page.read_text(encoding="utf-8")
        dom = render_dom(page)
        n_figures = source.count('class="plotly-graph-div"')
        n_drawn = dom.count('class="main-svg"')
        if n_figures and n_drawn < n_figures:
            problems.append(f"{page.name}: {n_figures} plotly figures, {n_drawn} drawn")
        print(f"[check-html] {page.name}: {n_figures} plotly figures, {n_drawn} svg layers drawn")
    return problems


if __name__ == "__main__":
    found = check_report(sys.argv[1] if len(sys.argv) > 1 else "reports")
    for p in found:
        print(f"[check-html] PROBLEM {p}")
    sys.exit(1 if found else 0)
