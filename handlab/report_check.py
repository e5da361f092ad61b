"""Render a report in headless Chromium and check that its pages read offline.

``make check-html`` runs it on ``reports/`` (kept out of ``make test``: it needs Debian's
``chromium`` package). Every page is loaded from disk with the network refused, and checked:

- every plotly figure drawn (plotly.js put its SVG, ``main-svg``, into the page);
- math typeset by the report's own MathJax copy (no raw ``$$`` left in the rendered text);
- no widget view left without its static figure (:mod:`handlab.report_html`);
- nothing loaded from the network (``<script src="http...">``, ``<link href="http...">``).

A screenshot of each page is written to ``reports/_screenshots/`` to be looked at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["check_page", "check_report", "render_dom"]

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
    # offline: any request to the network fails, as on a laptop without one
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--virtual-time-budget=20000",
)
REMOTE = re.compile(r"<(script|link)[^>]+(src|href)=[\"']https?:", re.IGNORECASE)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "no Chromium found: install Debian's `chromium` package (apt-get install chromium)"
    )


def render_dom(page: Path, *, screenshot: Path | None = None, timeout: int = 180) -> str:
    """The DOM of ``page`` after its scripts ran (and optionally a PNG screenshot)."""
    with tempfile.TemporaryDirectory() as profile:
        base = [_browser(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        url = page.resolve().as_uri()
        dom = subprocess.run(
            [*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [*base, f"--screenshot={screenshot.resolve()}", "--window-size=1280,2400", url],
                capture_output=True,
                timeout=timeout,
                check=True,
            )
    return dom


def check_page(source: str, dom: str, name: str) -> list[str]:
    """Problems of one chapter page: ``source`` is the HTML file, ``dom`` it after rendering."""
    problems = []
    n_figures = source.count('class="plotly-graph-div"')
    n_drawn = dom.count('class="main-svg"')
    if n_figures and n_drawn < n_figures:
        problems.append(f"{name}: {n_figures} plotly figures, {n_drawn} drawn")
    text = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)
    if "$$" in text and "MathJax" not in dom:
        problems.append(f"{name}: math left raw ($$ ... $$): MathJax did not typeset it")
    if "application/vnd.jupyter.widget-view+json" in source or "handlab-no-static-view" in source:
        problems.append(f"{name}: a widget view without its static figure")
    remote = REMOTE.findall(source)
    if remote:
        problems.append(f"{name}: {len(remote)} resources loaded from the network")
    return problems


def check_report(folder: str | Path = "reports") -> list[str]:
    """Problems found in ``folder/index.html`` and every chapter page (empty = fine)."""
    folder = Path(folder)
    index = folder / "index.html"
    if not index.exists():
        return [f"{index}: missing (run `make report` first)"]
    shots = folder / "_screenshots"
    problems = []
    dom = render_dom(index, screenshot=shots / "index.png")
    if "handlab report" not in dom:
        problems.append(f"{index}: did not render")
    for page in sorted(folder.glob("[0-9][0-9]_*.html")):
        source = page.read_text(encoding="utf-8")
        dom = render_dom(page, screenshot=shots / f"{page.stem}.png")
        found = check_page(source, dom, page.name)
        problems += found
        n_figures = source.count('class="plotly-graph-div"')
        n_drawn = dom.count('class="main-svg"')
        n_math = dom.count('class="MathJax')
        verdict = "ok" if not found else "PROBLEMS"
        print(
            f"[check-html] {page.name}: {n_figures} plotly figures, {n_drawn} svg layers drawn, "
            f"{n_math} MathJax elements: {verdict}"
        )
    return problems


if __name__ == "__main__":
    found = check_report(sys.argv[1] if len(sys.argv) > 1 else "reports")
    for p in found:
        print(f"[check-html] PROBLEM {p}")
    sys.exit(1 if found else 0)
