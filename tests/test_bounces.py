"""Tests for bounce parsing: RFC 3464 reports first, then text heuristics; kinds by cause."""

from __future__ import annotations

import json
from email import policy
from email.message import Message
from email.parser import BytesParser

import pytest

from mailservice.mail.bounces import BounceInfo, dsn_recipients, parse_bounce


def _parse(raw: str | bytes) -> Message:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return BytesParser(policy=policy.default).parsebytes(data)


def _report(blocks: str, human: str = "Delivery failed.\n") -> Message:
    return _parse(
        "From: MAILER-DAEMON@mx.example.gov.ru\nTo: info@example.gov.ru\nSubject: Undelivered Mail\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        f"--B\nContent-Type: text/plain; charset=utf-8\n\n{human}\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.gov.ru\n\n{blocks}\n"
        "--B\nContent-Type: text/rfc822-headers\n\nFrom: info@example.gov.ru\nTo: other@example.org\n\n--B--\n"
    )


def _text_bounce(body: str, headers: str = "") -> Message:
    return _parse(
        "From: Mail Delivery System <Mailer-Daemon@mx.example.ru>\nTo: info@example.gov.ru\n"
        f"Subject: Mail delivery failed\n{headers}Content-Type: text/plain; charset=utf-8\n\n{body}"
    )


def test_rfc3464_hard() -> None:
    msg = _report(
        "Final-Recipient: rfc822; Lost@Example.RU\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <lost@example.ru>: Recipient address rejected:\n User unknown\n"
    )
    info = parse_bounce(msg)
    assert info == BounceInfo(
        "Lost@example.ru", "hard", "5.1.1", "550 5.1.1 <lost@example.ru>: Recipient address rejected: User unknown"
    )


def test_rfc3464_prefers_failed_over_delayed() -> None:
    msg = _report(
        "Final-Recipient: rfc822; slow@example.ru\nAction: delayed\nStatus: 4.4.1\n\n"
        "Final-Recipient: rfc822; gone@example.ru\nAction: failed\nStatus: 5.1.2\n"
    )
    assert [r.recipient for r in dsn_recipients(msg)] == ["slow@example.ru", "gone@example.ru"]
    info = parse_bounce(msg)
    assert (info.recipient, info.kind, info.status) == ("gone@example.ru", "hard", "5.1.2")


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("4.2.2", "452 4.2.2 Mailbox full", "soft"),
        ("4.0.0", "450 temporary failure, user unknown", "soft"),  # class 4 is transient whatever it says
        ("5.2.2", "552 5.2.2 Mailbox full", "soft"),
        ("5.3.4", "552 5.3.4 Message too big for system", "soft"),
        ("5.7.1", "550 5.7.1 Message rejected as spam", "soft"),
        ("5.1.8", "501 5.1.8 Sender address rejected", "soft"),
        ("5.7.1", "550 5.7.1 <a@b.ru>: Recipient address rejected: User unknown", "hard"),
        ("5.0.0", "550 Host unknown", "hard"),
        ("5.0.0", "", "hard"),  # permanent and unexplained: RFC 3463 class 5
        ("5.1.10", "", "hard"),  # null MX, RFC 7505
        ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied", "hard"),  # Office 365 directory check
        ("5.0.0", "550 Пользователь не найден", "hard"),
        ("5.0.0", "552 Ящик получателя переполнен", "soft"),
    ],
)
def test_kinds_by_cause(status: str, diagnostic: str, kind: str) -> None:
    diag = f"Diagnostic-Code: smtp; {diagnostic}\n" if diagnostic else ""
    msg = _report(f"Final-Recipient: rfc822; user@example.ru\nAction: failed\nStatus: {status}\n{diag}")
    assert parse_bounce(msg).kind == kind


def test_refusal_after_data_is_soft() -> None:
    # The server accepted the recipient and refused the content: says nothing about the address.
    msg = _report(
        "Final-Recipient: rfc822; user@example.ru\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 User unknown\n",
        human="<user@example.ru>: host mx said: 550 User unknown (in reply to end of DATA command)\n",
    )
    assert parse_bounce(msg).kind == "soft"


def test_internal_final_recipient_uses_original_recipient() -> None:
    msg = _report(
        "Original-Recipient: rfc822;kijitora@example.net\nFinal-Recipient: rfc822;@relay.example.net:kijitora@server\n"
        "Action: failed\nStatus: 5.2.0\nDiagnostic-Code: smtp;522 5.2.0 Delivery failed: Over quota\n"
    )
    info = parse_bounce(msg)
    assert (info.recipient, info.kind) == ("kijitora@example.net", "soft")


def test_exim_text_bounce_in_russian() -> None:
    body = (
        "Это письмо создано автоматически.\n\nВаше письмо не может быть доставлено следующим получателям:\n\n"
        "  ivan@example.ru\n    SMTP error from remote mail server after RCPT TO:<ivan@example.ru>:\n"
        "    550 5.1.1 <ivan@example.ru>... User Unknown\n\n"
        "------ This is a copy of the message, including all the headers. ------\n\n"
        "From: info@example.gov.ru\nTo: ivan@example.ru\nSubject: x\n"
    )
    info = parse_bounce(_text_bounce(body))
    assert (info.recipient, info.kind, info.status) == ("ivan@example.ru", "hard", "5.1.1")
    assert "User Unknown" in info.diagnostic


def test_postfix_text_bounce_angle_form() -> None:
    body = (
        "This is the mail system at host mx.example.gov.ru.\n\nI'm sorry to have to inform you that your message "
        "could not\nbe delivered to one or more recipients.\n\n<full@example.ru>: host mx.example.ru[192.0.2.1] "
        "said: 552\n    5.2.2 Mailbox full (in reply to RCPT TO command)\n"
    )
    info = parse_bounce(_text_bounce(body))
    assert (info.recipient, info.kind, info.status) == ("full@example.ru", "soft", "5.2.2")


def test_x_failed_recipients_header() -> None:
    info = parse_bounce(_text_bounce("Delivery failed.\n", headers="X-Failed-Recipients: lost@example.ru\n"))
    assert info.recipient == "lost@example.ru"


def test_own_addresses_are_not_taken_for_the_recipient() -> None:
    body = "Your message to info@example.gov.ru from Mailer-Daemon@mx.example.ru failed:\n\n  gone@example.ru\n"
    assert parse_bounce(_text_bounce(body)).recipient == "gone@example.ru"


def test_addresses_in_the_returned_copy_are_ignored() -> None:
    body = (
        "Delivery to the following recipient failed permanently:\n\n     first@example.ru\n\n"
        "----- Original message -----\n\nTo: decoy@example.org\nCc: decoy2@example.org\n"
    )
    assert parse_bounce(_text_bounce(body)).recipient == "first@example.ru"


def test_ses_json_notification() -> None:
    note = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [
                {"emailAddress": "gone@example.ru", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
        },
    }
    raw = (
        "From: no-reply@sns.amazonaws.com\nTo: info@example.gov.ru\nSubject: AWS Notification Message\n"
        "Content-Type: text/plain; charset=utf-8\n\n"
        + json.dumps({"Type": "Notification", "Message": json.dumps(note)})
    )
    info = parse_bounce(_parse(raw))
    assert (info.recipient, info.kind, info.status) == ("gone@example.ru", "hard", "5.1.1")


def test_unknown_when_nothing_says_why() -> None:
    info = parse_bounce(_text_bounce("Something happened.\n"))
    assert info.kind == "unknown"
    assert info.status is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n",
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822\nStatus: 9.9\n",
        "Content-Type: text/plain\n\n<\udcff@\udcfe>: 550\n".encode("utf-8", "surrogateescape"),
    ],
)
def test_never_raises(raw: bytes) -> None:
    info = parse_bounce(_parse(raw))
    assert info.kind in ("hard", "soft", "unknown")
