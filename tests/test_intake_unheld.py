"""A batch of letters from new addresses asks the database about their contacts once, not once a letter.

The batch's look-ups already know which addresses no stored contact row holds (``BatchLookups._load_clients``), so
the new client of such an address does not look for a contact left on a merged record (``_left_on_merged``): that
query, once a letter, cost about 0.2 ms of the poller's CPU a letter (README, "State of the work"). What the query
finds must still be found: a contact left on a merged record in the same batch is moved (tests/test_merged_contacts.py,
tests/test_tryout_dec6f_merged.py), and an address a handler in a savepoint took is asked again. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Client, ClientContact, Request
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_batch
from tests.mailfactory import citizen_mail

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)


def _source() -> Source:
    return Source("smtp", envelope_from="someone@example.ru")


@contextmanager
def _contact_queries() -> Iterator[list[str]]:
    """The SELECT statements that read the client_contacts table while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "client_contacts" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def _letters(first: int, count: int) -> list[bytes]:
    return [
        citizen_mail(sender=f"new{n}@example.ru", name=f"Новиков Н. {n}", subject=f"Запрос о договоре аренды {n}")
        for n in range(first, first + count)
    ]


def test_the_contact_queries_of_a_batch_do_not_grow_with_its_new_addresses(settings: Settings) -> None:
    """Two batches of new senders, one three times the other: the same number of contact queries."""
    counts = []
    for first, count in ((0, 4), (100, 12)):
        with _contact_queries() as seen:
            results = process_batch(settings, [(raw, _source()) for raw in _letters(first, count)], now=NOW)
        assert [r.outcome for r in results] == [Outcome.new_request] * count
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Client)) == 16
        assert session.scalar(select(func.count()).select_from(ClientContact)) == 16
        assert session.scalar(select(func.count()).select_from(Request)) == 16


def test_a_new_address_twice_in_a_batch_is_one_client(settings: Settings) -> None:
    """The second letter of a new address finds the client the first one made (not flushed yet): one client, one
    contact row, two requests."""
    letters = [
        citizen_mail(sender="twice@example.ru", subject="Запрос о договоре аренды"),
        citizen_mail(sender="Twice@Example.ru", subject="Запрос о торгах", body="Прошу сообщить дату торгов."),
    ]
    results = process_batch(settings, [(raw, _source()) for raw in letters], now=NOW)
    assert [r.outcome for r in results] == [Outcome.new_request] * 2
    with session_scope(settings) as session:
        [contact] = session.scalars(select(ClientContact)).all()
        clients = set(session.scalars(select(Request.client_id)))
        assert clients == {contact.client_id}


def test_two_thanks_from_a_new_address_in_a_batch_make_one_client(settings: Settings) -> None:
    """A thank-you that answers nothing of ours makes its author a client with no request (feedback); the second
    one in the same batch must find that client, not make another with the same address."""
    letters = [
        citizen_mail(sender="thanks@example.ru", subject="Спасибо", body="Спасибо!", message_id=f"t{n}@example.ru")
        for n in range(2)
    ]
    results = process_batch(settings, [(raw, _source()) for raw in letters], now=NOW)
    assert [r.outcome for r in results] == [Outcome.feedback] * 2, results
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Client)) == 1
        assert session.scalar(select(func.count()).select_from(ClientContact)) == 1


def test_a_letter_after_a_thanks_from_the_same_new_address_in_a_batch_finds_its_client(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A thank-you from a new address, written in its own savepoint, makes its author a client; a request from the
    same address later in the batch, written by the batch itself, finds that client rather than adding the address
    to a second one (whose unique contact would send the whole batch back to be written message by message)."""
    letters = [
        citizen_mail(sender="new@example.ru", subject="Спасибо", body="Спасибо!", message_id="t@example.ru"),
        citizen_mail(sender="new@example.ru", subject="Запрос о торгах", body="Прошу сообщить дату торгов."),
    ]
    with caplog.at_level("WARNING", logger="mailservice.intake.pipeline"):
        results = process_batch(settings, [(raw, _source()) for raw in letters], now=NOW)
    assert "message by message" not in caplog.text
    assert [r.outcome for r in results] == [Outcome.feedback, Outcome.new_request], results
    with session_scope(settings) as session:
        [contact] = session.scalars(select(ClientContact)).all()
        assert set(session.scalars(select(Request.client_id))) == {contact.client_id}
