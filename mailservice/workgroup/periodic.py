"""The periodic pass: reminders of the secretary's terms, missed deadlines, written polls closing, and the
warning when a group has not met in a month."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.workgroup import mail
from mailservice.workgroup.groups import officer
from mailservice.workgroup.meetings import calendar_of, sync_deadlines
from mailservice.workgroup.models import WgGroup, WgMeeting
from mailservice.workgroup.policy import months_without_meetings
from mailservice.workgroup.service import local_today, log, meeting_day, rules_of
from mailservice.workgroup.voting import close_poll

# The periodic pass: reminders, missed deadlines, polls closing, monthly meetings ---------------------------------


@dataclass
class TickReport:
    """What one pass did."""

    reminders: int = 0
    missed: int = 0
    polls_closed: int = 0
    instruction_reminders: int = 0
    warnings: list[str] = field(default_factory=list)


def tick(session: Session, settings: Settings, *, now: dt.datetime) -> TickReport:
    """Close polls whose time is up, re-judge every open term, remind before terms and report missed ones once,
    and remind assignees of instructions before and after their terms.

    Run it periodically (``mailservice wg tick`` from cron or a timer); it is idempotent.
    """
    report = TickReport()
    day = local_today(settings, now)
    calendar = calendar_of(settings)
    due_polls = session.scalars(
        select(WgMeeting).where(WgMeeting.status == "poll_open", WgMeeting.poll_closes_at <= now)
    ).all()
    for meeting in due_polls:
        close_poll(session, settings, meeting, now=now, actor="")
        report.polls_closed += 1
    open_meetings = session.scalars(
        select(WgMeeting).where(WgMeeting.status.not_in(("cancelled", "minutes_distributed")))
    ).all()
    for meeting in open_meetings:
        group = session.get(WgGroup, meeting.group_id)
        assert group is not None
        lead = rules_of(group).policy.reminder_wd
        officers = [p for p in (officer(session, group, "secretary"), officer(session, group, "chair")) if p]
        for row in sync_deadlines(session, settings, meeting, now):
            if row.status == "missed" and row.done_on is None and row.missed_at is None:
                row.missed_at = now
                mail.send_deadline_notice(session, settings, meeting, group, officers, row.key, row.due, missed=True)
                log(
                    session,
                    now=now,
                    actor="",
                    action="deadline_missed",
                    meeting_id=meeting.id,
                    key=row.key,
                    due=row.due.isoformat(),
                )
                report.missed += 1
            elif (
                row.status == "pending"
                and row.reminded_at is None
                and calendar.working_days_between(day, row.due) <= lead
            ):
                row.reminded_at = now
                mail.send_deadline_notice(session, settings, meeting, group, officers, row.key, row.due, missed=False)
                report.reminders += 1
    from mailservice.workgroup.instructions import remind  # it builds on this module

    report.instruction_reminders = remind(session, settings, now=now)
    for group in session.scalars(select(WgGroup).order_by(WgGroup.id)):
        report.warnings.extend(monthly_warnings(session, settings, group, now=now))
    return report


MONTHS = (
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
)


def monthly_warnings(session: Session, settings: Settings, group: WgGroup, *, now: dt.datetime) -> list[str]:
    """For a group that must meet at least monthly: each month from its creation to next month with no meeting
    held or planned (cancelled ones do not count)."""
    if not rules_of(group).policy.monthly:
        return []
    day = local_today(settings, now)
    first = group.created_at.astimezone(settings.tz).date()
    last = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    # A written poll is not a meeting (seed 000 p. 9 sets them apart): only meetings count.
    meetings = session.scalars(
        select(WgMeeting).where(
            WgMeeting.group_id == group.id, WgMeeting.status != "cancelled", WgMeeting.form != "absentee"
        )
    ).all()
    missing = months_without_meetings((meeting_day(settings, m) for m in meetings), first, last)
    return [
        f"Рабочая группа «{group.title}»: на {MONTHS[month - 1]} {year} г. не "
        f"{'запланировано' if (year, month) >= (day.year, day.month) else 'проведено'} ни одного заседания, "
        "а положение требует заседать не реже раза в месяц"
        for year, month in missing
    ]
