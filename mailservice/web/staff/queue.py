"""The request queue: filters from the query string, the SQL they make, and the counters above the table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import cast
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, ScalarSelect, Select, false, func, literal_column, select
from sqlalchemy.orm import Session, joinedload

from mailservice.classify.rules import Taxonomy, load_taxonomy
from mailservice.inforequests import queues, search
from mailservice.inforequests.lifecycle import OPEN_STATUSES, Channel, Status
from mailservice.inforequests.listing import Listed
from mailservice.inforequests.models import Request
from mailservice.inforequests.queues import held_condition, to_forward_condition

PAGE_SIZE = 50
# The queue counts its matches up to this many and says "более" beyond: counting all of five years' closed
# requests (tens of thousands) on every view of the queue read most of the table.
COUNT_CAP = 5000
# Statuses the default view shows: everything not finished, including requests still without a number.
ACTIVE_STATUSES = frozenset({*OPEN_STATUSES, Status.received})


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """The classifier's labels and their Russian names."""
    return load_taxonomy()


def week_bounds(today: dt.date) -> tuple[dt.date, dt.date]:
    """Monday and Sunday of the week of ``today`` (pure)."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=6)


def _flag(value: str | None) -> bool:
    return value in {"1", "on", "true", "yes"}


@dataclass(frozen=True)
class QueueFilters:
    """What the operator asked to see; values outside the known sets are dropped, never passed to SQL."""

    type: str = ""
    topic: str = ""
    urgency: str = ""
    status: str = ""  # "" = active, "all" = every status, else one status
    channel: str = ""
    overdue: bool = False
    due_week: bool = False
    needs_review: bool = False
    held: bool = False  # waiting unregistered (held as advertising): register or confirm as spam
    to_forward: bool = False  # outside the remit, to forward within 7 days of registration
    q: str = ""
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> QueueFilters:
        """Read filters from query parameters, ignoring anything unknown."""
        tax = taxonomy()

        def pick(key: str, allowed: set[str]) -> str:
            value = params.get(key, "")
            return value if value in allowed else ""

        try:
            page = max(1, min(int(params.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        return cls(
            type=pick("type", set(tax["type"].labels)),
            topic=pick("topic", set(tax["topic"].labels)),
            urgency=pick("urgency", set(tax["urgency"].labels)),
            status=pick("status", {s.value for s in Status} | {"all"}),
            channel=pick("channel", {c.value for c in Channel}),
            overdue=_flag(params.get("overdue")),
            due_week=_flag(params.get("due_week")),
            needs_review=_flag(params.get("needs_review")),
            held=_flag(params.get("held")),
            to_forward=_flag(params.get("to_forward")),
            q=params.get("q", "").strip()[:100],
            page=page,
        )

    def query_string(self, **changes: object) -> str:
        """The query string of these filters with ``changes`` applied (for links and pagination)."""
        values = asdict(replace(self, **changes))  # type: ignore[arg-type]
        params = {
            k: ("1" if v is True else v)
            for k, v in values.items()
            if v not in ("", False, None) and (k, v) != ("page", 1)
        }
        return urlencode(params)


def build_query(filters: QueueFilters, today: dt.date) -> Select[Request]:
    """The SELECT of the queue for these filters: most urgent first, then by control date."""
    query = select(Request)
    if filters.status == "all":
        pass
    elif filters.status:
        query = query.where(Request.status == filters.status)
    else:
        query = query.where(Request.status.in_([s.value for s in ACTIVE_STATUSES]))
    for column, value in (
        (Request.type, filters.type),
        (Request.topic, filters.topic),
        (Request.urgency, filters.urgency),
        (Request.channel, filters.channel),
    ):
        if value:
            query = query.where(column == value)
    open_values = [s.value for s in OPEN_STATUSES]
    if filters.overdue:
        query = query.where(Request.status.in_(open_values), Request.due_date < today)
    if filters.due_week:
        monday, sunday = week_bounds(today)
        query = query.where(
            Request.status.in_(open_values), Request.control_date >= monday, Request.control_date <= sunday
        )
    if filters.needs_review:
        query = query.where(Request.needs_review.is_(True))
    if filters.held:
        query = query.where(held_condition())
    if filters.to_forward:
        query = query.where(to_forward_condition())
    if filters.held:
        return query.order_by(Request.received_at, Request.id)  # the registration date counts from receipt
    if filters.to_forward:
        # Near the forwarding date's order; :func:`fetch` puts the page in that exact order (a date SQL cannot
        # compute on SQLite: it needs the local day of receipt, queues.term_start_of).
        return query.order_by(Request.registered_on, Request.id)
    # Written with a literal 'urgent': the expression indexes of migration 1902 match it (a bound value would not).
    return query.order_by(
        (Request.urgency == literal_column("'urgent'")).desc(),
        Request.control_date.is_(None),
        Request.control_date,
        Request.id,
    )


def page_count(total: int, page: int, rows_on_page: int) -> int:
    """How many pages the pager shows: all of them when ``total`` is exact, else up to the next one while this
    page is full (``total`` above :data:`COUNT_CAP` is a lower bound) (pure)."""
    if total > COUNT_CAP:
        return page + 1 if rows_on_page == PAGE_SIZE else page
    return max(1, -(-total // PAGE_SIZE))


def _by_forwarding_date(session: Session, query: Select[Request], page: int, tz: dt.tzinfo) -> list[Request]:
    """One page of the "to forward" queue, soonest forwarding date first (59-FZ art. 8 p. 3: 7 days from the
    term's start, which a letter registered late does not push back). The dates are computed here from a few
    columns of every waiting letter (few: they leave the queue once forwarded), then the page is loaded."""
    columns = (Request.id, Request.received_at, Request.registered_on, Request.channel, Request.topic, Request.status)
    keys = session.execute(query.order_by(None).with_only_columns(*columns)).all()
    # A row has the fields queues.forwarding_date reads (the listing's rows are read the same way).
    ordered = sorted(keys, key=lambda r: (queues.forwarding_date(cast(Listed, r), tz) or dt.date.max, r.id))
    ids = [r.id for r in ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    found = session.scalars(select(Request).where(Request.id.in_(ids)).options(joinedload(Request.client))).all()
    by_id = {r.id: r for r in found}
    return [by_id[i] for i in ids if i in by_id]


def fetch(session: Session, filters: QueueFilters, today: dt.date, tz: dt.tzinfo) -> tuple[list[Request], int]:
    """One page of the queue and the number of matching requests, counted up to ``COUNT_CAP + 1``; ``tz`` is the
    department's (the "to forward" queue's dates are local ones)."""
    query = build_query(filters, today)
    if filters.q:  # the full-text search (inforequests/search.py) narrows the queue
        found = search.matching_ids(session, filters.q)
        query = query.where(Request.id.in_(found) if found is not None else false())
    capped = query.order_by(None).with_only_columns(Request.id).limit(COUNT_CAP + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
    if filters.to_forward:
        return _by_forwarding_date(session, query, filters.page, tz), total
    rows = session.scalars(
        # The client in the same statement (a join, not a second query: round trips cost most under load).
        query.options(joinedload(Request.client)).limit(PAGE_SIZE).offset((filters.page - 1) * PAGE_SIZE)
    ).all()
    return list(rows), total


@dataclass(frozen=True)
class Counters:
    """The numbers above the queue."""

    active: int
    unregistered: int
    overdue: int
    due_week: int
    needs_review: int
    urgent: int
    to_forward: int


def counters(session: Session, today: dt.date) -> Counters:
    """Count the requests that need attention: one statement, each number a count its own index answers (a
    single pass with a CASE per number read every active request's row)."""
    open_values = [s.value for s in OPEN_STATUSES]
    active = Request.status.in_([s.value for s in ACTIVE_STATUSES])
    monday, sunday = week_bounds(today)
    is_open = Request.status.in_(open_values)

    def n(*conditions: ColumnElement[bool]) -> ScalarSelect[int]:
        return select(func.count()).select_from(Request).where(*conditions).scalar_subquery()

    row = session.execute(
        select(
            n(active),
            n(held_condition()),
            n(is_open, Request.due_date < today),
            n(is_open, Request.control_date >= monday, Request.control_date <= sunday),
            n(active, Request.needs_review.is_(True)),
            n(active, Request.urgency == "urgent"),
            n(to_forward_condition()),
        )
    ).one()
    return Counters(*(int(v or 0) for v in row))
