"""Upkeep of the subscriber records: hard bounces suppress an address, and personal data without live consent is
purged (152-FZ art. 21 part 5). The worker runs both (jobs.py)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.intake.models import Bounce
from mailservice.mailings import consent
from mailservice.mailings.consent import parse_address
from mailservice.mailings.models import (
    ConfirmRequest,
    Cursor,
    Delivery,
    DeliveryState,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    ThrottleHit,
    WorkerBeat,
)
from mailservice.mailings.subscribers import REF_TYPE, suppress
from mailservice.outbox import OutboxMessage

log = logging.getLogger(__name__)


def _cursor(session: Session, name: str) -> Cursor:
    """A bookmark row, created on first use and locked for this transaction."""
    query = select(Cursor).where(Cursor.name == name).with_for_update().execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        try:
            with session.begin_nested():
                session.add(Cursor(name=name, value=0))
        except IntegrityError:
            pass
        row = session.scalar(query)
        assert row is not None
    return row


def apply_bounces(session: Session, now: dt.datetime, limit: int = 1000) -> int:
    """Suppress addresses that hard-bounced (intake's bounce records) and mark their last copy bounced.

    Returns how many hard bounces were applied. A bookmark keeps each bounce record from being read twice.
    """
    cursor = _cursor(session, "bounces")
    bounces = list(session.scalars(select(Bounce).where(Bounce.id > cursor.value).order_by(Bounce.id).limit(limit)))
    applied = 0
    for bounce in bounces:
        cursor.value = bounce.id
        if bounce.kind != "hard" or not bounce.address:
            continue
        parsed = parse_address(bounce.address)
        address_hash = parsed.hash if parsed else consent.email_hash(bounce.address)
        subscribers = list(session.scalars(select(Subscriber.id).where(Subscriber.email_hash == address_hash)))
        if not subscribers:
            continue
        suppress(session, address_hash, "bounce", now, f"{bounce.status or ''} {bounce.diagnostic[:500]}".strip())
        last = session.scalar(
            select(Delivery)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(
                Subscription.subscriber_id.in_(subscribers),
                Delivery.state == DeliveryState.sent,
                Delivery.sent_at <= bounce.at,
            )
            .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
            .limit(1)
        )
        if last is not None:
            last.state = DeliveryState.bounced
            last.last_error = f"hard bounce {bounce.status or ''}: {bounce.diagnostic[:500]}".strip()
        applied += 1
    return applied


def purge(session: Session, settings: Settings, now: dt.datetime) -> int:
    """Destroy the personal data of subscribers with no live consent (152-FZ art. 21 part 5: within 30 days).

    Unconfirmed requests lapse after the link's life; a subscriber whose every subscription is withdrawn or lapsed
    for ``mailing_purge_after_days`` (at most 30) loses address and name. The consent log (hashes only) and the
    suppression list stay; the copies of confirmation e-mails kept in the outbox are blanked too.
    """
    days = max(0, min(settings.mailing_purge_after_days, 30))
    session.execute(
        update(Subscription)
        .where(
            Subscription.status == SubscriptionStatus.pending,
            Subscription.requested_at <= now - dt.timedelta(hours=settings.mailing_confirm_hours),
        )
        .values(status=SubscriptionStatus.expired)
    )
    # The letters whose links have lapsed: nothing left for them to confirm.
    session.execute(
        delete(ConfirmRequest).where(
            ConfirmRequest.requested_at <= now - dt.timedelta(hours=settings.mailing_confirm_hours)
        )
    )
    live = select(Subscription.subscriber_id).where(
        Subscription.status.in_([SubscriptionStatus.active, SubscriptionStatus.pending])
    )
    recent = select(Subscription.subscriber_id).where(
        func.coalesce(Subscription.withdrawn_at, Subscription.requested_at) > now - dt.timedelta(days=days)
    )
    candidates = list(
        session.scalars(
            select(Subscriber).where(
                Subscriber.purged_at.is_(None),
                Subscriber.created_at <= now - dt.timedelta(days=days),
                Subscriber.id.not_in(live),
                Subscriber.id.not_in(recent),
            )
        )
    )
    for subscriber in candidates:
        subscriber.email = None
        subscriber.email_ascii = None
        subscriber.name = ""
        subscriber.confirm_nonce = ""
        subscriber.purged_at = now
    ids = [s.id for s in candidates]
    for start in range(0, len(ids), 500):
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.ref_type == REF_TYPE,
                OutboxMessage.ref_id.in_(ids[start : start + 500]),
                OutboxMessage.status.in_(["sent", "failed"]),
            )
            .values(raw=b"", recipients="")
        )
    if ids:
        log.info("purged the personal data of %d former subscribers", len(ids))
    return len(ids)


def purge_due(settings: Settings, now: dt.datetime) -> int:
    """Run :func:`purge` (and prune the rate-limit records) once per local day; the worker calls this often."""
    with session_scope(settings) as session:
        cursor = _cursor(session, "purge")
        today = now.astimezone(settings.tz).date()
        if cursor.at is not None and cursor.at.astimezone(settings.tz).date() >= today:
            return 0
        count = purge(session, settings, now)
        session.execute(delete(ThrottleHit).where(ThrottleHit.at < now - dt.timedelta(days=1)))
        session.execute(delete(WorkerBeat).where(WorkerBeat.heartbeat_at < now - dt.timedelta(days=1)))
        cursor.at = now
        cursor.value += 1
        return count
