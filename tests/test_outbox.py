"""The outbox against real aiosmtpd servers: permanent and temporary failures, reclaiming a dead worker's rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.outbox import OutboxMessage, claim, drain_once, enqueue, reconcile
from tests.servers import Sink, free_port


def message(to: str, n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "info@dizo.test"
    msg["To"] = to
    msg["Subject"] = f"Уведомление {n}"
    msg["Message-ID"] = f"<n{n}-{to}@dizo.test>"
    msg.set_content("Текст уведомления")
    return msg


class Picky:
    """Refuses one mailbox for good (550) and another for now (451)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 No such user"
        if address.startswith("later@"):
            return "451 4.2.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


def test_permanent_and_temporary_failures(settings: Settings) -> None:
    port = free_port()
    controller = Controller(Picky(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with session_scope(settings) as session:
            for n, to in enumerate(["ok@example.ru", "gone@example.ru", "later@example.ru"]):
                enqueue(session, message(to, n), kind="test")
        result = asyncio.run(drain_once(settings.model_copy(update={"smtp_port": port})))
    finally:
        controller.stop()
    assert (result.sent, result.failed, result.deferred) == (1, 1, 1)
    with session_scope(settings) as session:
        rows = {r.recipients: r for r in session.scalars(select(OutboxMessage))}
        assert rows["ok@example.ru"].status == "sent"
        assert rows["gone@example.ru"].status == "failed" and "550" in rows["gone@example.ru"].last_error
        later = rows["later@example.ru"]
        assert later.status == "pending" and later.next_attempt_at > utcnow()


def test_rows_of_a_dead_worker_are_reclaimed(settings: Settings, sink: Sink) -> None:
    with session_scope(settings) as session:
        enqueue(session, message("a@example.ru", 1), kind="test")
    long_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(settings) as session:
        [row] = claim(session, utcnow(), 10, "dead-worker:1")
        row.claimed_at = long_ago  # the worker died an hour ago, mid-send
    with session_scope(settings) as session:
        assert claim(session, utcnow(), 10, "other:2") == []  # claimed rows are not taken twice
        assert reconcile(session, utcnow()) == 1
    asyncio.run(drain_once(settings))
    assert [m[1] for m in sink.messages()] == [["a@example.ru"]]


def _ordinary_and(odd: str, settings: Settings) -> None:
    """Queue an ordinary notice, one to ``odd``, and another ordinary one, in that order (one batch)."""
    with session_scope(settings) as session:
        for n, to in enumerate(["first@example.ru", odd, "last@example.ru"]):
            enqueue(session, message("x@example.ru", n), kind="test", envelope=("info@dizo.test", [to]))


def _rows(settings: Settings) -> dict[str, OutboxMessage]:
    with session_scope(settings) as session:
        rows = {r.recipients: r for r in session.scalars(select(OutboxMessage))}
        session.expunge_all()
    return rows


def _odd_one_among_sent(
    settings: Settings, sink: Sink, odd: str, *, failed: int = 0, deferred: int = 0
) -> OutboxMessage:
    """Drain an ordinary notice, one to ``odd`` and another ordinary one; both ordinary ones reach the sink.
    Returns the row of the odd one."""
    _ordinary_and(odd, settings)
    result = asyncio.run(drain_once(settings))
    assert (result.sent, result.failed, result.deferred) == (2, failed, deferred)
    assert sorted(rcpts[0] for _f, rcpts, _raw in sink.messages()) == ["first@example.ru", "last@example.ru"]
    return _rows(settings)[odd]


def test_a_cyrillic_mailbox_fails_alone_where_the_server_lacks_smtputf8(settings: Settings) -> None:
    """T5: a server without SMTPUTF8 (RFC 6531) cannot take юрий@почта.рф: that row fails for good with a reason
    staff can read; the notices before and after it are sent and recorded."""
    port = free_port()
    controller = Controller(Picky(), hostname="127.0.0.1", port=port, enable_SMTPUTF8=False)
    controller.start()
    try:
        _ordinary_and("юрий@xn--80a1acny.xn--p1ai", settings)
        result = asyncio.run(drain_once(settings.model_copy(update={"smtp_port": port})))
    finally:
        controller.stop()
    assert (result.sent, result.failed, result.deferred) == (2, 1, 0)
    rows = _rows(settings)
    assert rows["first@example.ru"].status == "sent" and rows["last@example.ru"].status == "sent"
    cyrillic = rows["юрий@xn--80a1acny.xn--p1ai"]
    assert cyrillic.status == "failed"
    assert "не поддерживает SMTPUTF8" in cyrillic.last_error, cyrillic.last_error


def test_an_address_the_client_refuses_fails_alone(settings: Settings, sink: Sink) -> None:
    """T5: an envelope address aiosmtplib will not put on the wire (ValueError) fails that row for good; the others
    go out over the same pass."""
    bad = _odd_one_among_sent(settings, sink, "bad addr@example.ru", failed=1)
    assert bad.status == "failed" and "ValueError" in bad.last_error, bad.last_error


def test_an_unexpected_error_defers_one_message_and_the_rest_are_sent(
    settings: Settings, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T5: any other exception while sending one message leaves that row to be retried with its reason; the rest
    of the batch is sent over a fresh connection and every outcome is recorded (no row stays 'sending')."""
    original = aiosmtplib.SMTP.sendmail

    async def flaky(self: aiosmtplib.SMTP, sender: str, recipients: list[str], raw: bytes, **kw: object) -> object:
        if recipients == ["boom@example.ru"]:
            raise RuntimeError("simulated failure")
        return await original(self, sender, recipients, raw, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosmtplib.SMTP, "sendmail", flaky)
    boom = _odd_one_among_sent(settings, sink, "boom@example.ru", deferred=1)
    assert boom.status == "pending" and "simulated failure" in boom.last_error, boom.last_error
