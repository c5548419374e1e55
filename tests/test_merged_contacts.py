"""A contact left on a merged record (old data, an import, an older backup restored: the product's merges move every
contact) belongs to the record it was merged into: a letter or a call from it is the survivor's request, never
held back. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

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
