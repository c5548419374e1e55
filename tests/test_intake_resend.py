"""The same letter sent again by its author with a new Message-ID (tryout W3): within 24 hours (README "How it
works", *dedupe*) it is a copy of the request already registered; anything that differs makes a letter of its own."""

from __future__ import annotations

import datetime as dt
import email.policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Event, Request
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_batch, process_raw
from mailservice.outbox import OutboxMessage

TEXT = "Прошу сообщить, когда будет аукцион на участок в Бердске. Иванов И.И."


def _letter(
    message_id: str,
    *,
    sender: str = "ivanov@example.ru",
    subject: str = "Аукцион",
    text: str = TEXT,
    scan: bytes | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Иванов Иван <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    msg.set_content(text)
    if scan is not None:  # a new MIME boundary every time, as mail programs make
        msg.add_attachment(scan, maintype="application", subtype="pdf", filename="заявление.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def _take(settings: Settings, raw: bytes, now: dt.datetime, sender: str = "ivanov@example.ru") -> None:
    process_raw(settings, raw, Source("smtp", envelope_from=sender), now=now)


def _requests(settings: Settings) -> list[Request]:
    with session_scope(settings) as session:
        requests = list(session.scalars(select(Request).order_by(Request.id)))
        session.expunge_all()
    return requests


def test_a_letter_sent_again_is_a_copy_of_its_request(settings: Settings) -> None:
    now = utcnow()
    scan = b"%PDF-1.4 scan"
    _take(settings, _letter("first@example.ru", scan=scan), now)
    with session_scope(settings) as session:
        acknowledgements = session.scalar(select(func.count()).select_from(OutboxMessage))
    # The second press of «Отправить» a minute later, the sender's address in another case.
    _take(settings, _letter("second@example.ru", sender="Ivanov@Example.ru", scan=scan), now + dt.timedelta(minutes=1))
    (request,) = _requests(settings)
    with session_scope(settings) as session:
        first, second = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        assert second.outcome == Outcome.duplicate and second.duplicate_of_id == first.id
        assert second.request_id == request.id
        # No second acknowledgement; staff see the copy on the request.
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == acknowledgements
        notes = session.scalars(select(Event.comment).where(Event.request_id == request.id, Event.kind == "note"))
        assert any("ещё раз" in note for note in notes)


@pytest.mark.parametrize(
    "changed",
    [
        {"text": TEXT + " Прошу ответить письменно."},
        {"subject": "Аукцион в Бердске"},
        {"sender": "petrov@example.ru"},
        {"scan": b"%PDF-1.4 another scan"},
    ],
    ids=["text", "subject", "sender", "file"],
)
def test_a_letter_that_differs_is_a_request_of_its_own(settings: Settings, changed: dict[str, object]) -> None:
    now = utcnow()
    _take(settings, _letter("first@example.ru", scan=b"%PDF-1.4 scan"), now)
    again = {"sender": "ivanov@example.ru", "scan": b"%PDF-1.4 scan", **changed}
    raw = _letter("second@example.ru", **again)  # type: ignore[arg-type]
    _take(settings, raw, now + dt.timedelta(minutes=1), sender=str(again["sender"]))
    assert len([r for r in _requests(settings) if r.number]) == 2


def test_the_same_letter_a_day_later_is_a_request_of_its_own(settings: Settings) -> None:
    now = utcnow()
    _take(settings, _letter("first@example.ru"), now)
    _take(settings, _letter("second@example.ru"), now + dt.timedelta(hours=25))
    assert len(_requests(settings)) == 2


def test_two_copies_in_one_batch_are_one_request(settings: Settings) -> None:
    # The poller takes a mailbox's new letters as one batch (the fast mode): the copy is decided after the first.
    source = Source("smtp", envelope_from="ivanov@example.ru")
    results = process_batch(settings, [(_letter("a@example.ru"), source), (_letter("b@example.ru"), source)])
    assert [r.outcome for r in results] == [Outcome.new_request, Outcome.duplicate]
    assert results[0].request_number and results[1].request_number == results[0].request_number
    assert len(_requests(settings)) == 1
