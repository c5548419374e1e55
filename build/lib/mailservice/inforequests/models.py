"""Clients, requests, their history events and attachments, and the gap-free registration counter."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailservice.db import Base, utcnow, with_column_defaults
from mailservice.intake.models import IntakeEntry
from mailservice.outbox import OutboxMessage


class Client(Base):
    """A person or organisation who deals with the department, across every channel."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    organisation: Mapped[str] = mapped_column(String(300), default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_interaction_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # When two records turn out to be the same person, the loser points at the survivor (console issue).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), default=None)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    contacts: Mapped[list[ClientContact]] = relationship(back_populates="client", cascade="all, delete-orphan")

    @property
    def email(self) -> str | None:
        """The client's preferred e-mail address (verified first, then the newest)."""
        emails = [c for c in self.contacts if c.kind == "email"]
        emails.sort(key=lambda c: (not c.verified, -c.id if c.id else 0))
        return emails[0].value if emails else None

    @property
    def display_name(self) -> str:
        """A name to show staff: the name, the organisation, or the address."""
        return self.name or self.organisation or (self.email or "") or f"клиент №{self.id}"


class ClientContact(Base):
    """An e-mail address or phone number of a client; an address is ``verified`` once a mail to it was answered
    from it, or a signed link sent to it was followed."""

    __tablename__ = "client_contacts"
    __table_args__ = (UniqueConstraint("kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | phone | social
    value: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    client: Mapped[Client] = relationship(back_populates="contacts")


class RegistrationCounter(Base):
    """Last registration number issued per year; incremented in the registering transaction, so gap-free."""

    __tablename__ = "registration_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Request(Base):
    """An information request (8-FZ) or a citizen appeal (59-FZ), whatever channel it came through."""

    __tablename__ = "requests"
    __table_args__ = (Index("ix_requests_status_due", "status", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)  # 2026-000042
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    law: Mapped[str] = mapped_column(String(8), default="8-fz")
    subject: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), index=True)

    type: Mapped[str] = mapped_column(String(32), default="info_request")
    topic: Mapped[str] = mapped_column(String(32), default="other")
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    appeal_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    classification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    classifier_version: Mapped[str] = mapped_column(String(120), default="")
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    registered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    registered_on: Mapped[dt.date | None] = mapped_column(Date, default=None)  # local date the term counts from
    # Derived from registered_on and the extension events (lifecycle.recompute_due); stored for queries.
    due_date: Mapped[dt.date | None] = mapped_column(Date, default=None)
    control_date: Mapped[dt.date | None] = mapped_column(Date, default=None, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    assignee: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")
    refusal_ground: Mapped[str | None] = mapped_column(String(40), default=None)
    # Where replies are sent; snapshot at registration so a later contact change does not redirect old threads.
    reply_email: Mapped[str | None] = mapped_column(String(320), default=None)
    # Message-ID of the citizen's first message and of our acknowledgement: roots of the e-mail thread.
    thread_root: Mapped[str | None] = mapped_column(String(998), default=None)

    client: Mapped[Client] = relationship()
    events: Mapped[list[Event]] = relationship(
        back_populates="request", order_by="Event.id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[Attachment]] = relationship(back_populates="request", cascade="all, delete-orphan")


class Event(Base):
    """One entry of a client's interaction history: a message, a call, a status change, a note."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True, default=None)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # see inforequests.lifecycle.EventKind
    channel: Mapped[str] = mapped_column(String(16), default="")
    direction: Mapped[str] = mapped_column(String(8), default="")  # in | out | ""
    from_status: Mapped[str | None] = mapped_column(String(32), default=None)
    to_status: Mapped[str | None] = mapped_column(String(32), default=None)
    ground: Mapped[str | None] = mapped_column(String(40), default=None)
    extension_days: Mapped[int | None] = mapped_column(Integer, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_journal.id"), default=None)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    request: Mapped[Request | None] = relationship(back_populates="events")
    client: Mapped[Client] = relationship()
    intake: Mapped[IntakeEntry | None] = relationship()
    outbox: Mapped[OutboxMessage | None] = relationship()

    def __init__(self, **values: Any) -> None:
        # A registration writes three kinds of event; with the same columns set they are inserted in one batch.
        super().__init__(**with_column_defaults(Event, values))


class Attachment(Base):
    """A file a client sent (or we sent), stored once by content hash in the blob store."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True, default=None)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), default=None)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)

    request: Mapped[Request | None] = relationship(back_populates="attachments")
    event: Mapped[Event | None] = relationship()
