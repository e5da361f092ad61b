"""The README and the docs/ pages: the measured results table is the zoo's cards (regenerate it
with ``handlab zoo table``), and every relative link points at a file that exists."""

import re
from pathlib import Path

import pytest

from handlab import zoo

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_results_table_in_the_docs_is_generated_from_the_cards():
    page = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    assert zoo.results_table() in page, "rerun `handlab zoo table` into docs/training.md"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_point_at_files(page):
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local or page.name != "README.md"  # the README links the docs pages
    missing = [t for t in local if not (page.parent / t).exists()]
    assert missing == []
