"""Averages of the feedback ratings per month, channel and unit (console page and the site's statistics)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, Channel

# Ratings that count in every published figure: answers to the survey e-mail (one per answered request, through
# its signed link) and ratings staff record. The site's form is open to anyone, so its ratings are shown to staff
# apart and published nowhere (README, "Security model").
COUNTED_SOURCES = ("survey", "staff", "phone")  # issue 17: "phone", ratings staff record from a call-round
ANONYMOUS_SOURCE = "site"


@dataclass(frozen=True)
class Bucket:
    """Ratings of one month, channel or unit."""

    key: str
    label: str
    count: int
    average: float


@dataclass(frozen=True)
class FeedbackStats:
    """All the numbers."""

    count: int
    average: float | None
    by_month: list[Bucket]
    by_channel: list[Bucket]
    by_unit: list[Bucket]


def buckets(pairs: Iterable[tuple[str, int]], labels: dict[str, str] | None = None) -> list[Bucket]:
    """Group (key, rating) pairs; average rounded to two decimals, keys in sorted order (pure)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for key, rating in pairs:
        groups[key].append(rating)
    return [
        Bucket(key, (labels or {}).get(key, key), len(values), round(sum(values) / len(values), 2))
        for key, values in sorted(groups.items())
    ]


def channel_label(value: str) -> str:
    """The Russian name of a channel."""
    try:
        return CHANNEL_NAMES[Channel(value)]
    except ValueError:
        return value


def compute(rows: Iterable[tuple[dt.datetime, str, str, int]], tz: dt.tzinfo) -> FeedbackStats:
    """Statistics of (created_at, channel, unit, rating) rows; months in the department's time zone (pure)."""
    data = list(rows)
    ratings = [r for *_rest, r in data]
    return FeedbackStats(
        count=len(data),
        average=round(sum(ratings) / len(ratings), 2) if ratings else None,
        by_month=buckets((at.astimezone(tz).strftime("%Y-%m"), r) for at, _c, _u, r in data),
        by_channel=buckets(((c, r) for _a, c, _u, r in data), {c.value: CHANNEL_NAMES[c] for c in Channel}),
        by_unit=buckets(((u or "—", r) for _a, _c, u, r in data)),
    )


def feedback_stats(
    session: Session,
    settings: Settings,
    since: dt.datetime | None = None,
    *,
    sources: tuple[str, ...] = COUNTED_SOURCES,
) -> FeedbackStats:
    """Statistics of the answers from ``sources`` (by default those that count), or of those since a moment."""
    query = select(
        FeedbackResponse.created_at, FeedbackResponse.channel, FeedbackResponse.unit, FeedbackResponse.rating
    ).where(
        FeedbackResponse.rating.is_not(None),  # a thank-you by e-mail has no rating to average
        FeedbackResponse.source.in_(sources),
    )
    if since is not None:
        query = query.where(FeedbackResponse.created_at >= since)
    return compute(((a, c, u, r) for a, c, u, r in session.execute(query) if r is not None), settings.tz)


def site_statistics(session: Session, settings: Settings) -> dict[str, object]:
    """The numbers for the public statistics page: counts and averages only, never a comment or an address, and
    only of the ratings that count (not the anonymous form's)."""
    stats = feedback_stats(session, settings)

    def plain(items: list[Bucket]) -> list[dict[str, object]]:
        return [{"key": b.key, "name": b.label, "count": b.count, "average": b.average} for b in items]

    return {
        "responses": stats.count,
        "average": stats.average,
        "by_month": plain(stats.by_month),
        "by_channel": plain(stats.by_channel),
        "by_unit": plain(stats.by_unit),
    }
