"""A letter From one of the service's own addresses (README "Register first", «Own addresses»): a forged appeal or a
mail loop. It waits in the held queue for staff, unnumbered and unanswered (RFC 3834 section 2: a responder never
answers itself), acts as no command and joins no request; staff may register it, and even then no automatic
acknowledgement goes to our own mailbox. Both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.intake import actions
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.addresses import address_key
from mailservice.outbox import OutboxMessage
from tests.conftest import make_env, reset_caches
from tests.mailfactory import citizen_mail
from tests.servers import Sink

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
OURS = {
    "from": "info@dizo.test",
    "mailbox": "inbox@dizo.test",
    "list-unsubscribe": "unsub-list@dizo.test",
    "history": "history@dizo.test",
}


@pytest.fixture
def own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Both databases; the main address, the mailbox's login, the List-Unsubscribe address and a dedicated one."""
    ours = {
        "from_address": OURS["from"],
        "imap_user": OURS["mailbox"],
        "mailing_unsubscribe_address": OURS["list-unsubscribe"],
        "history_address": OURS["history"],
    }
    yield make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", **ours)
    reset_caches()


def _outbox_to(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.scalars(select(OutboxMessage.recipients)))


def _held_note(settings: Settings, request_id: int) -> list[str]:
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        return [e.comment for e in request.events if e.kind == "note"]


@pytest.mark.parametrize("which", sorted(OURS))
def test_a_letter_from_our_own_address_is_held_unanswered(own: Settings, which: str) -> None:
    # Written as the address is written elsewhere (the case of an address's letters is no proof of anything).
    sender = OURS[which].upper() if which == "from" else OURS[which]
    result = process_raw(own, citizen_mail(sender=sender, name="Департамент"), Source("smtp", envelope_from=sender))
    assert result.outcome is Outcome.held, result
    assert result.request_number is None
    with session_scope(own) as session:
        request = session.scalars(select(Request)).one()
        assert request.number is None and request.status == Status.received
        assert [r.id for r in actions.held_requests(session)] == [request.id]
        request_id = request.id
    assert any("собственного адреса департамента" in note for note in _held_note(own, request_id))
    assert _outbox_to(own) == []


def test_a_command_from_our_own_address_is_not_carried_out(own: Settings) -> None:
    # «История обращений» to the dedicated history address would mail the history of... our own address.
    raw = citizen_mail(sender=OURS["from"], to=OURS["history"], subject="История обращений", body="История обращений")
    result = process_raw(own, raw, Source("smtp", envelope_from=OURS["from"]))
    assert result.outcome is Outcome.held, result
    assert _outbox_to(own) == []


def test_a_reply_from_our_own_address_joins_no_request(own: Settings) -> None:
    # A letter forged From our address in reply to our acknowledgement: not the citizen's clarification or message.
    citizen = process_raw(own, citizen_mail(), Source("smtp", envelope_from="ivanov@example.ru"), now=NOW)
    assert citizen.request_number
    with session_scope(own) as session:
        ack = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).one()
        ack_id, before = ack.message_id, session.scalar(select(func.count()).select_from(OutboxMessage))
    forged = citizen_mail(sender=OURS["from"], subject="Re: Ваше обращение зарегистрировано", in_reply_to=ack_id)
    result = process_raw(own, forged, Source("smtp", envelope_from=OURS["from"]), now=NOW + dt.timedelta(hours=1))
    assert result.outcome is Outcome.held, result
    with session_scope(own) as session:
        original = session.scalars(select(Request).where(Request.number == citizen.request_number)).one()
        assert original.status == Status.registered
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == before


def test_staff_registering_it_send_no_acknowledgement_to_ourselves(own: Settings) -> None:
    process_raw(own, citizen_mail(sender=OURS["from"]), Source("smtp", envelope_from=OURS["from"]), now=NOW)
    with session_scope(own) as session:
        [request] = actions.held_requests(session)
        actions.register_held(session, own, request, actor="operator@dizo.test", now=NOW + dt.timedelta(hours=1))
        assert request.number
        request_id = request.id
    assert _outbox_to(own) == []
    assert any("собственный адрес департамента" in note for note in _held_note(own, request_id))


def test_a_colleague_at_the_departments_domain_is_registered_as_anyone(own: Settings) -> None:
    # Only our own mailboxes are held: a person at the department's domain writes as a person.
    colleague = "petrova@dizo.test"
    result = process_raw(own, citizen_mail(sender=colleague), Source("smtp", envelope_from=colleague))
    assert result.outcome is Outcome.new_request and result.request_number, result
    assert _outbox_to(own) == ["petrova@dizo.test"]


def test_our_address_is_known_in_any_spelling_of_its_domain(own: Settings) -> None:
    # A department on a Cyrillic domain: a letter's From carries it in punycode (RFC 5890) or in another case; each
    # is the same mailbox (mail/addresses.py), so each is ours.
    settings = own.model_copy(update={"from_address": "Приёмная@Пример.РФ"})
    assert address_key("приёмная@xn--e1afmkfd.xn--p1ai") in settings.own_addresses
    assert address_key("ПРИЁМНАЯ@пример.рф") in settings.own_addresses
    assert address_key("приёмная@пример.рус") not in settings.own_addresses
