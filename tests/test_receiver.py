"""The aiosmtpd SMTP and LMTP receivers feed intake."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Request
from mailservice.intake.models import IntakeEntry
from mailservice.mail.receiver import start_receiver
from tests import documented
from tests.conftest import make_env
from tests.mailfactory import citizen_mail
from tests.servers import free_port


@pytest.mark.parametrize("lmtp", [False, True])
def test_receiver_registers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, lmtp: bool) -> None:
    settings: Settings = make_env(
        monkeypatch, tmp_path, db_url, receiver_port=str(free_port()), receiver_lmtp=str(lmtp).lower()
    )
    controller = start_receiver(settings)
    try:
        recipients = ["info@dizo.test", "zapros@dizo.test"]
        if lmtp:
            # RFC 2033 4.2: one reply per recipient after DATA. Python's smtplib reads only the first, so the
            # dialogue is spelt out here and the second reply read by hand.
            with smtplib.LMTP("127.0.0.1", settings.receiver_port) as client:
                client.ehlo_or_helo_if_needed()
                assert client.mail("ivanov@example.ru")[0] == 250
                for rcpt in recipients:
                    assert client.rcpt(rcpt)[0] == 250
                assert client.data(citizen_mail())[0] == 250
                assert client.getreply()[0] == 250
        else:
            with smtplib.SMTP("127.0.0.1", settings.receiver_port) as client:
                assert client.sendmail("ivanov@example.ru", recipients, citizen_mail()) == {}
        # Too large for the announced SIZE: rejected at the protocol edge (RFC 1870), not half-stored.
        if not lmtp:
            with smtplib.SMTP("127.0.0.1", settings.receiver_port) as big:
                with pytest.raises(smtplib.SMTPException):
                    big.sendmail(
                        "a@example.ru",
                        ["info@dizo.test"],
                        b"Subject: x\r\n\r\n" + b"x" * (settings.max_message_bytes + 10),
                    )
    finally:
        controller.stop()
    with session_scope(settings) as session:
        entries = session.scalars(select(IntakeEntry)).all()
        assert [(e.source, e.outcome) for e in entries] == [("lmtp" if lmtp else "smtp", "new_request")]


def _long_line_letter(line_bytes: int, number: int) -> bytes:
    """An HTML letter whose markup is one line of ``line_bytes`` octets (CRLF included), the question at its end."""
    question = "<p>Прошу сообщить, когда будет отремонтирована дорога на улице Ленина.</p>"
    filler = "<td>ячейка</td>"
    head = "<html><body><table><tr>"
    tail = "</tr></table>" + question + "</body></html>"
    room = line_bytes - 2 - len(head.encode()) - len(tail.encode())
    cells = filler * (room // len(filler.encode()))
    line = head + cells + " " * (room - len(cells.encode())) + tail
    assert len(line.encode()) + 2 == line_bytes
    return (
        "From: =?utf-8?b?0JjQstCw0L3QvtCy?= <ivanov@example.ru>\r\nTo: info@dizo.test\r\n"
        f"Subject: =?utf-8?b?0JTQvtGA0L7Qs9Cw?=\r\nMessage-ID: <long-line-{number}@example.ru>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + line + "\r\n"
    ).encode()


@pytest.mark.parametrize("lmtp", [False, True])
def test_lines_over_1000_octets_are_taken_up_to_the_bound(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, lmtp: bool
) -> None:
    """RFC 5321 4.5.3.1.6 sets 1,000 octets, but mail programs send longer HTML lines: a refusal would bounce the
    letter. Lines up to the README's bound are taken whole; a longer one is refused (memory stays bounded)."""
    settings: Settings = make_env(
        monkeypatch, tmp_path, db_url, receiver_port=str(free_port()), receiver_lmtp=str(lmtp).lower()
    )
    controller = start_receiver(settings)
    client_class = smtplib.LMTP if lmtp else smtplib.SMTP
    try:
        with client_class("127.0.0.1", settings.receiver_port) as client:
            client.ehlo_or_helo_if_needed()
            assert client.sendmail("ivanov@example.ru", ["info@dizo.test"], _long_line_letter(60_000, 1)) == {}
        with client_class("127.0.0.1", settings.receiver_port) as client:
            client.ehlo_or_helo_if_needed()
            letter = _long_line_letter(documented.RECEIVER_LINE_BYTES, 2)
            assert client.sendmail("ivanov@example.ru", ["info@dizo.test"], letter) == {}
        with client_class("127.0.0.1", settings.receiver_port) as client:
            client.ehlo_or_helo_if_needed()
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail(
                    "ivanov@example.ru", ["info@dizo.test"], _long_line_letter(documented.RECEIVER_LINE_BYTES + 1, 3)
                )
            assert refused.value.smtp_code == 500
    finally:
        controller.stop()
    with session_scope(settings) as session:
        outcomes = [(e.source, e.outcome) for e in session.scalars(select(IntakeEntry).order_by(IntakeEntry.id))]
        texts = [r.text for r in session.scalars(select(Request).order_by(Request.id))]
    source = "lmtp" if lmtp else "smtp"
    assert outcomes == [(source, "new_request")] * 2
    assert texts and all(t.rstrip().endswith("отремонтирована дорога на улице Ленина.") for t in texts), [
        t[-80:] for t in texts
    ]
