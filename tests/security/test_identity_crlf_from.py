"""Issue 14, high: a line break in the From display name swapped the sender.

``From: =?utf-8?q?victim=40example=2Eru=0A?= <attacker@evil.test>`` was read as mail from victim@example.ru
(encoded words decoded before the address was parsed) and, with the victim's number in the subject, joined the
victim's request. The address is now read first; encoded words are only ever display-name text, and CR, LF
and NUL in a name become spaces (CVE-2024-6923).
"""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Event, Request
from mailservice.intake.models import IntakeEntry
from mailservice.mail.parse import parse_message
from tests.console_support import drain
from tests.mailfactory import citizen_mail
from tests.security.identity_support import Outcome, deliver, mail_to
from tests.servers import Sink

VICTIM = "victim@example.ru"


TAGGED = "[№ 2026-000001] дополнение"


def _raw(from_value: bytes, subject: str = TAGGED, extra: bytes = b"") -> bytes:
    """A message as the attacker writes it, byte for byte (no library would write these headers)."""
    message_id = hashlib.sha256(from_value + extra + subject.encode()).hexdigest()[:16]
    return (
        b"From: " + from_value + b"\r\n" + extra + b"To: info@dizo.test\r\nSubject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + message_id.encode() + b"@evil.test>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + "Дополняю свой запрос: прошу также сведения о договорах аренды за 2024 год.".encode() + b"\r\n"
    )  # fmt: skip


# Golden attack values: (From header, the address it must be read as). Each was read as the victim's before.
ATTACKS = [
    (b"=?utf-8?q?victim=40example=2Eru=0A?= <attacker@evil.test>", "attacker@evil.test"),  # the issue's
    (b'"=?utf-8?q?victim=40example=2Eru=0D=0A?=" <attacker@evil.test>', "attacker@evil.test"),
    (b"=?utf-8?q?victim=40example=2Eru?= attacker@evil.test", "attacker@evil.test"),
    (b"=?utf-8?b?dmljdGltQGV4YW1wbGUucnUK?= <attacker@evil.test>", "attacker@evil.test"),
]


@pytest.mark.parametrize(("header", "address"), ATTACKS, ids=["issue", "quoted-crlf", "no-angle", "base64-lf"])
def test_encoded_words_never_make_an_address(header: bytes, address: str) -> None:
    parsed = parse_message(_raw(header))
    assert parsed.from_addr == address
    assert not any(ch in parsed.from_name for ch in "\r\n\x00")


@pytest.mark.parametrize(
    "header",
    [
        b"=?utf-8?q?victim=40example=2Eru=0A?=",  # a display name and no address: no sender at all
        b"<=?utf-8?q?victim?=@example.ru>",  # an encoded word in the local part is not decoded into one
    ],
)
def test_an_encoded_word_alone_is_not_the_victims_address(header: bytes) -> None:
    try:
        parsed = parse_message(_raw(header))
    except Exception as exc:  # ParseError: no usable sender; the message is quarantined, not given to the victim
        assert "sender" in str(exc)
        return
    assert parsed.from_addr != VICTIM


def test_nul_and_crlf_in_a_name_become_text() -> None:
    parsed = parse_message(_raw(b"=?utf-8?q?Ivan=00=0D=0ABcc=3A_x=40y=2Eru?= <ivan@example.ru>"))
    assert parsed.from_addr == "ivan@example.ru"
    assert parsed.from_name == "Ivan Bcc: x@y.ru"


def test_the_crlf_from_does_not_join_the_victims_request(settings: Settings, sink: Sink) -> None:
    first = deliver(settings, citizen_mail(sender=VICTIM, name="Петрова Анна Сергеевна"))
    assert first.request_number is not None
    drain(settings)
    # The victim proves her address (answers our acknowledgement): the number tag from her address joins.
    ack = mail_to(sink, VICTIM)[0]
    proof = citizen_mail(sender=VICTIM, name="", subject="Re: спасибо", body="Получила.",
                         in_reply_to=str(ack["Message-ID"]).strip("<>"))  # fmt: skip
    assert deliver(settings, proof).outcome is Outcome.reply
    result = deliver(settings, _raw(ATTACKS[0][0], subject=f"[№ {first.request_number}] дополнение"))
    assert result.outcome is Outcome.new_request
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None and entry.from_addr == "attacker@evil.test"
        victim_request = session.scalars(select(Request).where(Request.number == first.request_number)).one()
        messages_in = session.scalar(
            select(func.count(Event.id)).where(Event.request_id == victim_request.id, Event.kind == "message_in")
        )
        assert messages_in == 2  # her first letter and her own reply; the attacker's letter is elsewhere
        attacker_request = session.scalars(select(Request).where(Request.reply_email == "attacker@evil.test")).one()
        assert attacker_request.client_id != victim_request.client_id


def test_a_name_over_998_characters_is_cut_with_a_note(settings: Settings, sink: Sink) -> None:
    name = "Иванов Иван Иванович " * 60  # 1,260 characters
    result = deliver(settings, citizen_mail(sender="ivanov@example.ru", name=name))
    assert result.outcome is Outcome.new_request and result.request_number
    drain(settings)
    [ack] = mail_to(sink, "ivanov@example.ru")
    assert "Иванов Иван Иванович" in str(ack["To"])
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert 0 < len(request.client.name) <= 300 and request.client.name.startswith("Иванов Иван Иванович")
        notes = [e.comment for e in request.events if e.kind == "note"]
        assert any("сокращено" in n for n in notes)


def test_several_authors_in_from_one_sender(settings: Settings, sink: Sink) -> None:
    """RFC 5322 3.6.2: several authors need a Sender; that one is the sender, the others are not used."""
    raw = _raw(
        b"Victim <victim@example.ru>, Attacker <attacker@evil-mail.ru>",
        subject="Запрос",
        extra=b"Sender: attacker@evil-mail.ru\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.from_addr == "attacker@evil-mail.ru"
    result = deliver(settings, raw)
    assert result.outcome is Outcome.new_request
    drain(settings)
    assert mail_to(sink, VICTIM) == []  # nothing to an author who did not send it
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.reply_email == "attacker@evil-mail.ru"
        assert any("несколько адресов" in e.comment for e in request.events if e.kind == "note")
