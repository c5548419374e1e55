"""Where a request waits in the staff's queue, and the dates that tell them when (pure reads of a request; the
console, the CLI, the register's export and intake share them).

* A letter held as advertising (intake/spam.py) waits unregistered, its three-day registration date counting from
  receipt (59-FZ art. 8 p. 2, 8-FZ art. 18).
* A letter outside the department's remit (topic ``outside``) is registered like any other and waits "to forward":
  its forwarding date is registration + 7 days (59-FZ art. 8 p. 3; 8-FZ art. 18), counted like the answer term from
  :func:`term_start_of`: a letter registered after its three days gains no days from the delay.

Light on purpose: ``requests list`` imports it and nothing of intake or mail, nor the models.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, and_

from mailservice.config import Settings
from mailservice.inforequests import deadlines
from mailservice.inforequests.deadlines import Deadline, forwarding_due, registration_due
from mailservice.inforequests.lifecycle import OPEN_STATUSES, ORAL_CHANNELS, Status
from mailservice.workdays import Calendar

if TYPE_CHECKING:  # the rules read a request's fields: a model or a row of them (inforequests/listing.py)
    from mailservice.inforequests.listing import Listed
    from mailservice.inforequests.models import Request

# The topic label of a letter outside the department's remit (the classifier's; staff can set it too).
OUTSIDE_TOPIC = "outside"
# A letter outside the remit waits "to forward" while it is registered and not yet forwarded or finished.
TO_FORWARD_STATUSES = frozenset(
    {Status.registered, Status.in_progress, Status.clarification_requested, Status.extended}
)


def deadline_of(status: str, due_date: dt.date | None, control_date: dt.date | None) -> Deadline | None:
    """The running term of a request with these values: None once it is finished or when it has no dates (pure)."""
    if due_date is None or control_date is None or status not in OPEN_STATUSES:  # a StrEnum set holds the strings
        return None
    return Deadline(due_date, control_date)


def is_overdue(request: Request | Listed, today: dt.date) -> bool:
    """Still open after its legal due date."""
    term = deadline_of(request.status, request.due_date, request.control_date)
    return term is not None and deadlines.is_overdue(term, today)


def is_due_soon(request: Request | Listed, today: dt.date, calendar: Calendar, working_days: int) -> bool:
    """Still open, not overdue, and its control date at most ``working_days`` working days away."""
    term = deadline_of(request.status, request.due_date, request.control_date)
    return term is not None and deadlines.is_due_soon(term, today, calendar, working_days)


def is_held(request: Request | Listed) -> bool:
    """Whether the request waits unregistered (held as advertising, or otherwise kept without a number)."""
    return request.status == Status.received


def registration_term(settings: Settings, request: Request | Listed) -> dt.date:
    """The last day to register the request: the day it came for an oral one, 3 days after receipt otherwise."""
    return registration_due(request.received_at.astimezone(settings.tz).date(), request.channel in ORAL_CHANNELS)


def registration_date(settings: Settings, request: Request | Listed) -> dt.date | None:
    """The last day to register a request that waits unregistered (None once registered)."""
    if not is_held(request):
        return None
    return registration_term(settings, request)


def to_forward(request: Request | Listed) -> bool:
    """Whether the request is outside the remit and still waits to be forwarded."""
    return (
        request.topic == OUTSIDE_TOPIC and request.status in TO_FORWARD_STATUSES and request.registered_on is not None
    )


class Dated(Protocol):
    """What :func:`term_start_of` reads of a request (a model, a listed row, the figures' facts)."""

    @property
    def received_at(self) -> dt.datetime: ...
    @property
    def registered_on(self) -> dt.date | None: ...
    @property
    def channel(self) -> str: ...


def term_start_of(request: Dated, tz: dt.tzinfo) -> dt.date | None:
    """The day the request's terms count from (None before registration): its registration date, never later than
    its last lawful registration day (:func:`deadlines.term_start`, the base of the answer term too)."""
    if request.registered_on is None:
        return None
    received = request.received_at.astimezone(tz).date()
    return deadlines.term_start(received, request.registered_on, request.channel in ORAL_CHANNELS)


def forwarding_date(request: Request | Listed, tz: dt.tzinfo) -> dt.date | None:
    """The last day to forward a letter outside the remit and tell the citizen (None when nothing waits)."""
    start = term_start_of(request, tz)
    if not to_forward(request) or start is None:
        return None
    return forwarding_due(start)


def _columns(columns: Any) -> Any:
    """The columns a condition names: the model's by default, or those given (``listing.REQUESTS.c``)."""
    if columns is not None:
        return columns
    from mailservice.inforequests.models import Request

    return Request


def held_condition(columns: Any = None) -> ColumnElement[bool]:
    """SQL: requests that wait unregistered."""
    return _columns(columns).status == Status.received


def to_forward_condition(columns: Any = None) -> ColumnElement[bool]:
    """SQL: requests outside the remit that wait to be forwarded."""
    r = _columns(columns)
    return and_(r.topic == OUTSIDE_TOPIC, r.status.in_([s.value for s in TO_FORWARD_STATUSES]))
