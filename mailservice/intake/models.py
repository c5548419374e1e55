"""The intake journal (one row per message fetched or received) and bounce records."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailservice.db import Base, utcnow

if TYPE_CHECKING:
    from mailservice.inforequests.models import Request


class Outcome(StrEnum):
    """What intake decided for a message; every fetched or received message ends with exactly one."""

    new_request = "new_request"
    reply = "reply"
    ignored_auto_reply = "ignored_auto_reply"
    bounce = "bounce"
    quarantined = "quarantined"
    duplicate = "duplicate"
    # Routed to another domain (a ballot, an opinion, an approval, a command by e-mail) by a registered handler.
    routed = "routed"
    # Advertising with no request in it: kept as an unregistered request in the staff queue, registration date
    # counting (intake/spam.py); staff register it or confirm it as spam.
    held = "held"
    # Only a thank-you: recorded as feedback of the client (and of the answered request it thanks for).
    feedback = "feedback"


class Resolution(StrEnum):
    """How staff dealt with a quarantined message (``IntakeEntry.resolution``; empty while it waits)."""

    # Taken through intake again (after a fix, or with the author's address staff typed): registered or so.
    released = "released"
    # Set aside as no appeal at all (junk without a sender): kept, never registered; it can still be released.
    not_appeal = "not_appeal"


class IntakeEntry(Base):
    """One message as it reached us, with where it came from and what became of it."""

    __tablename__ = "intake_journal"
    __table_args__ = (
        # The IMAP identity of a message (RFC 3501 2.3.1.1): a UID is unique only together with UIDVALIDITY.
        UniqueConstraint("mailbox", "uidvalidity", "uid"),
        Index("ix_intake_msgid_hash", "message_id", "content_hash"),
    )
    # The ORM would read ``resolution``'s server default back after each INSERT (eager defaults "auto"), and on
    # SQLite a RETURNING per row is one statement per row: 5,000 INSERTs a pass instead of one a flush (SQLite's own
    # time for them 0.24 s against 0.14 s in bench/intake.py, about 1% of the poller's CPU). The column's Python
    # default always gives the value, so there is nothing to read back; the server default is only for a receiver
    # of the release before (see below).
    __mapper_args__ = {"eager_defaults": False}  # noqa: RUF012 (declared as an instance variable by SQLAlchemy)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))  # imap | smtp | lmtp | file
    mailbox: Mapped[str | None] = mapped_column(String(400), default=None)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    uid: Mapped[int | None] = mapped_column(BigInteger, default=None)
    envelope_from: Mapped[str | None] = mapped_column(String(320), default=None)
    message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    from_addr: Mapped[str | None] = mapped_column(String(320), default=None)
    subject: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("intake_journal.id"), default=None)
    # Set when staff have dealt with a quarantined message: who, when and how (a :class:`Resolution`).
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str] = mapped_column(String(200), default="")
    # A default in the database too: a receiver of the release before (still running while `db upgrade` works)
    # writes rows without this column.
    resolution: Mapped[str] = mapped_column(String(16), default="", server_default="")

    # Set instead of request_id when the request is new in this batch: the flush fills in the id.
    request: Mapped[Request | None] = relationship("Request")


class Bounce(Base):
    """A delivery status notification about one of our messages (RFC 3464)."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intake_journal.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    address: Mapped[str | None] = mapped_column(String(320), index=True, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # hard | soft | unknown
    status: Mapped[str | None] = mapped_column(String(16), default=None)
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), default=None)

    intake: Mapped[IntakeEntry] = relationship()
