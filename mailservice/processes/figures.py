"""Live figures of group 4 ("Рассмотрение обращений и запросов") from this service's own request register.

By month, in the department's time zone:

* received: requests and appeals received that month (every channel);
* answered: those answered (an answer or a reasoned refusal) that month;
* median days to answer: calendar days from the day the term counts from to the local date of the answer: the
  registration date, but never later than the last lawful day of registration (queues.term_start_of, as the due
  date is counted; RULES.md): a letter registered late does not look answered sooner than it was;
* answered late: the share of those answered after their legal due date (the date after any extension);
* feedback: the number and average of the ratings (1-5) given that month (survey answers and staff-recorded
  ratings; the anonymous site form's are not counted).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.stats import COUNTED_SOURCES, buckets
from mailservice.inforequests.models import Request
from mailservice.inforequests.queues import term_start_of


@dataclass(frozen=True)
class RequestFacts:
    """What the figures need of one request."""

    received_at: dt.datetime
    registered_on: dt.date | None
    answered_at: dt.datetime | None
    due_date: dt.date | None
    channel: str = "email"  # an oral request's term counts from the day it came (queues.term_start_of)


@dataclass(frozen=True)
class MonthFigures:
    """The figures of one month."""

    month: str  # YYYY-MM
    received: int
    answered: int
    median_days: float | None
    answered_late: int
    late_share: float | None  # 0..1, four decimals
    feedback_count: int
    feedback_average: float | None

    def as_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "month": self.month,
            "received": self.received,
            "answered": self.answered,
            "median_days": self.median_days,
            "answered_late": self.answered_late,
            "late_share": self.late_share,
            "feedback_count": self.feedback_count,
            "feedback_average": self.feedback_average,
        }


def compute(
    requests: Iterable[RequestFacts], ratings: Iterable[tuple[dt.datetime, int]], tz: dt.tzinfo
) -> list[MonthFigures]:
    """Monthly figures, oldest month first (pure)."""
    received: dict[str, int] = defaultdict(int)
    days: dict[str, list[int]] = defaultdict(list)
    late: dict[str, int] = defaultdict(int)
    for request in requests:
        received[request.received_at.astimezone(tz).strftime("%Y-%m")] += 1
        start = term_start_of(request, tz)
        if request.answered_at is None or start is None or request.due_date is None:
            continue
        answered_on = request.answered_at.astimezone(tz).date()
        month = answered_on.strftime("%Y-%m")
        days[month].append((answered_on - start).days)
        late[month] += answered_on > request.due_date
    feedback = {b.key: b for b in buckets((at.astimezone(tz).strftime("%Y-%m"), r) for at, r in ratings)}
    result = []
    for month in sorted(set(received) | set(days) | set(feedback)):
        answered = len(days[month])
        bucket = feedback.get(month)
        result.append(
            MonthFigures(
                month=month,
                received=received[month],
                answered=answered,
                median_days=float(statistics.median(days[month])) if answered else None,
                answered_late=late[month],
                late_share=round(late[month] / answered, 4) if answered else None,
                feedback_count=bucket.count if bucket else 0,
                feedback_average=bucket.average if bucket else None,
            )
        )
    return result


def group4_figures(session: Session, settings: Settings, since: dt.datetime | None = None) -> list[MonthFigures]:
    """The figures from the database (every request, or those received since a moment)."""
    query = select(Request.received_at, Request.registered_on, Request.answered_at, Request.due_date, Request.channel)
    ratings = select(FeedbackResponse.created_at, FeedbackResponse.rating).where(
        FeedbackResponse.rating.is_not(None), FeedbackResponse.source.in_(COUNTED_SOURCES)
    )
    if since is not None:
        query = query.where(Request.received_at >= since)
        ratings = ratings.where(FeedbackResponse.created_at >= since)
    facts = (RequestFacts(*row) for row in session.execute(query))
    return compute(facts, ((at, rating) for at, rating in session.execute(ratings) if rating is not None), settings.tz)
