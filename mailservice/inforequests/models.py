"""Clients, requests, their history events and attachments, and the gap-free registration counter; the lookup of
a request by its number (light: `requests show` reads with it and imports nothing of the service layer)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, validates

from mailservice.db import Base, utcnow, with_column_defaults
from mailservice.inforequests.listing import ContactLike as ContactLike  # how a client is named: defined there
from mailservice.inforequests.listing import client_display_name as client_display_name
from mailservice.inforequests.listing import preferred_email as preferred_email
from mailservice.intake.models import IntakeEntry
from mailservice.mail.addresses import address_key, contact_key
from mailservice.outbox import OutboxMessage


class Client(Base):
    """A person or organisation who deals with the department, across every channel."""

    __tablename__ = "clients"
    # The records merged into a client (its page lists them). Partial: nearly every client is merged into none, and
    # SQLite's statistics of a full index then say "all rows share one value" and it scans the table instead.
    __table_args__ = (
        Index(
            "ix_clients_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )

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
        """The client's preferred e-mail address (proven first, then the newest)."""
        return preferred_email(self.contacts)

    def proven_email(self, address: str) -> bool:
        """Whether ``address`` is proven to be this client's (README, "Security model")."""
        key = address_key(address)
        return any(c.kind == "email" and c.value_key == key and c.proven for c in self.contacts)

    @property
    def display_name(self) -> str:
        """A name to show staff: the name, the organisation, or the address."""
        return client_display_name(self.name, self.organisation, lambda: self.contacts, self.id)


class Proof(StrEnum):
    """How an address was proven to be a client's (README, "Security model")."""

    reply = "reply"  # the client answered, from this address, a message we had sent to it
    link = "link"  # the client followed a signed link we had sent to it
    in_person = "in_person"  # staff checked an identity document and recorded the address given then


class ClientContact(Base):
    """An e-mail address or phone number of a client.

    An e-mail address is here only when the client wrote from it or proved it; it is *proven* (``proven_at``,
    ``proof``) once the client answered a message we sent to it, followed a signed link sent to it, or gave it at
    an identity check in person. An address someone only claimed (typed by staff, a Reply-To) is no contact: it
    stays the reply address of its one request.

    ``value`` is kept as the client wrote it; ``value_key`` is what makes it unique and what look-ups compare: two
    case spellings of one address are one mailbox (mail.addresses, RFC 5321 2.4; migration 2001).
    """

    __tablename__ = "client_contacts"
    __table_args__ = (UniqueConstraint("kind", "value_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # email | phone | social
    value: Mapped[str] = mapped_column(String(320))
    # Set with ``kind`` and ``value`` (below; the default covers Core inserts that name only those).
    value_key: Mapped[str] = mapped_column(
        String(320),
        default=lambda context: contact_key(
            context.get_current_parameters().get("kind"), context.get_current_parameters().get("value")
        ),
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    proven_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    proof: Mapped[str | None] = mapped_column(String(16), default=None)  # Proof
    # When a merge brought the contact to this record (migration 2125): it was proven, if ever, by whoever held the
    # record merged in, so only an identity check in person proves it again (identity.prove).
    moved_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    client: Mapped[Client] = relationship(back_populates="contacts")

    @validates("kind", "value")
    def _keep_key(self, name: str, given: str) -> str:
        """Recompute ``value_key`` whenever the kind or the value changes."""
        kind = given if name == "kind" else self.kind
        value = given if name == "value" else self.value
        self.value_key = contact_key(kind, value)
        return given

    @property
    def proven(self) -> bool:
        """Whether the address (or phone) is proven to be the client's."""
        return self.proven_at is not None


class IdentityCheck(Base):
    """An identity check in person: staff saw a document and recorded the address or phone given then.

    Only the document's type is kept, never its number or a copy (152-FZ art. 5 part 5: no more data than the
    purpose needs).
    """

    __tablename__ = "identity_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    checked_by: Mapped[str] = mapped_column(String(320))
    document: Mapped[str] = mapped_column(String(32))  # a key of inforequests.identity.DOCUMENTS
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class MergeSuggestion(Base):
    """Two client records that may be one person (the same phone, say), offered to staff to merge or reject.

    Matching by phone or name never joins records or attaches an address by itself: staff decide, after an
    identity check, and the decision is audited.
    """

    __tablename__ = "merge_suggestions"
    __table_args__ = (UniqueConstraint("client_id", "other_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)  # the newer record
    other_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)  # the record it may belong to
    reason: Mapped[str] = mapped_column(Text, default="")  # Russian, shown to staff
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | accepted | rejected
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    client: Mapped[Client] = relationship(foreign_keys=[client_id])
    other: Mapped[Client] = relationship(foreign_keys=[other_id])


class RegistrationCounter(Base):
    """Last registration number issued per year; incremented in the registering transaction, so gap-free."""

    __tablename__ = "registration_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


def _reply_key(context: Any) -> str | None:
    """``reply_email_key`` of a Core insert that names only ``reply_email``."""
    given = context.get_current_parameters().get("reply_email")
    return address_key(given) if given else None


class Request(Base):
    """An information request (8-FZ) or a citizen appeal (59-FZ), whatever channel it came through."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_due", "status", "due_date"),
        # The queue's counters read only these (migration 1902; the queue's order has expression indexes there).
        Index("ix_requests_counters", "status", "urgency", "needs_review", "topic", "due_date", "control_date"),
        Index("ix_requests_registered", "registered_at", "id"),  # the register, streamed in this order
        Index("ix_requests_channel_status", "channel", "status"),  # the queue's filters, counted from an index
        Index("ix_requests_topic_type_status", "topic", "type", "status"),
    )

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
    # Where notices and answers go: the From of the e-mail that created it, or the address staff typed for it;
    # snapshot at registration so a later contact change does not redirect old threads.
    reply_email: Mapped[str | None] = mapped_column(String(320), default=None, index=True)
    # The name this request itself gave (the e-mail's display name, the name staff typed): automatic mail to an
    # address not proven for the client greets with it, never with the client record's name.
    reply_name: Mapped[str] = mapped_column(String(300), default="")
    # A Reply-To that differs from From: recorded, used for answers only once proven for the client.
    reply_to_claimed: Mapped[str | None] = mapped_column(String(320), default=None)
    # Message-ID of the citizen's first message and of our acknowledgement: roots of the e-mail thread.
    thread_root: Mapped[str | None] = mapped_column(String(998), default=None)
    # The status link's key (webrequests/status.py): None until the address the request's notices go to changes;
    # then a new random key makes every link sent before show nothing (defect U1).
    status_key: Mapped[str | None] = mapped_column(String(32), default=None)
    # reply_email by mail.addresses.address_key, kept by _keep_reply_key: the acknowledgement limit counts a mailbox
    # whatever the case of its letters, Cyrillic ones too, alike on both databases (SQLite's lower() folds ASCII
    # only, so an index on lower(reply_email) counted «Иван@» and «иван@» as two senders).
    reply_email_key: Mapped[str | None] = mapped_column(String(320), default=_reply_key, index=True)

    client: Mapped[Client] = relationship()
    events: Mapped[list[Event]] = relationship(
        back_populates="request", order_by="Event.id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[Attachment]] = relationship(back_populates="request", cascade="all, delete-orphan")

    @validates("reply_email")
    def _keep_reply_key(self, _name: str, given: str | None) -> str | None:
        """Recompute ``reply_email_key`` whenever the reply address changes (a bulk UPDATE sets both itself)."""
        self.reply_email_key = address_key(given) if given else None
        return given


def get_by_number(session: Session, number: str) -> Request | None:
    """The request with this registration number."""
    return session.scalar(select(Request).where(Request.number == number))


class Event(Base):
    """One entry of a client's interaction history: a message, a call, a status change, a note."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_client_at", "client_id", "at", "id"),)  # a client's timeline, a page at a time

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


class PostalLetter(Base):
    """A notice or answer to a client who has no e-mail address to send it to (issue 16): made on the department's
    letterhead as DOCX and PDF (outgoing number and date, signatory, address block), it waits in the "to be posted"
    list until staff mark it sent."""

    __tablename__ = "postal_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), default=None)
    kind: Mapped[str] = mapped_column(String(32))  # acknowledgement | status_notice
    number: Mapped[str] = mapped_column(String(40), unique=True)  # outgoing number: <request number>/<n>
    letter_date: Mapped[dt.date] = mapped_column(Date)
    addressee: Mapped[str] = mapped_column(Text)  # the name, then the postal address
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    signatory_position: Mapped[str] = mapped_column(String(300), default="")
    signatory_name: Mapped[str] = mapped_column(String(300), default="")
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)  # names of the files to enclose
    docx_sha256: Mapped[str] = mapped_column(String(64))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None, index=True)
    sent_by: Mapped[str] = mapped_column(String(320), default="")

    request: Mapped[Request] = relationship()
    client: Mapped[Client] = relationship()
    event: Mapped[Event | None] = relationship()
