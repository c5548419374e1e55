"""The outbox against real aiosmtpd servers: permanent and temporary failures, reclaiming a dead worker's rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from email.message import EmailMessage

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
