"""A contact left on a merged record (old data, an import, an older backup restored: the product's merges move every
contact) belongs to the record it was merged into: a letter or a call from it is the survivor's request, never
held back. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, text

from mailservice import config, db
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, ClientContact, Event, Request
from mailservice.intake import pipeline
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import actions
from tests.mailfactory import citizen_mail
from tests.test_contact_case import FEB01, JAN10, JAN20, insert_old_contacts
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk


def _source() -> Source:
    return Source("smtp", envelope_from="old@example.ru")


def _merged_pair(settings: Settings, *, kind: str, value: str, proven: bool = False) -> tuple[int, int]:
    """Two clients, the first merged into the second but still holding its contact ``value``, as old data may
    leave them; returns (merged id, survivor id)."""
    with session_scope(settings) as session:
        merged = Client(name="Орлов Олег", created_at=NOW, last_interaction_at=NOW)
        survivor = Client(name="Орлов О. О.", created_at=NOW, last_interaction_at=NOW)
        contact = ClientContact(kind=kind, value=value, created_at=NOW)
        if proven:
            contact.proven_at, contact.proof = NOW, "reply"
        merged.contacts.append(contact)
        survivor.contacts.append(ClientContact(kind="email", value="new@example.ru", created_at=NOW))
        session.add_all([merged, survivor])
        session.flush()
        merged.merged_into_id = survivor.id
        return merged.id, survivor.id


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_letter_from_an_address_left_on_a_merged_record_is_a_request_of_the_survivor(
    settings: Settings, mode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Registered and acknowledged as the survivor's (no new client, no quarantine); the address moves to the
    survivor as a merge moves it: unproven (README, "Security model")."""
    if mode == "careful":  # every message in its own savepoint, answered by the one-at-a-time look-ups
        monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)
    merged_id, survivor_id = _merged_pair(settings, kind="email", value="old@example.ru", proven=True)
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        result = process_raw(settings, citizen_mail(sender="Old@Example.ru", name="Орлов О."), _source(), now=NOW)
    assert "message by message" not in caplog.text
    assert result.outcome is Outcome.new_request, result
    with session_scope(settings) as session:
        [request] = session.scalars(select(Request)).all()
        assert request.client_id == survivor_id
        assert session.scalar(select(func.count()).select_from(Client)) == 2
        assert session.scalars(select(IntakeEntry.outcome)).all() == [Outcome.new_request]
        [ack] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).all()
        assert (ack.request_id, ack.recipients.lower()) == (request.id, "old@example.ru")
        [contact] = session.scalars(select(ClientContact).where(ClientContact.value == "old@example.ru")).all()
        assert (contact.client_id, contact.proven_at, contact.proof) == (survivor_id, None, None)
        assert not session.get_one(Client, merged_id).contacts
        [note] = session.scalars(select(Event).where(Event.kind == "note", Event.client_id == survivor_id)).all()
        assert note.data["internal"] and note.request_id is None
        assert f"за записью клиента № {merged_id}" in note.comment and "неподтверждённым" in note.comment


def test_a_second_letter_from_the_moved_address_finds_the_survivor_in_a_batch(settings: Settings) -> None:
    """Two letters of one batch from the address: both the survivor's requests, its one contact."""
    _merged_id, survivor_id = _merged_pair(settings, kind="email", value="old@example.ru")
    letters = [
        citizen_mail(sender="old@example.ru", subject="Первый"),
        citizen_mail(sender="OLD@example.ru", subject="Второй", body="Прошу сообщить часы приёма."),
    ]
    results = pipeline.process_batch(settings, [(raw, _source()) for raw in letters], now=NOW)
    assert [r.outcome for r in results] == [Outcome.new_request, Outcome.new_request], results
    with session_scope(settings) as session:
        assert set(session.scalars(select(Request.client_id))) == {survivor_id}
        assert session.scalar(select(func.count()).where(ClientContact.value_key == "old@example.ru")) == 1


def test_a_call_from_a_phone_left_on_a_merged_record_is_a_request_of_the_survivor(settings: Settings) -> None:
    """The phone and visit registration (staff console) finds the survivor by the phone and makes no new record."""
    _merged_id, survivor_id = _merged_pair(settings, kind="phone", value="+7 913 555-12-34")
    data = actions.ContactRequest(
        channel=Channel.phone,
        received_at=NOW,
        subject="Аренда",
        text="Прошу сообщить порядок аренды.",
        name="Орлов Олег",
        phone="8 (913) 555-12-34",
    )
    with session_scope(settings) as session:
        request = actions.register_contact_request(session, settings, data, actor="op@dizo.test", now=NOW)
        assert request.client_id == survivor_id
        assert session.scalar(select(func.count()).select_from(Client)) == 2
        assert session.scalar(select(func.count()).where(ClientContact.kind == "phone")) == 1


def test_migration_moves_the_contacts_left_on_merged_records_to_their_survivors(fresh_url: str) -> None:  # noqa: F811
    """Revision 2124: each contact of a merged record goes, unproven, to the end of its chain of merges, with a note
    there; a contact whose survivor is anonymised, or on a loop of merges, stays; nobody else's contact changes."""
    settings = config.Settings(database_url=fresh_url)
    db.upgrade(settings, "2110_phone_key")
    contacts = [
        (1, 1, "a@example.ru", JAN10, FEB01, "reply"),  # client 1 -> 2 -> 3
        (2, 2, "b@example.ru", JAN10, None, None),
        (3, 3, "c@example.ru", JAN10, FEB01, "in_person"),
        (4, 4, "d@example.ru", JAN10, None, None),  # client 4 -> 5, 5 anonymised
        (5, 6, "f@example.ru", JAN10, None, None),  # clients 6 -> 7 -> 6, a loop
        (6, 8, "h@example.ru", JAN20, FEB01, "link"),  # client 8 merged into nobody
    ]
    insert_old_contacts(fresh_url, (1, 2, 3, 4, 5, 6, 7, 8), contacts, keyed=True)
    with db._engine_for(fresh_url).begin() as conn:
        for merged, survivor in ((1, 2), (2, 3), (4, 5), (6, 7), (7, 6)):
            conn.execute(text("UPDATE clients SET merged_into_id = :s WHERE id = :m"), {"s": survivor, "m": merged})
        conn.execute(text("UPDATE clients SET anonymised_at = :at WHERE id = 5"), {"at": FEB01})
    db.upgrade(settings)
    with session_scope(settings) as session:
        rows = {c.id: (c.client_id, c.proof) for c in session.scalars(select(ClientContact))}
        assert rows == {1: (3, None), 2: (3, None), 3: (3, "in_person"), 4: (4, None), 5: (6, None), 6: (8, "link")}
        notes = session.scalars(select(Event).where(Event.kind == "note").order_by(Event.id)).all()
        assert [(n.client_id, n.data) for n in notes] == [
            (3, {"internal": True, "contacts_moved_from": 1}),
            (3, {"internal": True, "contacts_moved_from": 2}),
        ]
        assert "a@example.ru" in notes[0].comment and "неподтверждёнными" in notes[0].comment
    db.dispose_engines()
