"""Intake's decisions, held at the edges the README states (written for the mutants of intake/pipeline.py that
the other intake tests let pass; docs/mutation.md). SQLite and PostgreSQL where a database is touched.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, arrival, process_raw
from mailservice.outbox import OutboxMessage
from tests.conftest import make_env
from tests.mailfactory import citizen_mail, message_id_of
from tests.servers import Sink

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
THREE_DAYS = dt.timedelta(days=3)  # README: «An e-mail's Date header counts as its arrival only when it is no more
# than 3 days old and not in the future.»
SECOND = dt.timedelta(seconds=1)


def smtp_source() -> Source:
    return Source("smtp", envelope_from="ivanov@example.ru")


def dated(raw: bytes, date: dt.datetime) -> bytes:
    """``raw`` with its Date header replaced."""
    message = email.message_from_bytes(raw, policy=email.policy.SMTP)
    del message["Date"]
    message["Date"] = format_datetime(date)
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize(
    ("age", "counts"),
    [
        (THREE_DAYS, True),  # exactly three days old: «no more than 3 days»
        (THREE_DAYS + SECOND, False),
        (dt.timedelta(hours=1), True),  # an hour old
        (-SECOND, False),  # a second in the future
    ],
)
def test_the_date_header_is_the_arrival_up_to_three_days_back_and_not_ahead(age: dt.timedelta, counts: bool) -> None:
    header = NOW - age
    assert arrival(header, NOW) == (header if counts else NOW)
    assert arrival(None, NOW) == NOW


@pytest.mark.parametrize(("age", "counts"), [(THREE_DAYS, True), (THREE_DAYS + SECOND, False), (-SECOND, False)])
def test_a_registered_letter_arrived_at_its_plausible_date(settings: Settings, age: dt.timedelta, counts: bool) -> None:
    header = NOW - age
    result = process_raw(settings, dated(citizen_mail(), header), smtp_source(), now=NOW)
    assert result.outcome is Outcome.new_request
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        received = request.received_at
        if received.tzinfo is None:  # SQLite gives the stored UTC back without its zone
            received = received.replace(tzinfo=dt.UTC)
        assert received == (header if counts else NOW)


def utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as UTC (SQLite gives it back without its zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def first_request(settings: Settings, sender: str = "ivanov@example.ru") -> tuple[bytes, str]:
    """A registered request of ``sender``; returns the letter and the Message-ID of our acknowledgement."""
    letter = citizen_mail(sender=sender)
    assert process_raw(settings, letter, smtp_source(), now=NOW).request_number == "2026-000001"
    with session_scope(settings) as session:
        ack_id = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "acknowledgement")).one()
    return letter, ack_id


def answer_first(settings: Settings) -> str:
    """Answer request 2026-000001; returns the Message-ID of the answer's notice."""
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        service.change_status(session, settings, request, Status.answered, now=NOW, actor="t", comment="Ответ: 12.")
    with session_scope(settings) as session:
        return session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "status_notice")).one()


AD = "Распродажа окон ПВХ со склада, скидки до 50%. Цены от 9 900 руб. Звоните! https://okna.example.com/sale"


def test_a_letter_answering_our_message_is_never_held_as_advertising(settings: Settings) -> None:
    """README, "Held queue": only advertising with no request in it may wait unregistered: a new letter. One that
    answers our message, or follows up the citizen's own letter, is registered (here as a new linked request, the
    first being answered) even when it reads like advertising; the new one is told in its history which request it
    follows."""
    advert = citizen_mail(sender="promo@okna.example.com", name="", subject="Скидки!", body=AD)
    assert process_raw(settings, advert, smtp_source(), now=NOW).outcome is Outcome.held  # as a new letter it waits
    first, _ack = first_request(settings)
    answer_id = answer_first(settings)
    later = NOW + dt.timedelta(days=1)
    to_our_answer = citizen_mail(subject="Скидки!", body=AD, in_reply_to=answer_id)
    to_their_letter = citizen_mail(subject="Скидки!", body=AD, references=[message_id_of(first)])
    for raw, number in ((to_our_answer, "2026-000002"), (to_their_letter, "2026-000003")):
        result = process_raw(settings, raw, smtp_source(), now=later)
        assert (result.outcome, result.request_number) == (Outcome.new_request, number)
        with session_scope(settings) as session:
            new = service.get_by_number(session, number)
            old = service.get_by_number(session, "2026-000001")
            assert new is not None and old is not None
            assert new.status == Status.registered and new.parent_id == old.id
            notes = [(utc(e.at), e.comment) for e in new.events if e.kind == "note"]
            assert any(at == later and "2026-000001" in (comment or "") for at, comment in notes), notes


def test_a_reply_to_that_is_the_sender_itself_is_not_a_claim(settings: Settings) -> None:
    """README, "Security model": a *different* Reply-To is recorded; one equal to From, or none, claims nothing."""
    for sender, reply_to, claimed in (
        ("same@example.ru", "same@example.ru", None),
        ("none@example.ru", None, None),
        ("from@example.ru", "other@example.org", "other@example.org"),
    ):
        headers = {"Reply-To": reply_to} if reply_to else {}
        result = process_raw(settings, citizen_mail(sender=sender, headers=headers), smtp_source(), now=NOW)
        with session_scope(settings) as session:
            request = service.get_by_number(session, result.request_number or "")
            assert request is not None
            assert (request.reply_email, request.reply_to_claimed) == (sender, claimed)


def test_a_reply_is_recorded_with_where_it_came_from_and_what_staff_must_know(settings: Settings) -> None:
    """A reply joining an open request: its message in the history keeps its subject (found by the search), its
    Message-ID and the address it came from (a citizen may answer from another one); a sender's name cut to fit
    leaves staff an internal note on the request, as on a new one."""
    _first, ack_id = first_request(settings)
    later = NOW + dt.timedelta(hours=2)
    long_name = "Иванов-Петров " * 40  # 560 characters: longer than a name may be
    reply = citizen_mail(
        sender="ivanov.work@example.org", name=long_name.strip(), subject="Re: уточнение по участкам",
        body="Уточняю: нужны сведения и за 2024 год.", in_reply_to=ack_id,
    )  # fmt: skip
    result = process_raw(settings, reply, smtp_source(), now=later)
    assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000001")
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        [message] = [e for e in request.events if e.kind == "message_in" and utc(e.at) == later]
        assert message.data["subject"] == "Re: уточнение по участкам"
        assert message.data["from"] == "ivanov.work@example.org"
        assert message.data["message_id"] == message_id_of(reply)
        internal = [e for e in request.events if e.kind == "note" and (e.data or {}).get("internal")]
        assert [(utc(e.at), "Имя отправителя" in (e.comment or "")) for e in internal] == [(later, True)]
        assert all(e.client_id == request.client_id for e in internal)


def attachment_letter(size: int, *, in_reply_to: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Иванов Иван <ivanov@example.ru>"
    message["To"] = "info@dizo.test"
    message["Subject"] = "Re: документы" if in_reply_to else "Документы к запросу"
    message["Message-ID"] = f"<att{size}{'r' if in_reply_to else ''}@example.ru>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    message.set_content("Прошу приобщить документы к запросу о земельных участках.")
    message.add_attachment(b"\0" * size, maintype="application", subtype="zip", filename="scan.zip")
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize("megabytes", [1, 2])
def test_a_file_over_the_limit_is_named_with_the_limit_in_megabytes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink, megabytes: int
) -> None:
    """README: an attachment over `MAX_ATTACHMENT_BYTES` is not kept; the history notes it and says why, in a
    first letter and in a reply alike. The limit is given in whole megabytes as set."""
    limit = megabytes * 1024 * 1024
    settings = make_env(
        monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", max_attachment_bytes=str(limit)
    )
    first = process_raw(settings, attachment_letter(limit + 1024), smtp_source(), now=NOW)
    assert (first.outcome, first.request_number) == (Outcome.new_request, "2026-000001")
    with session_scope(settings) as session:
        ack_id = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "acknowledgement")).one()
    reply = process_raw(settings, attachment_letter(limit + 2048, in_reply_to=ack_id), smtp_source(), now=NOW)
    assert reply.outcome is Outcome.reply
    why = f"«scan.zip» (файл больше {megabytes} МБ, предельного размера вложения)"
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        notes = [e.comment or "" for e in request.events if e.kind == "note" and why in (e.comment or "")]
        assert len(notes) == 2, [e.comment for e in request.events]
        assert not request.attachments
