"""Campaigns: create (template checked at once), start (one delivery row per consenting subscriber), pause,
resume, and the counts staff see.

Starting takes a snapshot of the list's active, unsuppressed subscriptions; a person who confirms later gets the
next campaign. Progress is the set of delivery rows, each with its own state: there is no checkpoint that could
run ahead of a recipient that was not handled.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import asdict, dataclass

from sqlalchemy import and_, func, insert, literal, select, update
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mailings.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryState,
    MailingList,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from mailservice.mailings.render import CampaignSource, validate
from mailservice.mailings.subscribers import lists_by_slugs


class CampaignError(ValueError):
    """A refused campaign operation (message in Russian)."""


def source_of(session: Session, campaign: Campaign) -> CampaignSource:
    """What the renderer needs from a stored campaign."""
    mailing_list = session.get(MailingList, campaign.list_id)
    assert mailing_list is not None
    return CampaignSource(
        subject=campaign.subject,
        text=campaign.template_text,
        html=campaign.template_html,
        list_title=mailing_list.title,
        list_slug=mailing_list.slug,
    )


def create(
    session: Session,
    settings: Settings,
    *,
    list_slug: str,
    subject: str,
    text: str,
    html: str | None = None,
    template_name: str = "",
    created_by: str = "",
) -> Campaign:
    """A draft campaign; the template is refused here if it lacks ``{{ unsubscribe_url }}`` or does not render."""
    (mailing_list,) = lists_by_slugs(session, [list_slug])
    source = CampaignSource(subject, text, html, mailing_list.title, mailing_list.slug)
    validate(settings, source)
    campaign = Campaign(
        list_id=mailing_list.id,
        subject=subject,
        template_name=template_name[:300],
        template_text=text,
        template_html=html,
        uid=secrets.token_hex(6),
        created_by=created_by[:200],
    )
    session.add(campaign)
    session.flush()
    return campaign


def get(session: Session, campaign_id: int, *, lock: bool = False) -> Campaign:
    """A campaign by id, or CampaignError."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        # populate_existing: a row already in the session must be re-read once the lock is ours, or a second
        # process starting the same campaign would still see "draft" and create the deliveries twice.
        query = query.with_for_update().execution_options(populate_existing=True)
    campaign = session.scalar(query)
    if campaign is None:
        raise CampaignError(f"рассылки № {campaign_id} нет")
    return campaign


def start(session: Session, settings: Settings, campaign_id: int, now: dt.datetime) -> Campaign:
    """Move a draft to ``sending``: re-check the template, create one queued delivery per consenting subscriber.

    Starting a campaign that is already sending or done changes nothing (several ``send`` processes may race).
    """
    campaign = get(session, campaign_id, lock=True)
    if campaign.status != CampaignStatus.draft:
        return campaign
    validate(settings, source_of(session, campaign))
    eligible = (
        select(
            literal(campaign.id),
            Subscription.id,
            literal(DeliveryState.queued.value),
            literal(0),
            literal(now, type_=Delivery.__table__.c.next_attempt_at.type),
            literal(""),
            literal(""),
            literal(""),
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .outerjoin(Suppression, Suppression.email_hash == Subscriber.email_hash)
        .where(
            Subscription.list_id == campaign.list_id,
            Subscription.status == SubscriptionStatus.active,
            Subscriber.purged_at.is_(None),
            Suppression.email_hash.is_(None),
        )
        .order_by(Subscription.id)
    )
    session.execute(
        insert(Delivery).from_select(
            [
                "campaign_id",
                "subscription_id",
                "state",
                "attempts",
                "next_attempt_at",
                "claimed_by",
                "claim_token",
                "last_error",
            ],
            eligible,
        )
    )
    campaign.total = int(
        session.scalar(select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign.id)) or 0
    )
    campaign.status = CampaignStatus.sending
    campaign.started_at = now
    campaign.next_send_at = None
    if campaign.total == 0:
        campaign.status = CampaignStatus.done
        campaign.finished_at = now
    return campaign


def pause(session: Session, campaign_id: int) -> Campaign:
    """Stop handing out copies; copies already past their consent check finish."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.status not in (CampaignStatus.sending, CampaignStatus.paused):
        raise CampaignError(f"рассылку в состоянии «{campaign.status}» нельзя приостановить")
    campaign.status = CampaignStatus.paused
    return campaign


def resume(session: Session, campaign_id: int) -> Campaign:
    """Continue a paused campaign where it stopped (only undelivered copies are sent)."""
    campaign = get(session, campaign_id, lock=True)
    if campaign.status != CampaignStatus.paused:
        raise CampaignError(f"рассылка не приостановлена (состояние «{campaign.status}»)")
    campaign.status = CampaignStatus.sending
    return campaign


def finish_if_complete(session: Session, campaign_id: int, now: dt.datetime) -> bool:
    """Mark a sending campaign done when no copy is left to handle; True when it is (now or before)."""
    remaining = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.campaign_id == campaign_id,
            Delivery.state.in_([DeliveryState.queued, DeliveryState.claimed, DeliveryState.sending]),
        )
    )
    if remaining:
        return False
    session.execute(
        update(Campaign)
        .where(and_(Campaign.id == campaign_id, Campaign.status == CampaignStatus.sending))
        .values(status=CampaignStatus.done, finished_at=now)
    )
    return True


@dataclass(frozen=True)
class CampaignStatusReport:
    """The counts of ``campaign status``."""

    id: int
    status: str
    subject: str
    list: str
    total: int
    queued: int
    sent: int
    failed: int
    skipped_withdrawn: int
    bounced: int
    ambiguous: int

    @property
    def handled(self) -> int:
        """Copies in a final state."""
        return self.sent + self.failed + self.skipped_withdrawn + self.bounced + self.ambiguous

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return asdict(self)


def status(session: Session, campaign_id: int) -> CampaignStatusReport:
    """Where a campaign stands."""
    campaign = get(session, campaign_id)
    mailing_list = session.get(MailingList, campaign.list_id)
    counts = dict(
        session.execute(
            select(Delivery.state, func.count()).where(Delivery.campaign_id == campaign_id).group_by(Delivery.state)
        ).all()
    )

    def n(*states: DeliveryState) -> int:
        return sum(int(counts.get(s.value, 0)) for s in states)

    return CampaignStatusReport(
        id=campaign.id,
        status=campaign.status,
        subject=campaign.subject,
        list=mailing_list.slug if mailing_list is not None else "",
        total=sum(int(v) for v in counts.values()),
        queued=n(DeliveryState.queued, DeliveryState.claimed, DeliveryState.sending),
        sent=n(DeliveryState.sent),
        failed=n(DeliveryState.failed),
        skipped_withdrawn=n(DeliveryState.skipped),
        bounced=n(DeliveryState.bounced),
        ambiguous=n(DeliveryState.ambiguous),
    )
