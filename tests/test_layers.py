"""The import graph keeps the layers of the README's Architecture section: read from the source
with ``ast`` (every import, also those inside functions), so a new import that crosses a layer
fails here with the module that made it."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "handlab"
# the shared vocabulary and the small utilities under everything (checks, files, errors, locks)
VOCABULARY = {"skeleton", "geometry", "codecs", "metrics", "hand_model", "_checks", "_io"}
VOCABULARY |= {"errors", "_lock"}  # the error classes and the output lock: import no other layer
VOCABULARY |= {"_memory"}  # gc + malloc_trim between models (chapters 09, 11): imports none


def _part(module: str) -> str:
    """``handlab.models.a2j`` -> ``models``; ``handlab`` -> ``handlab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports() -> dict[str, set[str]]:
    """Top-level part of each module -> the handlab parts it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # ``from handlab import zoo`` imports handlab.zoo
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found.update(_part(n) for n in names if n.split(".")[0] == "handlab")
    return graph


GRAPH = _imports()
PARTS = {_part(m) for m in GRAPH}


def _offenders(importers: set[str], forbidden: set[str]) -> list[str]:
    """``module imports [...]`` for each module of ``importers`` importing a ``forbidden`` part
    other than its own."""
    rows = []
    for module, parts in GRAPH.items():
        bad = parts & (forbidden - {_part(module)})
        if _part(module) in importers and bad:
            rows.append(f"{module} imports {sorted(bad)}")
    return sorted(rows)


def test_the_graph_was_read():
    assert len(GRAPH) > 80 and "commands" in GRAPH["handlab.cli"]


@pytest.mark.parametrize(
    ("importers", "forbidden"),
    [
        # the vocabulary imports nothing else from handlab
        (VOCABULARY, PARTS - VOCABULARY - {"handlab"}),
        # the generator poses the hand model and renders: nothing from the layers above it
        ({"synth"}, {"data", "models", "training", "zoo", "attribution", "viz", "commands"}),
        # datasets are read, not modelled or explained
        ({"data"}, {"models", "training", "zoo", "attribution", "viz", "commands"}),
        # training and the zoo never explain or draw
        ({"training", "zoo"}, {"attribution", "viz", "commands", "figures", "report"}),
        # models take tensors: no datasets, training, zoo, attribution or drawing
        ({"models"}, {"synth", "data", "training", "zoo", "attribution", "viz", "commands"}),
        # explaining never trains, loads or resolves names, and does not draw
        ({"attribution"}, {"synth", "data", "training", "zoo", "viz", "commands", "figures"}),
        # nothing below the command line imports it
        (PARTS - {"cli", "commands"}, {"cli", "commands"}),
        # viz draws: it generates, loads and trains nothing (the figure recipes do)
        ({"viz"}, {"synth", "data", "zoo", "training", "models", "commands"}),
        # drawing sits on top of the library: only the figures, the commands and viz use it
        (PARTS - {"viz", "figures", "commands"}, {"viz", "figures"}),
    ],
)  # fmt: skip
def test_layers(importers, forbidden):
    assert _offenders(importers, forbidden) == []
