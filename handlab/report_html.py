"""The report's HTML: pages that read offline, and the index (used by :mod:`handlab.report`).

- Math: nbconvert loads MathJax from a CDN by default, so ``$$...$$`` stayed raw offline. The
  pages load the MathJax 2.7 copy shipped by the ``jupyter-server-mathjax`` package, copied once
  into the report folder (``_static/mathjax``).
- Widgets: an ipywidgets view is empty in a static page (its state needs a live kernel or a
  widget manager from a CDN). Every handlab explorer draws into an ``ipywidgets.Output``;
  nbclient records what the Output captured in the notebook's widget state, and
  :func:`add_static_widgets` puts those outputs (the figure for the first slider setting) in
  the widget's place, so the page shows it and needs no CDN.
- Failures: :func:`failed_cell` names the failing cell (its number among the chapter's code
  cells and its first source line), and :func:`add_banner` puts the error at the top of the page.
- Index: the key numbers are flattened to dotted names (``eval.simplebaseline_r18.epe_px``).

>>> flatten({"a": {"b": 1.23456, "c": [1, 2]}, "d": "x"})
{'a.b': 1.23456, 'a.c': [1, 2], 'd': 'x'}
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "MATHJAX_DIR",
    "add_banner",
    "add_static_widgets",
    "failed_cell",
    "flatten",
    "format_numbers",
    "index_page",
    "install_mathjax",
    "to_html",
]

MATHJAX_DIR = "_static/mathjax"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NO_STATIC_VIEW = "handlab-no-static-view"
NO_STATIC_TEXT = "An interactive widget without a static view: open the chapter with `make lab`."
PLOTLY_MATHJAX = re.compile(
    r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"></script>'
)


def install_mathjax(out_dir: Path) -> str:
    """Copy the packaged MathJax into ``out_dir`` once; the URL pages load it from (relative)."""
    import jupyter_server_mathjax  # ships MathJax 2.7 (the version nbconvert's template configures)

    target = Path(out_dir) / MATHJAX_DIR
    if not (target / "MathJax.js").is_file():
        source = Path(jupyter_server_mathjax.__file__).parent / "static"
        shutil.copytree(source, target, dirs_exist_ok=True)
    return f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def to_html(nb: Any, out_dir: Path) -> str:
    """The page of an executed notebook, with local MathJax and static widget figures."""
    from nbconvert import HTMLExporter

    add_static_widgets(nb)
    # the template always loads require.js from a CDN; nothing on these pages needs it (plotly's
    # inline bundle works without it), so its tag is removed
    no_require = "handlab-no-require-js"
    exporter = HTMLExporter(mathjax_url=install_mathjax(out_dir), require_js_url=no_require)
    body, _ = exporter.from_notebook_node(nb)
    body = body.replace(f'<script src="{no_require}"></script>', "")
    # plotly's notebook renderer adds a MathJax 3 from a CDN before every figure (for LaTeX in
    # labels, which these figures do not use); the page's own MathJax is there, so it goes too
    return PLOTLY_MATHJAX.sub("", body)


def _widget_outputs(state: dict[str, Any], model_id: str, seen: set[str]) -> Iterator[dict]:
    """The outputs captured by every ``Output`` widget inside widget ``model_id``, in order."""
    if model_id in seen or model_id not in state:
        return
    seen.add(model_id)
    model = state[model_id]
    inner = model.get("state", {})
    if model.get("model_name") == "OutputModel":
        yield from inner.get("outputs", [])
    for child in inner.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            yield from _widget_outputs(state, child.removeprefix("IPY_MODEL_"), seen)


def add_static_widgets(nb: Any) -> int:
    """Replace each widget view by what its ``Output`` widgets showed; returns how many.

    A note says it is the figure for the widget's first setting and that the controls need a
    kernel (open the chapter in Jupyter, ``make lab``). The widget state is dropped from the
    page: rendering it needs a widget manager from a CDN, and the figure is already there.
    """
    import nbformat

    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    note = "Static view (first setting); the controls need a live kernel: `make lab`."
    added = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW) if "data" in out else None
            if not view:
                outputs.append(out)
                continue
            captured = list(_widget_outputs(state, view.get("model_id", ""), set()))
            if captured:
                outputs.append(nbformat.v4.new_output("display_data", {"text/markdown": note}))
                outputs.extend(nbformat.from_dict(c) for c in captured)
                added += 1
            else:  # said on the page, and flagged by make check-html
                missing = {"text/html": f'<p class="{NO_STATIC_VIEW}">{NO_STATIC_TEXT}</p>'}
                outputs.append(nbformat.v4.new_output("display_data", missing))
        cell["outputs"] = outputs
    return added


def failed_cell(nb: Any) -> tuple[int, str] | None:
    """``(number, first source line)`` of the cell where an executed chapter stopped.

    That is the cell papermill marked ``failed`` or, after a timeout (papermill marks the cut-off
    cell ``completed``), the last cell that started. The number counts the chapter's own code
    cells from 1 (papermill's injected parameters cell is not counted), as in the ``.py`` source;
    ``None`` when no cell started.
    """
    found, number = None, 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        number += 1
        status = cell.metadata.get("papermill", {}).get("status")
        if status in (None, "pending"):
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        found = (number, lines[0] if lines else "")
        if status == "failed":
            break
    return found


def add_banner(nb: Any, message: str) -> None:
    """Put ``message`` at the top of the page in a red box (the failed chapter's banner)."""
    import nbformat

    text = html.escape(message)
    box = (
        '<div style="border:2px solid #c00;background:#fee;padding:8px 12px;font-size:1.1em">'
        f"<b>This chapter failed.</b> {text}</div>"
    )
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(box))


def flatten(numbers: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys (lists are kept as values)."""
    flat: dict[str, Any] = {}
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(_fmt(v) for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return str(value)


def format_numbers(numbers: dict[str, Any], limit: int = 10) -> str:
    """The index cell: the first ``limit`` flattened numbers, then how many more are in the JSON.

    >>> format_numbers({"eval": {"r18": {"epe_px": 3.91234}}})
    '<code>eval.r18.epe_px</code> 3.912'
    """
    flat = flatten(numbers)
    items = [
        f"<code>{html.escape(k)}</code> {html.escape(_fmt(v))}"
        for k, v in list(flat.items())[:limit]
    ]
    if len(flat) > limit:
        items.append(f"<i>… {len(flat) - limit} more in the chapter's JSON</i>")
    return "<br>".join(items)


def index_page(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    """The index: one row per chapter (``chapter``, ``title``, ``html``, ``status``, ``error``,
    ``seconds``, ``cpu_seconds``, ``peak_memory_mb``, ``peak_anonymous_mb``, ``numbers``,
    ``warnings``, ``json``)."""
    body = []
    for r in rows:
        title = html.escape(r["title"])
        link = f'<a href="{html.escape(r["html"])}">{title}</a>' if r["html"] else title
        status = r["status"] if not r["error"] else f"{r['status']}: {html.escape(r['error'])}"
        anon = r.get("peak_anonymous_mb")
        mem = f"{anon:.0f}" if anon is not None else "–"
        mem += f" / {r['peak_memory_mb']:.0f}" if r["peak_memory_mb"] is not None else " / –"
        cpu = f"{r['cpu_seconds']:.0f}" if r.get("cpu_seconds") is not None else "–"
        numbers = format_numbers(r["numbers"])
        if r.get("json"):
            numbers += f'<br><a href="{html.escape(r["json"])}">all numbers (JSON)</a>'
        notes = "<br>".join(html.escape(w) for w in r["warnings"])
        body.append(
            f'<tr class="{r["status"]}"><td>{r["chapter"]}</td><td>{link}</td><td>{status}</td>'
            f"<td>{r['seconds']:.1f}</td><td>{cpu}</td><td>{mem}</td>"
            f"<td>{numbers}</td><td>{notes}</td></tr>"
        )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>handlab report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}tr.failed{{background:#fdd}}
td:nth-child(7){{font-size:0.9em;white-space:nowrap}}td:nth-child(3){{max-width:28em}}
tr.ok td:nth-child(3){{color:#060}}</style></head><body>
<h1>handlab report</h1>
<p>Settings: <code>{html.escape(json.dumps(settings))}</code></p>
<table><tr><th>#</th><th>chapter</th><th>status</th><th>seconds</th><th>CPU s</th>
<th title="anonymous (the budget) / resident incl. library pages">peak MB<br>anon / resident</th>
<th>key numbers</th><th>notes</th></tr>
{"".join(body)}
</table></body></html>
"""
