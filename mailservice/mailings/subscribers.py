"""Subscribing, confirming, withdrawing and suppressing subscribers (bounces and the purge: upkeep.py; CSV: roster.py).

Consent is double opt-in: a request creates a *pending* subscription and mails a signed, expiring link; only the
POST behind that link makes it *active* (a mail scanner's GET creates nothing). Withdrawal is one step and takes
effect at once: it waits for copies already in flight to that subscriber (at most a few seconds), so no copy
leaves after the withdrawal has committed. Nothing a form answers reveals whether an address is subscribed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailservice import tokens
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mail.compose import build_message
from mailservice.mailings import consent
from mailservice.mailings.consent import Evidence, MailAddress, parse_address
from mailservice.mailings.models import (
    ConfirmRequest,
    ConsentText,
    Delivery,
    DeliveryState,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    ThrottleHit,
)
from mailservice.outbox import enqueue
from mailservice.tokens import Purpose, TokenError

log = logging.getLogger(__name__)

DEFAULT_LIST_SLUG = "news"
DEFAULT_LIST_TITLE = "Новости департамента"
DEFAULT_LIST_PURPOSE = "информирование о деятельности департамента: новые документы, услуги, мероприятия"
REF_TYPE = "mailing_subscriber"  # outbox rows about a subscriber (confirmation links, notices)


class LinkError(Exception):
    """A confirmation or unsubscribe link that is tampered, truncated, foreign, unknown, superseded or expired."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


class UnknownList(ValueError):
    """A list slug that does not exist (or is archived). The message names a few of them for staff (the command
    line); a public page says only :data:`UNKNOWN_LIST_PUBLIC`, never the input sent back."""


UNKNOWN_LIST_PUBLIC = "Такого списка рассылки нет: обновите страницу и выберите список из предложенных."
# A subscription request names at most this many lists: there are a handful, and a body naming tens of thousands
# would be one query with more parameters than PostgreSQL takes (65,535): a 500 instead of a refusal.
MAX_LISTS_ASKED = 50
SLUG_CHARS = 64  # MailingList.slug: a longer name is no list's


def new_nonce() -> str:
    """A random value that makes a signed id unguessable and lets a link be revoked."""
    return secrets.token_hex(8)


# ------------------------------------------------------------------------------------------------------------
# Lists
# ------------------------------------------------------------------------------------------------------------


def create_list(session: Session, slug: str, title: str, purpose: str = "") -> MailingList:
    """Create a list (topic); the purpose is shown with the consent and recorded with it."""
    if not slug or not slug.replace("-", "").replace("_", "").isalnum() or not slug.isascii() or len(slug) > 64:
        raise ValueError("код списка: латинские буквы, цифры, - и _, не длиннее 64 символов")
    if session.scalar(select(MailingList).where(MailingList.slug == slug)) is not None:
        raise ValueError(f"список {slug} уже существует")
    row = MailingList(slug=slug, title=title.strip()[:200] or slug, purpose=purpose.strip())
    session.add(row)
    session.flush()
    return row


def active_lists(session: Session) -> list[MailingList]:
    """Lists open for subscription, the default one (created on first use) first."""
    rows = list(session.scalars(select(MailingList).where(MailingList.archived_at.is_(None)).order_by(MailingList.id)))
    if not rows:
        rows = [default_list(session)]
    return rows


def default_list(session: Session) -> MailingList:
    """The list a request without a ``list`` field goes to: the oldest open list, created if there is none."""
    row = session.scalar(select(MailingList).where(MailingList.archived_at.is_(None)).order_by(MailingList.id))
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = MailingList(slug=DEFAULT_LIST_SLUG, title=DEFAULT_LIST_TITLE, purpose=DEFAULT_LIST_PURPOSE)
            session.add(row)
    except IntegrityError:  # another process created it first
        row = session.scalar(select(MailingList).where(MailingList.slug == DEFAULT_LIST_SLUG))
        assert row is not None
    return row


def lists_by_slugs(session: Session, slugs: Sequence[str]) -> list[MailingList]:
    """The open lists named by ``slugs`` (the default list when empty); UnknownList otherwise."""
    wanted = list(dict.fromkeys(s.strip() for s in slugs if s and s.strip()))
    if len(wanted) > MAX_LISTS_ASKED:
        raise UnknownList(f"названо {len(wanted)} списков рассылки, больше {MAX_LISTS_ASKED}: таких списков нет")
    fallback = default_list(session)  # also creates the default list on first use
    if not wanted:
        return [fallback]
    possible = [s for s in wanted if len(s) <= SLUG_CHARS]
    found = {
        row.slug: row
        for row in session.scalars(
            select(MailingList).where(MailingList.slug.in_(possible), MailingList.archived_at.is_(None))
        )
    }
    missing = [s for s in wanted if s not in found]
    if missing:
        named = ", ".join(s[:SLUG_CHARS] for s in missing[:5]) + (
            f" и ещё {len(missing) - 5}" if len(missing) > 5 else ""
        )
        raise UnknownList(f"нет такого списка рассылки: {named}")
    return [found[s] for s in wanted]


# ------------------------------------------------------------------------------------------------------------
# Links
# ------------------------------------------------------------------------------------------------------------


def confirm_token(settings: Settings, subscriber: Subscriber) -> str:
    """A timed token for the double opt-in link: the subscriber id and the current nonce, never the address."""
    return tokens.sign_timed(settings, Purpose.subscribe_confirm, [subscriber.id, subscriber.confirm_nonce])


def confirm_url(settings: Settings, subscriber: Subscriber) -> str:
    """The double opt-in link."""
    return f"{settings.public_url.rstrip('/')}/subscribe/confirm/{confirm_token(settings, subscriber)}"


def unsubscribe_token(settings: Settings, subscription_id: int, nonce: str) -> str:
    """A token that never expires (the regulation: every message carries a working withdrawal link)."""
    return tokens.sign(settings, Purpose.unsubscribe, [subscription_id, nonce])


def unsubscribe_url(settings: Settings, token: str) -> str:
    """The personal withdrawal link (also the RFC 8058 one-click POST target)."""
    return f"{settings.public_url.rstrip('/')}/unsubscribe/{token}"


def unsubscribe_mailto(settings: Settings, token: str) -> str:
    """The mailto: alternative of List-Unsubscribe (RFC 2369); intake recognises the token in the subject."""
    return f"mailto:{consent.contact_address(settings)}?subject={quote('unsubscribe ' + token)}"


class UnsubscribeLinks:
    """:func:`unsubscribe_url` and :func:`unsubscribe_mailto` for the many recipients of a campaign: the signing key
    is set up once (:class:`tokens.Minter`) and the fixed parts of both links built once."""

    def __init__(self, settings: Settings) -> None:
        self._mint = tokens.Minter(settings, Purpose.unsubscribe)
        self._url = unsubscribe_url(settings, "")
        # The token's characters (letters, digits, "-", "_", ".") are left as they are by quote().
        self._mailto = unsubscribe_mailto(settings, "")

    def __call__(self, subscription_id: int, nonce: str) -> tuple[str, str]:
        """The withdrawal link and the mailto: alternative of one subscription."""
        token = self._mint([subscription_id, nonce])
        return self._url + token, self._mailto + token


def _pair(payload: object) -> tuple[int, str]:
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], int)
        and not isinstance(payload[0], bool)
        and isinstance(payload[1], str)
    ):
        return payload[0], payload[1]
    raise LinkError("malformed payload")


@dataclass(frozen=True)
class ConfirmLink:
    """A valid confirmation link: whose it is and the nonce of the letter that carried it."""

    subscriber: Subscriber
    nonce: str


def load_confirm(session: Session, settings: Settings, token: str) -> ConfirmLink:
    """The subscriber and letter a confirmation link is for; LinkError when it is not a valid link of a letter that
    still names a list of the address.

    Every letter keeps its link (within MAILING_CONFIRM_HOURS of its sending, the token's age): asking for
    «Новости» and then for «Торги» sends two letters, and each confirms its own list. A later request (hers, or a
    stranger typing her address) gives its own letter a new nonce and leaves the earlier letter's lists alone, the
    same list included: a citizen who asked twice may follow either letter."""
    try:
        payload = tokens.load_timed(settings, Purpose.subscribe_confirm, token, settings.mailing_confirm_hours * 3600)
    except TokenError as exc:
        raise LinkError(exc.reason, expired=exc.expired) from None
    subscriber_id, nonce = _pair(payload)
    subscriber = session.get(Subscriber, subscriber_id)
    # The nonce is looked up, not compared in constant time: it comes inside a token signed with our key, so its
    # value cannot be probed from outside.
    if (
        subscriber is None
        or subscriber.purged_at is not None
        or not nonce
        or session.scalar(
            select(ConfirmRequest.id)
            .join(Subscription, Subscription.id == ConfirmRequest.subscription_id)
            .where(Subscription.subscriber_id == subscriber.id, ConfirmRequest.nonce == nonce)
            .limit(1)
        )
        is None
    ):
        raise LinkError("unknown or superseded link")
    return ConfirmLink(subscriber, nonce)


def load_unsubscribe(session: Session, settings: Settings, token: str, *, lock: bool = False) -> Subscription:
    """The subscription an unsubscribe link is for; LinkError when it is not one of ours."""
    try:
        payload = tokens.load(settings, Purpose.unsubscribe, token)
    except TokenError as exc:
        raise LinkError(exc.reason) from None
    subscription_id, nonce = _pair(payload)
    query = select(Subscription).where(Subscription.id == subscription_id)
    if lock:
        # Serialises with the sender, which takes FOR SHARE on the subscription when it re-checks consent.
        query = query.with_for_update().execution_options(populate_existing=True)
    subscription = session.scalar(query)
    if subscription is None or not secrets.compare_digest(subscription.nonce, nonce):
        raise LinkError("unknown link")
    return subscription


# ------------------------------------------------------------------------------------------------------------
# Rate limits
# ------------------------------------------------------------------------------------------------------------


def allow(session: Session, kind: str, key: str, limit: int, now: dt.datetime) -> bool:
    """Count one hit for ``key`` and say whether it is within ``limit`` per hour."""
    if limit <= 0:
        return True
    count = session.scalar(
        select(func.count())
        .select_from(ThrottleHit)
        .where(ThrottleHit.kind == kind, ThrottleHit.key == key, ThrottleHit.at > now - dt.timedelta(hours=1))
    )
    if int(count or 0) >= limit:
        return False
    session.add(ThrottleHit(kind=kind, key=key, at=now))
    return True


def ip_key(ip: str) -> str:
    """IPs are personal data too: the throttle keeps a hash, of the address's limit key (an IPv6 address counts
    by its /64 network: :func:`mailservice.ipkeys.limit_key`)."""
    from mailservice.ipkeys import limit_key

    return consent.email_hash("ip:" + limit_key(ip))


# ------------------------------------------------------------------------------------------------------------
# Subscribing and confirming
# ------------------------------------------------------------------------------------------------------------


def find_subscriber(session: Session, address: MailAddress) -> Subscriber | None:
    """The live (not purged) subscriber with this address, in any case of its letters: found by the hash of the
    case-folded address, so two spellings of one mailbox never make two subscribers (defect U9). Of the rows an
    earlier version made for two spellings, the oldest."""
    live = select(Subscriber).where(Subscriber.email_hash == address.hash, Subscriber.email.is_not(None))
    return session.scalar(live.order_by(Subscriber.id).limit(1))


def is_suppressed(session: Session, address_hash: str) -> bool:
    """Whether the address must never be mailed (withdrawn everywhere, hard bounce) until it confirms again."""
    return session.get(Suppression, address_hash) is not None


def suppress(session: Session, address_hash: str, reason: str, now: dt.datetime, detail: str = "") -> None:
    """Add (or refresh) a suppression entry."""
    row = session.get(Suppression, address_hash)
    if row is None:
        session.add(Suppression(email_hash=address_hash, reason=reason, at=now, detail=detail[:2000]))
    else:
        row.reason, row.at, row.detail = reason, now, detail[:2000]


@dataclass
class SubscribeResult:
    """What a subscribe request did (for logs and tests; the person sees the same answer whatever it is)."""

    outcome: str  # confirmation_sent | already_active | throttled
    subscriber_id: int | None = None
    subscription_ids: list[int] = field(default_factory=list)


def subscribe(
    session: Session,
    settings: Settings,
    *,
    address: MailAddress,
    lists: Sequence[MailingList],
    evidence: Evidence,
    consent_text: ConsentText | None,
    now: dt.datetime,
    name: str = "",
    auto_submitted: str = "auto-generated",
) -> SubscribeResult:
    """Record a consent given and mail the confirmation link (double opt-in), in the caller's transaction.

    A new, an existing and a suppressed address are handled alike from the outside: the same answer, and a
    confirmation e-mail unless every requested list is already active (or the address asked too often).
    """
    subscriber = find_subscriber(session, address)
    if subscriber is None:
        subscriber = Subscriber(
            email=address.normalized, email_ascii=address.ascii, email_hash=address.hash, name=name[:200]
        )
        session.add(subscriber)
        session.flush()
    elif name and not subscriber.name:
        subscriber.name = name[:200]
    # Locked (PostgreSQL): a second request at once (a double click) waits here and then reads the first one's
    # 'pending', instead of reading the old 'withdrawn' and deleting the first letter's confirm row as answered.
    existing = {
        s.list_id: s
        for s in session.scalars(
            select(Subscription)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(Subscription.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    suppressed = is_suppressed(session, address.hash)
    wanted = [
        m
        for m in lists
        if not (m.id in existing and existing[m.id].status == SubscriptionStatus.active and not suppressed)
    ]
    result = SubscribeResult("already_active", subscriber.id)
    if not wanted:
        return result
    if not allow(session, "addr", address.hash, settings.mailing_limit_per_address, now):
        # Said nowhere: the answer is the same, the address just gets no more mail this hour.
        result.outcome = "throttled"
        return result
    to_confirm: list[tuple[Subscription, MailingList]] = []
    answered: list[int] = []  # confirmed, withdrawn or lapsed before: the letters of that request are done with
    for mailing_list in wanted:
        subscription = existing.get(mailing_list.id)
        if subscription is None:
            subscription = Subscription(subscriber_id=subscriber.id, list_id=mailing_list.id, nonce=new_nonce())
            session.add(subscription)
        elif subscription.status != SubscriptionStatus.pending:
            answered.append(subscription.id)
        subscription.status = SubscriptionStatus.pending
        subscription.requested_at = now
        to_confirm.append((subscription, mailing_list))
    if answered:
        session.execute(delete(ConfirmRequest).where(ConfirmRequest.subscription_id.in_(answered)))
    session.flush()
    # One nonce per letter: its link confirms the lists it names and no other request of this address. An earlier
    # letter naming the same pending list keeps working for it too (she may have asked twice).
    subscriber.confirm_nonce = new_nonce()
    session.add_all(
        ConfirmRequest(subscription_id=s.id, nonce=subscriber.confirm_nonce, requested_at=now) for s, _ in to_confirm
    )
    session.flush()
    result.subscription_ids = [s.id for s, _ in to_confirm]
    for subscription, mailing_list in to_confirm:
        consent.record(
            session,
            settings,
            kind="given",
            subscriber_id=subscriber.id,
            address_hash=address.hash,
            evidence=evidence,
            mailing_list=mailing_list,
            subscription_id=subscription.id,
            consent=consent_text,
            at=now,
        )
    message = build_message(
        settings,
        to=subscriber.email_ascii or address.ascii,
        subject="Подтвердите подписку на рассылку",
        template="mailing_confirm",
        context={
            "lists": [m for _, m in to_confirm],
            "confirm_url": confirm_url(settings, subscriber),
            "hours": settings.mailing_confirm_hours,
        },
        auto_submitted=auto_submitted,
    )
    enqueue(session, message, kind="mailing_confirm", ref_type=REF_TYPE, ref_id=subscriber.id)
    result.outcome = "confirmation_sent"
    return result


def _named_by_link(settings: Settings, link: ConfirmLink, now: dt.datetime) -> ColumnElement[bool]:
    """The pending subscriptions the link's letter named, while the letter has not lapsed.

    Not every pending request of the address: a stranger may have typed it for another list, and the owner's own
    letter, which names only what she asked for, must not confirm that (152-FZ art. 9 part 1)."""
    named = select(ConfirmRequest.id).where(
        ConfirmRequest.subscription_id == Subscription.id,
        ConfirmRequest.nonce == link.nonce,
        ConfirmRequest.requested_at > now - dt.timedelta(hours=settings.mailing_confirm_hours),
    )
    return and_(
        Subscription.subscriber_id == link.subscriber.id,
        Subscription.status == SubscriptionStatus.pending,
        named.exists(),
    )


def pending_lists(session: Session, settings: Settings, link: ConfirmLink, now: dt.datetime) -> list[MailingList]:
    """Lists the confirmation link would confirm (those its letter named, still pending)."""
    return list(
        session.scalars(
            select(MailingList)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(_named_by_link(settings, link, now))
            .order_by(MailingList.id)
        )
    )


def confirm(
    session: Session,
    settings: Settings,
    token: str,
    *,
    evidence: Evidence,
    consent_text: ConsentText | None,
    now: dt.datetime,
) -> list[MailingList]:
    """Activate the pending subscriptions the link's letter named (idempotent); returns the lists confirmed."""
    link = load_confirm(session, settings, token)
    subscriber = link.subscriber
    assert subscriber.email is not None  # load_confirm refuses purged subscribers
    rows = session.execute(
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(_named_by_link(settings, link, now))
        .order_by(Subscription.id)  # locks taken in the order subscribe() takes them: no deadlock between the two
        .with_for_update(of=Subscription)
        .execution_options(populate_existing=True)
    ).all()
    for subscription, mailing_list in rows:
        subscription.status = SubscriptionStatus.active
        subscription.confirmed_at = now
        subscription.withdrawn_at = None
        subscription.withdrawn_via = ""
        consent.record(
            session,
            settings,
            kind="confirmed",
            subscriber_id=subscriber.id,
            address_hash=subscriber.email_hash,
            evidence=evidence,
            mailing_list=mailing_list,
            subscription_id=subscription.id,
            consent=consent_text,
            at=now,
        )
    if rows:
        # A fresh, confirmed consent outranks an old withdrawal or bounce (the mailbox evidently works).
        suppression = session.get(Suppression, subscriber.email_hash)
        if suppression is not None:
            session.delete(suppression)
    return [m for _, m in rows]


# ------------------------------------------------------------------------------------------------------------
# Withdrawing
# ------------------------------------------------------------------------------------------------------------


def in_flight(session: Session, settings: Settings, subscription_id: int, now: dt.datetime) -> int:
    """Copies to this subscription whose SMTP DATA has started and whose outcome is not recorded yet.

    A row older than the SMTP timeout is a dead worker's; the reconciler will mark it ambiguous.
    """
    horizon = now - dt.timedelta(seconds=settings.smtp_timeout + 5)
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.subscription_id == subscription_id,
                Delivery.state == DeliveryState.sending,
                Delivery.sending_at > horizon,
            )
        )
        or 0
    )


def withdraw(
    session: Session,
    settings: Settings,
    subscription: Subscription,
    *,
    evidence: Evidence,
    now: dt.datetime,
) -> bool:
    """Withdraw consent for one list in the caller's transaction; False when it was withdrawn already.

    When no active subscription remains, the address goes on the suppression list. The address is the mailbox,
    whatever the case of its letters: a subscription to the same list that an earlier version kept under another
    spelling of it (another subscriber row with the same hash) is withdrawn with it (seed 004 p. 12: nothing is
    sent after a withdrawal; defect U9).
    """
    if subscription.status in (SubscriptionStatus.withdrawn, SubscriptionStatus.expired):
        return False
    subscriber = session.get(Subscriber, subscription.subscriber_id)
    assert subscriber is not None
    mailing_list = session.get(MailingList, subscription.list_id)
    same_mailbox = select(Subscriber.id).where(Subscriber.email_hash == subscriber.email_hash)
    spellings = session.scalars(
        select(Subscription).where(
            Subscription.subscriber_id.in_(same_mailbox),
            Subscription.list_id == subscription.list_id,
            Subscription.status.in_((SubscriptionStatus.active, SubscriptionStatus.pending)),
        )
    )
    for found in [subscription, *(s for s in spellings if s is not subscription)]:
        _withdraw_one(session, settings, found, evidence=evidence, mailing_list=mailing_list, now=now)
    session.flush()
    remaining = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.subscriber_id.in_(same_mailbox), Subscription.status == SubscriptionStatus.active)
    )
    if not remaining:
        suppress(session, subscriber.email_hash, "withdrawn", now)
    return True


def _withdraw_one(
    session: Session,
    settings: Settings,
    subscription: Subscription,
    *,
    evidence: Evidence,
    mailing_list: MailingList | None,
    now: dt.datetime,
) -> None:
    """Mark one subscription withdrawn and log it (152-FZ art. 9 part 3: the operator proves the withdrawal too)."""
    subscriber = session.get(Subscriber, subscription.subscriber_id)
    assert subscriber is not None
    subscription.status = SubscriptionStatus.withdrawn
    subscription.withdrawn_at = now
    subscription.withdrawn_via = evidence.method[:16]
    consent.record(
        session,
        settings,
        kind="withdrawn",
        subscriber_id=subscriber.id,
        address_hash=subscriber.email_hash,
        evidence=evidence,
        mailing_list=mailing_list,
        subscription_id=subscription.id,
        at=now,
    )


@dataclass(frozen=True)
class WithdrawResult:
    """Outcome of following an unsubscribe link."""

    changed: bool
    list_title: str
    can_undo: bool  # the address is still on file (not purged), so a fresh confirmation can be sent


def withdraw_by_link(
    settings: Settings, token: str, *, evidence: Evidence, now: dt.datetime | None = None
) -> WithdrawResult:
    """Withdraw through a link, in its own transaction, after copies in flight to this subscriber finished.

    Waiting (bounded by the SMTP timeout) makes "no copy after the withdrawal" literal: the sender re-checks
    consent under a lock in the same transaction that marks a copy as being sent, and this transaction commits
    only when no such copy is in flight. LinkError for a bad token.
    """
    deadline = time.monotonic() + settings.smtp_timeout + 10
    while True:
        with session_scope(settings) as session:
            subscription = load_unsubscribe(session, settings, token, lock=True)
            # Stamped once the lock is ours, not before: a copy the sender marked "sending" while this waited for
            # the lock is then earlier than the withdrawal in the consent log too (seen under load: a copy marked
            # 28 ms after a withdrawal's time, the withdrawal committed after it).
            current = now or utcnow()
            if (
                subscription.status in (SubscriptionStatus.active, SubscriptionStatus.pending)
                and in_flight(session, settings, subscription.id, current)
                and time.monotonic() < deadline
            ):
                session.rollback()
                waiting = True
            else:
                waiting = False
                changed = withdraw(session, settings, subscription, evidence=evidence, now=current)
                mailing_list = session.get(MailingList, subscription.list_id)
                subscriber = session.get(Subscriber, subscription.subscriber_id)
                return WithdrawResult(
                    changed=changed,
                    list_title=mailing_list.title if mailing_list is not None else "",
                    can_undo=subscriber is not None and subscriber.purged_at is None,
                )
        if waiting:
            time.sleep(0.02)


def withdraw_in_transaction(
    session: Session, settings: Settings, subscription: Subscription, *, evidence: Evidence, now: dt.datetime
) -> bool:
    """Withdraw inside someone else's transaction (intake), waiting for copies in flight where that is possible.

    On PostgreSQL each poll sees newly committed rows (READ COMMITTED): the wait happens first without a lock
    (so the sender can record its copies), then once more under the row lock, bounded by the SMTP timeout. On
    SQLite the caller's transaction already holds the only write lock, so no copy can start meanwhile; a copy
    whose DATA had started may still arrive.
    """
    if session.get_bind().dialect.name == "postgresql":
        deadline = time.monotonic() + settings.smtp_timeout + 10
        for locked in (False, True):
            if locked:
                session.execute(
                    select(Subscription)
                    .where(Subscription.id == subscription.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                )
            while in_flight(session, settings, subscription.id, now) and time.monotonic() < deadline:
                time.sleep(0.02)
    return withdraw(session, settings, subscription, evidence=evidence, now=now)


def resubscribe(
    session: Session,
    settings: Settings,
    token: str,
    *,
    evidence: Evidence,
    consent_text: ConsentText | None,
    now: dt.datetime,
) -> SubscribeResult | None:
    """The undo offered after a withdrawal: a fresh request that needs a fresh confirmation.

    None when the address has been purged meanwhile (the person subscribes again on the site).
    """
    subscription = load_unsubscribe(session, settings, token)
    subscriber = session.get(Subscriber, subscription.subscriber_id)
    mailing_list = session.get(MailingList, subscription.list_id)
    if subscriber is None or subscriber.email is None or mailing_list is None:
        return None
    address = parse_address(subscriber.email)
    if address is None:
        return None
    return subscribe(
        session,
        settings,
        address=address,
        lists=[mailing_list],
        evidence=evidence,
        consent_text=consent_text,
        now=now,
    )
