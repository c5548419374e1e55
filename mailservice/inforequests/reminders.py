"""Daily reminders to the staff (issue 17; seed 004 p. 9): each assignee and each unit head gets one e-mail listing
their requests that need action.

What a request is listed for (pure rules, :func:`reasons`):

* overdue: still open after its legal due date;
* due soon: its control date at most ``REMINDER_WORKING_DAYS`` working days away;
* to forward: outside the remit and not forwarded, the forwarding date (registration + 7 days) that near or passed;
* extension notice: open and never extended, while the 7 days to tell the requester of a deferral run out that soon
  (8-FZ art. 18: a deferral is told within 7 days of registration).

The 7 days count, like the answer term, from the registration date but never from later than the last lawful day of
registration (:func:`queues.term_start_of`): a letter entered late gains no days from the delay.

Who gets it (:func:`recipients`): the assignee (an active console account named by its address or its name) and
the head of the request's unit (``UNIT_HEADS``); a request with no assignee that can be
reached goes to its unit head, one with neither to the head of department (``HEAD_OF_DEPARTMENT_EMAIL``), and
without that address to the console's active administrators: a new request has no assignee, so an empty setting
must not leave overdue requests unreminded. One person gets one e-mail a day, a request is listed once in it, and
each request's reminder is recorded as an internal event of its history; a request that needs action and reaches
nobody at all gets such an event too, saying why, never silence.

The worker runs :func:`send_due` often; it acts once per working day, at ``REMINDER_HOUR`` of the department's day
(the day's run is claimed in :mod:`mailservice.jobruns`, so several workers send it once).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailservice.config import Settings
from mailservice.inforequests import queues
from mailservice.inforequests.deadlines import notice_due
from mailservice.inforequests.lifecycle import OPEN_STATUSES, EventKind, Status
from mailservice.inforequests.models import Event, Request
from mailservice.workdays import Calendar

JOB = "reminders"
# The history's entry for a request that needs action and reaches nobody: what to set so that it does.
NOBODY = (
    "у запроса нет исполнителя и подразделения, не задан адрес руководителя (MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL) "
    "и нет активных администраторов консоли"
)


@dataclass(frozen=True)
class Reason:
    """Why a request is in a reminder: a code and the Russian line staff read."""

    code: str  # overdue | due_soon | forward | extension_notice
    text: str


def _d(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def _near(today: dt.date, day: dt.date, calendar: Calendar, working_days: int) -> bool:
    """``day`` has passed or is at most ``working_days`` working days away."""
    return day <= today or calendar.working_days_between(today, day) <= working_days


def reasons(request: Request, today: dt.date, calendar: Calendar, working_days: int, tz: dt.tzinfo) -> list[Reason]:
    """What the request needs now, or [] (pure: reads the request's fields and events; ``tz`` is the department's,
    which tells the day the request arrived)."""
    start = queues.term_start_of(request, tz)
    if Status(request.status) not in OPEN_STATUSES or start is None:
        return []
    found: list[Reason] = []
    if request.due_date is not None and request.due_date < today:
        found.append(Reason("overdue", f"просрочен: срок ответа истёк {_d(request.due_date)}"))
    elif request.control_date is not None and _near(today, request.control_date, calendar, working_days):
        found.append(Reason("due_soon", f"контрольная дата {_d(request.control_date)}"))
    forward_by = queues.forwarding_date(request, tz)
    if forward_by is not None and _near(today, forward_by, calendar, working_days):
        found.append(Reason("forward", f"перенаправить по принадлежности и уведомить заявителя до {_d(forward_by)}"))
    notice_by = notice_due(start)
    extended = any(e.to_status == Status.extended for e in request.events)
    if (
        not extended
        and request.status != Status.forwarded
        and today <= notice_by
        and _near(today, notice_by, calendar, working_days)
    ):
        found.append(Reason("extension_notice", f"если срок придётся продлить, уведомить заявителя до {_d(notice_by)}"))
    return found


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


@dataclass
class Directory:
    """How names typed on requests reach addresses: console accounts, unit heads, the head of department."""

    staff: Mapping[str, str]  # lower-case address or name -> address
    unit_heads: Mapping[str, str]  # normalised unit -> address
    head_of_department: str = ""
    administrators: tuple[str, ...] = ()  # active console administrators: when no head of department is set

    def assignee_address(self, assignee: str) -> str | None:
        """The address of an assignee typed as an active console account's address or name; None otherwise (a
        reminder lists clients' requests: it goes to the department's own people only, never to a typed address)."""
        key = _norm(assignee)
        return self.staff.get(key) if key else None


def recipients(request: Request, directory: Directory) -> list[str]:
    """Who is reminded of the request: its assignee and its unit head; without either, the head of department."""
    found: list[str] = []
    assignee = directory.assignee_address(request.assignee)
    if assignee:
        found.append(assignee)
    head = directory.unit_heads.get(_norm(request.unit)) if request.unit else None
    if head and head.lower() not in {a.lower() for a in found}:
        found.append(head)
    if not found and directory.head_of_department:
        found.append(directory.head_of_department)
    if not found:
        found.extend(directory.administrators)
    return found


@dataclass
class Digest:
    """One person's reminder: their requests and why each is listed."""

    address: str
    items: list[tuple[Request, list[Reason]]] = field(default_factory=list)


def plan(
    requests: Iterable[Request],
    directory: Directory,
    today: dt.date,
    calendar: Calendar,
    working_days: int,
    tz: dt.tzinfo,
) -> dict[str, Digest]:
    """The day's digests by address (lower case): every request that needs action, once per person (pure). A
    request that needs action and has nobody to reach is under the key "" with no address."""
    digests: dict[str, Digest] = {}
    for request in requests:
        why = reasons(request, today, calendar, working_days, tz)
        if not why:
            continue
        for address in recipients(request, directory) or [""]:
            digest = digests.setdefault(address.lower(), Digest(address))
            if all(r is not request for r, _ in digest.items):
                digest.items.append((request, why))
    return digests


def directory_of(session: Session, settings: Settings) -> Directory:
    """The directory from the console's active accounts and the settings."""
    from mailservice.web.staff.models import StaffUser

    staff: dict[str, str] = {}
    administrators: list[str] = []
    for user in session.scalars(select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.id)):
        staff[user.email.lower()] = user.email
        if user.name.strip():
            staff.setdefault(_norm(user.name), user.email)
        if user.role == "administrator":
            administrators.append(user.email)
    return Directory(
        staff, settings.unit_head_map, settings.head_of_department_email.strip(), administrators=tuple(administrators)
    )


def send(session: Session, settings: Settings, now: dt.datetime, calendar: Calendar) -> dict[str, object]:
    """Queue the day's reminders and record them on the requests; returns the run's report (plain values)."""
    from mailservice.mail.compose import build_message, wire_address
    from mailservice.outbox import enqueue

    today = now.astimezone(settings.tz).date()
    start_of_day = dt.datetime.combine(today, dt.time(), settings.tz)
    reminded_today = select(Event.request_id).where(Event.kind == EventKind.reminder, Event.at >= start_of_day)
    candidates = session.scalars(
        select(Request)
        .where(
            Request.status.in_([s.value for s in OPEN_STATUSES]),
            Request.number.is_not(None),
            Request.id.not_in(reminded_today),
        )
        .options(selectinload(Request.events), selectinload(Request.client))
        .order_by(Request.control_date, Request.id)
    ).all()
    digests = plan(
        candidates, directory_of(session, settings), today, calendar, settings.reminder_working_days, settings.tz
    )
    sent_to: dict[int, list[str]] = {}
    unreached = digests.pop("", None)
    for request, _why in unreached.items if unreached else []:
        sent_to[request.id] = []
    for digest in digests.values():
        message = build_message(
            settings,
            to=digest.address,
            subject=f"Напоминание: запросы на {_d(today)} ({len(digest.items)})",
            template="staff_reminder",
            context={"items": digest.items, "today": today, "console": settings.public_url.rstrip("/") + "/staff"},
        )
        enqueue(
            session,
            message,
            kind="staff_reminder",
            envelope=(wire_address(settings.from_address), [wire_address(digest.address)]),
        )
        for request, _why in digest.items:
            sent_to.setdefault(request.id, []).append(digest.address)
    by_id = {r.id: r for r in candidates}
    for request_id, addresses in sent_to.items():
        request = by_id[request_id]
        why = reasons(request, today, calendar, settings.reminder_working_days, settings.tz)
        listed = "; ".join(r.text for r in why)
        comment = f"Напоминание: {listed}. Кому: {', '.join(addresses)}" if addresses else None
        session.add(
            Event(
                client_id=request.client_id,
                request_id=request.id,
                at=now,
                kind=EventKind.reminder,
                comment=comment or f"Напоминание никому не направлено ({listed}): {NOBODY}",
                data={
                    "internal": True,
                    "date": today.isoformat(),
                    "recipients": addresses,
                    "reasons": [r.code for r in why],
                },
            )
        )
    reached = len(sent_to) - (len(unreached.items) if unreached else 0)
    unreached_count = len(sent_to) - reached
    return {"date": today.isoformat(), "messages": len(digests), "requests": reached, "unreached": unreached_count}


def send_due(settings: Settings, now: dt.datetime) -> int:
    """The worker's job: on a working day from ``REMINDER_HOUR`` on, send the day's reminders once; returns the
    number of e-mails queued (0 when it is not time or another run did it)."""
    from mailservice import jobruns
    from mailservice.db import session_scope
    from mailservice.workdays import default_calendar

    local = now.astimezone(settings.tz)
    calendar = default_calendar(settings)
    if local.hour < settings.reminder_hour or not calendar.is_working_day(local.date()):
        return 0
    with session_scope(settings) as session:
        run = jobruns.claim(session, JOB, local.date().isoformat(), now)
        if run is None:
            return 0
        report = send(session, settings, now, calendar)
        jobruns.finish(run, now, report)
        return int(str(report["messages"]))
