"""Validate a dataset folder against its published layout (``handlab datasets check NAME ROOT``,
:mod:`handlab.commands.datasets`).

No chapter teaches this module yet (chapter "00" is the placeholder).

Opens every official split (or ``--split``), reads every item (or the first ``--limit``) at full
resolution through the loader's own validation, prints a per-split count table and every problem
found (missing files, unreadable images, bad shapes, NaN or out-of-image annotations), and exits
with status 1 when there is any problem.

>>> report = check_dataset("rhd", "/nonexistent")
>>> report.ok, report.problems[0][:32]
(False, 'training: /nonexistent: rhd root')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlab.data import dataset_class

__all__ = ["CheckReport", "check_dataset"]

_PROBLEMS = (ValueError, OSError)  # DataError and UnsafePickleError are ValueErrors


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`: items per split (None if it could not be opened),
    items checked, skips per split and reason, and one message per problem."""

    name: str
    root: str
    counts: dict[str, int | None] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """The table and the problem list, as printed by the CLI."""
        lines = [f"{self.name} at {self.root}", f"{'split':<12}{'items':>9}{'checked':>9}  skipped"]
        for split, count in self.counts.items():
            skips = ", ".join(f"{n} {why}" for why, n in self.skipped.get(split, {}).items()) or "-"
            shown = "-" if count is None else str(count)
            lines.append(f"{split:<12}{shown:>9}{self.checked.get(split, 0):>9}  {skips}")
        lines.append(f"problems: {len(self.problems)}")
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def check_dataset(
    name: str,
    root: str | Path,
    splits: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    **options: Any,
) -> CheckReport:
    """Open ``name`` at ``root`` for each split and read every item, collecting problems.

    Args:
        name: one of :func:`handlab.data.list_datasets`.
        root: the dataset folder.
        splits: splits to check (default: all official splits of the dataset).
        limit: check only the first ``limit`` items of each split (default all).
        options: passed to the loader (e.g. ``camera="BB"`` for STB).

    Returns:
        a :class:`CheckReport`; ``report.ok`` is False when any problem was found.
    """
    cls = dataset_class(name)
    splits = list(cls.splits if splits is None else splits)
    for split in splits:
        if split not in cls.splits:
            raise ValueError(f"splits: expected some of {list(cls.splits)}, got {split!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit: expected a non-negative int, got {limit}")
    report = CheckReport(name=name, root=str(root))
    for split in splits:
        try:
            ds = cls(root, split, size=None, **options)  # full frames: validation without cropping
        except _PROBLEMS as err:
            report.counts[split] = None
            report.problems.append(f"{split}: {err}")
            continue
        report.counts[split] = len(ds)
        report.skipped[split] = dict(ds.skipped)
        n = len(ds) if limit is None else min(limit, len(ds))
        for i in range(n):
            try:
                ds[i]
            except _PROBLEMS as err:
                report.problems.append(f"{split}: {err}")
        report.checked[split] = n
    return report
