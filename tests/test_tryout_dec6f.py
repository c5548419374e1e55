"""Tryout of 6 December, round 7 (X1...): an attacker and a reviewer of the day's changes (confirmation letters, the
block-wise base64 of S/MIME, contacts left on merged records, a failing progress callback).

Each test fails today because of the defect named in its reason (strict expected failures) and passes once the
defect is fixed. The database tests run on SQLite and PostgreSQL (the ``settings`` and ``fresh_url`` fixtures).
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
from mailservice.intake.pipeline import process_raw
from tests.console_support import staff_request
from tests.mailfactory import citizen_mail
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_mailings_consent import two_lists  # noqa: F401  (a fixture)
from tests.test_mailings_sender_rules import one  # noqa: F401  (a fixture)
from tests.test_merged_contacts import NOW, _merged_pair, _source

# X1, X2: fixed (tests/test_tryout_dec6f_base64.py)


# X3 -------------------------------------------------------------------------------------------------------------


def _anonymise(settings: Settings, client_id: int) -> None:
    """What retention leaves of a record (mailservice/retention.py: name and contacts gone, anonymised_at set)."""
    with session_scope(settings) as session:
        client = session.get_one(Client, client_id)
        client.name = client.organisation = client.postal_address = ""
        client.anonymised_at = NOW - dt.timedelta(days=30)
        session.execute(text("DELETE FROM client_contacts WHERE client_id = :c"), {"c": client_id})


@pytest.mark.xfail(
    strict=True,
    reason="X3: update_or_create_client moves a contact left on a merged record onto its anonymised survivor and "
    "registers the letter there: personal data on a record retention never looks at again (README: not onto an "
    "anonymised record; migration 2124 leaves it)",
)
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


# X4 -------------------------------------------------------------------------------------------------------------


class _Spinning(BaseException):
    """Raised by the guard below: a look-up went round a loop (BaseException: intake's handlers do not catch it)."""


@pytest.mark.xfail(
    strict=True,
    reason="X4: service._survivor follows merged_into_id without a guard: a letter from an address on a loop of "
    "merges (the case migration 2124 knows of and leaves) spins intake forever",
)
def test_a_letter_from_an_address_on_a_loop_of_merges_does_not_spin_intake(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(settings) as session:
        first, second = Client(name="А", created_at=NOW), Client(name="Б", created_at=NOW)
        first.contacts.append(ClientContact(kind="email", value="loop@example.ru", created_at=NOW))
        session.add_all([first, second])
        session.flush()
        first.merged_into_id, second.merged_into_id = second.id, first.id
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


# X5 -------------------------------------------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="X5: migration 2124 puts every merged record's id in one IN list: over the driver's bound parameters "
    "(65,535 with psycopg, SQLITE_LIMIT_VARIABLE_NUMBER) the upgrade fails and the database stays on 2110",
)
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
        with db._engine_for(fresh_url).connect() as conn:
            versions = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        assert "2124_merged_contacts" in versions
    finally:
        db.dispose_engines()


# X8 -------------------------------------------------------------------------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="X8: README says a call from a phone left on a merged record moves the phone to the survivor (unproven, "
    "with a note); find_or_create_client only finds the survivor by it: the phone stays on the merged record",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="X10: migration 2124 moves contacts with a Core UPDATE and reindexes nothing: the survivor's requests are "
    "not found by the address it now holds (search_index: bulk UPDATEs must reindex or touch the client)",
)
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


# X6, X7, X9: fixed (tests/test_tryout_dec6f_mailings.py)
