"""The aiosmtpd SMTP and LMTP receivers feed intake."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.intake.models import IntakeEntry
from mailservice.mail.receiver import start_receiver
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
