"""Mailing lists, subscribers, subscriptions, the append-only consent log, suppressions, campaigns, deliveries.

Personal data (the address and the name) live only in :class:`Subscriber` and are destroyed after a withdrawal
(152-FZ art. 21 part 5); the consent log and the suppression list keep a SHA-256 of the address instead, which is
enough to prove the consent and to never mail the address again by mistake.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailservice.db import Base, utcnow


class SubscriptionStatus(StrEnum):
    """Where one subscriber stands with one list."""

    pending = "pending"  # consent given, not yet confirmed by the link (double opt-in)
    active = "active"  # confirmed (or imported with evidence): mailings go out
    withdrawn = "withdrawn"  # consent withdrawn: nothing is sent any more
    expired = "expired"  # never confirmed; the request lapsed


class DeliveryState(StrEnum):
    """One copy of one campaign for one subscription.

    ``claimed`` rows belong to a worker that has not started their SMTP DATA yet (safe to hand back);
    ``sending`` rows had their consent re-checked and their DATA started (never handed back: at most once).
    """

    queued = "queued"
    claimed = "claimed"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"  # consent withdrawn (or address suppressed) before the copy went out
    bounced = "bounced"  # sent, then a hard bounce came back
    ambiguous = "ambiguous"  # the worker died (or the connection dropped) between DATA and the 250


FINAL_STATES = (
    DeliveryState.sent,
    DeliveryState.failed,
    DeliveryState.skipped,
    DeliveryState.bounced,
    DeliveryState.ambiguous,
)


class CampaignStatus(StrEnum):
    """Life of a campaign."""

    draft = "draft"
    sending = "sending"
    paused = "paused"
    done = "done"


CAMPAIGN_STATUS_NAMES = {
    CampaignStatus.draft: "черновик",
    CampaignStatus.sending: "отправляется",
    CampaignStatus.paused: "приостановлена",
    CampaignStatus.done: "завершена",
}


class MailingList(Base):
    """A topic people subscribe to; its purpose is part of the consent (152-FZ art. 9: consent is specific)."""

    __tablename__ = "mailing_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ConsentText(Base):
    """Every version of the consent text ever shown; a consent record points at one (proof of what was shown)."""

    __tablename__ = "mailing_consent_texts"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscriber(Base):
    """A person by address. ``email`` and ``name`` are destroyed by the purge; ``email_hash`` stays."""

    __tablename__ = "mailing_subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, default=None)  # email-validator form
    email_ascii: Mapped[str | None] = mapped_column(String(320), default=None)  # IDN domain as punycode (SMTP)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Renewed at each subscribe request: the nonce of the newest confirmation letter (ConfirmRequest.nonce).
    confirm_nonce: Mapped[str] = mapped_column(String(32), default="")
    purged_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Subscription(Base):
    """One subscriber on one list. ``nonce`` makes the unsubscribe token unguessable from the id."""

    __tablename__ = "mailing_subscriptions"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "list_id"),
        Index("ix_mailing_subscriptions_list_status", "list_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("mailing_subscribers.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id"))
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.pending)
    nonce: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # the latest request (letter) for it
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    withdrawn_via: Mapped[str] = mapped_column(String(16), default="")


class ConfirmRequest(Base):
    """One list one confirmation letter asked to confirm: the letter's nonce (in its link) and when it was sent.

    A link confirms only what its letter named (152-FZ art. 9 part 1: consent is specific), never another pending
    request of the same address; every letter naming the list works for it within ``MAILING_CONFIRM_HOURS`` of its
    sending, a later one naming the same list included. The rows of a subscription are dropped when a new request
    follows its confirmation or withdrawal: a letter answers the request it was sent for.
    """

    __tablename__ = "mailing_confirm_requests"
    __table_args__ = (UniqueConstraint("subscription_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("mailing_subscriptions.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(32), index=True)
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """The append-only consent log (152-FZ art. 9 part 3: the operator proves the consent).

    Rows are never updated or deleted (database triggers refuse it). No address in clear: ``email_hash``.
    """

    __tablename__ = "mailing_consent_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # given | confirmed | imported | withdrawn
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("mailing_subscribers.id"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_subscriptions.id"), default=None)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_lists.id"), default=None)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(32))  # web_form, email, import, link, one_click, staff, ...
    source: Mapped[str] = mapped_column(Text, default="")  # the page URL, "e-mail", the imported file
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    data_processed: Mapped[str] = mapped_column(Text, default="")
    operator: Mapped[str] = mapped_column(Text, default="")
    term: Mapped[str] = mapped_column(Text, default="")
    withdrawal_method: Mapped[str] = mapped_column(Text, default="")
    consent_version: Mapped[str] = mapped_column(String(40), default="")
    consent_sha256: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class Suppression(Base):
    """An address (by hash) that is never mailed, whatever the subscriptions say, until a new confirmed consent."""

    __tablename__ = "mailing_suppressions"

    email_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))  # withdrawn | bounce | staff
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")


class Campaign(Base):
    """One mailing: a Jinja2 template (kept in the database so that workers on any host have it) and a list."""

    __tablename__ = "mailing_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id"), index=True)
    subject: Mapped[str] = mapped_column(String(998))
    template_name: Mapped[str] = mapped_column(String(300), default="")
    template_text: Mapped[str] = mapped_column(Text)
    template_html: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.draft, index=True)
    uid: Mapped[str] = mapped_column(String(16))  # random part of the Message-IDs
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Throttle shared by every worker: the next free sending slot (messages per minute).
    next_send_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    total: Mapped[int] = mapped_column(Integer, default=0)


class Delivery(Base):
    """One copy: claimed before its SMTP transaction, marked sent after the 250 (at most once)."""

    __tablename__ = "mailing_deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscription_id"),
        Index("ix_mailing_deliveries_due", "campaign_id", "state", "next_attempt_at"),
        Index("ix_mailing_deliveries_subscription_state", "subscription_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("mailing_campaigns.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("mailing_subscriptions.id"))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.queued)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    claim_token: Mapped[str] = mapped_column(String(32), default="")
    claimed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    sending_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")


class WorkerBeat(Base):
    """A sending worker's heartbeat: claims of a worker that stopped beating are reconciled."""

    __tablename__ = "mailing_workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ThrottleHit(Base):
    """One subscribe request, by hashed address or IP, for the rate limits."""

    __tablename__ = "mailing_throttle"
    __table_args__ = (Index("ix_mailing_throttle_key", "kind", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # addr | ip
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Cursor(Base):
    """Small named bookmarks: the last bounce record applied, the day of the last purge."""

    __tablename__ = "mailing_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[dt.datetime | None] = mapped_column(default=None)
