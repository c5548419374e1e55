"""Rows a batch writes with Core INSERTs (executemany) after the ORM flush, instead of one ORM object each.

Intake's fast mode (intake/pipeline.py) writes about eight rows a message; building and flushing an ORM object per
history event and outbox row was the largest part of the poller's time. While :func:`collecting` is on for a
session, the history events, outbox rows and attachments of the messages are queued here as plain
:class:`Row` values. Each flush of the session writes them right after its own rows (the requests, clients and
journal entries they point at then have ids): per table in creation order, so their ids increase in the order the
ORM would have given them, tables in the order of their foreign keys (outbox, events, attachments). A savepoint's
flush writes them inside the savepoint, a rollback takes them back with the rest.

ORM objects of the same tables must not be mixed with queued rows in one flush (their ids would come first):
:func:`_guard` refuses that flush, and intake's fast mode, failing, writes the batch again in the careful mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, event, func, insert, select
from sqlalchemy.orm import Session

from mailservice.db import Base, with_column_defaults

_ROWS = "bulk_rows"
# The queued rows by (model, foreign key column, id() of the object it points at): what a request's queued events
# are is asked once a message, and scanning the whole queue each time made a batch cost the square of its size.
# The rows hold their targets, so an id() here cannot be reused while its entry exists.
_BY_REF = "bulk_rows_by_ref"
# Called after a table's rows were written: (session, the rows). The search index notes the requests it must
# rewrite (inforequests/search_index.py); the ORM's after_flush hook never sees these rows.
WrittenHook = Callable[[Session, list["Row"]], None]
_hooks: dict[str, list[WrittenHook]] = {}


class Row:
    """One queued row: its model, its column values, and the objects (ORM or :class:`Row`) whose ids its foreign
    keys take once they are written. ``id`` is known after the write."""

    __slots__ = ("id", "model", "refs", "values")

    def __init__(self, model: type[Base], values: dict[str, Any], refs: dict[str, Any]) -> None:
        self.model = model
        self.values = values
        self.refs = refs
        self.id: int | None = None

    def ref(self, column: str) -> Any:
        """The object the foreign key ``column`` points at (None if none)."""
        return self.refs.get(column)


def collecting(session: Session) -> bool:
    """Whether the session queues rows here (intake's fast mode) rather than as ORM objects."""
    return _ROWS in session.info


def start(session: Session) -> None:
    """Queue rows from now on (the caller flushes before :func:`stop`)."""
    session.info.setdefault(_ROWS, [])
    session.info.setdefault(_BY_REF, {})


def stop(session: Session) -> None:
    """Flush, write what is queued and go back to ORM objects."""
    if collecting(session):
        session.flush()  # writes the queued rows too, unless the ORM had nothing to flush
        write(session)
        session.info.pop(_ROWS, None)
        session.info.pop(_BY_REF, None)


def add(session: Session, model: type[Base], values: dict[str, Any], **refs: Any) -> Row:
    """Queue a row of ``model``; ``refs`` map a foreign key column to the object whose id it takes."""
    # Every column in every row: executemany takes its columns from the first row's keys.
    row = Row(model, {**_columns(model), **with_column_defaults(model, values)}, refs)
    session.info[_ROWS].append(row)
    by_ref = session.info[_BY_REF]
    for column, target in refs.items():
        if target is not None:
            by_ref.setdefault((model, column, id(target)), []).append(row)
    return row


@functools.cache
def _columns(model: type[Base]) -> dict[str, None]:
    table: Table = model.__table__  # type: ignore[assignment]
    return {column.name: None for column in table.columns if not column.primary_key}


def queued(session: Session) -> list[Row]:
    """The rows queued and not written yet, in creation order."""
    rows: list[Row] = session.info.get(_ROWS, [])
    return rows


def queued_for(session: Session, model: type[Base], column: str, target: object) -> list[Row]:
    """The queued rows of ``model`` whose foreign key ``column`` points at ``target``, in creation order."""
    rows: list[Row] = session.info.get(_BY_REF, {}).get((model, column, id(target)), [])
    return rows


def on_written(table: str, hook: WrittenHook) -> None:
    """Call ``hook`` after rows of ``table`` were written."""
    _hooks.setdefault(table, []).append(hook)


def write(session: Session) -> None:
    """Insert the queued rows: per table in creation order, tables in foreign-key order."""
    rows = session.info.get(_ROWS)
    if not rows:
        return
    session.info[_ROWS] = []
    session.info[_BY_REF] = {}
    by_table: dict[Table, list[Row]] = {}
    for row in rows:
        by_table.setdefault(row.model.__table__, []).append(row)
    referenced = {id(target) for row in rows for target in row.refs.values() if isinstance(target, Row)}
    conn = session.connection()
    for table in Base.metadata.sorted_tables:  # parents before children
        table_rows = by_table.get(table)
        if not table_rows:
            continue
        params = [_params(row) for row in table_rows]
        if any(id(row) in referenced for row in table_rows):
            ids = _insert_numbered(conn, table, params)
            for row, new_id in zip(table_rows, ids, strict=True):
                row.id = new_id
        else:
            conn.execute(insert(table), params)
        for hook in _hooks.get(table.name, ()):
            hook(session, table_rows)


def _params(row: Row) -> dict[str, Any]:
    params = dict(row.values)
    for column, target in row.refs.items():
        if target is not None:
            assert target.id is not None, f"{column}: the row it points at is not written yet"
        params[column] = target.id if target is not None else None
    return params


def _insert_numbered(conn: Any, table: Table, params: list[dict[str, Any]]) -> list[int]:
    """Insert rows whose ids other rows need, in order; returns their ids in that order."""
    if conn.dialect.name == "sqlite":
        # As db._number_new_rows: the write lock is held from BEGIN IMMEDIATE, so max(id) + 1 is SQLite's own next
        # id, and numbering the rows here keeps one executemany (SQLite cannot map RETURNING rows to parameters).
        last = conn.execute(select(func.max(table.c.id))).scalar() or 0
        ids = list(range(last + 1, last + 1 + len(params)))
        conn.execute(insert(table), [{**p, "id": i} for p, i in zip(params, ids, strict=True)])
        return ids
    result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), params)
    return [int(i) for i in result.scalars()]


def _write_after_flush(session: Session, _context: Any) -> None:
    write(session)


def _guard(session: Session, _context: Any, _instances: Any) -> None:
    """Refuse a flush that would put ORM rows of a queued table before the queued ones."""
    rows = session.info.get(_ROWS)
    if not rows:
        return
    tables = {row.model.__table__ for row in rows}
    for obj in session.new:
        if getattr(type(obj), "__table__", None) in tables:
            raise RuntimeError(f"{type(obj).__name__} added as an ORM object while its rows are queued in bulk")


event.listen(Session, "before_flush", _guard)
event.listen(Session, "after_flush_postexec", _write_after_flush)
