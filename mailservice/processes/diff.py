"""The difference between two versions of the register (pure): columns added, excluded or renamed; processes
added or removed; and, for a process in both, every cell that changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailservice.processes.register import Column, RowData, cells_of


@dataclass(frozen=True)
class CellChange:
    """One cell of one process that differs."""

    code: str
    title: str
    old: str
    new: str


@dataclass(frozen=True)
class RowChange:
    """A process present in both versions with the cells that differ."""

    process_id: str
    process_name: str
    cells: tuple[CellChange, ...]


@dataclass(frozen=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b``."""

    columns_added: tuple[Column, ...]
    columns_removed: tuple[Column, ...]
    columns_renamed: tuple[tuple[Column, Column], ...]  # (before, after)
    added: tuple[RowData, ...]
    removed: tuple[RowData, ...]
    changed: tuple[RowChange, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        """Whether the two versions say the same."""
        return (
            not (self.columns_added or self.columns_removed or self.columns_renamed or self.added or self.removed)
            and not self.changed
        )


def diff_versions(
    rows_a: Sequence[RowData], form_a: Sequence[Column], rows_b: Sequence[RowData], form_b: Sequence[Column]
) -> VersionDiff:
    """Compare two versions (each with its own form), matching processes by their id."""
    codes_a = {c.code: c for c in form_a}
    codes_b = {c.code: c for c in form_b}
    renamed = tuple((codes_a[c.code], c) for c in form_b if c.code in codes_a and codes_a[c.code].title != c.title)
    # Cells are compared over every column of either form: an excluded column's values show as removed.
    compared = [*form_b, *(c for c in form_a if c.code not in codes_b)]
    by_id_a = {r.process_id: r for r in rows_a}
    ids_b = {r.process_id for r in rows_b}
    changed = []
    unchanged = 0
    for row in rows_b:
        before = by_id_a.get(row.process_id)
        if before is None:
            continue
        old_cells = {k: v for k, v in cells_of(before).items() if k in codes_a}
        new_cells = {k: v for k, v in cells_of(row).items() if k in codes_b}
        cells = tuple(
            CellChange(c.code, c.title, old_cells.get(c.code, ""), new_cells.get(c.code, ""))
            for c in compared
            if old_cells.get(c.code, "") != new_cells.get(c.code, "")
        )
        if cells:
            changed.append(RowChange(row.process_id, row.process_name, cells))
        else:
            unchanged += 1
    return VersionDiff(
        columns_added=tuple(c for c in form_b if c.code not in codes_a),
        columns_removed=tuple(c for c in form_a if c.code not in codes_b),
        columns_renamed=renamed,
        added=tuple(r for r in rows_b if r.process_id not in by_id_a),
        removed=tuple(r for r in rows_a if r.process_id not in ids_b),
        changed=tuple(changed),
        unchanged=unchanged,
    )
