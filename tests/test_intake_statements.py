"""A batch of letters writes each table in a few INSERT statements, however many letters it holds.

Each statement is its own trip to the database; a table written one row a statement made intake's journal 5,000
INSERTs a pass (the ORM read a server default back with RETURNING, one row at a time on SQLite: intake/models.py).
The test compares two batches, one three times the other: a table whose statements grow with the letters is written
a row at a time. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_batch
from tests.mailfactory import citizen_mail

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)
_INSERT = re.compile(r"\s*INSERT\s+INTO\s+\"?(\w+)", re.IGNORECASE)


@contextmanager
def _inserts() -> Iterator[Counter[str]]:
    """The INSERT statements sent to the database while the block runs, counted by table."""
    seen: Counter[str] = Counter()

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        match = _INSERT.match(statement)
        if match:
            seen[match.group(1)] += 1

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def _batch(first: int, count: int) -> list[tuple[bytes, Source]]:
    return [
        (
            citizen_mail(
                sender=f"writer{n}@example.ru",
                name=f"Писарев П. {n}",
                subject=f"Запрос о договоре аренды № {n}",
                body=f"Прошу сообщить, действует ли договор аренды земельного участка № {n}.",
            ),
            Source("imap", "INBOX", 7, 1000 + n),
        )
        for n in range(first, first + count)
    ]


def test_the_statements_of_a_batch_do_not_grow_with_its_letters(settings: Settings) -> None:
    # A first letter makes what a database gets once (the year's registration counter).
    assert [r.outcome for r in process_batch(settings, _batch(50, 1), now=NOW)] == [Outcome.new_request]
    counts = []
    for first, count in ((0, 4), (100, 12)):
        with _inserts() as seen:
            results = process_batch(settings, _batch(first, count), now=NOW)
        assert [r.outcome for r in results] == [Outcome.new_request] * count
        counts.append(seen)
    small, large = counts
    # The tables every letter writes: its journal row, request, client and contact, events, acknowledgement.
    for table in ("intake_journal", "requests", "clients", "client_contacts", "events", "outbox"):
        assert small[table] >= 1, (table, small)
    assert small == large, (small, large)
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(IntakeEntry)) == 17
        assert set(session.scalars(select(IntakeEntry.resolution))) == {""}
