"""Intake's decisions, held at the edges the README states (written for the mutants of intake/pipeline.py that
the other intake tests let pass; docs/mutation.md). SQLite and PostgreSQL where a database is touched.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import gc
import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from mailservice import db, outbox
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.intake import pipeline
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, arrival, process_raw
from mailservice.mail.parse import ParsedMessage, parse_message
from mailservice.outbox import OutboxMessage
from tests.conftest import make_env, reset_caches
from tests.mailfactory import body_text, citizen_mail, message_id_of, parse
from tests.servers import Sink
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)

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


def test_a_duplicate_points_at_the_request_of_its_original(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """README, "Intake": a second delivery of the same letter (Message-ID and content) leaves one journal row,
    `duplicate`, and nothing else; the row points at the first entry and at its request, so the journal shows where
    the letter went. The batch's own look-up finds the original (no fall-back to writing it message by message)."""
    raw = citizen_mail()
    first = process_raw(settings, raw, smtp_source(), now=NOW)
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        again = process_raw(settings, raw, smtp_source(), now=NOW + dt.timedelta(minutes=5))
    assert "message by message" not in caplog.text
    assert (first.outcome, again.outcome) == (Outcome.new_request, Outcome.duplicate)
    assert again.request_number == first.request_number == "2026-000001"
    with session_scope(settings) as session:
        original = session.get(IntakeEntry, first.entry_id)
        copy = session.get(IntakeEntry, again.entry_id)
        assert original is not None and copy is not None
        assert (copy.duplicate_of_id, copy.request_id) == (original.id, original.request_id)
        assert copy.request_id is not None
        assert str(original.id) in copy.reason
        assert session.scalar(select(func.count(Request.id))) == 1


def test_a_copy_in_the_same_batch_points_at_its_original(settings: Settings) -> None:
    """The same as above when both deliveries come in one batch (an IMAP fetch of a folder holding the letter twice):
    the copy's row points at the original's entry, though the original was written in that same batch."""
    raw = citizen_mail()
    first, again = pipeline.process_batch(settings, [(raw, smtp_source()), (raw, smtp_source())], now=NOW)
    assert (first.outcome, again.outcome) == (Outcome.new_request, Outcome.duplicate)
    assert again.request_number == first.request_number == "2026-000001"
    with session_scope(settings) as session:
        original = session.get(IntakeEntry, first.entry_id)
        copy = session.get(IntakeEntry, again.entry_id)
        assert original is not None and copy is not None and original.request_id is not None
        assert (copy.duplicate_of_id, copy.request_id) == (original.id, original.request_id)
        assert str(original.id) in copy.reason


DSN = (
    b"From: MAILER-DAEMON@mx.example.ru\r\nTo: info@dizo.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <dsn-rules@mx.example.ru>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.ru\r\n\r\n"
    b"Final-Recipient: rfc822; petrov@example.ru\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--B--\r\n"
)


def test_a_report_delivered_twice_in_one_batch_is_one_bounce(settings: Settings) -> None:
    """README, "Intake": *dedupe* comes before *triage*. A delivery report fetched twice in one batch (a folder
    holding it twice) is recorded once: the second delivery is a `duplicate` of the first, so the address is not
    counted as bouncing twice."""
    results = pipeline.process_batch(
        settings, [(DSN, Source("smtp", envelope_from="")), (DSN, Source("smtp", envelope_from=""))], now=NOW
    )
    assert [r.outcome for r in results] == [Outcome.bounce, Outcome.duplicate]
    with session_scope(settings) as session:
        assert session.scalars(select(Bounce.intake_id)).all() == [results[0].entry_id]
        assert session.get_one(IntakeEntry, results[1].entry_id).duplicate_of_id == results[0].entry_id


def test_a_bounce_is_recorded_at_its_arrival_with_the_servers_words(settings: Settings) -> None:
    """A delivery report (RFC 3464) becomes a bounce record: when intake took it (hard bounces suppress the address
    from then on) and the remote server's diagnostic as it wrote it, for staff."""
    result = process_raw(settings, DSN, Source("smtp", envelope_from=""), now=NOW)
    assert result.outcome is Outcome.bounce
    with session_scope(settings) as session:
        bounce = session.scalars(select(Bounce)).one()
        assert (utc(bounce.at), bounce.diagnostic) == (NOW, "550 5.1.1 User unknown")
        assert bounce.intake_id == result.entry_id


QUOTE = "\n\n> Ваш запрос зарегистрирован под номером 2026-000001.\n> Ответ будет дан не позднее 1 апреля 2026 г.\n"


def our_message(settings: Settings, ref_type: str) -> str:
    """An outbox message of another domain (a ballot, an agenda) sent to ivanov@example.ru; returns its id."""
    message = EmailMessage()
    message["From"] = "info@dizo.test"
    message["To"] = "ivanov@example.ru"
    message["Subject"] = "Голосование рабочей группы"
    message["Message-ID"] = f"<{ref_type}-1@dizo.test>"
    message.set_content("Ответьте «за» или «против».")
    with session_scope(settings) as session:
        outbox.enqueue(session, message, kind=ref_type, ref_type=ref_type, ref_id=7)
    return f"{ref_type}-1@dizo.test"


@pytest.mark.parametrize("takes", [True, False])
def test_a_reply_to_another_domains_message_goes_to_its_handler(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, takes: bool
) -> None:
    """README, "Intake": a reply to one of our messages that is not about a request goes to the domain that sent it
    (`routed`, with the domain's reason); when the domain does not take it, it is registered like any letter a
    person wrote (register first)."""
    calls: list[tuple[object, ...]] = []

    def handler(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str | None:
        calls.append((isinstance(session, Session), parsed.message_id, row.message_id, row.ref_id, entry.id))
        return "голос учтён" if takes else None

    monkeypatch.setitem(pipeline.ROUTES, "probe", handler)
    ours = our_message(settings, "probe")
    reply = citizen_mail(
        subject="Re: Голосование рабочей группы", body="Прошу учесть мой голос: за." + QUOTE, in_reply_to=ours
    )
    result = process_raw(settings, reply, smtp_source(), now=NOW)
    assert calls == [(True, message_id_of(reply), ours, 7, result.entry_id)]
    if takes:
        assert (result.outcome, result.reason, result.request_number) == (Outcome.routed, "голос учтён", None)
    else:
        assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000001")
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == (0 if takes else 1)
        if not takes:  # registered without the quote of what we wrote
            assert session.scalars(select(Request.text)).one().strip() == "Прошу учесть мой голос: за."


def test_a_reply_to_a_message_no_domain_takes_is_registered(settings: Settings) -> None:
    """A reply to one of our messages whose kind no domain receives is a letter a person wrote: registered."""
    ours = our_message(settings, "nobody_takes_this")
    reply = citizen_mail(subject="Re: Голосование рабочей группы", body="Прошу прислать повестку.", in_reply_to=ours)
    result = process_raw(settings, reply, smtp_source(), now=NOW)
    assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000001")


def test_a_name_in_from_completes_a_client_only_from_a_proven_address(settings: Settings) -> None:
    """README, "Security model": From is forgeable. A name in it fills in the record of a new client, or of a known
    one writing from an address proven for them, never a known one's from an address only written from; the
    client's last interaction (which retention counts from) is the latest letter."""
    address = "ivanov@example.ru"

    def client_of_address() -> tuple[str, dt.datetime]:
        with session_scope(settings) as session:
            client = service.find_client_by_email(session, address)
            assert client is not None
            return client.name, utc(client.last_interaction_at)

    first = process_raw(settings, citizen_mail(sender=address, name=""), smtp_source(), now=NOW)
    assert first.request_number == "2026-000001"
    assert client_of_address() == ("", NOW)
    later = NOW + dt.timedelta(hours=1)
    forged = citizen_mail(sender=address, name="Петров Пётр Петрович", body="Прошу сообщить часы приёма граждан.")
    assert process_raw(settings, forged, smtp_source(), now=later).request_number == "2026-000002"
    assert client_of_address() == ("", later)  # unproven: the name is not taken
    with session_scope(settings) as session:
        ack_id = session.scalars(
            select(OutboxMessage.message_id).where(OutboxMessage.kind == "acknowledgement").order_by(OutboxMessage.id)
        ).first()
    answer = citizen_mail(sender=address, name="", subject="Re: ваш запрос", body="Спасибо, жду.", in_reply_to=ack_id)
    assert process_raw(settings, answer, smtp_source(), now=later).outcome is Outcome.reply  # proves the address
    latest = NOW + dt.timedelta(days=1)
    named = citizen_mail(sender=address, name="Иванов Иван Иванович", body="Прошу сообщить график приёма.")
    assert process_raw(settings, named, smtp_source(), now=latest).request_number == "2026-000003"
    assert client_of_address() == ("Иванов Иван Иванович", latest)


def test_a_follow_up_joins_the_newest_of_the_citizens_requests_it_quotes(settings: Settings) -> None:
    """README, "Threading" and "Replies to finished requests": a letter that quotes the citizen's own earlier letters
    (References) joins the newest request they started: here the open follow-up, not the answered first request."""
    first, _ack = first_request(settings)
    answer_first(settings)
    later = NOW + dt.timedelta(days=1)
    follow_up = citizen_mail(subject="Ещё вопрос", body="Прошу сообщить сроки.", references=[message_id_of(first)])
    assert process_raw(settings, follow_up, smtp_source(), now=later).request_number == "2026-000002"
    again = citizen_mail(
        subject="Ещё вопрос", body="Дополняю: за 2024 год тоже.",
        references=[message_id_of(first), message_id_of(follow_up)],
    )  # fmt: skip
    result = process_raw(settings, again, smtp_source(), now=later + dt.timedelta(hours=1))
    assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000002")


def clarify_to_two_addresses(settings: Settings, message_id: str) -> None:
    """Our clarification of request 2026-000001 sent to the citizen's address and her work address."""
    message = EmailMessage()
    message["From"] = "info@dizo.test"
    message["To"] = "ivanov@example.ru, ivanov.work@example.org"
    message["Subject"] = "Уточнение по запросу № 2026-000001"
    message["Message-ID"] = f"<{message_id}>"
    message.set_content("Уточните, пожалуйста, за какие годы нужны сведения.")
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        outbox.enqueue(session, message, kind="clarification").request_id = request.id


def test_answering_our_message_proves_only_an_address_it_went_to(settings: Settings) -> None:
    """README, "How an address is proven": a reply naming our Message-ID proves its From only when our message went
    to that address (here the second of its two recipients); from another address it joins the thread and proves
    nothing."""
    first_request(settings)
    clarify_to_two_addresses(settings, "clarify-1@dizo.test")
    later = NOW + dt.timedelta(hours=1)
    for sender in ("other@example.net", "ivanov.work@example.org"):
        reply = citizen_mail(
            sender=sender, subject="Re: уточнение", body="За 2024 год.", in_reply_to="clarify-1@dizo.test"
        )
        result = process_raw(settings, reply, smtp_source(), now=later)
        assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000001")
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        client = request.client
        assert client.proven_email("ivanov.work@example.org")
        assert not client.proven_email("other@example.net")


def test_a_reply_to_our_message_keeps_its_own_words_without_our_quote(settings: Settings) -> None:
    """README, "Intake": only replies to our messages lose the quote of what we wrote (a first letter keeps what it
    quotes). A reply joining an open request and one opening a linked request after our answer alike; the journal
    names the request a reply joined."""
    _first, ack_id = first_request(settings)
    later = NOW + dt.timedelta(hours=1)
    reply = citizen_mail(subject="Re: запрос", body="Нужны сведения и за 2024 год." + QUOTE, in_reply_to=ack_id)
    result = process_raw(settings, reply, smtp_source(), now=later)
    assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000001")
    assert "2026-000001" in result.reason
    answer_id = answer_first(settings)
    linked = citizen_mail(subject="Re: ответ", body="Прошу сообщить ещё и сроки." + QUOTE, in_reply_to=answer_id)
    assert process_raw(settings, linked, smtp_source(), now=later).request_number == "2026-000002"
    with session_scope(settings) as session:
        old = service.get_by_number(session, "2026-000001")
        new = service.get_by_number(session, "2026-000002")
        assert old is not None and new is not None
        [message] = [e for e in old.events if e.kind == "message_in" and utc(e.at) == later]
        assert (message.comment or "").strip() == "Нужны сведения и за 2024 год."
        assert new.text.strip() == "Прошу сообщить ещё и сроки."


def test_files_of_a_letter_and_of_a_reply_are_kept_with_their_message(settings: Settings) -> None:
    """README: attachments within `MAX_ATTACHMENT_BYTES` are kept with the request, each with the message that
    brought it (the first letter, then the reply): an e-mail in the history, linked to its journal row (the original
    staff can open)."""
    first = process_raw(settings, attachment_letter(1000), smtp_source(), now=NOW)
    assert (first.outcome, first.request_number) == (Outcome.new_request, "2026-000001")
    with session_scope(settings) as session:
        ack_id = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "acknowledgement")).one()
    later = NOW + dt.timedelta(hours=1)
    reply = process_raw(settings, attachment_letter(2000, in_reply_to=ack_id), smtp_source(), now=later)
    assert (reply.outcome, reply.request_number) == (Outcome.reply, "2026-000001")
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        kept = sorted(
            (a.size, a.filename, a.event.kind, a.event.channel, a.event.intake_id, utc(a.event.at))
            for a in request.attachments
            if a.event is not None
        )
        assert kept == [
            (1000, "scan.zip", "message_in", "email", first.entry_id, NOW),
            (2000, "scan.zip", "message_in", "email", reply.entry_id, later),
        ]


def test_a_follow_up_to_the_citizens_own_letter_drops_the_quote_of_it(settings: Settings) -> None:
    """A later letter that follows up the citizen's own first letter (found by its Message-ID, no message of ours
    named) after the answer: the new linked request holds the new question; the quoted first letter is already in
    the request it follows (README "Replies to finished requests"). Kills pipeline `_decide` 172, 173."""
    first, _ack = first_request(settings)
    answer_first(settings)
    quoted = "\n".join("> " + line for line in body_text(parse(first)).splitlines())
    follow_up = citizen_mail(
        subject="Re: Запрос информации",
        body=f"А за 2024 год такие сведения есть?\n\n{quoted}\n",
        in_reply_to=message_id_of(first),
        references=[message_id_of(first)],
    )
    result = process_raw(settings, follow_up, smtp_source(), now=NOW + dt.timedelta(days=1))
    assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000002"), result
    with session_scope(settings) as session:
        new = service.get_by_number(session, "2026-000002")
        assert new is not None and new.parent_id is not None
        assert "2024" in new.text
        assert "предоставленных в аренду в 2025 году" not in new.text, new.text


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_letter_written_in_its_own_savepoint_is_threaded_by_the_rest_of_its_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """README "Threading": a follow-up that quotes the citizen's first letter joins that letter's request. One poll
    may bring both. Here the first letter names a number tag, which the fast mode cannot look up, so it is written
    in its own savepoint; its follow-up, later in the same batch, still joins the request it created, as it would a
    poll later (kills pipeline `_careful_one` 47 and 49: the batch forgot such a request's thread root)."""
    if mode == "careful":  # every message in its own savepoint
        monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)
    first = citizen_mail(
        sender="petrov@example.ru",
        subject="Повторно [№ 2026-000099] об аренде",
        body="Прошу сообщить, сколько участков сдано в аренду в 2025 году.",
    )
    follow_up = citizen_mail(
        sender="petrov@example.ru",
        subject="Дополнение",
        body="Дополняю: и за 2024 год тоже.",
        references=[message_id_of(first)],
    )
    results = pipeline.process_batch(settings, [(first, smtp_source()), (follow_up, smtp_source())], now=NOW)
    assert [(r.outcome, r.request_number) for r in results] == [
        (Outcome.new_request, "2026-000001"),
        (Outcome.reply, "2026-000001"),
    ]
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert [e.kind for e in request.events].count("message_in") == 2
        entries = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        assert [e.request_id for e in entries] == [request.id, request.id]


def subject_of(settings: Settings, number: str) -> str:
    with session_scope(settings) as session:
        request = service.get_by_number(session, number)
        assert request is not None
        return request.subject


def test_a_reply_to_a_message_no_domain_takes_is_not_titled_with_its_subject(settings: Settings) -> None:
    """README "Replies to finished requests": the subject of our own message is no topic of the new question (then
    the first words of the new text), for a reply to a message of ours that belongs to no request as well."""
    ours = our_message(settings, "nobody_takes_this")
    reply = citizen_mail(subject="Re: Голосование рабочей группы", body="Прошу прислать повестку.", in_reply_to=ours)
    result = process_raw(settings, reply, smtp_source(), now=NOW)
    assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000001")
    assert subject_of(settings, "2026-000001") == "Прошу прислать повестку."


def test_a_follow_up_by_its_number_tag_is_not_titled_with_our_notice(settings: Settings) -> None:
    """README "Replies to finished requests": «Re: [№ 2026-000022] Статус обращения: дан ответ» leaves nothing of
    its subject: the new linked request takes the first words of its text. Here the letter names no message of ours,
    only the number tag (accepted from an address proven for the client, README "Threading")."""
    _first, ack_id = first_request(settings)
    # Answering our acknowledgement from the address it went to proves the address.
    clarification = citizen_mail(subject="Re: уточнение", body="Уточняю: за 2025 год.", in_reply_to=ack_id)
    assert process_raw(settings, clarification, smtp_source(), now=NOW).outcome is Outcome.reply
    answer_first(settings)
    with session_scope(settings) as session:
        notice = session.scalars(select(OutboxMessage.subject).where(OutboxMessage.kind == "status_notice")).one()
    assert "[№ 2026-000001]" in notice
    later = citizen_mail(subject=f"Re: {notice}", body="А сколько участков продано в 2025 году?")
    result = process_raw(settings, later, smtp_source(), now=NOW + dt.timedelta(days=1))
    assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000002"), result
    assert result.reason.startswith("follow-up to 2026-000001 "), result
    assert subject_of(settings, "2026-000002") == "А сколько участков продано в 2025 году?"


def test_intake_loads_the_domains_routes_itself_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has not loaded the domains' routes (a fresh `mailservice intake import`) still hands a command
    by e-mail to its domain: intake loads the routes the first time it runs, and only then (README, "Intake":
    `routed`, a command)."""
    from mailservice.intake import routes

    monkeypatch.setattr(pipeline, "ROUTES", {})
    monkeypatch.setattr(pipeline, "COMMAND_ROUTES", {})
    monkeypatch.setattr(pipeline, "_routes_loaded", False)
    loads: list[None] = []
    real_load = routes.load_routes

    def counted() -> None:
        loads.append(None)
        real_load()

    monkeypatch.setattr(routes, "load_routes", counted)
    for sender in ("first@example.ru", "second@example.ru"):
        result = process_raw(
            settings, citizen_mail(sender=sender, subject="Отписаться от рассылки", body=""), smtp_source(), now=NOW
        )
        assert result.outcome is Outcome.routed, result
        assert result.reason.startswith("mailing: withdrawal requested"), result
    assert len(loads) == 1


def test_a_copy_of_a_letter_quarantined_in_its_savepoint_is_taken_afresh_in_the_same_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy of a quarantined message is processed afresh rather than hidden behind the first copy (the same letter
    delivered again after an error that does not repeat is carried out, not journaled as a `duplicate` of the
    failure), also when both are in one batch with a message between them (its savepoint flushes the first)."""
    pipeline.load_routes_once()
    calls: list[str | None] = []

    def flaky(session: Session, parsed: ParsedMessage, entry: IntakeEntry, now: dt.datetime) -> str | None:
        calls.append(parsed.from_addr)
        if len(calls) == 1:
            raise RuntimeError("сбой обработчика")
        return "отписка принята"

    from mailservice.intake.commands import Command

    monkeypatch.setitem(pipeline.COMMAND_ROUTES, Command.unsubscribe, flaky)
    command = citizen_mail(sender="x@example.ru", subject="Отписаться от рассылки", body="")
    other = citizen_mail(sender="y@example.ru", subject="Отписаться от рассылки", body="")
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = pipeline.process_batch(settings, [(raw, smtp_source()) for raw in (command, other, command)], now=NOW)
    assert "message by message" not in caplog.text
    assert [r.outcome for r in results] == [Outcome.quarantined, Outcome.routed, Outcome.routed], results
    assert "сбой обработчика" in results[0].reason
    assert calls == ["x@example.ru", "y@example.ru", "x@example.ru"]
    with session_scope(settings) as session:
        assert session.get_one(IntakeEntry, results[2].entry_id).duplicate_of_id is None
    # A later batch knows the quarantined first copy from the journal: not an original either.
    with session_scope(settings) as session:
        session.delete(session.get_one(IntakeEntry, results[2].entry_id))
    later = process_raw(settings, command, smtp_source(), now=NOW + dt.timedelta(minutes=1))
    assert (later.outcome, later.reason) == (Outcome.routed, "отписка принята"), later


def test_two_commands_from_one_address_in_a_batch_are_written_as_first_tried(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Two letters of one batch from one address that each go to their own savepoint (two commands) are written in
    the fast mode as they come: nothing makes the batch fall back to writing message by message."""
    letters = [
        citizen_mail(sender="d@example.ru", subject="Отписаться от рассылки", body=""),
        citizen_mail(sender="d@example.ru", subject="Отписаться", body="Прошу отписать меня от рассылки."),
    ]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = pipeline.process_batch(settings, [(raw, smtp_source()) for raw in letters], now=NOW)
    assert "message by message" not in caplog.text
    assert [r.outcome for r in results] == [Outcome.routed, Outcome.routed], results


def test_a_reply_and_a_repeat_in_a_batch_are_decided_without_writing_it_again(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """README, "Throughput": in the fast mode a reply that names its request and a repeat of a letter registered
    earlier go to their own savepoints, the plain letters are written by the batch itself. Nothing makes the batch
    roll back to be written message by message: the fast mode's choice is right, not merely rescued."""
    _first, ack_id = first_request(settings)
    letters = [
        citizen_mail(sender="b@example.ru", subject="Часы приёма", body="Прошу сообщить часы приёма граждан."),
        citizen_mail(
            subject="Re: дополнение",
            body="Дополняю своё обращение: меня интересуют участки в Бердске.",
            in_reply_to=ack_id,
        ),
        citizen_mail(),  # the first letter pressed again: a new Message-ID, the same sender and words
        citizen_mail(sender="c@example.ru", subject="Аренда", body="Прошу сообщить размер арендной платы за участок."),
    ]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = pipeline.process_batch(
            settings, [(raw, smtp_source()) for raw in letters], now=NOW + dt.timedelta(minutes=5)
        )
    assert "message by message" not in caplog.text
    assert [r.outcome for r in results] == [Outcome.new_request, Outcome.reply, Outcome.duplicate, Outcome.new_request]
    assert [r.request_number for r in results[1:3]] == ["2026-000001"] * 2


def test_the_pollers_warm_up_readies_intake_before_any_letter(settings: Settings) -> None:
    """README, "Throughput": at start-up the poller loads the classifier and the workers and then freezes the
    garbage collector's view of what is loaded; none of it waits for a letter (here without worker processes)."""
    quiet = settings.model_copy(update={"intake_workers": 0})
    thresholds = gc.get_threshold()
    try:
        pipeline.warm_up(quiet)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_reused_message_id_with_other_words_is_no_duplicate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """README, "Intake": *dedupe* takes the Message-ID and the content together. A mail program that gives a second
    letter the Message-ID of the first (it happens) does not make it a copy: it is registered. Both modes ("careful":
    a savepoint per message, as a reply or a command is always written)."""
    if mode == "careful":
        monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)
    first = citizen_mail(message_id="reused@example.ru")
    second = citizen_mail(message_id="reused@example.ru", subject="Другой запрос", body="Прошу сообщить часы приёма.")
    # A letter with no Message-ID at all is a copy by its content alone.
    bare = email.message_from_bytes(citizen_mail(subject="Третий запрос"), policy=email.policy.SMTP)
    del bare["Message-ID"]
    third = bare.as_bytes(policy=email.policy.SMTP)
    results = [process_raw(settings, raw, smtp_source(), now=NOW) for raw in (first, second, second, third, third)]
    assert [r.outcome for r in results] == [
        Outcome.new_request,
        Outcome.new_request,
        Outcome.duplicate,
        Outcome.new_request,
        Outcome.duplicate,
    ]
    numbers = ["2026-000001", "2026-000002", "2026-000002", "2026-000003", "2026-000003"]
    assert [r.request_number for r in results] == numbers


def test_two_first_letters_of_a_new_address_in_one_batch_are_one_clients(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """One address, one client: two letters of one batch from an address intake has never seen are two requests of
    the one client the first created, named as the first said (From is forgeable: a later name does not replace it),
    and the fast mode writes them as they come, without falling back to writing message by message."""
    letters = [
        citizen_mail(sender="g@example.ru", name="Григорьев Григорий", subject="Первый запрос"),
        citizen_mail(sender="g@example.ru", name="Кто-то Другой", subject="Второй запрос", body="Прошу часы приёма."),
    ]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = pipeline.process_batch(settings, [(raw, smtp_source()) for raw in letters], now=NOW)
    assert "message by message" not in caplog.text
    assert [r.request_number for r in results] == ["2026-000001", "2026-000002"]
    with session_scope(settings) as session:
        requests = session.scalars(select(Request).order_by(Request.id)).all()
        assert requests[0].client_id == requests[1].client_id
        assert [c.name for c in session.scalars(select(Client))] == ["Григорьев Григорий"]


def test_a_follow_up_naming_the_request_it_follows_is_linked_not_noted_as_a_mention(settings: Settings) -> None:
    """README, "An addition to an earlier request": a new letter, not a reply, that names a request is noted as
    mentioning it; a follow-up by its number tag that names the request it follows is linked to it instead."""
    _first, ack_id = first_request(settings)
    clarification = citizen_mail(subject="Re: уточнение", body="Уточняю: за 2025 год.", in_reply_to=ack_id)
    assert process_raw(settings, clarification, smtp_source(), now=NOW).outcome is Outcome.reply  # proves the address
    answer_first(settings)
    later = citizen_mail(
        subject="Re: [№ 2026-000001] ответ", body="По обращению № 2026-000001: сколько участков продано в 2025 году?"
    )
    result = process_raw(settings, later, smtp_source(), now=NOW + dt.timedelta(days=1))
    assert (result.outcome, result.request_number) == (Outcome.new_request, "2026-000002"), result
    with session_scope(settings) as session:
        notes = [e.comment or "" for e in session.scalars(select(Event).where(Event.kind == "note"))]
    assert "Связан с ранее рассмотренным запросом № 2026-000001" in notes
    assert not [n for n in notes if n.startswith(("Упоминает", "Упомянуто"))], notes


def test_the_batch_look_ups_ask_for_every_value_once() -> None:
    """The batch's look-ups (duplicates, clients, thread roots) split a long list of values into chunks, a query
    each: together the chunks are the list, each value once and in order, however long the list."""
    for count in (0, 1, 999, 1000, 2501):
        values = [f"v{i}" for i in range(count)]
        chunks = [list(chunk) for chunk in pipeline._chunks(values)]
        assert [v for chunk in chunks for v in chunk] == values
        assert all(chunks)


def test_a_known_clients_letter_in_a_batch_is_written_as_first_tried(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch finds the clients of its senders in one query: a new letter of a client known before the batch is
    that client's, written in the fast mode as it comes (no fall-back to writing message by message)."""
    first = process_raw(settings, citizen_mail(sender="k@example.ru", name="Козлов К."), smtp_source(), now=NOW)
    letter = citizen_mail(sender="k@example.ru", name="Козлов К.", subject="Второй", body="Прошу часы приёма.")
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        [second] = pipeline.process_batch(settings, [(letter, smtp_source())], now=NOW)
    assert "message by message" not in caplog.text
    assert (first.request_number, second.request_number) == ("2026-000001", "2026-000002")
    with session_scope(settings) as session:
        assert len(set(session.scalars(select(Request.client_id)))) == 1


def test_the_batch_finds_the_client_of_an_address_on_a_merged_record_as_the_careful_look_up_does(
    settings: Settings,
) -> None:
    """A merged record points at the record it was merged into: the batch's look-up of an address still on the
    merged record gives that survivor, the client the careful look-up (one message at a time) gives."""
    process_raw(settings, citizen_mail(sender="old@example.ru", name="Орлов О."), smtp_source(), now=NOW)
    process_raw(settings, citizen_mail(sender="new@example.ru", subject="Другой"), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        merged, survivor = session.scalars(select(Client).order_by(Client.id)).all()
        merged.merged_into_id = survivor.id
        survivor_id = survivor.id
    letters = [citizen_mail(sender=sender, subject="Третий") for sender in ("Old@Example.ru", "new@example.ru")]
    with session_scope(settings) as session:
        batch = pipeline.BatchLookups(session, [parse_message(raw) for raw in letters], NOW)
        careful = pipeline.Lookups(session)
        for address in ("old@example.ru", "OLD@example.ru", "new@example.ru"):
            found, expected = batch.client(address), careful.client(address)
            assert found is not None and expected is not None, address
            assert found.id == expected.id == survivor_id, address


def test_a_follow_up_from_another_of_the_citizens_addresses_joins_her_request(settings: Settings) -> None:
    """README, "Threading": a letter naming the citizen's own first letter follows it from any of her addresses,
    not only the one the request was registered from (here her work address, which answered our message)."""
    first, _ack = first_request(settings)
    clarify_to_two_addresses(settings, "clarify-2@dizo.test")
    later = NOW + dt.timedelta(hours=1)
    work = "ivanov.work@example.org"
    answer = citizen_mail(sender=work, subject="Re: уточнение", body="За 2025 год.", in_reply_to="clarify-2@dizo.test")
    assert process_raw(settings, answer, smtp_source(), now=later).request_number == "2026-000001"
    follow_up = citizen_mail(
        sender=work, subject="Дополнение", body="И за 2024 год, если можно.", references=[message_id_of(first)]
    )
    result = process_raw(settings, follow_up, smtp_source(), now=later + dt.timedelta(hours=1))
    assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000001")


def test_a_letter_failing_on_a_database_behind_the_code_is_refused_not_quarantined(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_url: str,  # noqa: F811
) -> None:
    """README, "Upgrades": while the database and the running code differ in their migrations, a letter that fails
    for that reason is not quarantined: intake raises and writes nothing (the receiver answers 451, the poller
    leaves the letter in the mailbox). What it raises tells the operator every head not reached (here two
    branches behind) and the command that reaches them."""
    settings = make_env(monkeypatch, tmp_path, fresh_url)
    script = ScriptDirectory.from_config(db.alembic_config(settings))

    def ancestry(head: str) -> set[str]:
        return {revision.revision for revision in script.iterate_revisions(head, "base")}

    behind = "1905_reply_email_lower"  # the requests' branch stops here: a letter cannot be written
    heads = sorted(script.get_heads())
    lagging = [head for head in heads if behind in ancestry(head)]
    # The mailings' branch one migration short of its head as well.
    [mailings] = [head for head in heads if "mailings_0001" in ancestry(head) and head not in lagging]
    for head in heads:
        if head not in lagging and head != mailings:
            db.upgrade(settings, head)
    db.upgrade(settings, behind)
    db.upgrade(settings, str(script.get_revision(mailings).down_revision))
    pending = sorted([*lagging, mailings])
    assert len(pending) >= 2
    try:
        with pytest.raises(pipeline.SchemaMismatch) as refused:
            process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
        with session_scope(settings) as session:
            journaled = session.scalar(select(func.count()).select_from(IntakeEntry))
    finally:
        reset_caches()
    assert str(refused.value) == (
        f"the database's migrations are not the code's (heads not reached: {', '.join(pending)}); "
        "run `mailservice db upgrade` with the code that is running"
    )
    assert isinstance(refused.value.__cause__, DBAPIError)  # the database's own error, shown with it in the log
    assert journaled == 0


def test_an_integrity_error_while_the_migrations_differ_is_refused_too(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """README, "Upgrades": old code still running after an upgrade fails on a constraint it does not know (a NOT
    NULL column it leaves empty, say): an integrity error then is the schema's, not the letter's. Intake raises,
    keeps the error that showed it, and writes nothing. Here the database's record names one migration less than
    the code's head of the mailings' branch, and the insert fails on a constraint."""
    script = ScriptDirectory.from_config(db.alembic_config(settings))
    [mailings] = [
        head
        for head in script.get_heads()
        if "mailings_0001" in {revision.revision for revision in script.iterate_revisions(head, "base")}
    ]
    older = str(script.get_revision(mailings).down_revision)

    def name_as_head(before: str, after: str) -> None:
        with session_scope(settings) as session:
            session.execute(
                text("UPDATE alembic_version SET version_num = :after WHERE version_num = :before"),
                {"before": before, "after": after},
            )

    name_as_head(mailings, older)
    # The PostgreSQL database is the test process's for the whole run (emptied between tests, not rebuilt): its
    # record of migrations is put back, or the next test to upgrade would run that migration again on its tables.
    request.addfinalizer(lambda: name_as_head(older, mailings))
    failure = IntegrityError("INSERT INTO requests", {}, Exception("NOT NULL constraint failed"))

    def failing_request(*args: object, **kwargs: object) -> Request:
        raise failure

    monkeypatch.setattr(service, "create_request", failing_request)
    with pytest.raises(pipeline.SchemaMismatch) as refused:
        process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    assert f"heads not reached: {mailings});" in str(refused.value)
    assert refused.value.__cause__ is failure
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(IntakeEntry)) == 0


def test_a_failing_letter_is_its_own_when_the_migrations_cannot_be_compared(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After a letter fails, intake asks whether the database's migrations are the code's; when the database
    cannot say, the failure is the letter's own: it is quarantined with its reason (README, "Intake"), and the
    log says why the schema was not compared, with the error."""

    def failing_request(*args: object, **kwargs: object) -> Request:
        raise RuntimeError("simulated bug")

    def unanswered(*args: object, **kwargs: object) -> set[str]:
        raise OperationalError("SELECT version_num FROM alembic_version", {}, Exception("connection lost"))

    monkeypatch.setattr(service, "create_request", failing_request)
    monkeypatch.setattr(db, "pending_migrations", unanswered)
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        result = process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    assert (result.outcome, result.reason) == (Outcome.quarantined, "internal error: RuntimeError: simulated bug")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING and "migrations" in r.getMessage().lower()]
    assert warning.exc_info is not None and warning.exc_info[0] is OperationalError


def test_the_batch_asks_again_about_an_address_a_savepoint_stored(settings: Settings) -> None:
    """The batch knows which of its senders' addresses no stored contact row holds (the new client of such an
    address looks for no contact left on a merged record, README "State of the work"). A letter written in its own
    savepoint (a command, a thank-you) may store the address: after it, the batch no longer claims that no row
    holds it, and finds the client the savepoint made."""
    letter = citizen_mail(sender="fresh@example.ru")
    with session_scope(settings) as session:
        batch = pipeline.BatchLookups(session, [parse_message(letter)], NOW)
        assert batch.unheld("fresh@example.ru") and batch.client("fresh@example.ru") is None
        savepoint = session.begin_nested()
        made = service.update_or_create_client(session, None, now=NOW, name="", email="fresh@example.ru")
        session.flush()
        savepoint.commit()
        batch.forget_client("Fresh@Example.ru")
        assert not batch.unheld("fresh@example.ru")
        assert batch.client("fresh@example.ru") is made


RESEND_WINDOW = dt.timedelta(hours=24)  # README, "Intake": a letter repeating one registered «within 24 hours»
AUCTION = "Прошу сообщить, когда будет аукцион на участок в Бердске."


def pressed_again(
    sender: str = "ivanov@example.ru", *, text: str = AUCTION, scan: bytes | None = None, subject: str = "Аукцион"
) -> bytes:
    """The letter as its author's mail program sends it each time «Отправить» is pressed: a new Message-ID (and a
    new MIME boundary), the same sender, subject, text and file."""
    message = EmailMessage()
    message["From"] = f"Иванов Иван <{sender}>"
    message["To"] = "info@dizo.test"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.ru")
    message.set_content(text)
    if scan is not None:
        message.add_attachment(scan, maintype="application", subtype="pdf", filename="заявление.pdf")
    return message.as_bytes(policy=email.policy.SMTP)


def taken(settings: Settings, letters: list[tuple[bytes, dt.datetime]]) -> list[tuple[Outcome, int | None, str | None]]:
    """Take each letter at its time; then each journal row's outcome, the position of the row it copies and its
    request's number, in order."""
    for raw, at in letters:
        process_raw(settings, raw, smtp_source(), now=at)
    with session_scope(settings) as session:
        rows = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        position = {row.id: n for n, row in enumerate(rows)}
        return [
            (Outcome(r.outcome), position.get(r.duplicate_of_id or 0), r.request.number if r.request else None)
            for r in rows
        ]


def every_letter_in_its_own_savepoint(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """In the "careful" mode every letter is decided in its own savepoint, as the careful mode writes a batch (and
    the fast mode a letter that may repeat an earlier one); in the "fast" mode intake chooses."""
    if mode == "careful":
        monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_letter_sent_again_within_24_hours_is_a_copy_of_the_registered_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """README, "Intake" (*dedupe*): the same letter with its file sent again within 24 hours, the sender's address in
    any case, is a `duplicate` of the registered letter's request, up to the 24th hour itself; a second later it
    is a letter of its own."""
    every_letter_in_its_own_savepoint(monkeypatch, mode)
    scan = b"%PDF-1.4 scan"
    presses = [
        (pressed_again(scan=scan), NOW),
        (pressed_again("Ivanov@Example.ru", scan=scan), NOW + dt.timedelta(minutes=1)),
        (pressed_again(scan=scan), NOW + RESEND_WINDOW),
        (pressed_again(scan=scan), NOW + RESEND_WINDOW + SECOND),
    ]
    assert taken(settings, presses) == [
        (Outcome.new_request, None, "2026-000001"),
        (Outcome.duplicate, 0, "2026-000001"),
        (Outcome.duplicate, 0, "2026-000001"),
        (Outcome.new_request, None, "2026-000002"),
    ]


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_letter_with_its_whole_complaint_as_subject_sent_again_is_a_copy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Real mail: the complaint typed whole into the subject line, longer than the journal keeps of a subject (its
    first 500 characters, README "Intake"). Pressed again, it is still a copy: the repeat is told by what was kept."""
    every_letter_in_its_own_savepoint(monkeypatch, mode)
    subject = " ".join(["Прошу разобраться с вырубкой деревьев на участке у дома 5 по улице Ленина в Бердске"] * 10)
    assert len(subject) > 700
    presses = [(pressed_again(subject=subject), NOW + dt.timedelta(minutes=minutes)) for minutes in (0, 1)]
    assert taken(settings, presses) == [
        (Outcome.new_request, None, "2026-000001"),
        (Outcome.duplicate, 0, "2026-000001"),
    ]


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_third_press_copies_the_registered_letter_not_the_second_copy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """README, "Intake": a repeat is a copy of the letter *registered*; the second press, itself a copy, is never
    the letter a third press repeats (a letter without files here: their files cannot tell the two apart)."""
    every_letter_in_its_own_savepoint(monkeypatch, mode)
    presses = [(pressed_again(), NOW + dt.timedelta(minutes=minutes)) for minutes in (0, 1, 2)]
    assert taken(settings, presses) == [
        (Outcome.new_request, None, "2026-000001"),
        (Outcome.duplicate, 0, "2026-000001"),
        (Outcome.duplicate, 0, "2026-000001"),
    ]


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_another_senders_letter_with_the_same_words_is_no_copy_and_hides_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """README, "Intake": a repeat is the same *sender*'s. A neighbour sending the same subject and words (a template
    passed round) has his own request; and the author's own second press after the neighbour's letter is still a
    copy of her first."""
    every_letter_in_its_own_savepoint(monkeypatch, mode)
    letters = [
        (pressed_again(), NOW),
        (pressed_again("petrov@example.ru"), NOW + dt.timedelta(minutes=1)),
        (pressed_again(), NOW + dt.timedelta(minutes=2)),
    ]
    assert taken(settings, letters) == [
        (Outcome.new_request, None, "2026-000001"),
        (Outcome.new_request, None, "2026-000002"),
        (Outcome.duplicate, 0, "2026-000001"),
    ]
