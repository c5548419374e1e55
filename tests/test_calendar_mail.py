"""Calendar mail (iTIP, RFC 5546), end to end on SQLite and PostgreSQL (README, "Register first").

An answer to an invitation or a cancellation («Принято: …», «Accepted: …») is automatic: journalled, never registered
or acknowledged. An invitation that asks nothing waits in the visible held queue with a Russian reason (issue 13 p. 1:
only mail with no request in it may be held, and visibly); one whose text asks or complains is registered as usual.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import json
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Request
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.mail.parse import parse_message
from mailservice.mail.triage import Triage, Verdict, triage
from mailservice.outbox import OutboxMessage
from tests.test_cli import run

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def _calendar(method: str) -> str:
    """An iCalendar object as Outlook writes one (RFC 5545), CRLF lines, a folded DESCRIPTION."""
    status = {"REPLY": "", "CANCEL": "STATUS:CANCELLED\r\n"}.get(method, "")
    attendee = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:partner@example.org\r\n" if method == "REPLY" else ""
    return (
        "BEGIN:VCALENDAR\r\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\nVERSION:2.0\r\n"
        f"METHOD:{method}\r\nBEGIN:VEVENT\r\nUID:040000008200E00074C5B7101A82E008@example.org\r\n"
        "DTSTART:20260310T030000Z\r\nDTEND:20260310T040000Z\r\nSUMMARY:Совещание рабочей группы\r\n"
        "ORGANIZER:mailto:partner@example.org\r\n"
        f"{attendee}{status}DESCRIPTION:Повестка будет разослана\r\n  позже.\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _invitation(
    method: str,
    subject: str,
    text: str | None,
    *,
    method_in_type: bool = True,
    sender: str = "partner@example.org",
) -> bytes:
    """An Outlook-style letter: text (if any) and the calendar as alternatives; Gmail leaves the type parameter out."""
    msg = EmailMessage()
    msg["From"] = f"Партнёр <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{method.lower()}-{abs(hash(subject + (text or '')))}@example.org>"
    params = {"method": method} if method_in_type else {}
    if text is None:
        msg.set_content(_calendar(method), subtype="calendar", params=params)
    else:
        msg.set_content(text)
        msg.add_alternative(_calendar(method), subtype="calendar", params=params)
    return msg.as_bytes(policy=email.policy.SMTP)


def _verdict(raw: bytes) -> Verdict:
    return triage(parse_message(raw), BytesParser(policy=email.policy.compat32).parsebytes(raw), None).verdict


def take(settings: Settings, raw: bytes) -> Outcome:
    return process_raw(settings, raw, Source("smtp", envelope_from="partner@example.org"), now=NOW).outcome


def sent(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


def requests(settings: Settings) -> list[tuple[str | None, str]]:
    with session_scope(settings) as session:
        return [(r.number, r.subject) for r in session.scalars(select(Request).order_by(Request.id))]


# --- triage alone ---


@pytest.mark.parametrize(
    ("method", "subject", "in_type"),
    [
        ("REPLY", "Принято: Совещание рабочей группы", True),
        ("REPLY", "Accepted: Working group meeting", False),
        ("REPLY", "Отклонено: Совещание рабочей группы", True),
        ("CANCEL", "Отменено: Совещание рабочей группы", False),
        ("COUNTER", "Предложено новое время: Совещание рабочей группы", True),
    ],
)
def test_answers_to_invitations_are_automatic(method: str, subject: str, in_type: bool) -> None:
    assert _verdict(_invitation(method, subject, None, method_in_type=in_type)) is Verdict.auto_reply


def test_calendar_files_that_are_no_scheduling_message_change_nothing() -> None:
    # A published calendar (METHOD:PUBLISH) attached to a letter is a file, and a forwarded invitation is the
    # forwarder's letter.
    published = _invitation("PUBLISH", "График приёма", "График приёма граждан во вложении.")
    assert _verdict(published) is Verdict.normal
    forward = EmailMessage()
    forward["From"] = "Иванов Иван <ivanov@example.ru>"
    forward["To"] = "info@dizo.test"
    forward["Subject"] = "Fw: Принято: Совещание"
    forward.set_content("Пересылаю.")
    forward.add_attachment(BytesParser(policy=email.policy.default).parsebytes(_invitation("REPLY", "Принято", None)))
    assert _verdict(forward.as_bytes(policy=email.policy.SMTP)) is Verdict.normal


def _triage(raw: bytes) -> Triage:
    return triage(parse_message(raw), BytesParser(policy=email.policy.compat32).parsebytes(raw), None)


def _calendar_letter(*parts: tuple[str, str]) -> bytes:
    """A letter whose calendar parts come with the Content-Type lines given (name, value pairs of the whole header)."""
    boundary = "cal-parts"
    head = (
        "From: Партнёр <partner@example.org>\r\nTo: info@dizo.test\r\nSubject: Совещание рабочей группы\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
    )
    body = "".join(f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n{ics}" for ctype, ics in parts)
    return (head + body + f"--{boundary}--\r\n").encode()


def test_the_method_is_the_content_types_else_the_method_line_in_upper_case() -> None:
    """RFC 6047 2.4: the method parameter of the Content-Type names the iTIP method; a calendar without one gives
    its METHOD property (Gmail). Either may be in any case (RFC 2045 5.1, RFC 5545 2)."""
    no_line = _calendar("REPLY").replace("METHOD:REPLY\r\n", "")
    for ctype, ics in [
        ("text/calendar; method=reply", no_line),  # the parameter alone, in lower case
        ('text/calendar; method=" Reply "', no_line),
        ("text/calendar", _calendar("REPLY").replace("METHOD:REPLY", "method:reply")),  # the line alone
        ("application/ics", _calendar("REPLY")),
    ]:
        result = _triage(_calendar_letter((ctype, ics)))
        assert (result.verdict, result.reason) == (Verdict.auto_reply, "calendar METHOD:REPLY (iTIP, RFC 5546)"), ctype


def test_a_calendar_part_with_no_method_or_a_broken_header_does_not_hide_the_next_one() -> None:
    """A calendar file with no METHOD at all (RFC 5545 allows it: a plain .ics) is no scheduling message; a part
    whose Content-Type cannot be read (RFC 2231 continuations mixed up) gives no method; the letter's next calendar
    part, here an answer to an invitation, still decides."""
    plain = _calendar("REPLY").replace("METHOD:REPLY\r\n", "")
    assert _triage(_calendar_letter(("text/calendar", plain))).verdict is Verdict.normal
    broken = "text/calendar; method=REQUEST; name*=utf-8''a.ics; name*0=b"
    # ASCII and 8-bit: the email package cannot decode the 8-bit one under that header (its charset parameter).
    ascii_request = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\n"
    ascii_request += "END:VCALENDAR\r\n"
    request_8bit = ascii_request.replace("Meeting", "Совещание")
    for first in [("text/calendar", plain), (broken, ascii_request), (broken, request_8bit)]:
        result = _triage(_calendar_letter(first, ("text/calendar; method=REPLY", _calendar("REPLY"))))
        assert (result.verdict, result.reason) == (Verdict.auto_reply, "calendar METHOD:REPLY (iTIP, RFC 5546)")


def _letter_with_a_broken_attachment(body_8bit: bool) -> bytes:
    """A citizen's letter whose attachment has a Content-Type parameter written twice in RFC 2231's forms (``name*``
    and ``name*0``: the email package cannot join them) over an 8-bit body, as some mail programs send."""
    attachment = "Приложение: копия договора." if body_8bit else "Attachment: a copy of the contract."
    return (
        "From: Петров П. П. <petrov@example.ru>\r\nTo: info@dizo.test\r\nSubject: =?utf-8?b?0JfQsNC/0YDQvtGB?=\r\n"
        "Message-ID: <broken-2231@example.ru>\r\nDate: Mon, 2 Mar 2026 08:00:00 +0300\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Прошу сообщить срок рассмотрения моего заявления об аренде земельного участка.\r\n--XX\r\n"
        "Content-Type: text/plain; charset=utf-8; name*=utf-8''a.txt; name*0=b\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{attachment}\r\n--XX--\r\n"
    ).encode()


@pytest.mark.parametrize("body_8bit", [True, False])
def test_a_broken_attachment_header_over_an_8bit_body_does_not_stop_registration(
    settings: Settings, body_8bit: bool
) -> None:
    """Looking for a calendar part must not read what it does not need: the email package fails to decode that
    attachment (its parameters cannot be read), and the letter was quarantined instead of registered (found by the
    mutation work of 6 December). A person's letter is registered whatever its attachments (59-FZ art. 8 p. 2)."""
    assert take(settings, _letter_with_a_broken_attachment(body_8bit)) is Outcome.new_request
    [(number, subject)] = requests(settings)
    assert number is not None and subject == "Запрос"
    with session_scope(settings) as session:
        text = session.scalars(select(Request.text)).one()
    assert "срок рассмотрения моего заявления" in text


# --- the invitation's words (tryout T4) ---


def test_an_invitation_with_no_text_part_gives_its_words_to_the_letter() -> None:
    parsed = parse_message(_invitation("REQUEST", "Совещание", None))
    assert parsed.text == "Встреча: Совещание рабочей группы\n\nПовестка будет разослана позже."  # folded line joined
    assert [a.content_type for a in parsed.attachments] == ["text/calendar"]  # the .ics is kept as it came
    # Parameters, escapes (RFC 5545 3.3.11) and the place; only the first event.
    ics = (
        "BEGIN:VCALENDAR\nMETHOD:REQUEST\nBEGIN:VEVENT\nSUMMARY;LANGUAGE=ru-RU:Приём\\, кабинет 5\n"
        "LOCATION:ул. Кирова\\, 3\nDESCRIPTION;LANGUAGE=ru-RU:Прошу принять меня.\\nИванов\\; тел. 1\n"
        "END:VEVENT\nBEGIN:VEVENT\nSUMMARY:Другое\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    msg = EmailMessage()
    msg["From"] = "ivanov@example.ru"
    msg.set_content(ics, subtype="calendar")
    assert parse_message(msg.as_bytes(policy=email.policy.SMTP)).text == (
        "Встреча: Приём, кабинет 5\nМесто: ул. Кирова, 3\n\nПрошу принять меня.\nИванов; тел. 1"
    )


def test_an_invitation_with_its_own_text_keeps_it_alone() -> None:
    parsed = parse_message(_invitation("REQUEST", "Совещание", "Приглашаем на совещание."))
    assert parsed.text.strip() == "Приглашаем на совещание."


# --- through intake, both databases ---


@pytest.mark.parametrize(
    ("method", "subject", "text", "in_type"),
    [
        ("REPLY", "Принято: Совещание рабочей группы", None, True),
        ("REPLY", "Accepted: Working group meeting", "", False),
        ("CANCEL", "Отменено: Совещание рабочей группы", "Встреча отменена.", False),
    ],
)
def test_an_answer_to_an_invitation_is_journalled_and_nothing_else(
    settings: Settings, method: str, subject: str, text: str | None, in_type: bool
) -> None:
    assert take(settings, _invitation(method, subject, text, method_in_type=in_type)) is Outcome.ignored_auto_reply
    assert requests(settings) == []
    assert sent(settings) == []
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(IntakeEntry.id))) == 1


def test_an_invitation_that_asks_nothing_waits_visibly_for_staff(settings: Settings) -> None:
    raw = _invitation("REQUEST", "Совещание рабочей группы", "Приглашаем на совещание рабочей группы.")
    assert take(settings, raw) is Outcome.held
    assert sent(settings) == []  # no acknowledgement until staff register it
    assert requests(settings) == [(None, "Совещание рабочей группы")]  # kept, unregistered, never dropped
    held = json.loads(run("intake", "held", "--json").stdout)
    assert [row["register_by"] for row in held] == ["2026-03-05"]  # 59-FZ art. 8 p. 2: three days, counting
    assert "приглашение на встречу" in " ".join(held[0]["reasons"])
    # With no text of its own at all, the same.
    assert take(settings, _invitation("REQUEST", "Встреча", None, method_in_type=False)) is Outcome.held


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Встреча по аренде", "Прошу рассмотреть на встрече продление договора аренды участка."),
        ("Жалоба", "Подскажите, почему третий месяц нет ответа на мою жалобу?"),
    ],
)
def test_an_invitation_that_asks_is_registered_as_usual(settings: Settings, subject: str, text: str) -> None:
    assert take(settings, _invitation("REQUEST", subject, text, sender="ivanov@example.ru")) is Outcome.new_request
    assert [number is not None for number, _ in requests(settings)] == [True]
    assert sent(settings) == ["acknowledgement"]


def test_an_invitation_that_asks_only_in_its_description_is_registered_with_it(settings: Settings) -> None:
    msg = EmailMessage()
    msg["From"] = "Орлова Нина <orlova@example.ru>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Приглашение: выкуп участка"
    ics = _calendar("REQUEST").replace("Повестка будет разослана\r\n  позже.", "Прошу принять меня по вопросу выкупа.")
    msg.set_content(ics, subtype="calendar", params={"method": "REQUEST"})
    assert take(settings, msg.as_bytes(policy=email.policy.SMTP)) is Outcome.new_request
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.number and "Прошу принять меня по вопросу выкупа." in request.text


def test_an_answer_that_asks_waits_for_staff_and_never_acts_as_a_command(settings: Settings) -> None:
    raw = _invitation("REPLY", "Принято: Совещание", "Приду. Прошу заранее прислать проект решения.")
    assert take(settings, raw) is Outcome.held
    assert sent(settings) == []
    held = json.loads(run("intake", "held", "--json").stdout)
    assert "ответ на приглашение" in " ".join(held[0]["reasons"])
