"""The transactional outbox: every outgoing e-mail is a row written in the same transaction as the change that
caused it, and workers drain it over SMTP.

Guarantees: a status change and its notice commit together or not at all; SMTP being down only delays a message;
a worker killed mid-send leaves a ``sending`` row that :func:`reconcile` returns to the queue after
``stale_after``. That one case (the server said 250 but we died before recording it) may send a notice twice; the
copy carries the same Message-ID, so mail clients show one. For notices a duplicate is the lesser harm than a loss.
Mass mailings use their own delivery table with at-most-once semantics (mailings issue).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from mailservice import bulk
from mailservice.config import Settings, get_settings
from mailservice.db import Base, session_scope, utcnow

if TYPE_CHECKING:
    from mailservice.inforequests.models import Request
    from mailservice.mail import smtp

log = logging.getLogger(__name__)


class OutboxMessage(Base):
    """One message waiting to be sent, being sent, sent or given up on."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))  # acknowledgement, status_notice, reminder, ...
    message_id: Mapped[str] = mapped_column(String(998), unique=True)  # without angle brackets
    mail_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[str] = mapped_column(Text)  # comma-separated envelope recipients
    subject: Mapped[str] = mapped_column(String(998), default="")
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # What the message is about, so that a reply quoting its Message-ID finds its way back (threading).
    ref_type: Mapped[str] = mapped_column(String(40), default="")
    ref_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")

    # Set instead of request_id when the request is new: the flush fills in the id (intake writes a batch at once).
    request: Mapped[Request | None] = relationship("Request")


def enqueue(
    session: Session,
    message: Message,
    *,
    kind: str,
    ref_type: str = "",
    ref_id: int | None = None,
    envelope: tuple[str, Sequence[str]] | None = None,
) -> OutboxMessage:
    """Queue a built message in the caller's transaction; it is sent only if that transaction commits.

    The SMTP envelope (sender, recipients) is read from From, To and Cc unless the caller who built the message
    gives it as ``envelope``. The row is added, not flushed: its ``id`` is known after the caller's next flush
    (intake writes a whole batch of acknowledgements in one flush).
    """
    row = enqueue_raw(session, **wire_fields(message, envelope), kind=kind, ref_type=ref_type, ref_id=ref_id)
    if isinstance(row, bulk.Row):
        raise RuntimeError("an outbox row queued in bulk where an ORM object is needed")
    return row


def wire_fields(message: Message, envelope: tuple[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """A built message as :func:`enqueue_raw` takes it: its bytes, Message-ID, subject and SMTP envelope (read
    from From, To and Cc unless given)."""
    message_id = str(message["Message-ID"] or "").strip().strip("<>")
    if not message_id:
        raise ValueError("an outgoing message needs a Message-ID (compose.build_message sets one)")
    if envelope is None:
        recipients = [addr for _name, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]
        recipients += [addr for _name, addr in getaddresses([str(v) for v in message.get_all("Cc", [])]) if addr]
        mail_from = getaddresses([str(message["From"])])[0][1]
    else:
        mail_from, recipients = envelope[0], list(envelope[1])
    from mailservice.mail.compose import serialise  # here: the models' importers (the CLI) need no templates

    return {
        "raw": serialise(message),
        "message_id": message_id,
        "subject": str(message["Subject"] or ""),
        "envelope": (mail_from, recipients),
    }


def enqueue_raw(
    session: Session,
    raw: bytes,
    *,
    message_id: str,
    subject: str,
    kind: str,
    envelope: tuple[str, Sequence[str]],
    ref_type: str = "",
    ref_id: int | None = None,
    request: Request | None = None,
) -> OutboxMessage | bulk.Row:
    """:func:`enqueue` for a message already in wire bytes (compose.text_message_bytes), about ``request`` when
    given; a queued row while the session writes in bulk (intake's fast mode, mailservice/bulk.py)."""
    if not envelope[1]:
        raise ValueError("an outgoing message needs at least one recipient")
    values = {
        "kind": kind,
        "message_id": message_id,
        "mail_from": envelope[0],
        "recipients": ",".join(envelope[1]),
        "subject": subject,
        "raw": raw,
        "ref_type": ref_type,
        "ref_id": ref_id,
    }
    if bulk.collecting(session):
        return bulk.add(session, OutboxMessage, values, request_id=request)
    row = OutboxMessage(**values)
    if request is not None:
        row.request = request  # not request_id: a new request has no id before the flush
    session.add(row)
    return row


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next try: 1, 2, 4 ... minutes, at most 6 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


@dataclass
class DrainResult:
    """What one pass of the worker did."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0

    def __iadd__(self, other: DrainResult) -> DrainResult:
        self.sent += other.sent
        self.deferred += other.deferred
        self.failed += other.failed
        return self


def worker_name() -> str:
    """An identifier for claims: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reconcile(session: Session, now: dt.datetime, stale_after: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Return rows left ``sending`` by a dead worker to the queue; returns how many."""
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < now - stale_after)
        .values(status="pending", claimed_at=None, claimed_by="", next_attempt_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(session: Session, now: dt.datetime, limit: int, who: str) -> list[OutboxMessage]:
    """Claim up to ``limit`` due rows for this worker.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers share the queue; SQLite has one writer at a
    time (BEGIN IMMEDIATE), which gives the same exclusion.
    """
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    for row in rows:
        row.status = "sending"
        row.claimed_at = now
        row.claimed_by = who
        row.attempts += 1
    return rows


def _record(settings: Settings, outcomes: dict[int, smtp.SendOutcome]) -> DrainResult:
    result = DrainResult()
    now = utcnow()
    with session_scope(settings) as session:
        for row_id, outcome in outcomes.items():
            row = session.get(OutboxMessage, row_id)
            if row is None:
                continue
            row.claimed_at = None
            row.claimed_by = ""
            row.last_error = outcome.error
            if outcome.ok:
                row.status = "sent"
                row.sent_at = now
                result.sent += 1
            elif outcome.permanent or row.attempts >= settings.outbox_max_attempts:
                row.status = "failed"
                result.failed += 1
                log.warning("outbox %s failed for good: %s", row.id, outcome.error)
            else:
                row.status = "pending"
                row.next_attempt_at = now + backoff(row.attempts)
                result.deferred += 1
                # Said at every attempt, not only at the last: a relay refusing STARTTLS or a login leaves citizens
                # unanswered for days of back-off before "failed for good" (tryout of 7 December, a new install).
                log.warning(
                    "outbox %s not sent (attempt %d of %d, next at %s): %s",
                    row.id,
                    row.attempts,
                    settings.outbox_max_attempts,
                    row.next_attempt_at.isoformat(timespec="seconds"),
                    outcome.error,
                )
    return result


async def drain_once(settings: Settings | None = None) -> DrainResult:
    """Send everything that is due now, batch by batch; return the counts. SMTP down defers, never drops."""
    settings = settings or get_settings()
    total = DrainResult()
    who = worker_name()
    with session_scope(settings) as session:
        reconcile(session, utcnow())
    while True:
        with session_scope(settings) as session:
            batch = [
                (row.id, row.mail_from, row.recipients.split(","), row.raw)
                for row in claim(session, utcnow(), settings.outbox_batch_size, who)
            ]
        if not batch:
            return total
        from mailservice.mail import smtp  # aiosmtplib: only a process that sends needs it

        outcomes = await smtp.send_batch(settings, batch)
        result = _record(settings, outcomes)
        total += result
        if result.sent == 0:
            # Nothing went through (server down): stop this pass rather than spin through the whole queue.
            return total


async def run_worker(
    settings: Settings | None = None, interval: float = 2.0, stop: asyncio.Event | None = None
) -> None:
    """Drain the outbox forever (until ``stop`` is set), sleeping ``interval`` seconds between passes."""
    from mailservice.jobs import default_jobs, run_due

    settings = settings or get_settings()
    stop = stop or asyncio.Event()
    jobs = default_jobs()
    while not stop.is_set():
        try:
            await drain_once(settings)
        except Exception:  # the loop must survive a database hiccup; the next pass retries
            log.exception("outbox pass failed")
        try:
            # Mass mailings have their own delivery table (at most once per recipient); the same workers send them.
            from mailservice.mailings.sender import send_due

            await send_due(settings, stop=stop)
        except Exception:
            log.exception("mailing pass failed")
        await asyncio.to_thread(run_due, settings, jobs)
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass
