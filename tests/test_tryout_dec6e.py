"""Tryout of 6 December, round 6 (W1...): an upgrade on a real server, an attacker, real mail shapes, a staff day.

Each test fails today because of the defect named in its reason (strict expected failures) and passes once the
defect is fixed. The database tests run on SQLite and PostgreSQL (the ``settings`` fixture and its kin).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.smtp import Envelope
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from mailservice import db
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Channel, Status
from mailservice.inforequests.models import Attachment, MergeSuggestion, Request
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.receiver import IntakeHandler
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import actions
from tests.conftest import make_env, reset_caches
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_install import _copy_sources
from tests.test_mailings_consent import two_lists  # noqa: F401  (a fixture)
from tests.test_tryout_dec6 import _intake

# W1 -------------------------------------------------------------------------------------------------------------


def _wheel(sources: Path, out: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(sources)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("mailservice-*.whl")
    return wheel


def _pip_install(venv: Path, wheel: Path) -> subprocess.CompletedProcess[str]:
    """``pip install mailservice-*.whl`` as the README tells an administrator, into the server's venv."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-deps",
         "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_installing_the_next_release_over_the_last_replaces_its_code(tmp_path: Path) -> None:
    # README "Running in production": the product is the wheel, `pip install mailservice-*.whl` on the server. Last
    # week's release is installed; this week's wheel (here: the same sources plus one new module, as a release
    # adds a migration) is installed over it. The administrator then runs `mailservice db upgrade` and believes
    # the new fixes (V3's subscription nonce, V4's one-time forms, ...) are in force.
    last = _wheel(_copy_sources(tmp_path / "last"), tmp_path / "last-dist")
    following = _copy_sources(tmp_path / "next")
    (following / "mailservice" / "tryout_next_release.py").write_text("RELEASE = 'next'\n", encoding="utf-8")
    new = _wheel(following, tmp_path / "next-dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    assert _pip_install(venv, last).returncode == 0
    assert _pip_install(venv, new).returncode == 0
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mailservice.tryout_next_release as m; print(m.RELEASE)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout: `python -c` imports from the working directory first
    )
    assert check.stdout.strip() == "next", check.stderr[-1000:]


# W2 -------------------------------------------------------------------------------------------------------------

QUESTION = "Прошу сообщить, когда будет аукцион на участок в Бердске. Иванов И.И."


def _plain(
    sender: str,
    message_id: str,
    cte: str,
    body: bytes,
    *,
    date: str = "Sun, 06 Dec 2026 10:00:00 +0700",
    extra: str = "",
) -> bytes:
    """A plain-text letter (Subject «Аукцион»); ``extra``: more header lines, each ending in CRLF."""
    return (
        f"From: Иванов Иван <{sender}>\r\nTo: info@dizo.test\r\nSubject: =?utf-8?b?0JDRg9C60YbQuNC+0L0=?=\r\n"
        f"Date: {date}\r\nMessage-ID: <{message_id}>\r\n{extra}MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    ("cte", "body"),
    [
        # cut short by a relay's size limit or a broken mobile client: three base64 characters missing
        ("base64", base64.b64encode(QUESTION.encode())[:-3] + b"\r\n"),
        ("8bit", QUESTION.encode() + " Иван".encode()[:-1] + b"\r\n"),
    ],
    ids=["base64-cut-short", "8bit-cut-character"],
)
def test_a_letter_damaged_by_a_few_bytes_keeps_its_text(settings: Settings, cte: str, body: bytes) -> None:
    # Mail clients show such a letter readable but for its last character (what could be decoded, one replacement
    # character). Here the register holds base64 or mojibake, which no clerk can read, the full-text search cannot
    # find and the classifier sorts at random (59-FZ art. 8, 8-FZ art. 18: the request registered as written).
    raw = _plain("ivanov@example.ru", f"w2-{cte}@example.ru", cte, body)
    text = _intake(settings, raw, "ivanov@example.ru").text
    assert "аукцион на участок в Бердске" in text, text[:120]


# W3 -------------------------------------------------------------------------------------------------------------


def test_the_same_letter_sent_twice_a_minute_apart_is_one_request(settings: Settings) -> None:
    # The dedupe step (README "How it works": Message-ID + content hash) catches only the same Message-ID; a mail
    # client's second send makes a new one. Staff then answer one copy and see the other go overdue, the monthly
    # report counts two requests, and the citizen receives two numbers for one question.
    body = QUESTION.encode() + b"\r\n"
    for minute, message_id in ((0, "w3-first@example.ru"), (1, "w3-second@example.ru")):
        raw = _plain("ivanov@example.ru", message_id, "8bit", body, date=f"Sun, 06 Dec 2026 10:0{minute}:00 +0700")
        process_raw(settings, raw, Source("smtp", envelope_from="ivanov@example.ru"), now=utcnow())
    with session_scope(settings) as session:
        numbers = session.scalars(select(Request.number).where(Request.reply_email == "ivanov@example.ru")).all()
    assert len(numbers) == 1, numbers


# W4 and W5: tests/test_tryout_dec6e_install.py (their fixer's tests, both passing).

# W6 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["cp1251", "koi8-r"])
def test_an_attachment_named_in_raw_8bit_cyrillic_keeps_its_name(settings: Settings, charset: str) -> None:
    # Staff tell «Заявление.pdf» from «Паспорт.pdf» by name on the request page and in the history archive; here
    # every such file is a row of replacement characters (mail/body.py tries to read 8-bit names, but the stdlib
    # has already replaced the bytes by the time it looks).
    def encoded(text: str) -> bytes:
        return text.encode(charset)

    raw = (
        b"From: " + encoded("Иван Петров") + b" <petrov@example.ru>\r\nTo: info@dizo.test\r\n"
        b"Subject: " + encoded("Аукцион в Бердске") + b"\r\nMessage-ID: <w6-" + charset.encode() + b"@example.ru>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + encoded(QUESTION) + b"\r\n"
        b'--b\r\nContent-Type: application/pdf; name="' + encoded("Заявление.pdf") + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + encoded("Заявление.pdf") + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    result = process_raw(settings, raw, Source("smtp", envelope_from="petrov@example.ru"), now=utcnow())
    assert result.request_number, result
    with session_scope(settings) as session:
        request = session.scalar(select(Request).where(Request.number == result.request_number))
        assert request is not None and request.subject == "Аукцион в Бердске"  # the header bytes are readable
        names = session.scalars(select(Attachment.filename).where(Attachment.request_id == request.id)).all()
    assert names == ["Заявление.pdf"], names


# W7 -------------------------------------------------------------------------------------------------------------


def test_a_callers_phone_typed_another_way_finds_their_client(settings: Settings) -> None:
    # README "Security model": a phone or a name proves nothing, but «a matching phone or name» gives staff a
    # suggestion «Возможно, тот же человек», and service.find_or_create_client: «a phone alone finds its client».
    # Clerks type the number as the caller says it; the second call below, same name, the phone typed the other
    # usual way, opens a new client record and nothing tells staff (seed 004 p. 3-4: every channel in one history,
    # the whole of it on request; the history given misses the first call).
    now = utcnow()
    numbers = []
    for phone, subject in (("+7 913 555-12-34", "Часы приёма"), ("8 (913) 555-12-34", "Документы для аренды")):
        data = actions.ContactRequest(
            channel=Channel.phone, received_at=now, subject=subject, text=subject, name="Петрова А. С.", phone=phone
        )
        with session_scope(settings) as session:
            request = actions.register_contact_request(session, settings, data, actor="clerk@dizo.test", now=now)
            numbers.append(request.client_id)
    with session_scope(settings) as session:
        suggested = session.scalar(select(func.count()).select_from(MergeSuggestion))
    assert numbers[0] == numbers[1] or suggested, numbers


# W8 -------------------------------------------------------------------------------------------------------------

COPY = "Cc: neighbour@example.org\r\n"


def _awaiting_clarification(settings: Settings, raw: bytes) -> tuple[str, OutboxMessage]:
    """Register the letter, ask its author to clarify; the number and our notice asking it (detached)."""
    result = process_raw(settings, raw, Source("smtp", envelope_from="ivanova@example.ru"), now=utcnow())
    assert result.request_number
    with session_scope(settings) as session:
        request = session.scalar(select(Request).where(Request.number == result.request_number))
        assert request is not None
        service.change_status(
            session,
            settings,
            request,
            Status.clarification_requested,
            now=utcnow(),
            actor="clerk@dizo.test",
            comment="Уточните кадастровый номер участка.",
        )
        session.flush()
        ours = session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == request.id).order_by(OutboxMessage.id.desc())
        ).first()
        assert ours is not None
        session.expunge(ours)
    return result.request_number, ours


def _status_after(settings: Settings, raw: bytes, sender: str, number: str) -> str | None:
    """The request's status once intake has taken this letter."""
    process_raw(settings, raw, Source("smtp", envelope_from=sender), now=utcnow())
    with session_scope(settings) as session:
        return session.scalar(select(Request.status).where(Request.number == number))


def test_a_copied_party_replying_to_the_citizens_letter_is_not_her_clarification(settings: Settings) -> None:
    # README "How it works": replies are matched on our Message-IDs from any address (ours went to the client
    # alone) and on the tag only from a proven address; the citizen's own Message-ID (the thread root) is known to
    # every Cc recipient, a reply-all from one of them, a lawyer or a neighbour, is taken as the applicant's own.
    number, _ours = _awaiting_clarification(
        settings, _plain("ivanova@example.ru", "w8-appeal@example.ru", "8bit", QUESTION.encode(), extra=COPY)
    )
    reply = _plain(
        "neighbour@example.org",
        "w8-reply@example.org",
        "8bit",
        "Участок не продаётся, вопрос снят.".encode(),
        extra="In-Reply-To: <w8-appeal@example.ru>\r\nReferences: <w8-appeal@example.ru>\r\n",
    )
    status = _status_after(settings, reply, "neighbour@example.org", number)
    assert status == Status.clarification_requested, status
    # The neighbour's letter is his own, registered for him, not lost.
    with session_scope(settings) as session:
        his = session.scalars(select(Request.number).where(Request.reply_email == "neighbour@example.org")).all()
    assert len(his) == 1 and his[0] != number, his
    # Her own follow-up naming her first letter, from her address in another case, is her clarification.
    own = _plain(
        "Ivanova@Example.ru",
        "w8-own@example.ru",
        "8bit",
        "Кадастровый номер 54:32:010101:15.".encode(),
        extra="In-Reply-To: <w8-appeal@example.ru>\r\nReferences: <w8-appeal@example.ru>\r\n",
    )
    assert _status_after(settings, own, "Ivanova@Example.ru", number) == Status.in_progress


# W9 -------------------------------------------------------------------------------------------------------------


def test_the_receiver_asks_to_retry_while_the_database_lacks_migrations(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_url: str,  # noqa: F811
) -> None:
    # mail/receiver.py: «A failure inside intake answers 451 so that the sending MTA keeps the message and retries
    # (RFC 5321 4.2.5)». A schema behind the code fails every letter the same way; today each is taken (250) and
    # quarantined, and staff must release them one by one once the upgrade is done (the registration term of
    # 59-FZ art. 8 runs meanwhile). Here: every branch at its head but the requests' one, a migration behind.
    settings = make_env(monkeypatch, tmp_path, fresh_url)
    # Every branch at its head but the requests' one, whatever migrations later releases add.
    behind = "1905_reply_email_lower"
    script = ScriptDirectory.from_config(db.alembic_config(settings))
    for head in sorted(script.get_heads()):
        if behind not in {revision.revision for revision in script.iterate_revisions(head, "base")}:
            db.upgrade(settings, head)
    db.upgrade(settings, behind)
    assert db.pending_migrations(settings)
    envelope = Envelope()
    envelope.mail_from = "window@example.ru"
    envelope.rcpt_tos = ["info@dizo.test"]
    envelope.content = _plain("window@example.ru", "w9@example.ru", "8bit", QUESTION.encode() + b"\r\n")
    try:
        reply = asyncio.run(IntakeHandler(settings).handle_DATA(None, None, envelope))  # type: ignore[arg-type]
        with session_scope(settings) as session:
            # Only the columns the oldest schema here has: the model may hold later ones (2103's resolution).
            outcomes = [(o, r[:80]) for o, r in session.execute(select(IntakeEntry.outcome, IntakeEntry.reason))]
    finally:
        reset_caches()
        db.dispose_engines()
    assert reply.startswith("451"), (reply, outcomes)
    assert outcomes == []  # nothing quarantined: the sending server keeps the letter
    # Once the upgrade is done, the server's retry registers the letter.
    db.upgrade(settings)
    try:
        reply = asyncio.run(IntakeHandler(settings).handle_DATA(None, None, envelope))  # type: ignore[arg-type]
        with session_scope(settings) as session:
            numbers = session.scalars(select(Request.number).where(Request.reply_email == "window@example.ru")).all()
    finally:
        reset_caches()
        db.dispose_engines()
    assert reply.startswith("250") and len(numbers) == 1, (reply, numbers)


# W10 ------------------------------------------------------------------------------------------------------------


def test_another_bodys_automatic_registration_notice_is_not_registered_as_an_appeal(settings: Settings) -> None:
    # The department forwards appeals outside its remit (59-FZ art. 8 part 3) and asks other bodies for
    # information from its shared mailbox; their systems answer that mailbox with registration notices, often
    # without Auto-Submitted (RFC 3834). README "Register first": every letter a *person* writes is registered,
    # automatic replies are not. Each such notice now takes a number in the gap-free register, counts in the monthly
    # report, waits in the queue with a term and sends an acknowledgement that bounces.
    raw = (
        "From: Росреестр <noreply@rosreestr.example.ru>\r\nTo: info@dizo.test\r\n"
        "Subject: Уведомление о регистрации обращения\r\nMessage-ID: <w10@rosreestr.example.ru>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Уважаемый заявитель! Ваше обращение зарегистрировано 06.12.2026 под № ОГ-12345. Срок рассмотрения — "
        "30 дней. Это письмо сформировано автоматически, отвечать на него не нужно.\r\n"
    ).encode()
    result = process_raw(settings, raw, Source("smtp", envelope_from="noreply@rosreestr.example.ru"), now=utcnow())
    assert result.request_number is None, (result.outcome, result.request_number)


# W11 ------------------------------------------------------------------------------------------------------------


def test_a_plain_read_receipt_is_not_the_citizens_clarification(settings: Settings) -> None:
    # The RFC 8098 form (multipart/report) is recognised and ignored; the plain form joins the request as her
    # message and, while staff wait for her clarification, moves the request back to «на рассмотрении» and mails
    # her a status notice (README "How it works": automatic replies never become requests or answers).
    number, ours = _awaiting_clarification(
        settings, _plain("ivanova@example.ru", "w11-appeal@example.ru", "8bit", QUESTION.encode())
    )
    message_id, subject = ours.message_id, ours.subject
    receipt = (
        f"From: Иванова <ivanova@example.ru>\r\nTo: info@dizo.test\r\nSubject: Прочитано: {subject}\r\n"
        f"Message-ID: <w11-receipt@example.ru>\r\nIn-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Ваше сообщение\r\n\r\n  Кому: Иванова\r\n  Тема: {subject}\r\n  Отправлено: 06.12.2026 10:00\r\n\r\n"
        "было прочитано 06.12.2026 10:05.\r\n"
    ).encode()
    status = _status_after(settings, receipt, "ivanova@example.ru", number)
    assert status == Status.clarification_requested, status


# W12 and W13: tests/test_tryout_dec6e_more.py (their fixer's tests, both passing).
