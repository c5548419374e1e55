"""Intake end to end on SQLite and PostgreSQL, with the outbox drained into a real aiosmtpd sink."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.outbox import OutboxMessage, drain_once
from mailservice.workdays import default_calendar
from tests.mailfactory import body_text, citizen_mail, message_id_of, parse
from tests.servers import Sink

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk


def smtp_source() -> Source:
    return Source("smtp", envelope_from="ivanov@example.ru")


def drain(settings: Settings) -> None:
    asyncio.run(drain_once(settings))


def test_new_message_is_registered_and_acknowledged(settings: Settings, sink: Sink) -> None:
    raw = citizen_mail()
    result = process_raw(settings, raw, smtp_source(), now=NOW)
    assert result.outcome is Outcome.new_request
    assert result.request_number == "2026-000001"

    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.status == Status.registered
        assert request.registered_on == dt.date(2026, 3, 2)
        # README: registration + 30 calendar days counted from the next day; 01.04.2026 is a Wednesday, a working
        # day, so the control date is the legal date.
        assert request.due_date == dt.date(2026, 4, 1)
        assert request.control_date == dt.date(2026, 4, 1)
        assert request.client.name == "Иванов Иван Иванович"
        assert request.client.email == "ivanov@example.ru"
        kinds = [e.kind for e in request.events]
        assert kinds[:2] == ["message_in", "registered"]
        assert "message_out" in kinds  # the acknowledgement is part of the history
        journal = session.scalars(select(IntakeEntry)).one()
        assert journal.outcome == Outcome.new_request and journal.request_id == request.id

    drain(settings)
    [(mail_from, rcpts, ack_raw)] = sink.messages()
    ack = parse(ack_raw)
    assert rcpts == ["ivanov@example.ru"]
    assert mail_from == "info@dizo.test"
    assert "[№ 2026-000001]" in str(ack["Subject"])
    assert ack["Auto-Submitted"] == "auto-replied"  # RFC 3834: an answer to the citizen's message
    assert str(ack["In-Reply-To"]).strip("<>") == message_id_of(raw)
    text = body_text(ack)
    assert "2026-000001" in text
    assert "1 апреля 2026 г." in text  # the due date, as the acknowledgement writes it
    assert b"\r\n" in ack_raw and b"\n" not in ack_raw.replace(b"\r\n", b"")  # policy.SMTP: CRLF only


def test_numbers_are_gap_free_and_per_year(settings: Settings) -> None:
    # Four different letters: the same one sent again within a day is a copy of its request, not a new number.
    for question in range(3):
        process_raw(settings, citizen_mail(body=f"Вопрос {question}"), smtp_source(), now=NOW)
    # A registration that rolls back returns its number.
    with pytest.raises(RuntimeError), session_scope(settings) as session:
        assert service.next_number(session, 2026) == "2026-000004"
        raise RuntimeError("rollback")
    new_year = dt.datetime(2026, 12, 31, 18, 0, tzinfo=dt.UTC)  # already 01.01.2027 in Novosibirsk
    first_2027 = process_raw(settings, citizen_mail(body="Вопрос 2027"), smtp_source(), now=new_year)
    fourth = process_raw(settings, citizen_mail(body="Вопрос 3"), smtp_source(), now=NOW)
    assert first_2027.request_number == "2027-000001"
    assert fourth.request_number == "2026-000004"


def test_reply_by_message_id_joins_the_request(settings: Settings, sink: Sink) -> None:
    first = citizen_mail()
    process_raw(settings, first, smtp_source(), now=NOW)
    drain(settings)
    ack_id = message_id_of(sink.messages()[0][2])
    # The citizen answers from another address: our Message-ID still finds the request (alaveteli#7879).
    reply = citizen_mail(
        sender="ivanov.work@example.org",
        subject="Re: [№ 2026-000001] Ваше обращение зарегистрировано",
        body="Дополняю запрос: интересует также 2024 год.\n\n> Ваше обращение получено",
        in_reply_to=ack_id,
        references=[message_id_of(first), ack_id],
    )
    result = process_raw(settings, reply, smtp_source(), now=NOW + dt.timedelta(hours=1))
    assert result.outcome is Outcome.reply
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 1
        request = session.scalars(select(Request)).one()
        last_in = [e for e in request.events if e.kind == "message_in"][-1]
        assert "2024 год" in last_in.comment
        assert "Ваше обращение получено" not in last_in.comment  # the quote is stripped
        # A reply from elsewhere proves nothing and attaches nothing: only the address written from is a contact.
        assert [(c.value, c.proven) for c in request.client.contacts] == [("ivanov@example.ru", False)]
    same_address = citizen_mail(subject="Re: ответ", body="И ещё за 2023 год, пожалуйста.", in_reply_to=ack_id)
    assert process_raw(settings, same_address, smtp_source(), now=NOW).outcome is Outcome.reply
    with session_scope(settings) as session:
        client = session.scalars(select(Request)).one().client
        assert [(c.value, c.proof) for c in client.contacts if c.proven] == [("ivanov@example.ru", "reply")]


def test_a_reply_joins_the_request_of_the_latest_of_our_messages_it_names(settings: Settings, sink: Sink) -> None:
    """In-Reply-To names the message answered and References list the thread oldest first (RFC 5322 3.6.4): a reply
    that names acknowledgements of two requests joins the one it answers, or else the newest it lists; ids that are
    not ours are passed over."""
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    other = citizen_mail(subject="Другой вопрос", body="Прошу сообщить график приёма граждан в марте.")
    process_raw(settings, other, smtp_source(), now=NOW)
    drain(settings)
    acks = {}
    for _from, _rcpts, raw in sink.messages():
        number = "2026-000001" if "2026-000001" in str(parse(raw)["Subject"]) else "2026-000002"
        acks[number] = message_id_of(raw)
    first, second = acks["2026-000001"], acks["2026-000002"]
    for in_reply_to, references, joins in (
        (None, [first, second], "2026-000002"),
        (None, [second, first], "2026-000001"),
        (first, [first, second], "2026-000001"),
        (second, [second, first], "2026-000002"),
        ("own-draft@ivanov.example.ru", [first], "2026-000001"),  # answers a message of theirs, quotes ours
    ):
        reply = citizen_mail(
            subject="Re: ответ", body=f"Дополнение {joins}.", in_reply_to=in_reply_to, references=references
        )
        result = process_raw(settings, reply, smtp_source(), now=NOW)
        assert (result.outcome, result.request_number) == (Outcome.reply, joins), (in_reply_to, references)


def test_a_first_letter_keeps_what_it_quotes_or_forwards(settings: Settings) -> None:
    """Tryout F5: «Прошу разобраться» above a quoted refusal, or a forwarded letter, is the appeal itself: a new
    request keeps the quoted part for staff and the classifier (only replies to our messages lose the quote)."""
    quoted = citizen_mail(
        sender="semen2@example.ru",
        subject="Fwd: Отказ",
        body="Прошу разобраться.\n\n> Уважаемый Семён! Вам отказано в предоставлении земельного участка "
        "54:35:000111:22.\n> Администрация района",
    )
    forwarded = citizen_mail(
        sender="fwd@example.ru",
        subject="Fwd: забор",
        body="Пересылаю письмо соседа. Прошу проверить границы участка.\n\n---------- Forwarded message "
        "---------\nFrom: Сосед <neighbor@example.ru>\nSubject: забор\n\nВаш забор стоит на моём участке.",
    )
    for raw, own, kept in (
        (quoted, "Прошу разобраться.", "Вам отказано в предоставлении земельного участка"),
        (forwarded, "Пересылаю письмо соседа.", "Ваш забор стоит на моём участке."),
    ):
        result = process_raw(settings, raw, smtp_source(), now=NOW)
        assert result.outcome is Outcome.new_request
        with session_scope(settings) as session:
            request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
            assert request.text.startswith(own) and kept in request.text


def test_subject_tag_only_from_an_address_proven_for_the_client(settings: Settings, sink: Sink) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    tagged = "Re: [№ 2026-000001] дополнение"
    # The client's own address, not yet proven: From is forgeable, so the guessable number opens nothing.
    early = citizen_mail(subject=tagged, body="Ещё один вопрос по тому же запросу.")
    assert process_raw(settings, early, smtp_source(), now=NOW).outcome is Outcome.new_request
    drain(settings)
    ack_id = message_id_of(sink.messages()[0][2])
    proof = citizen_mail(subject="Re: ответ", body="Подтверждаю получение.", in_reply_to=ack_id)
    assert process_raw(settings, proof, smtp_source(), now=NOW).outcome is Outcome.reply
    same = citizen_mail(subject=tagged, body="И ещё один вопрос по тому же запросу.")
    result = process_raw(settings, same, smtp_source(), now=NOW)
    assert (result.outcome, result.request_number) == (Outcome.reply, "2026-000001")
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None and entry.reason == "reply to 2026-000001"


def test_subject_tag_from_a_stranger_opens_a_new_request(settings: Settings) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    stranger = citizen_mail(sender="other@example.com", subject="[№ 2026-000001] чужой номер")
    assert process_raw(settings, stranger, smtp_source(), now=NOW).outcome is Outcome.new_request


def test_reply_to_closed_request_starts_a_linked_one(settings: Settings, sink: Sink) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        service.change_status(session, settings, request, Status.answered, now=NOW, actor="t", comment="Ответ: 12.")
        service.change_status(session, settings, request, Status.closed, now=NOW, actor="t")
    drain(settings)
    answer_id = message_id_of(sink.messages()[1][2])
    follow_up = citizen_mail(
        subject="Re: ответ", body="Спасибо. Прошу также предоставить сведения за 2023 год.", in_reply_to=answer_id
    )
    result = process_raw(settings, follow_up, smtp_source(), now=NOW + dt.timedelta(days=1))
    assert result.outcome is Outcome.new_request
    assert result.request_number == "2026-000002"
    with session_scope(settings) as session:
        new = service.get_by_number(session, "2026-000002")
        old = service.get_by_number(session, "2026-000001")
        assert new is not None and old is not None
        assert new.parent_id == old.id and new.client_id == old.client_id
        assert old.status == Status.closed  # not reopened behind staff's back


def test_status_changes_are_events_and_threaded_mails(settings: Settings, sink: Sink) -> None:
    first = citizen_mail()
    process_raw(settings, first, smtp_source(), now=NOW)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        service.change_status(session, settings, request, Status.in_progress, now=NOW, actor="operator")
        service.change_status(
            session, settings, request, Status.extended, now=NOW, actor="operator", extension_days=15,
            comment="Требуется сбор сведений из подведомственных учреждений",
        )  # fmt: skip
        assert request.due_date == dt.date(2026, 4, 16)  # 30 days and the extension's 15 (README: ≤ 15 for 8-FZ)
        service.change_status(
            session, settings, request, Status.refused, now=NOW, actor="operator",
            ground="8fz-20-1-3", comment="Сведения находятся в ведении Росреестра.",
        )  # fmt: skip
    drain(settings)
    mails = [parse(raw) for _f, _r, raw in sink.messages()]
    assert len(mails) == 4
    ids = [str(m["Message-ID"]).strip("<>") for m in mails]
    for previous, mail in zip(ids, mails[1:], strict=False):
        assert str(mail["In-Reply-To"]).strip("<>") == previous
        assert message_id_of(first) in str(mail["References"])
        assert mail["Auto-Submitted"] == "auto-generated"  # notices; a written answer would carry "no"
    refusal = body_text(mails[-1])
    assert "ст. 20 ч. 1 п. 3" in refusal and "Росреестра" in refusal
    with session_scope(settings) as session:
        events = session.scalars(select(Event).where(Event.kind == "status_changed").order_by(Event.id)).all()
        assert [(e.from_status, e.to_status) for e in events] == [
            ("registered", "in_progress"),
            ("in_progress", "extended"),
            ("extended", "refused"),
        ]
        assert events[1].extension_days == 15


def test_refusal_needs_a_ground_of_the_right_law(settings: Settings) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        with pytest.raises(ValueError, match="основание"):
            service.change_status(session, settings, request, Status.refused, now=NOW, actor="t", comment="x")
        with pytest.raises(ValueError):
            service.change_status(
                session, settings, request, Status.refused, now=NOW, actor="t", ground="59fz-11-3", comment="x"
            )


def test_letters_that_only_look_automatic_are_never_dropped(settings: Settings, sink: Sink) -> None:
    """Tryout F19: a subject about auto-replies or X-Auto-Response-Suppress dropped citizens' letters (59-FZ art. 8:
    every appeal is registered). Such a letter is registered, or, on an auto-reply prefix alone, held for staff."""
    complaint = citizen_mail(
        sender="cit1@example.ru",
        subject="Автоответ не пришёл",
        body="Я писал вам вчера, автоответ не пришёл. Зарегистрировано ли моё обращение?",
    )
    outlook = citizen_mail(
        sender="cit2@example.ru",
        subject="Арендная плата",
        body="Прошу сообщить размер арендной платы.",
        headers={"X-Auto-Response-Suppress": "OOF, AutoReply"},
    )
    prefixed = citizen_mail(sender="cit3@example.ru", subject="Автоответ: не получил", body="Почему нет ответа?")
    assert process_raw(settings, complaint, smtp_source(), now=NOW).outcome is Outcome.new_request
    assert process_raw(settings, outlook, smtp_source(), now=NOW).outcome is Outcome.new_request
    held = process_raw(settings, prefixed, smtp_source(), now=NOW)
    assert held.outcome is Outcome.held
    with session_scope(settings) as session:
        entry = session.scalars(select(IntakeEntry).where(IntakeEntry.outcome == Outcome.held)).one()
        assert entry.request_id is not None and "automatic-reply subject" in entry.reason
        request = session.get(Request, entry.request_id)
        assert request is not None and request.number is None and request.text == "Почему нет ответа?"
        assert session.scalar(select(func.count(Request.id)).where(Request.number.is_not(None))) == 2


def test_auto_replies_and_null_sender_never_become_requests(settings: Settings, sink: Sink) -> None:
    vacation = citizen_mail(subject="Автоответ: в отпуске", headers={"Auto-Submitted": "auto-replied"})
    # A newsletter (a bulk letter that asks something waits for staff instead: tests/test_intake_list_mail.py).
    bulk = citizen_mail(
        subject="Новости",
        body="Дайджест недели: открыт новый сквер, начался фестиваль.",
        headers={"Precedence": "bulk"},
    )
    assert process_raw(settings, vacation, smtp_source(), now=NOW).outcome is Outcome.ignored_auto_reply
    assert process_raw(settings, bulk, smtp_source(), now=NOW).outcome is Outcome.ignored_auto_reply
    # A null envelope sender (RFC 5321 4.5.5) on a letter that asks nothing: a mail system's notice, ignored.
    notice = citizen_mail(sender="robot@example.ru", name="", subject="Уведомление", body="Письмо прочитано 02.03.")
    null_sender = process_raw(settings, notice, Source("smtp", envelope_from=""), now=NOW)
    assert null_sender.outcome is Outcome.ignored_auto_reply, null_sender
    with session_scope(settings) as session:
        entry = session.scalars(select(IntakeEntry).where(IntakeEntry.id == null_sender.entry_id)).one()
        assert "RFC 5321" in entry.reason  # journalled with its reason
    drain(settings)
    assert sink.messages() == []  # no answer to an automatic message: no mail loop
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 0
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_a_null_sender_letter_that_asks_is_held_unanswered(settings: Settings, sink: Sink) -> None:
    # README "Held queue": a person's letter that asks, with a null return path (a form relay, a gateway releasing
    # it from its quarantine), waits for staff; nothing answers a null reverse-path automatically (RFC 5321 4.5.5).
    held = process_raw(settings, citizen_mail(), Source("smtp", envelope_from=""), now=NOW)
    assert held.outcome is Outcome.held, held
    assert held.request_number is None
    drain(settings)
    assert sink.messages() == []
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.number is None and request.status == Status.received
        notes = [e.comment for e in request.events if e.kind == "note"]
        assert any("пустым адресом возврата (<>)" in note and "есть вопрос" in note for note in notes), notes
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0


def awaiting_clarification(settings: Settings, sink: Sink) -> tuple[str, int]:
    """Request 2026-000001 registered and waiting for a clarification, its notices delivered: the Message-ID of the
    question and the number of letters in the sink."""
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        service.change_status(
            session, settings, request, Status.clarification_requested, now=NOW, actor="t",
            comment="Уточните, за какой год нужны сведения.",
        )  # fmt: skip
    drain(settings)
    before = len(sink.messages())
    question = message_id_of(sink.messages()[-1][2])
    return question, before


def test_a_null_sender_reply_that_asks_is_held_not_joined(settings: Settings, sink: Sink) -> None:
    # Joining a request waiting for a clarification tells the client of the status change: a reply with a null
    # return path waits for staff instead, and nothing is sent (RFC 5321 4.5.5).
    question, before = awaiting_clarification(settings, sink)
    reply = citizen_mail(subject="Re: уточнение", body="За 2025 год. А за 2024 можно?", in_reply_to=question)
    held = process_raw(settings, reply, Source("smtp", envelope_from="<>"), now=NOW + dt.timedelta(hours=1))
    assert held.outcome is Outcome.held, held
    drain(settings)
    assert len(sink.messages()) == before
    with session_scope(settings) as session:
        first = service.get_by_number(session, "2026-000001")
        assert first is not None and first.status == Status.clarification_requested
        waiting = session.scalars(select(Request).where(Request.number.is_(None))).one()
        assert waiting.status == Status.received and "2024" in waiting.text


def test_a_clarification_by_reply_is_joined_and_the_change_told(settings: Settings, sink: Sink) -> None:
    # README "Every change told": «запрошено уточнение» → «на рассмотрении» when the clarification arrives, and the
    # client gets the notice through the outbox (kills pipeline `_decide` 94: the join without the settings).
    question, before = awaiting_clarification(settings, sink)
    reply = citizen_mail(subject="Re: уточнение", body="За 2025 год.", in_reply_to=question)
    joined = process_raw(settings, reply, smtp_source(), now=NOW + dt.timedelta(hours=1))
    assert joined.request_number == "2026-000001", joined
    drain(settings)
    told = sink.messages()[before:]
    assert len(told) == 1, told
    letter = parse(told[0][2])
    assert "2026-000001" in str(letter["Subject"]) and "на рассмотрении" in str(letter["Subject"]), letter["Subject"]
    with session_scope(settings) as session:
        first = service.get_by_number(session, "2026-000001")
        assert first is not None and first.status == Status.in_progress
        assert session.scalar(select(func.count(Request.id))) == 1


def test_dsn_becomes_a_bounce_record(settings: Settings) -> None:
    dsn = (
        b"From: MAILER-DAEMON@mx.example.ru\r\nTo: info@dizo.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <dsn1@mx.example.ru>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.ru\r\n\r\n"
        b"Final-Recipient: rfc822; petrov@example.ru\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--B--\r\n"
    )
    result = process_raw(settings, dsn, Source("smtp", envelope_from=""), now=NOW)
    assert result.outcome is Outcome.bounce
    with session_scope(settings) as session:
        bounce = session.scalars(select(Bounce)).one()
        assert bounce.address == "petrov@example.ru"
        assert bounce.kind == "hard" and bounce.status == "5.1.1"


def test_duplicate_delivery_is_journaled_once_as_duplicate(settings: Settings) -> None:
    raw = citizen_mail()
    relayed = b"Received: from relay.example.ru by mx; Mon, 2 Mar 2026 12:00:00 +0700\r\n" + raw
    assert process_raw(settings, raw, smtp_source(), now=NOW).outcome is Outcome.new_request
    assert process_raw(settings, relayed, smtp_source(), now=NOW).outcome is Outcome.duplicate
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 1
        assert session.scalar(select(func.count(IntakeEntry.id))) == 2


def test_unparseable_message_is_quarantined_and_kept(settings: Settings) -> None:
    garbage = b"\x00\x01\x02 this is not a message at all \xff\xfe"
    result = process_raw(settings, garbage, smtp_source(), now=NOW)
    assert result.outcome is Outcome.quarantined
    assert result.reason
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None
        assert (
            settings.blob_dir / entry.raw_sha256[:2] / entry.raw_sha256[2:4] / entry.raw_sha256
        ).read_bytes() == garbage


def test_other_channels_share_the_register(settings: Settings, sink: Sink) -> None:
    with session_scope(settings) as session:
        client = service.find_or_create_client(session, now=NOW, name="Петрова А. С.", phone="+7 913 000-00-00")
        phone = service.create_request(
            session, settings, now=NOW, client=client, channel=service.Channel.phone, subject="Часы приёма",
            text="Звонок: спрашивает часы приёма по вопросам аренды.", labels=service.Labels(),
        )  # fmt: skip
        assert phone.number == "2026-000001"
        assert phone.events[1].data["oral"] is True  # oral: registered with date and time
        anonymous_client = service.find_or_create_client(session, now=NOW)
        anonymous = service.create_request(
            session, settings, now=NOW, client=anonymous_client, channel=service.Channel.post,
            subject="Без подписи", text="Письмо без подписи и обратного адреса", labels=service.Labels(),
        )  # fmt: skip
        assert anonymous.number is None and anonymous.status == Status.closed
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        numbers = sorted(n for n in session.scalars(select(Request.number)) if n)
        assert numbers == ["2026-000001", "2026-000002"]
        assert session.scalar(select(func.count(Client.id))) == 3
    drain(settings)
    assert len(sink.messages()) == 1  # the phone caller gave no address; only the e-mail citizen is answered


def test_smtp_down_defers_and_nothing_is_lost(
    settings: Settings, sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    down = settings.model_copy(update={"smtp_port": 1})  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="mailservice.outbox"):
        result = asyncio.run(drain_once(down))
    assert result.sent == 0 and result.deferred == 1
    with session_scope(settings) as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.status == "pending" and row.attempts == 1 and row.last_error
        # Each attempt that fails is in the log, with why (not only the last of the twelve, days later).
        said = [r.getMessage() for r in caplog.records if r.name == "mailservice.outbox"]
        assert any(f"outbox {row.id} not sent (attempt 1 of 12" in line and row.last_error in line for line in said)
        row.next_attempt_at = NOW  # due again now
    drain(settings)
    assert len(sink.messages()) == 1


def test_late_forwarding_is_done_and_recorded(settings: Settings) -> None:
    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None
        with pytest.raises(service.RequestError):
            service.change_status(session, settings, request, Status.forwarded, now=NOW, actor="t")  # where to?
        late = NOW + dt.timedelta(days=10)
        event = service.change_status(
            session, settings, request, Status.forwarded, now=late, actor="t", forwarded_to="Управление Росреестра"
        )
        assert event.data == {"forwarded_to": "Управление Росреестра", "late_notice": True}


def test_overdue_and_due_soon_flags(settings: Settings) -> None:
    from mailservice.inforequests.queues import is_due_soon, is_overdue

    process_raw(settings, citizen_mail(), smtp_source(), now=NOW)
    calendar = default_calendar(settings)
    with session_scope(settings) as session:
        request = service.get_by_number(session, "2026-000001")
        assert request is not None and request.control_date is not None and request.due_date is not None
        assert not is_due_soon(request, dt.date(2026, 3, 10), calendar, 3)
        assert is_due_soon(request, calendar.add_working_days(request.control_date, -2), calendar, 3)
        assert not is_overdue(request, request.due_date)
        assert is_overdue(request, request.due_date + dt.timedelta(days=1))
        service.change_status(session, settings, request, Status.answered, now=NOW, actor="t", comment="Ответ")
        assert not is_overdue(request, request.due_date + dt.timedelta(days=1))  # answered: no longer running
