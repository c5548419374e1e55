"""The working group's shared vocabulary: the refused-operation error, meeting states and their Russian names, the
department's local time, the action log, and the checks every operation makes on a meeting's state.

The operations themselves live by the nouns they change: :mod:`~mailservice.workgroup.groups` (groups and members),
:mod:`~mailservice.workgroup.meetings` (meetings, their deadlines and agendas), :mod:`~mailservice.workgroup.voting`
(attendance, votes, tallies, the meeting itself, written polls), :mod:`~mailservice.workgroup.opinions` (opinions
and held replies), :mod:`~mailservice.workgroup.signing` (versions of the minutes, signatures, distribution) and
:mod:`~mailservice.workgroup.periodic` (reminders, missed deadlines, polls closing, monthly meetings). The CLI, the
console, the public link pages and the intake reply routes all call them. Each takes the caller's session (one
transaction, so a change and the e-mail it causes commit together), the settings and ``now``; none commits. A
refused operation raises :class:`WorkgroupError` with a Russian message for the user.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.workdays import today
from mailservice.workgroup.models import WgGroup, WgLogEntry, WgMeeting
from mailservice.workgroup.policy import GroupRules, group_rules


class WorkgroupError(ValueError):
    """A refused operation; the message is Russian and shown to the user as is."""


STATUSES = (
    "planned",
    "agenda_submitted",
    "agenda_approved",
    "agenda_sent",
    "poll_open",
    "held",
    "minutes_draft",
    "minutes_signing",
    "minutes_signed",
    "minutes_distributed",
    "cancelled",
)
STATUS_NAMES = {
    "planned": "запланировано",
    "agenda_submitted": "повестка на утверждении",
    "agenda_approved": "повестка утверждена",
    "agenda_sent": "повестка разослана",
    "poll_open": "идёт письменный опрос",
    "held": "проведено",
    "minutes_draft": "протокол готовится",
    "minutes_signing": "протокол на подписании",
    "minutes_signed": "протокол подписан",
    "minutes_distributed": "протокол разослан",
    "cancelled": "отменено",
}
BEFORE_MEETING = ("planned", "agenda_submitted", "agenda_approved", "agenda_sent", "poll_open")
FINAL_MINUTES = ("minutes_signed", "minutes_distributed")
# The secretary's steps whose terms are tracked (the written-opinion term is the members', see ``late``).
TRACKED = ("agenda_to_chair_by", "agenda_send_by", "minutes_by", "copies_by")
ATTENDANCE_MODES = ("in_person", "remote", "absent")
MODE_NAMES = {"in_person": "очно", "remote": "дистанционно", "absent": "отсутствовал(а)"}
VOTE_METHODS = ("in_person", "remote", "ballot_link", "email")
METHOD_NAMES = {"in_person": "очно", "remote": "дистанционно", "ballot_link": "по ссылке", "email": "по почте"}
REPLY_KINDS = ("written_opinion", "dissent", "agenda_proposal", "ballot", "other")
REPLY_KIND_NAMES = {
    "written_opinion": "письменное мнение",
    "dissent": "особое мнение",
    "agenda_proposal": "предложение в повестку",
    "ballot": "бюллетень",
    "other": "прочее",
}
CAPACITY_NAMES = {
    "presiding": "Председательствующий",
    "chair": "Председатель",
    "secretary": "Секретарь",
    "member": "Член рабочей группы",
}
DEADLINE_TITLES = {
    "agenda_to_chair_by": "Повестка передана председателю",
    "agenda_send_by": "Повестка и материалы разосланы",
    "written_opinions_by": "Письменные мнения отсутствующих",
    "minutes_by": "Протокол оформлен и передан на подписание",
    "copies_by": "Копии протокола направлены",
}


# Small helpers --------------------------------------------------------------------------------------------------


def new_nonce() -> str:
    return secrets.token_hex(8)


def local_today(settings: Settings, now: dt.datetime) -> dt.date:
    """The department's date at ``now``."""
    return today(settings.tz, now)


def local_start(settings: Settings, day: dt.date, time: dt.time) -> dt.datetime:
    """A local date and time of the department as an aware UTC instant."""
    return dt.datetime.combine(day, time, tzinfo=settings.tz).astimezone(dt.UTC)


def meeting_day(settings: Settings, meeting: WgMeeting) -> dt.date:
    """The local date of a meeting (of a poll: the day it closes)."""
    moment = meeting.poll_closes_at if meeting.form == "absentee" and meeting.poll_closes_at else meeting.starts_at
    return moment.astimezone(settings.tz).date()


def fmt_local(settings: Settings, moment: dt.datetime | None) -> str:
    """``DD.MM.YYYY HH:MM`` in the department's time zone."""
    return moment.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M") if moment else ""


def log(
    session: Session,
    *,
    now: dt.datetime,
    actor: str,
    action: str,
    group_id: int | None = None,
    meeting_id: int | None = None,
    **details: Any,
) -> None:
    """Append to the group's action log."""
    session.add(
        WgLogEntry(at=now, actor=actor, action=action, group_id=group_id, meeting_id=meeting_id, details=details)
    )


def rules_of(group: WgGroup) -> GroupRules:
    """The group's profile with its own values applied."""
    return group_rules(group.profile, group.settings or {})


def require_status(meeting: WgMeeting, allowed: Iterable[str], action: str) -> None:
    if meeting.status not in allowed:
        raise WorkgroupError(f"{action}: невозможно, заседание в состоянии «{STATUS_NAMES[meeting.status]}»")


# Attendance, votes, the meeting itself --------------------------------------------------------------------------


def refuse_after_signing(meeting: WgMeeting) -> None:
    if meeting.status in FINAL_MINUTES:
        raise WorkgroupError("Протокол подписан: записи заседания больше не меняются")
    if meeting.status == "cancelled":
        raise WorkgroupError("Заседание отменено")
