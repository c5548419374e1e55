"""Tests for triage: person, automatic reply or bounce, one rule at a time."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from mailservice.mail.parse import parse_message
from mailservice.mail.triage import (
    HOLD_AUTO_GENERATED,
    HOLD_CALENDAR_REPLY,
    HOLD_LIST_MAIL,
    HOLD_NULL_ENVELOPE,
    HOLD_SYSTEM_NOTICE,
    RELAYED_HOLDS,
    TRIAGE_HOLDS,
    Triage,
    Verdict,
    triage,
)


def _triage(raw: bytes, envelope_from: str | None = None) -> Triage:
    return triage(parse_message(raw), BytesParser(policy=policy.default).parsebytes(raw), envelope_from)


def _msg(
    extra_headers: str = "",
    subject: str = "Вопрос о земельном участке",
    body: str = "Прошу ответить.\n",
    sender: str = "Иван Петров <ivan@example.ru>",
) -> bytes:
    lines = [f"From: {sender}", "To: info@example.gov.ru", f"Subject: {subject}", "Message-ID: <t1@example.ru>"]
    lines += [line for line in extra_headers.splitlines() if line.strip()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
    return ("\n".join(lines) + "\n\n" + body).encode()


def test_plain_request_is_normal() -> None:
    result = _triage(_msg())
    assert result.verdict is Verdict.normal
    assert result.reason


@pytest.mark.parametrize(
    ("headers", "reason_part"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted"),
        ("Auto-Submitted: auto-generated", "Auto-Submitted"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Autorespond: Out of office", "X-Autorespond"),
        ("Precedence: bulk", "Precedence"),
        ("Precedence: junk", "Precedence"),
        ("Precedence: list", "Precedence"),
        ("List-Id: Новости <news.example.ru>", "List-Id"),
        ("List-Unsubscribe: <mailto:unsub@example.ru>", "List-Unsubscribe"),
        ("X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent", "Exchange"),
    ],
)
def test_auto_reply_headers(headers: str, reason_part: str) -> None:
    result = _triage(_msg(headers))
    assert result.verdict is Verdict.auto_reply
    assert reason_part in result.reason


def test_auto_submitted_no_is_a_person() -> None:
    # RFC 3834 5: "no" means the message was not automatically generated.
    assert _triage(_msg("Auto-Submitted: no")).verdict is Verdict.normal


@pytest.mark.parametrize("value", ["DR, RN", "All", "OOF", "DR, OOF, AutoReply"])
def test_auto_response_suppress_is_no_sign_of_an_automatic_message(value: str) -> None:
    # Tryout F19: the header asks recipients not to answer automatically; Outlook, CRMs and site forms put it on
    # ordinary letters. RFC 3834 marks an automatic message with Auto-Submitted.
    result = _triage(_msg(f"X-Auto-Response-Suppress: {value}"))
    assert result.verdict is Verdict.normal and result.hold == ""


@pytest.mark.parametrize("envelope", ["", "<>", " <> "])
def test_null_envelope_sender(envelope: str) -> None:
    # RFC 5321 4.5.5: never answered automatically; a letter that asks waits for staff (intake decides, README
    # "Held queue"), one that asks nothing is ignored.
    result = _triage(_msg(), envelope)
    assert result.verdict is Verdict.auto_reply
    assert "RFC 5321" in result.reason
    assert result.relayed == HOLD_NULL_ENVELOPE
    assert HOLD_NULL_ENVELOPE in TRIAGE_HOLDS and HOLD_NULL_ENVELOPE in RELAYED_HOLDS  # never a command or thanks


def test_null_return_path_header_counts_as_null_envelope() -> None:
    result = _triage(_msg("Return-Path: <>"))
    assert result.verdict is Verdict.auto_reply and result.relayed == HOLD_NULL_ENVELOPE


def test_ordinary_envelope_is_not_null() -> None:
    assert _triage(_msg(), "ivan@example.ru").verdict is Verdict.normal


@pytest.mark.parametrize(
    "subject",
    [
        "Автоответ: Re: запрос",
        "Автоматический ответ: Вопрос",
        "Auto: Re: запрос",
        "Out of Office: Re: x",
        "Automatic reply: Re: x",
        "Réponse automatique : x",
    ],
)
def test_auto_reply_subjects(subject: str) -> None:
    # The real prefix on a short reply is an automatic reply; the same subject alone is only a weak sign: the letter
    # waits in the held queue for staff (never dropped).
    assert _triage(_msg("In-Reply-To: <ours@example.gov.ru>", subject=subject)).verdict is Verdict.auto_reply
    alone = _triage(_msg(subject=subject))
    assert alone.verdict is Verdict.normal and alone.hold


@pytest.mark.parametrize(
    "subject",
    ["Автоответ не пришёл", "Автоответ не получил", "Автоматический ответ непонятен"],
)
def test_a_person_writing_about_auto_replies_is_a_person(subject: str) -> None:
    # Tryout F19: «Автоответ не пришёл…» is a citizen's question, even as a reply.
    for extra in ("", "In-Reply-To: <ours@example.gov.ru>"):
        result = _triage(_msg(extra, subject=subject, body="Я писал вам вчера. Зарегистрировано ли обращение?\n"))
        assert result.verdict is Verdict.normal and result.hold == ""


def test_weak_out_of_office_subject_needs_a_reply_to_us() -> None:
    # "Нет на месте ..." could begin a citizen's subject; believed only on a short reply to our message.
    assert _triage(_msg(subject="Нет на месте знака остановки")).verdict is Verdict.normal
    reply = _msg("In-Reply-To: <ours@example.gov.ru>", subject="Нет на месте: Re: запрос")
    assert _triage(reply).verdict is Verdict.auto_reply
    long_reply = _msg("In-Reply-To: <ours@example.gov.ru>", subject="В отпуске: вопрос", body="Текст. " * 500)
    assert _triage(long_reply).verdict is Verdict.normal


def _dsn(action: str, status: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.gov.ru (Mail Delivery System)\nTo: info@example.gov.ru\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nReport.\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.gov.ru\n\n"
        f"Final-Recipient: rfc822; someone@example.ru\nAction: {action}\nStatus: {status}\n"
        "--B--\n"
    ).encode()


def test_rfc3464_report_is_bounce() -> None:
    result = _triage(_dsn("failed", "5.1.1"))
    assert result.verdict is Verdict.bounce
    assert "RFC 3464" in result.reason


def test_success_dsn_is_not_a_bounce() -> None:
    assert _triage(_dsn("delivered", "2.0.0")).verdict is Verdict.auto_reply


def test_feedback_report_is_auto() -> None:
    raw = (
        b"From: feedback@mail.example.com\nTo: abuse@example.gov.ru\nSubject: Abuse report\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nComplaint.\n"
        b"--B\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n--B--\n"
    )
    result = _triage(raw)
    assert result.verdict is Verdict.auto_reply
    assert "RFC 5965" in result.reason


def test_read_receipt_is_auto() -> None:
    raw = (
        "From: ivan@example.ru\nTo: info@example.gov.ru\nSubject: Прочитано: ответ\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nПрочитано.\n"
        "--B\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; "
        "displayed\n--B--\n"
    ).encode()
    assert _triage(raw).verdict is Verdict.auto_reply


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "Прочитано: Запрос уточнения",
            "Ваше сообщение\n\n  Кому: Иванова\n  Тема: x\n\nбыло прочитано 06.12.2026 10:05.\n",
        ),
        ("Не прочитано: x", "Ваше сообщение\n\n  Тема: x\n\nбыло удалено без прочтения 06.12.2026.\n"),
        ("Read: x", "Your message\n\n  To: Ivanova\n  Subject: x\n\nwas read on 12/6/2026 10:05 AM.\n"),
    ],
)
def test_a_read_receipt_as_a_plain_letter_is_auto(subject: str, body: str) -> None:
    # Tryout W11: the receipt Outlook and Exchange send without RFC 8098's report is never the person's answer.
    assert _triage(_msg("In-Reply-To: <ours@example.gov.ru>", subject=subject, body=body)).verdict is Verdict.auto_reply


def test_a_person_writing_about_reading_is_a_person() -> None:
    # Either sign alone may be a person's: «Прочитано: ...» as a subject, «было прочитано» in a complaint.
    for subject, body in (
        ("Прочитано: ваш ответ, но вопрос остался", "Прошу уточнить срок аукциона.\n"),
        ("Жалоба", "Моё письмо было прочитано 01.12.2026, а ответа нет. Прошу ответить.\n"),
    ):
        assert _triage(_msg("In-Reply-To: <ours@example.gov.ru>", subject=subject, body=body)).verdict is Verdict.normal


# README, "Register first": automatic-reply subjects and read receipts are believed only on a letter «with at most
# 2,000 characters of text».
SHORT_TEXT = 2000


def _of_length(length: int, head: str) -> str:
    """A body whose parsed text is ``head`` and filler, ``length`` characters in all."""
    body = head + "x" * (length - len(head))
    text = parse_message(_msg(body=body)).text
    assert len(text) == length, (len(text), length)  # what triage measures
    return body


@pytest.mark.parametrize(
    ("subject", "head"),
    [
        ("Нет на месте: Re: запрос", "Я в отпуске до 14 декабря. "),
        ("Автоматический ответ: Re: запрос", "Я в отпуске до 14 декабря. "),
        ("Прочитано: Запрос уточнения", "Ваше сообщение\n\n  Тема: x\n\nбыло прочитано 06.12.2026 10:05.\n"),
    ],
)
def test_a_subject_of_a_machine_is_believed_up_to_the_documented_length(subject: str, head: str) -> None:
    reply = "In-Reply-To: <ours@example.gov.ru>"
    at_most = _triage(_msg(reply, subject=subject, body=_of_length(SHORT_TEXT, head)))
    assert at_most.verdict is Verdict.auto_reply, at_most
    longer = _triage(_msg(reply, subject=subject, body=_of_length(SHORT_TEXT + 1, head)))
    assert longer.verdict is Verdict.normal, longer


_NOTICE = (
    "Уважаемый заявитель! Ваше обращение зарегистрировано 06.12.2026 под № ОГ-12345. Срок рассмотрения — 30 дней.\n"
    "Это письмо сформировано автоматически, отвечать на него не нужно.\n"
)


def test_another_systems_notice_is_not_an_appeal() -> None:
    # Tryout W10: from a no-reply address, an automatic reply (held for staff when it asks: intake/prepare);
    # from a reception's mailbox a person may also use, always held; never registered at once.
    robot = _triage(_msg(sender="Росреестр <noreply@rosreestr.example.ru>", body=_NOTICE))
    assert robot.verdict is Verdict.auto_reply and robot.relayed == HOLD_SYSTEM_NOTICE
    gosuslugi = "Статус заявления изменён: принято.\nСообщение сгенерировано автоматически.\n"
    assert _triage(_msg(sender="no-reply@gosuslugi.example.ru", body=gosuslugi)).verdict is Verdict.auto_reply
    reception = _triage(_msg(sender="Приёмная <priemnaya@city.example.ru>", body=_NOTICE))
    assert reception.verdict is Verdict.normal and reception.hold == HOLD_SYSTEM_NOTICE
    assert HOLD_SYSTEM_NOTICE in RELAYED_HOLDS and HOLD_SYSTEM_NOTICE in TRIAGE_HOLDS


@pytest.mark.parametrize(
    "body",
    [
        "ВАШЕ ЗАЯВЛЕНИЕ ПРИНЯТО.\nЭТО ПИСЬМО СФОРМИРОВАНО АВТОМАТИЧЕСКИ, НЕ ОТВЕЧАЙТЕ НА НЕГО.\n",
        "Your application has been received.\nThis message was generated automatically. Please do not reply.\n",
        "Автоматическое уведомление портала: заявление передано в ведомство.\nНе отвечайте на это письмо.\n",
        "Сообщение сформировано автоматически, не отвечайте на него.\nThis message was generated automatically.\n",
        # A rounded «в» (U+1C80), which the case-insensitive search takes for «в» and lower case keeps as it is.
        "Это письмо сформировано а\u1c80томатически, не отвечайте на него.\n",
        # A dotted capital I (U+0130), which the search takes for «i» and lower case makes two characters.
        "This message was generated automat\u0130cally. Please do not reply.\n",
    ],
    ids=["capitals", "english", "notice-first", "both-languages", "look-alike-letter", "dotted-capital-i"],
)
def test_a_notice_in_capitals_or_in_english_is_a_notice(body: str) -> None:
    # The wording is found whatever its case (the search ignores case), in English as in Russian, and with a letter
    # the search folds together with an ordinary one.
    result = _triage(_msg(sender="noreply@portal.example.ru", body=body))
    assert result.verdict is Verdict.auto_reply and result.relayed == HOLD_SYSTEM_NOTICE, result


def test_a_person_mentioning_automatic_mail_is_a_person() -> None:
    # One sign alone is a person's words: «пришло автоматическое уведомление» in a complaint, «не отвечайте
    # отписками».
    for body in (
        "Мне пришло автоматическое уведомление о регистрации, а ответа нет уже месяц. Прошу ответить.\n",
        "Прошу не отвечайте отписками, а назовите срок аукциона.\n",
    ):
        result = _triage(_msg(body=body))
        assert result.verdict is Verdict.normal and result.hold == "", body


def test_x_failed_recipients_is_bounce() -> None:
    assert _triage(_msg("X-Failed-Recipients: lost@example.ru")).verdict is Verdict.bounce


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        ("MAILER-DAEMON@mx.example.ru", "Undelivered Mail Returned to Sender", "could not be delivered"),
        (
            "Mail Delivery System <Mailer-Daemon@mx.example.ru>",
            "Mail delivery failed: returning message to sender",
            "A message that you sent could not be delivered to one or more of its recipients.",
        ),
        ("postmaster@example.ru", "Недоставленное сообщение", "Ваше письмо не может быть доставлено."),
        (
            "mailer-daemon@corp.mail.ru",
            "Ваше сообщение не доставлено. Mail failure.",
            "К сожалению, Ваше письмо не может быть доставлено одному или нескольким получателям.",
        ),
        (
            "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
            "Delivery Status Notification (Failure)",
            "Delivery to the following recipient failed permanently:\n\n     lost@example.ru",
        ),
    ],
)
def test_classic_bounces(sender: str, subject: str, body: str) -> None:
    assert _triage(_msg(sender=sender, subject=subject, body=body)).verdict is Verdict.bounce


def test_mailer_daemon_without_failure_text_is_auto() -> None:
    result = _triage(_msg(sender="MAILER-DAEMON@mx.example.ru", subject="Статистика", body="Очередь пуста."))
    assert result.verdict is Verdict.auto_reply


def test_citizen_forwarding_a_bounce_is_normal() -> None:
    # A person asking why their letter bounced is a person: the subject does not start with the bounce words.
    body = "Почему моё письмо не доставлено?\n\n---------- Forwarded message ---------\nUndeliverable..."
    raw = _msg(subject="Fwd: Undelivered Mail Returned to Sender", body=body)
    assert _triage(raw).verdict is Verdict.normal


def test_list_robot_sender_is_auto() -> None:
    # A robot's address beside list software's headers (tryout T2: the address alone is a person's, below).
    raw = _msg("X-Mailman-Version: 2.1.39", sender="news-request@lists.example.ru")
    assert _triage(raw).verdict is Verdict.auto_reply


def test_verdict_values() -> None:
    assert {v.value for v in Verdict} == {"normal", "auto_reply", "bounce"}


def test_citizen_complaining_about_delivery_is_normal() -> None:
    # Bounce words in a person's subject and text, with no sign of a machine origin.
    raw = _msg(subject="Не доставлено письмо в ваш адрес", body="Моё письмо не было доставлено, прошу разобраться.")
    result = _triage(raw)
    assert result.verdict is Verdict.normal, result.reason


def test_bounce_subject_from_auto_submitted_sender_is_bounce() -> None:
    raw = _msg("Auto-Submitted: auto-replied", sender="robot@mx.example.ru", subject="Undeliverable: Запрос")
    assert _triage(raw).verdict is Verdict.bounce


@pytest.mark.parametrize(
    ("sender", "subject", "body"),
    [
        (
            "NSO_Mail_Service <mailgate@adm.nso.example.ru>",
            "Returned Mail - Error During Delivery",
            "------ Failed Recipients ------\n<a@b.example.ru>: Requested action not taken: mailbox unavailable.",
        ),
        ("Postmaster <postmaster@corp.example.org>", "Delivery failure notification", "could not be delivered"),
        (
            "MAILER-DAEMON@mx.example.com",
            "Mail Delivery Warning",
            "Delivery to the following recipients has been delayed.",
        ),
        ("Ville_Mail_Service <courrier@ville.example.fr>", "Message non remis", "n'a pas pu être remis"),
        ("Mail Gateway <gw@region.example.ru>", "Non remis : запрос", "Votre message n'a pas pu être remis."),
    ],
)
def test_plain_text_gateway_bounces(sender: str, subject: str, body: str) -> None:
    # Gateways that send no DSN part (issue 13): recognised by a mail-system sender and the bounce subject.
    assert _triage(_msg(sender=sender, subject=subject, body=body)).verdict is Verdict.bounce


@pytest.mark.parametrize(
    "subject",
    ["Returned Mail - Error During Delivery", "Mail Delivery Warning", "Delivery failure notification", "Non remis"],
)
def test_gateway_subject_alone_from_a_citizen_is_normal(subject: str) -> None:
    # The subject alone never makes a bounce: a citizen may paste one when asking why their letter did not arrive.
    body = "Пытался отправить вам письмо, пришло вот такое уведомление. Прошу сообщить правильный адрес."
    assert _triage(_msg(subject=subject, body=body)).verdict is Verdict.normal


def _report(report_type: str, status_part: str, sender: str = "MAILER-DAEMON@mx.example.gov.ru") -> bytes:
    """A multipart/report whose machine-readable part is labelled ``status_part``."""
    return (
        f"From: {sender}\nTo: info@example.gov.ru\nSubject: Report\nMIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nReport.\n"
        f"--B\nContent-Type: {status_part}\n\nReporting-MTA: dns; mx.example.gov.ru\n--B--\n"
    ).encode()


@pytest.mark.parametrize(
    ("report_type", "verdict", "reason_part"),
    [
        ("delivery-status", Verdict.bounce, "RFC 3464"),
        ("Delivery-Status", Verdict.bounce, "RFC 3464"),  # parameter values are case-insensitive (RFC 6522)
        ("feedback-report", Verdict.auto_reply, "RFC 5965"),
        ("disposition-notification", Verdict.auto_reply, "RFC 8098"),
    ],
)
def test_the_report_type_alone_identifies_a_report(report_type: str, verdict: Verdict, reason_part: str) -> None:
    # Some gateways label the machine-readable part text/plain: the report type of the whole message still says
    # what it is. A person's ordinary sender is used, so that nothing else points at a machine.
    result = _triage(_report(report_type, "text/plain", sender="Иван Петров <ivan@example.ru>"))
    assert result.verdict is verdict and reason_part in result.reason


def test_another_report_type_is_no_report() -> None:
    result = _triage(_report("something-else", "text/plain", sender="Иван Петров <ivan@example.ru>"))
    assert result.verdict is Verdict.normal


@pytest.mark.parametrize(("actions", "verdict"), [
    (("relayed",), Verdict.auto_reply),
    (("expanded",), Verdict.auto_reply),
    (("delivered", "relayed"), Verdict.auto_reply),
    (("delivered", "failed"), Verdict.bounce),  # one recipient failed: a bounce for that one
    (("delayed",), Verdict.bounce),
])  # fmt: skip
def test_a_report_of_success_for_every_recipient_is_no_bounce(actions: tuple[str, ...], verdict: Verdict) -> None:
    # RFC 3464 2.3.3: delivered, relayed and expanded report success; failed and delayed do not.
    recipients = "".join(
        f"\nFinal-Recipient: rfc822; r{n}@example.ru\nAction: {action}\nStatus: {status}\n"
        for n, (action, status) in enumerate((a, "5.1.1" if a == "failed" else "2.0.0") for a in actions)
    )
    raw = _dsn("x", "x").replace(
        b"\nFinal-Recipient: rfc822; someone@example.ru\nAction: x\nStatus: x\n", recipients.encode()
    )
    assert _triage(raw).verdict is verdict


def test_a_microsoft_complaint_report_is_automatic() -> None:
    # JMRP: Microsoft returns the complained-about message with its own X-HmXmrOriginalRecipient header; neither the
    # sender nor the subject is a mail system's.
    raw = (
        b"From: staff@hotmail.com\nTo: abuse@example.gov.ru\nSubject: complaint about message from 192.0.2.1\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nThis is an email abuse report for an email message received.\n"
        b"--B\nContent-Type: message/rfc822\n\nX-HmXmrOriginalRecipient: <someone@hotmail.com>\n"
        b"From: info@example.gov.ru\nTo: someone@hotmail.com\nSubject: News\n\nNews.\n--B--\n"
    )
    result = _triage(raw)
    assert result.verdict is Verdict.auto_reply and "JMRP" in result.reason
    # The same returned copy without Microsoft's header is a person forwarding a letter.
    assert _triage(raw.replace(b"X-HmXmrOriginalRecipient", b"X-Original-To")).verdict is Verdict.normal


def test_a_mail_system_named_only_in_an_unparsable_from_is_seen() -> None:
    # «From: MAILER-DAEMON» (no domain) gives no usable address, and a second From header is dropped by the parser:
    # every From header as written is read for the mail-system account.
    body = "This message could not be delivered."
    bare = _msg(sender="MAILER-DAEMON", subject="Undelivered Mail Returned to Sender", body=body)
    assert _triage(bare).verdict is Verdict.bounce
    second = _msg("From: MAILER-DAEMON", subject="Undelivered Mail Returned to Sender", body=body)
    assert _triage(second).verdict is Verdict.bounce


def test_a_bounce_from_a_no_reply_sender_is_read_in_its_html_part_too() -> None:
    # The failure wording only in the HTML alternative (the text part says to see it): still a bounce.
    raw = (
        b"From: noreply@mx.example.ru\nTo: info@example.gov.ru\nSubject: Report\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nSee the HTML part.\n"
        b"--B\nContent-Type: text/html\n\n<p>Your message could not be delivered.</p>\n--B--\n"
    )
    assert _triage(raw).verdict is Verdict.bounce
    # Failure wording only in a quoted original below the notice is not the notice's own.
    quoted = (
        b"From: noreply@forms.example.ru\nTo: info@example.gov.ru\nSubject: Report\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain\n\nStatistics for today.\n\n----- Original message -----\nFrom: x@example.ru\n"
        b"Subject: hi\n\nmy letter was not delivered\n"
    )
    assert _triage(quoted).verdict is Verdict.normal


def _mixed(sender: str, subject: str, part_type: str, part_body: str = "Reporting-MTA: dns; mx.example.ru\n") -> bytes:
    """A multipart/mixed letter with one more part of ``part_type`` (no report-type to help)."""
    return (
        f"From: {sender}\nTo: info@example.gov.ru\nSubject: {subject}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n'
        f"--B\nContent-Type: text/plain\n\nСм. вложение.\n--B\nContent-Type: {part_type}\n\n{part_body}\n--B--\n"
    ).encode()


@pytest.mark.parametrize(
    ("part_type", "verdict", "reason_part"),
    [
        ("message/delivery-status", Verdict.bounce, "RFC 3464"),
        ("message/feedback-report", Verdict.auto_reply, "RFC 5965"),
        ("message/disposition-notification", Verdict.auto_reply, "RFC 8098"),
    ],
)
def test_a_report_part_alone_identifies_a_report(part_type: str, verdict: Verdict, reason_part: str) -> None:
    # The machine-readable part is enough, whatever the container says (no report-type parameter here).
    result = _triage(_mixed("Иван Петров <ivan@example.ru>", "Вопрос", part_type))
    assert result.verdict is verdict and reason_part in result.reason


def test_a_report_type_on_another_container_is_no_report() -> None:
    # RFC 6522: report-type belongs to multipart/report; on a person's multipart/mixed it says nothing.
    raw = _mixed("Иван Петров <ivan@example.ru>", "Вопрос", "text/plain", "Прошу ответить.")
    raw = raw.replace(b"multipart/mixed;", b"multipart/mixed; report-type=delivery-status;")
    assert _triage(raw).verdict is Verdict.normal


@pytest.mark.parametrize("part_type", ["message/rfc822", "text/rfc822-headers"])
def test_a_bounce_subject_with_a_returned_copy_needs_a_machine_sender(part_type: str) -> None:
    # A returned copy under a bounce subject is a bounce when a mail system sends it; from an ordinary account it may
    # be a citizen forwarding the letter that came back (tryout T5), and a person's letter is never dropped.
    returned = "From: info@example.gov.ru\n"
    machine = _mixed("Exchange <postmaster@mx.example.ru>", "Undeliverable: Запрос", part_type, returned)
    assert _triage(machine).verdict is Verdict.bounce
    person = _mixed("Exchange <robot@mx.example.ru>", "Undeliverable: Запрос", part_type, returned)
    assert _triage(person).verdict is Verdict.normal


@pytest.mark.parametrize(
    ("sender_header", "sender", "subject", "body"),
    [
        # A mail system named only in the Sender header is seen.
        (
            "MAILER-DAEMON@mx.example.ru",
            "Почтовый робот <robot@mx.example.ru>",
            "Undelivered Mail Returned to Sender",
            "This message could not be delivered.",
        ),
        # Tryout T4: a gateway that signs its From with a mail system's name; a Sender header naming the relay's
        # operator beside it adds its name to those read, it does not replace the From's.
        (
            "Оператор шлюза <operator@adm.nso.example.ru>",
            "NSO_Mail_Service <mailgate@adm.nso.example.ru>",
            "Returned Mail - Error During Delivery",
            "------ Failed Recipients ------\n<a@b.example.ru>: Requested action not taken: mailbox unavailable.",
        ),
    ],
)
def test_a_sender_header_is_read_beside_from(sender_header: str, sender: str, subject: str, body: str) -> None:
    raw = _msg(f"Sender: {sender_header}", sender=sender, subject=subject, body=body)
    result = _triage(raw)
    assert result.verdict is Verdict.bounce, result


@pytest.mark.parametrize(
    ("sender", "verdict"),
    [("MAILER-DAEMON@mx.example.ru", Verdict.auto_reply), ("noreply@forms.example.ru", Verdict.normal)],
)
def test_a_letter_with_no_text_at_all_from_a_machine_account(sender: str, verdict: Verdict) -> None:
    # Only an attached file: no failure text to read, so no bounce; a site form's no-reply letter is a person's.
    raw = (
        f"From: {sender}\nTo: info@example.gov.ru\nSubject: Статистика\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n--B\n'
        'Content-Type: application/pdf; name="scan.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--B--\n'
    ).encode()
    assert _triage(raw).verdict is verdict


def test_a_mail_system_notice_is_read_in_its_html_part_too() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.ru\nTo: info@example.gov.ru\nSubject: Notice\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nSee the HTML part.\n"
        b"--B\nContent-Type: text/html\n\n<p>Your message could not be delivered.</p>\n--B--\n"
    )
    assert _triage(raw).verdict is Verdict.bounce


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [("Bounce", Verdict.bounce), ("Complaint", Verdict.auto_reply), ("Delivery", Verdict.auto_reply)],
)
@pytest.mark.parametrize("escaped", [False, True], ids=["json", "json in a string"])
def test_amazon_ses_notifications(kind: str, verdict: Verdict, escaped: bool) -> None:
    # SES sends its notifications as JSON, often as a string inside the SNS envelope's JSON (quotes escaped).
    q = '\\"' if escaped else '"'
    body = f'{{"Type": "Notification", "Message": "{{{q}notificationType{q}:{q}{kind}{q}, {q}mail{q}: {{}}}}"}}\n'
    result = _triage(
        _msg(sender="AWS Notifications <sns@amazonaws.example.com>", subject="AWS Notification", body=body)
    )
    assert result.verdict is verdict and "SES" in result.reason


@pytest.mark.parametrize(
    "headers",
    [
        "X-MS-Exchange-Inbox-Rules-Loop: info@example.ru",
        "X-Precedence: bulk",
        "X-Auto-Reply: yes",
        "X-Autogenerated: Reply",
    ],
)
def test_more_auto_reply_headers(headers: str) -> None:
    assert _triage(_msg(headers)).verdict is Verdict.auto_reply


@pytest.mark.parametrize(
    "raw",
    [
        _dsn("failed", "5.1.1"),
        _dsn("delivered", "2.0.0"),
        _msg("X-Failed-Recipients: lost@example.ru"),
        _msg(sender="MAILER-DAEMON@mx.example.ru", subject="Undelivered Mail Returned to Sender"),
        _msg(sender="MAILER-DAEMON@mx.example.ru", subject="Статистика", body="Очередь пуста."),
        _msg(sender="news-request@lists.example.ru"),
        _msg("Auto-Submitted: auto-replied"),
        _msg("In-Reply-To: <ours@example.gov.ru>", subject="Автоответ: Re: запрос"),
        _msg(subject="Автоответ: Re: запрос"),
        _msg("In-Reply-To: <ours@example.gov.ru>", subject="Нет на месте: Re: запрос"),
        _msg(),
    ],
    ids=[
        "dsn failed",
        "dsn delivered",
        "x-failed-recipients",
        "mailer-daemon bounce",
        "mailer-daemon notice",
        "list robot",
        "auto-submitted",
        "auto subject on a reply",
        "auto subject alone",
        "away on a reply",
        "person",
    ],
)
def test_every_verdict_names_the_rule_that_decided_it(raw: bytes) -> None:
    # The reason goes to the intake journal and the console: never empty.
    reason = _triage(raw).reason
    assert isinstance(reason, str) and reason.strip()


def test_no_reply_and_no_sender_rules_give_their_reasons() -> None:
    no_reply = _triage(
        _msg(sender="noreply@mx.example.ru", subject="Report", body="The message could not be delivered.")
    )
    assert no_reply.verdict is Verdict.bounce and no_reply.reason
    # A report with no usable sender (the parser keeps it for triage) and nothing else to go by.
    bare = _triage(_report("something-else", "text/plain", sender="Report Robot"))
    assert bare.verdict is Verdict.auto_reply and bare.reason


def test_a_mail_system_address_read_from_reply_to_is_seen() -> None:
    # No usable From or Sender: the parser takes the Reply-To address, and that address is a mail system's.
    raw = _msg(
        "Reply-To: MAILER-DAEMON@mx.example.ru", sender="undisclosed", subject="Статистика", body="Очередь пуста."
    )
    assert _triage(raw).verdict is Verdict.auto_reply


# ------------------------------------------------------------------------------------------------------------------
# Tryout T: a weak machine sign on a person's letter (README "Register first": the address, the display name or an
# attachment alone never drops a letter; a relayed copy that asks waits for staff).
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["olga-admin@mail.ru", "fedor-request@yandex.ru", "ivan-owner@example.ru"])
def test_an_address_ending_like_a_list_robot_alone_is_a_person(sender: str) -> None:
    result = _triage(_msg(sender=sender, body="Прошу сообщить часы приёма граждан.\n"))
    assert result.verdict is Verdict.normal and result.hold == "", result.reason


@pytest.mark.parametrize(
    "header",
    ["X-Mailman-Version: 2.1.39", "Mailing-List: contact x-help@example.org", "X-BeenThere: x@lists.example.org"],
)
def test_a_list_robot_with_list_headers_is_list_mail_held_if_it_asks(header: str) -> None:
    result = _triage(_msg(header, sender="news-request@lists.example.ru"))
    assert result.verdict is Verdict.auto_reply and result.relayed == HOLD_LIST_MAIL


@pytest.mark.parametrize(
    ("header", "relayed"),
    [
        ("List-Id: Новости <news.example.ru>", HOLD_LIST_MAIL),
        ("List-Unsubscribe: <mailto:unsub@example.ru>", HOLD_LIST_MAIL),
        ("Precedence: bulk", HOLD_LIST_MAIL),
        ("Precedence: list", HOLD_LIST_MAIL),
        ("Precedence: auto_reply", ""),
    ],
)
def test_list_and_bulk_mail_is_a_relayed_copy_an_auto_reply_is_not(header: str, relayed: str) -> None:
    # README "Every letter a person writes": list mail is not registered, but a copy a list relayed that asks
    # something waits for staff (the relayed hold); an automatic reply is only journalled.
    result = _triage(_msg(header))
    assert result.verdict is Verdict.auto_reply and result.relayed == relayed, result


@pytest.mark.parametrize(
    "attached",
    [
        "",
        # mail/triage.py _itip_method: an attached message's own parts are not read (a forwarded invitation is the
        # forwarder's letter), but the letter's parts after it are: the answer is found behind the attachment.
        "--b\nContent-Type: message/rfc822\n\nFrom: a@example.ru\nSubject: Приём\n\nТекст.\n",
    ],
)
def test_a_calendar_answer_is_an_automatic_reply_held_if_it_asks(attached: str) -> None:
    # README "Calendar mail": an answer to an invitation (METHOD:REPLY) is an automatic reply, which waits in the
    # held queue when its text asks something.
    body = "--b\nContent-Type: text/plain; charset=utf-8\n\nПринято.\n" + attached
    body += "--b\nContent-Type: text/calendar; method=REPLY\n\nBEGIN:VCALENDAR\nMETHOD:REPLY\nEND:VCALENDAR\n--b--\n"
    raw = _msg(subject="Принято: Приём граждан", body=body).replace(
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit",
        b'Content-Type: multipart/mixed; boundary="b"',
    )
    result = _triage(raw)
    assert result.verdict is Verdict.auto_reply and result.relayed == HOLD_CALENDAR_REPLY, result


@pytest.mark.parametrize(
    "mailer", ["Majordomo 1.94.5", "LISTSERV 16.5", "fml [4.0 Stable Rev.1.77]", "ezmlm-idx 7.2.2"]
)
def test_a_list_robot_whose_mail_program_is_list_software_is_list_mail(mailer: str) -> None:
    # README "Machine signs must be a machine's": a robot's address beside list software's headers; X-Mailer naming
    # the list software is one of them, even with no List-* header.
    result = _triage(_msg(f"X-Mailer: {mailer}", sender="news-request@lists.example.ru"))
    assert result.verdict is Verdict.auto_reply and result.relayed == HOLD_LIST_MAIL, result.reason
    # A person's mail program beside the same address is no list software: the address alone marks nothing.
    person = _triage(_msg("X-Mailer: Microsoft Outlook 16.0", sender="news-request@lists.example.ru"))
    assert person.verdict is Verdict.normal and person.hold == "", person.reason


def test_auto_generated_is_a_relayed_copy_held_if_it_asks_auto_replied_is_an_auto_reply() -> None:
    # RFC 3834 §5: auto-replied answers a message; auto-generated is what a site's form service relays (tryout T3).
    generated = _triage(_msg("Auto-Submitted: auto-generated", sender="Форма сайта <forms@example.org>"))
    assert generated.verdict is Verdict.auto_reply and generated.relayed == HOLD_AUTO_GENERATED
    assert HOLD_AUTO_GENERATED in TRIAGE_HOLDS and HOLD_AUTO_GENERATED in RELAYED_HOLDS
    replied = _triage(_msg("Auto-Submitted: auto-replied", sender="ivan@example.ru"))
    assert replied.verdict is Verdict.auto_reply and replied.relayed == ""
    # An out-of-office marked auto-generated (Exchange) answers a message: an automatic reply all the same.
    for extra, subject in (("In-Reply-To: <ours@example.gov.ru>", "Вопрос"), ("", "Автоматический ответ: Вопрос")):
        oof = _triage(_msg(f"Auto-Submitted: auto-generated\n{extra}", subject=subject, sender="ivan@example.ru"))
        assert oof.verdict is Verdict.auto_reply and oof.relayed == "", subject


@pytest.mark.parametrize("name", ["ООО Почтовый сервис", "Mail Service", "Почтовый сервер Ромашка"])
def test_a_display_name_like_a_mail_system_alone_is_a_person(name: str) -> None:
    raw = _msg(sender=f"{name} <office@pochta-servis.ru>", subject="Аренда помещения")
    assert _triage(raw).verdict is Verdict.normal


def test_a_display_name_like_a_mail_system_with_a_bounce_subject_but_no_failure_text_is_a_person() -> None:
    raw = _msg(
        sender="ООО Почтовый сервис <office@pochta-servis.ru>",
        subject="Не доставлено письмо",
        body="Добрый день. Прошу сообщить, по какому адресу направлять документы.",
    )
    assert _triage(raw).verdict is Verdict.normal


def _forwarded_returned_letter(sender: str, text: str) -> bytes:
    inner = EmailMessage()
    inner["From"] = "lidia@example.ru"
    inner["To"] = "dizo@nso.example.ru"
    inner["Subject"] = "Запрос о выкупе участка"
    inner.set_content("Прошу сообщить порядок выкупа арендуемого участка.")
    outer = EmailMessage()
    outer["From"] = sender
    outer["To"] = "info@dizo.test"
    outer["Subject"] = "Не доставлено письмо"
    outer["Message-ID"] = "<t5@example.ru>"
    outer.set_content(text)
    outer.add_attachment(inner)
    return outer.as_bytes()


def test_a_person_forwarding_a_returned_letter_is_a_person() -> None:
    # Tryout T5: bounce wording and an attached message, but a person's From: no machine sender, no bounce.
    raw = _forwarded_returned_letter(
        "Лидия Орлова <lidia@example.ru>",
        "Моё письмо на старый адрес не доставлено, пересылаю его вам во вложении. Прошу ответить.",
    )
    assert _triage(raw).verdict is Verdict.normal
    assert _triage(raw, "lidia@example.ru").verdict is Verdict.normal


def test_the_same_returned_letter_from_a_mail_system_is_a_bounce() -> None:
    raw = _forwarded_returned_letter("MAILER-DAEMON@mx.example.ru", "Ваше письмо не может быть доставлено.")
    assert _triage(raw).verdict is Verdict.bounce
    person = _forwarded_returned_letter("Лидия Орлова <lidia@example.ru>", "Ваше письмо не может быть доставлено.")
    assert _triage(person, "").verdict is Verdict.bounce  # the null envelope is a machine's


def test_a_gateway_signing_with_its_name_is_read_in_the_html_part_too() -> None:
    # Tryout T4 as HTML: the failure wording only in the HTML alternative of a name-signed gateway's notice.
    raw = (
        b"From: NSO_Mail_Service <mailgate@adm.nso.example.ru>\nTo: info@example.gov.ru\n"
        b"Subject: Returned Mail - Error During Delivery\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="B"\n\n'
        b"--B\nContent-Type: text/plain\n\nSee the HTML part.\n"
        b"--B\nContent-Type: text/html\n\n<p>Your message could not be delivered.</p>\n--B--\n"
    )
    result = _triage(raw)
    assert result.verdict is Verdict.bounce, result


def test_a_gateway_name_and_a_bounce_subject_with_no_text_at_all_is_not_a_bounce() -> None:
    # The name and the subject alone are a company's words (tryout T4): with no failure text it is no bounce, and
    # an empty body is read as empty, not as an error.
    raw = _msg(sender="NSO_Mail_Service <office@adm.nso.example.ru>", subject="Returned Mail", body="")
    assert _triage(raw).verdict is Verdict.normal
