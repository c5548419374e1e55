"""Figures of the request register for the charts and the monthly report (issue 17): read from the database, counted
in Python (a department's volume), dates in the department's time zone.

* requests per week by channel: registered requests by the week of their registration;
* on time vs late: requests answered or refused in a month, on time when the answer's local date is not after the
  legal due date;
* open by status: requests still in work (and those waiting unregistered);
* feedback average per month: ratings that count in the published figures (survey answers, ratings staff recorded).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.stats import COUNTED_SOURCES
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, OPEN_STATUSES, STATUS_NAMES, Channel, Status
from mailservice.inforequests.models import Request
from mailservice.reports.charts import Series, bar_chart, column_chart

MONTHS = ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
MONTHS_FULL = (
    "январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
)  # fmt: skip


def month_start(day: dt.date) -> dt.date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


FIRST_REPORT_YEAR = 2000  # the register holds no earlier date (a date of receipt before 2000 is refused)
MONTH_WANTED = "ожидался месяц в виде ГГГГ-ММ, с 2000-01 по текущий"
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def report_month(value: str, today: dt.date) -> dt.date:
    """The first day of the month ``value`` («2026-11») names; ValueError (its text in Russian) unless it is a month
    from January 2000 to ``today``'s. A later month has nothing to count, and the month after December 9999, which
    the report needs as its end, is no date at all."""
    match = _MONTH.fullmatch(value.strip())
    if match is None:
        raise ValueError(MONTH_WANTED)
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12 or not FIRST_REPORT_YEAR <= year or (year, month) > (today.year, today.month):
        raise ValueError(MONTH_WANTED)
    return dt.date(year, month, 1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` away from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_label(day: dt.date) -> str:
    """«дек 2026»."""
    return f"{MONTHS[day.month - 1]} {day.year}"


def _local(settings: Settings, moment: dt.datetime) -> dt.date:
    return moment.astimezone(settings.tz).date()


@dataclass(frozen=True)
class Chart:
    """A chart ready for a page or a document: an id for the page, its title, the SVG."""

    key: str
    title: str
    svg: str


def weekly_by_channel(session: Session, today: dt.date, weeks: int = 12) -> Chart:
    """Registered requests per week (Monday to Sunday) of the last ``weeks`` weeks, by channel."""
    first = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=weeks - 1)
    mondays = [first + dt.timedelta(weeks=i) for i in range(weeks)]
    counts: Counter[tuple[dt.date, str]] = Counter()
    rows = session.execute(
        select(Request.registered_on, Request.channel).where(
            Request.registered_on.is_not(None), Request.registered_on >= first, Request.registered_on <= today
        )
    )
    for registered_on, channel in rows:
        if registered_on is None:
            continue
        counts[(registered_on - dt.timedelta(days=registered_on.weekday()), channel)] += 1
    channels = [c for c in Channel if any(counts[(m, c.value)] for m in mondays)]
    series = [Series(CHANNEL_NAMES[c], tuple(float(counts[(m, c.value)]) for m in mondays)) for c in channels]
    title = "Запросы по неделям и каналам"
    return Chart(
        "weekly",
        title,
        column_chart(title, [m.strftime("%d.%m") for m in mondays], series or [Series("", (0.0,) * weeks)]),
    )


def on_time_by_month(session: Session, settings: Settings, last_month: dt.date, months: int = 6) -> Chart:
    """Answers and refusals of each of the ``months`` months up to ``last_month``: on time or late."""
    first = add_months(last_month, -(months - 1))
    starts = [add_months(first, i) for i in range(months)]
    on_time: Counter[dt.date] = Counter()
    late: Counter[dt.date] = Counter()
    since = dt.datetime.combine(first, dt.time(), settings.tz)
    rows = session.execute(
        select(Request.answered_at, Request.due_date).where(
            Request.answered_at.is_not(None), Request.answered_at >= since, Request.number.is_not(None)
        )
    )
    for answered_at, due_date in rows:
        if answered_at is None:
            continue
        day = _local(settings, answered_at)
        bucket = month_start(day)
        if due_date is None or day <= due_date:
            on_time[bucket] += 1
        else:
            late[bucket] += 1
    series = [
        Series("в срок", tuple(float(on_time[m]) for m in starts)),
        Series("с нарушением срока", tuple(float(late[m]) for m in starts)),
    ]
    title = "Ответы в срок и с нарушением срока"
    return Chart("ontime", title, column_chart(title, [month_label(m) for m in starts], series))


def open_by_status(session: Session) -> Chart:
    """Requests in work by status (and those waiting unregistered)."""
    wanted = [Status.received, *[s for s in Status if s in OPEN_STATUSES]]
    counts = dict(
        session.execute(
            select(Request.status, func.count())
            .where(Request.status.in_([s.value for s in wanted]))
            .group_by(Request.status)
        ).all()
    )
    items = [(STATUS_NAMES[s], float(counts.get(s.value, 0))) for s in wanted]
    title = "Запросы в работе по статусам"
    return Chart("status", title, bar_chart(title, items))


def feedback_by_month(session: Session, settings: Settings, last_month: dt.date, months: int = 12) -> Chart:
    """The average rating of each of the ``months`` months up to ``last_month`` (counted sources only)."""
    first = add_months(last_month, -(months - 1))
    starts = [add_months(first, i) for i in range(months)]
    ratings: dict[dt.date, list[int]] = defaultdict(list)
    since = dt.datetime.combine(first, dt.time(), settings.tz)
    rows = session.execute(
        select(FeedbackResponse.created_at, FeedbackResponse.rating).where(
            FeedbackResponse.rating.is_not(None),
            FeedbackResponse.source.in_(COUNTED_SOURCES),
            FeedbackResponse.created_at >= since,
        )
    )
    for created_at, rating in rows:
        if rating is not None:
            ratings[month_start(_local(settings, created_at))].append(rating)
    averages = tuple(round(sum(ratings[m]) / len(ratings[m]), 2) if ratings[m] else 0.0 for m in starts)
    title = "Средняя оценка по месяцам (из 5)"
    chart = column_chart(
        title, [month_label(m) for m in starts], [Series("средняя оценка", averages)], maximum=5.0, values_on_top=True
    )
    return Chart("feedback", title, chart)


def home_charts(session: Session, settings: Settings, today: dt.date) -> list[Chart]:
    """The four charts of the console's home page."""
    this_month = month_start(today)
    return [
        weekly_by_channel(session, today),
        on_time_by_month(session, settings, this_month),
        open_by_status(session),
        feedback_by_month(session, settings, this_month),
    ]
