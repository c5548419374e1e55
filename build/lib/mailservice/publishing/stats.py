"""Request statistics per quarter for the site and its open data, and the list of mailings sent.

Only counts leave the database: no names, addresses, subjects or texts of requests (personal data stay in the
register; 152-FZ). :func:`quarter_statistics` is pure; :func:`load_site_data` reads the database read-only and
reports "no data" when no database is configured or its tables are missing (a fresh checkout builds the site).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests.lifecycle import OPEN_STATUSES, Status

ROMAN = ("I", "II", "III", "IV")


if TYPE_CHECKING:
    from mailservice.processes.publication import PublicRegister


class StatisticsUnavailable(RuntimeError):
    """The configured database could not be read; the message says why (the build stops rather than publish
    "no data" over real figures)."""


@dataclass(frozen=True)
class RequestRow:
    """What the statistics need of one request: dates, labels and outcome, nothing personal."""

    received_on: dt.date
    registered: bool
    type: str
    channel: str
    status: str
    answered_on: dt.date | None
    due_date: dt.date | None
    refusal_ground: str | None
    extended: bool
    forwarded: bool


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter."""

    year: int
    number: int

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        """The quarter a date falls in."""
        return cls(day.year, (day.month - 1) // 3 + 1)

    @property
    def title(self) -> str:
        """«III квартал 2026 г.»."""
        return f"{ROMAN[self.number - 1]} квартал {self.year} г."


@dataclass
class QuarterStats:
    """Counts for the requests received in one quarter (a cohort: their outcome, whenever it came)."""

    quarter: Quarter
    received: int = 0
    registered: int = 0
    answered: int = 0
    answered_on_time: int = 0
    answered_late: int = 0
    extended: int = 0
    forwarded: int = 0
    refused: int = 0
    in_progress: int = 0
    by_ground: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class MailingRow:
    """A mailing that was sent: when, what about, to how many subscribers."""

    sent_on: dt.date
    subject: str
    recipients: int | None


@dataclass(frozen=True)
class SiteData:
    """What the generated pages show; ``has_requests``/``has_mailings`` are False when there is no source yet."""

    generated_at: dt.datetime
    quarters: tuple[QuarterStats, ...] = ()
    mailings: tuple[MailingRow, ...] = ()
    has_requests: bool = False
    has_mailings: bool = False
    # (slug, title) of the lists the service accepts; None: offer the lists of sections.yml.
    mailing_lists: tuple[tuple[str, str], ...] | None = None
    # The public part of the approved process register (issue 9); None when its tables do not exist yet.
    process_register: PublicRegister | None = None


def quarter_statistics(rows: Iterable[RequestRow]) -> list[QuarterStats]:
    """Counts per quarter of receipt, newest quarter first.

    "On time" compares the answer's local date with the legal due date after any extension (8-FZ art. 18;
    59-FZ art. 12). A refusal is counted with its ground (8-FZ art. 20), not as an answer.
    """
    by_quarter: dict[Quarter, QuarterStats] = {}
    for row in rows:
        quarter = Quarter.of(row.received_on)
        stats = by_quarter.setdefault(quarter, QuarterStats(quarter))
        stats.received += 1
        stats.by_type[row.type] += 1
        stats.by_channel[row.channel] += 1
        if row.registered:
            stats.registered += 1
        if row.extended:
            stats.extended += 1
        if row.forwarded:
            stats.forwarded += 1
        if row.refusal_ground:
            stats.refused += 1
            stats.by_ground[row.refusal_ground] += 1
        elif row.answered_on is not None:
            stats.answered += 1
            if row.due_date is None or row.answered_on <= row.due_date:
                stats.answered_on_time += 1
            else:
                stats.answered_late += 1
        elif row.registered and row.status in OPEN_STATUSES:
            stats.in_progress += 1
    return [by_quarter[q] for q in sorted(by_quarter, reverse=True)]


# Reading the database -------------------------------------------------------------------------------------------


def database_configured(settings: Settings) -> bool:
    """Whether there is a database to read: a URL was given, or the embedded SQLite file exists already.

    A fresh checkout has neither; then the pages say there is no data yet, and no empty file is created.
    """
    if settings.database_url:
        return True
    return Path(settings.effective_database_url.split("///", 1)[-1]).is_file()


def _request_rows(engine: Engine, tz: ZoneInfo) -> list[RequestRow]:
    from mailservice.inforequests.models import Event, Request

    with engine.connect() as conn:
        marked = conn.execute(
            select(Event.request_id, Event.to_status).where(
                Event.request_id.is_not(None), Event.to_status.in_([Status.extended, Status.forwarded])
            )
        ).all()
        extended = {rid for rid, to in marked if to == Status.extended}
        forwarded = {rid for rid, to in marked if to == Status.forwarded}
        result = conn.execute(
            select(
                Request.id,
                Request.received_at,
                Request.registered_on,
                Request.type,
                Request.channel,
                Request.status,
                Request.answered_at,
                Request.due_date,
                Request.refusal_ground,
            )
        )
        rows = []
        for rid, received_at, registered_on, rtype, channel, status, answered_at, due, ground in result:
            rows.append(
                RequestRow(
                    received_on=received_at.astimezone(tz).date(),
                    registered=registered_on is not None,
                    type=rtype,
                    channel=channel,
                    status=status,
                    answered_on=answered_at.astimezone(tz).date() if answered_at else None,
                    due_date=due,
                    refusal_ground=ground,
                    extended=rid in extended,
                    forwarded=rid in forwarded,
                )
            )
    return rows


def _mailing_rows(engine: Engine, tables: set[str], tz: ZoneInfo) -> list[MailingRow] | None:
    """Campaigns that finished sending, newest first; None while the mailings tables do not exist."""
    if not {"mailing_campaigns", "mailing_lists"} <= tables:
        return None
    from mailservice.mailings.models import Campaign, CampaignStatus

    query = (
        select(Campaign.finished_at, Campaign.subject, Campaign.total)
        .where(Campaign.status == CampaignStatus.done, Campaign.finished_at.is_not(None))
        .order_by(Campaign.finished_at.desc())
    )
    with engine.connect() as conn:
        return [
            MailingRow(sent_on=finished.astimezone(tz).date(), subject=subject, recipients=total)
            for finished, subject, total in conn.execute(query)
            if finished is not None
        ]


def _mailing_lists(engine: Engine, tables: set[str]) -> list[tuple[str, str]] | None:
    """The lists open for subscription (what the service's /subscribe accepts), or None without the table."""
    if "mailing_lists" not in tables:
        return None
    from mailservice.mailings.models import MailingList

    query = (
        select(MailingList.slug, MailingList.title).where(MailingList.archived_at.is_(None)).order_by(MailingList.id)
    )
    with engine.connect() as conn:
        rows = [(slug, title) for slug, title in conn.execute(query)]
    return rows or None


def load_site_data(settings: Settings, *, now: dt.datetime) -> SiteData:
    """Statistics and mailings from the configured database, or empty data when none is configured.

    Raises :class:`StatisticsUnavailable` when a configured database cannot be read: publishing "no data" over
    real figures because the server was briefly down would mislead the public.
    """
    if not database_configured(settings):
        return SiteData(generated_at=now)
    from mailservice.db import make_engine

    engine = make_engine(settings.effective_database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        requests = _request_rows(engine, settings.tz) if {"requests", "events"} <= tables else None
        mailings = _mailing_rows(engine, tables, settings.tz)
        lists = _mailing_lists(engine, tables)
        register = _process_register(engine, tables, settings)
    except SQLAlchemyError as exc:
        raise StatisticsUnavailable(
            f"не удалось прочитать базу данных для статистики: {exc.__class__.__name__}: {exc}"
        ) from exc
    finally:
        engine.dispose()
    return SiteData(
        generated_at=now,
        quarters=tuple(quarter_statistics(requests or [])),
        mailings=tuple(mailings or ()),
        has_requests=requests is not None,
        has_mailings=mailings is not None,
        mailing_lists=tuple(lists) if lists else None,
        process_register=register,
    )


def _process_register(engine: Engine, tables: set[str], settings: Settings) -> PublicRegister | None:
    from mailservice.processes.publication import public_register

    if not any(name.startswith("process") for name in tables):
        return None
    with Session(engine) as session:
        return public_register(session, settings)


def totals(quarters: Sequence[QuarterStats]) -> QuarterStats:
    """The sum over quarters (for the page's summary line)."""
    total = QuarterStats(Quarter(0, 1))
    for q in quarters:
        for name in (
            "received", "registered", "answered", "answered_on_time", "answered_late",
            "extended", "forwarded", "refused", "in_progress",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(q, name))
        total.by_ground.update(q.by_ground)
        total.by_type.update(q.by_type)
        total.by_channel.update(q.by_channel)
    return total


__all__ = [
    "MailingRow",
    "Quarter",
    "QuarterStats",
    "RequestRow",
    "SiteData",
    "StatisticsUnavailable",
    "database_configured",
    "load_site_data",
    "quarter_statistics",
    "totals",
]
