"""The register's form: its columns, and changes of them (pure).

Seed 003, appendix 2, section III: "Изменение формы – это исключение, добавление или изменение названия граф
Реестра", made like any other change: a process owner's request agreed by the units concerned and applied by the
officer. A version keeps its form; the template's columns (:data:`~.register.COLUMNS`) are the form of a register
nobody changed. The rules here:

* a column may be added (optional, at the end, with a code ``extra_N`` of its own), renamed (any column; the old
  title stays an alias, so the department's earlier files still import), or excluded;
* a mandatory column (marked with an asterisk by the seed) and our mark of processes outside the catalogue are
  never excluded: the register's rules depend on them;
* titles stay distinct (loosely compared, as headers are read).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from mailservice.processes.catalogue import normalise
from mailservice.processes.register import COLUMN_BY_CODE, COLUMNS, Column

EXTRA_PREFIX = "extra_"
KEPT = frozenset({"custom"})  # never excluded besides the mandatory columns


class FormError(ValueError):
    """A change of the form the rules do not allow; the message is Russian."""


class ColumnOp(StrEnum):
    """What a change of the form does."""

    add = "add"
    rename = "rename"
    remove = "remove"


OP_NAMES = {ColumnOp.add: "добавить графу", ColumnOp.rename: "переименовать графу", ColumnOp.remove: "исключить графу"}


def form_from_json(value: Sequence[Any] | None) -> tuple[Column, ...]:
    """A stored form (None: the template's)."""
    if not value:
        return COLUMNS
    return tuple(
        Column(str(c["code"]), str(c["title"]), bool(c.get("mandatory", False)), tuple(c.get("aliases", ())))
        for c in value
    )


def form_to_json(columns: Sequence[Column]) -> list[dict[str, Any]] | None:
    """A form as stored (None when it is the template's)."""
    if tuple(columns) == COLUMNS:
        return None
    return [{"code": c.code, "title": c.title, "mandatory": c.mandatory, "aliases": list(c.aliases)} for c in columns]


def find(columns: Sequence[Column], code: str) -> Column:
    """A column of the form by its code."""
    for column in columns:
        if column.code == code:
            return column
    raise FormError(f"В форме реестра нет графы «{code}»")


def _check_title(columns: Sequence[Column], title: str, *, skip: str = "") -> str:
    title = " ".join(title.split()).rstrip("*").strip()
    if not title:
        raise FormError("Укажите название графы")
    if len(title) > 200:
        raise FormError("Название графы длиннее 200 знаков")
    key = normalise(title)
    for column in columns:
        if column.code != skip and key in {normalise(column.title), *(normalise(a) for a in column.aliases)}:
            raise FormError(f"Графа «{column.title}» уже называется так (или так называлась)")
    return title


def change_form(columns: Sequence[Column], op: ColumnOp, *, code: str = "", title: str = "") -> tuple[Column, ...]:
    """The form after one change; :class:`FormError` when the rules above refuse it."""
    columns = tuple(columns)
    if op is ColumnOp.add:
        title = _check_title(columns, title)
        taken = [int(c.code.removeprefix(EXTRA_PREFIX)) for c in columns if c.code.startswith(EXTRA_PREFIX)]
        return (*columns, Column(f"{EXTRA_PREFIX}{max(taken, default=0) + 1}", title))
    current = find(columns, code)
    if op is ColumnOp.rename:
        title = _check_title(columns, title, skip=code)
        aliases = tuple(dict.fromkeys((current.title, *current.aliases)))
        renamed = Column(current.code, title, current.mandatory, aliases)
        return tuple(renamed if c.code == code else c for c in columns)
    if current.mandatory or code in KEPT:
        raise FormError(f"Графу «{current.title}» исключить нельзя: она обязательна для реестра")
    return tuple(c for c in columns if c.code != code)


def describe_change(columns: Sequence[Column], op: ColumnOp, *, code: str = "", title: str = "") -> list[str]:
    """What a change of the form asks for, as lines a person reads."""
    lines = [f"Что просят: {OP_NAMES[op]} (изменение формы реестра)."]
    if op is ColumnOp.add:
        lines.append(f"Новая графа: «{title}».")
    else:
        known = next((c for c in columns if c.code == code), None)
        name = known.title if known else COLUMN_BY_CODE[code].title if code in COLUMN_BY_CODE else code
        lines.append(f"Графа: «{name}»" + (f" → «{title}»." if op is ColumnOp.rename else "."))
    return lines
