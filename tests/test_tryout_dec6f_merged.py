"""Fixes of tryout 7's findings X3, X4, X5, X8, X10 (contacts left on merged records, migration 2124).

The tests are those of tests/test_tryout_dec6f.py without their expected failure, plus what the fixes chose: a
letter from an address whose record has no live survivor (merged into an anonymised record, or on a loop of merges)
is a new client's request, and the address goes to that new client. They run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mailservice import config, db
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import search, service
from mailservice.inforequests.models import Client, ClientContact, Event, Request
from mailservice.intake import pipeline
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import process_raw
from tests.console_support import staff_request
from tests.mailfactory import citizen_mail
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_merged_contacts import NOW, _merged_pair, _source

# X3 -------------------------------------------------------------------------------------------------------------


def _anonymise(settings: Settings, client_id: int) -> None:
    """What retention leaves of a record (mailservice/retention.py: name and contacts gone, anonymised_at set)."""
    with session_scope(settings) as session:
        client = session.get_one(Client, client_id)
        client.name = client.organisation = client.postal_address = ""
        client.anonymised_at = NOW - dt.timedelta(days=30)
        session.execute(text("DELETE FROM client_contacts WHERE client_id = :c"), {"c": client_id})


def test_a_letter_from_an_address_left_on_a_record_merged_into_an_anonymised_one_gives_it_no_data(
    settings: Settings,
) -> None:
    _merged_id, survivor_id = _merged_pair(settings, kind="email", value="old@example.ru", proven=True)
    _anonymise(settings, survivor_id)
    process_raw(settings, citizen_mail(sender="old@example.ru", name="Орлов О."), _source(), now=NOW)
    with session_scope(settings) as session:
        on_anonymised = session.scalars(select(ClientContact.value).where(ClientContact.client_id == survivor_id))
        assert list(on_anonymised) == []
        assert session.scalar(select(func.count()).where(Request.client_id == survivor_id)) == 0
        assert session.get_one(Client, survivor_id).name == ""


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_letter_from_an_address_whose_record_has_no_live_survivor_is_a_new_clients_request(
    settings: Settings, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merged into an anonymised record: the address is a stranger's now (retention removed its person), so the
    letter is registered, not held, for a new client who takes the address unproven with an internal note."""
    if mode == "careful":
        monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)
    merged_id, survivor_id = _merged_pair(settings, kind="email", value="old@example.ru", proven=True)
    _anonymise(settings, survivor_id)
    result = process_raw(settings, citizen_mail(sender="old@example.ru", name="Орлов О."), _source(), now=NOW)
    assert result.outcome is Outcome.new_request, result
    with session_scope(settings) as session:
        [request] = session.scalars(select(Request)).all()
        assert request.client_id not in (merged_id, survivor_id)
        [contact] = session.scalars(select(ClientContact).where(ClientContact.value == "old@example.ru")).all()
        assert (contact.client_id, contact.proven_at, contact.proof) == (request.client_id, None, None)
        notes = session.scalars(select(Event.comment).where(Event.kind == "note", Event.client_id == request.client_id))
        assert any(f"за записью клиента № {merged_id}" in note for note in notes)


def test_a_call_from_a_phone_whose_record_has_no_live_survivor_makes_a_new_client(settings: Settings) -> None:
    """The console's look-up by phone never hands the anonymised record over; the caller's new record takes the
    phone (no second row of it can exist)."""
    merged_id, survivor_id = _merged_pair(settings, kind="phone", value="+7 913 555-12-34")
    _anonymise(settings, survivor_id)
    with session_scope(settings) as session:
        caller = service.find_or_create_client(session, now=NOW, name="Орлов Олег", phone="8 (913) 555-12-34")
        session.flush()
        assert caller.id not in (merged_id, survivor_id)
        caller_id = caller.id
    with session_scope(settings) as session:
        [phone] = session.scalars(select(ClientContact).where(ClientContact.kind == "phone")).all()
        assert phone.client_id == caller_id
        assert session.get_one(Client, survivor_id).name == ""


# X4 -------------------------------------------------------------------------------------------------------------


class _Spinning(BaseException):
    """Raised by the guard below: a look-up went round a loop (BaseException: intake's handlers do not catch it)."""


def _loop(settings: Settings) -> tuple[int, int]:
    """Two records merged into each other (old data), the first holding loop@example.ru; returns their ids."""
    with session_scope(settings) as session:
        first, second = Client(name="А", created_at=NOW), Client(name="Б", created_at=NOW)
        first.contacts.append(ClientContact(kind="email", value="loop@example.ru", created_at=NOW))
        session.add_all([first, second])
        session.flush()
        first.merged_into_id, second.merged_into_id = second.id, first.id
        return first.id, second.id


def test_a_letter_from_an_address_on_a_loop_of_merges_does_not_spin_intake(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _loop(settings)
    real_get = Session.get
    calls = [0]

    def counted(self: Session, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > 10_000:  # a few per letter at most; ten thousand is a loop
            raise _Spinning
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(Session, "get", counted)
    try:
        process_raw(settings, citizen_mail(sender="loop@example.ru"), _source(), now=NOW)
    except _Spinning:
        monkeypatch.undo()
        pytest.fail("intake went round the loop of merges")


def test_a_letter_from_an_address_on_a_loop_of_merges_is_registered_for_a_new_client(settings: Settings) -> None:
    """A loop has no survivor: the letter is registered at once (its deadline runs) for a new client, with a note
    naming the records of the loop for staff to look at."""
    loop = _loop(settings)
    result = process_raw(settings, citizen_mail(sender="loop@example.ru"), _source(), now=NOW)
    assert result.outcome is Outcome.new_request, result
    with session_scope(settings) as session:
        [request] = session.scalars(select(Request)).all()
        assert request.client_id not in loop
        assert session.scalar(select(ClientContact.client_id).where(ClientContact.value == "loop@example.ru")) == (
            request.client_id
        )
        notes = session.scalars(select(Event.comment).where(Event.kind == "note", Event.client_id == request.client_id))
        assert any(f"за записью клиента № {loop[0]}" in note for note in notes)


# X5 -------------------------------------------------------------------------------------------------------------


def test_migration_2124_runs_with_more_merged_records_than_a_statement_takes_parameters(
    fresh_url: str,  # noqa: F811
) -> None:
    settings = config.Settings(database_url=fresh_url)
    db.upgrade(settings, "2110_phone_key")
    engine = db._engine_for(fresh_url)
    if engine.dialect.name == "sqlite":
        import sqlite3

        count = sqlite3.connect(":memory:").getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) + 1
        numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) SELECT i FROM n"
    else:
        count = 65_536
        numbers = "SELECT generate_series(1, :count) AS i"
    with engine.begin() as conn:
        # Records 2..count+1 merged into record 1 (claims absorb an emptied record the same way).
        conn.execute(
            text(
                "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
                "legal_hold) VALUES (1, 'Клиент', '', '', :at, :at, false)"
            ),
            {"at": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
                f"legal_hold, merged_into_id) SELECT i + 1, '', '', '', :at, :at, false, 1 FROM ({numbers}) AS s"
            ),
            {"at": NOW, "count": count},
        )
    try:
        db.upgrade(settings)
        assert db.pending_migrations(settings) == set()  # 2124 and those after it ran
    finally:
        db.dispose_engines()


# X8 -------------------------------------------------------------------------------------------------------------


def test_a_call_from_a_phone_left_on_a_merged_record_moves_the_phone_to_the_survivor(settings: Settings) -> None:
    merged_id, survivor_id = _merged_pair(settings, kind="phone", value="+7 913 555-12-34")
    with session_scope(settings) as session:  # what the console's phone registration looks the caller up with
        caller = service.find_or_create_client(session, now=NOW, name="Орлов Олег", phone="8 (913) 555-12-34")
        assert caller.id == survivor_id
    with session_scope(settings) as session:
        [phone] = session.scalars(select(ClientContact).where(ClientContact.kind == "phone")).all()
        assert phone.client_id == survivor_id
        notes = session.scalars(select(Event.comment).where(Event.kind == "note", Event.client_id == survivor_id))
        assert any(f"за записью клиента № {merged_id}" in note for note in notes)


# X10 ------------------------------------------------------------------------------------------------------------


def _found(settings: Settings, query: str) -> list[int]:
    with session_scope(settings) as session:
        return [hit.request.id for hit in search.search_requests(session, query).hits]


def test_after_migration_2124_the_survivors_requests_are_found_by_the_moved_address(settings: Settings) -> None:
    """README (search): a request is found by its client's e-mail addresses; after `db upgrade` the moved address
    is the survivor's, as it is after a letter from it (the ORM path reindexes)."""
    from alembic import command

    request_id, survivor_id = staff_request(settings, subject="Аренда участка", name="Орлов Олег")
    with session_scope(settings) as session:
        merged = Client(name="Орлов О.", created_at=NOW, last_interaction_at=NOW)
        merged.contacts.append(ClientContact(kind="email", value="orlov.old@example.ru", created_at=NOW))
        session.add(merged)
        session.flush()
        merged.merged_into_id = survivor_id  # old data: a merge that left the address behind
    assert _found(settings, "orlov.old@example.ru") == []
    command.downgrade(db.alembic_config(settings), "2110_phone_key")  # 2124 only (its downgrade changes nothing)
    db.upgrade(settings)
    with session_scope(settings) as session:
        moved = session.scalar(select(ClientContact.client_id).where(ClientContact.value == "orlov.old@example.ru"))
        assert moved == survivor_id
    assert _found(settings, "orlov.old@example.ru") == [request_id]
