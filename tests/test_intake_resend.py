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
    filename: str = "заявление.pdf",
    in_reply_to: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Иванов Иван <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to is not None:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg.set_content(text)
    if scan is not None:  # a new MIME boundary every time, as mail programs make
        msg.add_attachment(scan, maintype="application", subtype="pdf", filename=filename)
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
    later = now + dt.timedelta(minutes=1)
    _take(settings, _letter("second@example.ru", sender="Ivanov@Example.ru", scan=scan), later)
    (request,) = _requests(settings)
    with session_scope(settings) as session:
        first, second = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        assert second.outcome == Outcome.duplicate and second.duplicate_of_id == first.id
        assert second.request_id == request.id
        # No second acknowledgement; staff see the copy on the request.
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == acknowledgements
        # The journal says which entry it repeats; staff read the same on the request, word for word.
        assert second.reason == f"sent again: same sender, subject, text and files as journal entry {first.id}"
        # The note is dated when the copy came.
        notes = session.execute(
            select(Event.comment, Event.at).where(Event.request_id == request.id, Event.kind == "note")
        )
        assert (
            "Автор прислал это же письмо ещё раз (та же тема, текст и файлы, другой Message-ID): "
            f"отдельно не зарегистрировано, строка журнала приёма почты № {first.id}.",
            later,
        ) in [tuple(note) for note in notes]


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


def test_a_letter_sent_again_after_a_follow_up_brought_a_file_is_still_a_copy(settings: Settings) -> None:
    """Only the files of the letter repeated count, not those a later follow-up brought to its request (README
    "How it works", *dedupe*: same sender, subject, text and files)."""
    now = utcnow()
    scan = b"%PDF-1.4 scan"
    _take(settings, _letter("first@example.ru", scan=scan), now)
    follow_up = _letter(
        "follow-up@example.ru",
        subject="Re: Аукцион",
        text="Дополняю: прилагаю схему участка.",
        scan=b"%PDF-1.4 plan",
        filename="схема.pdf",
        in_reply_to="first@example.ru",
    )
    _take(settings, follow_up, now + dt.timedelta(minutes=1))
    _take(settings, _letter("second@example.ru", scan=scan), now + dt.timedelta(minutes=2))
    (request,) = _requests(settings)
    with session_scope(settings) as session:
        first, reply, again = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        assert (first.outcome, reply.outcome) == (Outcome.new_request, Outcome.reply)
        assert reply.request_id == request.id
        assert (again.outcome, again.duplicate_of_id, again.request_id) == (Outcome.duplicate, first.id, request.id)


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
