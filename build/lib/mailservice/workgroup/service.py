"""The working group's operations: every change the secretary, the chair or a member makes, in one place.

The CLI, the console, the public link pages and the intake reply routes all call these functions. Each takes the
caller's session (one transaction, so a change and the e-mail it causes commit together), the settings and
``now``; none commits. A refused operation raises :class:`WorkgroupError` with a Russian message for the user.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.headers import normalise_address
from mailservice.mail.parse import sanitize_filename
from mailservice.templating import ru_date
from mailservice.workdays import Calendar, default_calendar, today
from mailservice.workgroup import mail
from mailservice.workgroup import minutes as minutes_doc
from mailservice.workgroup.deadlines import meeting_deadlines
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgAttendance,
    WgBallot,
    WgDeadline,
    WgGroup,
    WgInboxItem,
    WgInvitation,
    WgLogEntry,
    WgMaterial,
    WgMeeting,
    WgMember,
    WgMinutes,
    WgOpinion,
    WgSignature,
    WgVote,
)
from mailservice.workgroup.policy import (
    FORM_NAMES,
    FORMS,
    ROLE_NAMES,
    ROLES,
    GroupRules,
    deadline_status,
    group_rules,
    months_without_meetings,
)
from mailservice.workgroup.tally import CHOICE_NAMES, Choice, TallyResult, Votes, tally


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


def _nonce() -> str:
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


# Groups and members ---------------------------------------------------------------------------------------------


def create_group(
    session: Session, *, slug: str, title: str, profile: str, overrides: Mapping[str, Any], now: dt.datetime, actor: str
) -> WgGroup:
    """A new group under a regulation profile, with the group's own values (validated)."""
    slug = slug.strip()
    if not slug or not title.strip():
        raise WorkgroupError("Укажите краткое имя и название рабочей группы")
    try:
        group_rules(profile, overrides)
    except ValueError as exc:
        raise WorkgroupError(f"Неверные настройки группы: {exc}") from exc
    if session.scalar(select(WgGroup).where(WgGroup.slug == slug)) is not None:
        raise WorkgroupError(f"Рабочая группа «{slug}» уже есть")
    group = WgGroup(slug=slug, title=title.strip(), profile=profile, settings=dict(overrides), created_at=now)
    session.add(group)
    session.flush()
    log(session, now=now, actor=actor, action="group_created", group_id=group.id, profile=profile, **dict(overrides))
    return group


def change_group_settings(
    session: Session, group: WgGroup, changes: Mapping[str, Any], *, now: dt.datetime, actor: str
) -> None:
    """Change some of the group's values (``None`` for a deadline term removes it)."""
    merged = {**(group.settings or {}), **changes}
    try:
        group_rules(group.profile, merged)
    except ValueError as exc:
        raise WorkgroupError(f"Неверные настройки группы: {exc}") from exc
    group.settings = merged
    log(session, now=now, actor=actor, action="group_settings", group_id=group.id, **dict(changes))


def get_group(session: Session, ref: str) -> WgGroup:
    """A group by its slug or id."""
    group = session.scalar(select(WgGroup).where(WgGroup.slug == ref))
    if group is None and ref.isdigit():
        group = session.get(WgGroup, int(ref))
    if group is None:
        raise WorkgroupError(f"Рабочая группа «{ref}» не найдена")
    return group


def members_of(session: Session, group: WgGroup, *, include_inactive: bool = False) -> list[WgMember]:
    """The group's people (invitees too), in the order they were added."""
    query = select(WgMember).where(WgMember.group_id == group.id).order_by(WgMember.id)
    if not include_inactive:
        query = query.where(WgMember.active.is_(True))
    return list(session.scalars(query))


def voting_members(session: Session, group: WgGroup) -> list[WgMember]:
    """The members counted for quorum: active, with a vote (invitees never have one)."""
    return [m for m in members_of(session, group) if m.voting and m.role != "invitee"]


def officer(session: Session, group: WgGroup, role: str) -> WgMember | None:
    """The active chair, deputy chair or secretary."""
    return next((m for m in members_of(session, group) if m.role == role), None)


def find_member(session: Session, group: WgGroup, ref: str) -> WgMember:
    """An active person of the group by address or id."""
    address = normalise_address(ref) if "@" in ref else None
    for member in members_of(session, group):
        if (address and member.email.lower() == address.lower()) or (ref.isdigit() and member.id == int(ref)):
            return member
    raise WorkgroupError(f"В рабочей группе нет участника «{ref}»")


def member_by_address(session: Session, group: WgGroup, address: str | None) -> WgMember | None:
    """The active person of the group writing from ``address`` (case-insensitive), or None."""
    if not address:
        return None
    wanted = address.strip().lower()
    return next((m for m in members_of(session, group) if m.email.lower() == wanted), None)


def add_member(
    session: Session,
    settings: Settings,
    group: WgGroup,
    *,
    name: str,
    email: str,
    role: str,
    position: str = "",
    voting: bool | None = None,
    verified: bool = False,
    now: dt.datetime,
    actor: str,
) -> WgMember:
    """Add a person; an unverified address gets a confirmation link by e-mail (once)."""
    if role not in ROLES:
        raise WorkgroupError(f"Роль должна быть одной из: {', '.join(ROLES)}")
    address = normalise_address(email)
    if address is None:
        raise WorkgroupError(f"Неверный адрес электронной почты: {email}")
    if not name.strip():
        raise WorkgroupError("Укажите фамилию, имя и отчество")
    if member_by_address(session, group, address) is not None:
        raise WorkgroupError(f"Адрес {address} уже есть в составе группы")
    if role in ("chair", "deputy_chair", "secretary") and officer(session, group, role) is not None:
        raise WorkgroupError(f"В группе уже есть {ROLE_NAMES[role]}: сначала исключите его из состава")
    # A returning person keeps their row (the unique address per group) and is made active again.
    member = session.scalar(select(WgMember).where(WgMember.group_id == group.id, WgMember.email == address))
    if member is None:
        member = WgMember(group_id=group.id, email=address, created_at=now)
        session.add(member)
    member.name, member.role, member.position, member.active = name.strip(), role, position.strip(), True
    member.voting = role != "invitee" and (True if voting is None else voting)
    member.verify_nonce = _nonce()
    if verified:
        member.verified_at, member.verified_how = now, "staff"
    session.flush()
    log(session, now=now, actor=actor, action="member_added", group_id=group.id, member=member.id, role=role)
    if member.verified_at is None:
        mail.send_verification(session, settings, member, group)
    return member


def remove_member(session: Session, member: WgMember, *, now: dt.datetime, actor: str) -> None:
    """Take a person out of the group (their records stay)."""
    member.active = False
    log(session, now=now, actor=actor, action="member_removed", group_id=member.group_id, member=member.id)


def verify_member(session: Session, member: WgMember, *, nonce: str, now: dt.datetime, how: str = "link") -> bool:
    """Confirm a member's address; False when the link is stale (a newer one was sent)."""
    if member.verify_nonce != nonce or not member.active:
        return False
    if member.verified_at is None:
        member.verified_at, member.verified_how = now, how
        log(session, now=now, actor=member.email, action="member_verified", group_id=member.group_id, member=member.id)
    return True


# Meetings -------------------------------------------------------------------------------------------------------


def get_meeting(session: Session, meeting_id: int) -> WgMeeting:
    """A meeting by id."""
    meeting = session.get(WgMeeting, meeting_id)
    if meeting is None:
        raise WorkgroupError(f"Заседание {meeting_id} не найдено")
    return meeting


def create_meeting(
    session: Session,
    settings: Settings,
    group: WgGroup,
    *,
    starts_at: dt.datetime,
    form: str,
    place: str = "",
    duration_min: int = 90,
    now: dt.datetime,
    actor: str,
) -> WgMeeting:
    """Plan a meeting (or a written poll, form ``absentee``) and compute every term of the regulation."""
    rules = rules_of(group)
    if form not in FORMS:
        raise WorkgroupError(f"Форма заседания должна быть одной из: {', '.join(FORMS)}")
    if form not in rules.policy.forms:
        allowed = ", ".join(FORM_NAMES[f] for f in rules.policy.forms)
        raise WorkgroupError(f"Положение о группе не предусматривает форму «{FORM_NAMES[form]}» (допустимо: {allowed})")
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be aware")
    if duration_min <= 0:
        raise WorkgroupError("Продолжительность должна быть больше нуля")
    number = (session.scalar(select(func.max(WgMeeting.number)).where(WgMeeting.group_id == group.id)) or 0) + 1
    domain = settings.from_address.rpartition("@")[2] or "localhost"
    meeting = WgMeeting(
        group_id=group.id,
        number=number,
        form=form,
        status="planned",
        starts_at=starts_at,
        duration_min=duration_min,
        place=place.strip(),
        ics_uid=f"wg-{uuid.uuid4().hex}@{domain}",
        ics_sequence=0,
        agenda_nonce=_nonce(),
        created_at=now,
    )
    if form == "absentee":
        meeting.poll_closes_at = starts_at
    session.add(meeting)
    session.flush()
    sync_deadlines(session, settings, meeting, now)
    log(session, now=now, actor=actor, action="meeting_created", group_id=group.id, meeting_id=meeting.id, form=form)
    return meeting


def sync_deadlines(session: Session, settings: Settings, meeting: WgMeeting, now: dt.datetime) -> list[WgDeadline]:
    """Compute the meeting's terms from its date (and signing date) and re-judge each one: kept, missed, pending."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    computed = meeting_deadlines(
        rules_of(group).terms, meeting_day(settings, meeting), _calendar(settings), signed=meeting.signed_on
    )
    rows = {d.key: d for d in session.scalars(select(WgDeadline).where(WgDeadline.meeting_id == meeting.id))}
    day = local_today(settings, now)
    for key in TRACKED:
        due = computed[key]
        row = rows.get(key)
        if due is None:
            if row is not None and row.done_on is None:
                session.delete(row)
                rows.pop(key)
            continue
        if row is None:
            row = WgDeadline(meeting_id=meeting.id, key=key, due=due)
            session.add(row)
            rows[key] = row
        elif row.due != due:
            row.due = due
            row.reminded_at = None  # a new date deserves a new reminder
        row.status = deadline_status(row.due, row.done_on, day)
    session.flush()
    return [rows[k] for k in TRACKED if k in rows]


def _calendar(settings: Settings) -> Calendar:
    return default_calendar(settings)


def _done(session: Session, settings: Settings, meeting: WgMeeting, key: str, now: dt.datetime) -> None:
    """Record that the step behind deadline ``key`` was taken today (the first time counts)."""
    row = session.scalar(select(WgDeadline).where(WgDeadline.meeting_id == meeting.id, WgDeadline.key == key))
    if row is None or row.done_on is not None:
        return
    row.done_on = local_today(settings, now)
    row.status = deadline_status(row.due, row.done_on, row.done_on)


def deadlines_of(session: Session, meeting: WgMeeting) -> list[WgDeadline]:
    """The meeting's deadline records in the order of the regulation."""
    rows = {d.key: d for d in session.scalars(select(WgDeadline).where(WgDeadline.meeting_id == meeting.id))}
    return [rows[k] for k in TRACKED if k in rows]


def written_opinions_by(session: Session, settings: Settings, meeting: WgMeeting) -> dt.date | None:
    """The last day for an absent member's written opinion (seed 001 p. 2.7), if the profile has one."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    return meeting_deadlines(rules_of(group).terms, meeting_day(settings, meeting), _calendar(settings))[
        "written_opinions_by"
    ]


def items_of(session: Session, meeting: WgMeeting, *, status: str | None = "included") -> list[WgAgendaItem]:
    """Agenda items in order (by default the included ones: their order gives the question numbers)."""
    query = select(WgAgendaItem).where(WgAgendaItem.meeting_id == meeting.id)
    if status is not None:
        query = query.where(WgAgendaItem.status == status)
    return list(session.scalars(query.order_by(WgAgendaItem.position, WgAgendaItem.id)))


def item_by_number(session: Session, meeting: WgMeeting, number: int) -> WgAgendaItem:
    """The included item with this question number (1-based)."""
    items = items_of(session, meeting)
    if not 1 <= number <= len(items):
        raise WorkgroupError(f"В повестке нет вопроса № {number}")
    return items[number - 1]


def materials_of(session: Session, meeting: WgMeeting) -> list[WgMaterial]:
    """The agenda's materials."""
    query = select(WgMaterial).where(WgMaterial.meeting_id == meeting.id).order_by(WgMaterial.id)
    return list(session.scalars(query))


def invitees_of(session: Session, meeting: WgMeeting) -> list[WgMember]:
    """Those invited to this meeting."""
    query = (
        select(WgMember)
        .join(WgInvitation, WgInvitation.member_id == WgMember.id)
        .where(WgInvitation.meeting_id == meeting.id, WgMember.active.is_(True))
        .order_by(WgMember.id)
    )
    return list(session.scalars(query))


def recipients_of(session: Session, meeting: WgMeeting) -> list[WgMember]:
    """Everyone who gets the agenda and the minutes: the group's people (not standing invitees) and this
    meeting's invitees (seed 000 p. 12, 17)."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    people = [m for m in members_of(session, group) if m.role != "invitee"]
    seen = {m.id for m in people}
    return people + [m for m in invitees_of(session, meeting) if m.id not in seen]


def invite(session: Session, meeting: WgMeeting, member: WgMember, *, now: dt.datetime, actor: str) -> None:
    """Invite someone to one meeting (seed 000 p. 6.3: the chair decides who is invited)."""
    exists = session.scalar(
        select(WgInvitation).where(WgInvitation.meeting_id == meeting.id, WgInvitation.member_id == member.id)
    )
    if exists is None:
        session.add(WgInvitation(meeting_id=meeting.id, member_id=member.id, created_at=now))
        log(session, now=now, actor=actor, action="invited", meeting_id=meeting.id, member=member.id)


def _require_status(meeting: WgMeeting, allowed: Iterable[str], action: str) -> None:
    if meeting.status not in allowed:
        raise WorkgroupError(f"{action}: невозможно, заседание в состоянии «{STATUS_NAMES[meeting.status]}»")


def move_meeting(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    starts_at: dt.datetime,
    place: str | None = None,
    now: dt.datetime,
    actor: str,
) -> None:
    """Move a meeting: its terms follow, and if the agenda was already sent everyone gets the update (same UID,
    next SEQUENCE)."""
    _require_status(meeting, BEFORE_MEETING, "Перенос заседания")
    if meeting.status == "poll_open":
        raise WorkgroupError("Идёт письменный опрос: срок его окончания меняется командой закрытия опроса")
    old = meeting.starts_at
    meeting.starts_at = starts_at
    if meeting.form == "absentee":
        meeting.poll_closes_at = starts_at
    if place is not None:
        meeting.place = place.strip()
    sync_deadlines(session, settings, meeting, now)
    log(
        session,
        now=now,
        actor=actor,
        action="meeting_moved",
        meeting_id=meeting.id,
        old=old.isoformat(),
        new=starts_at.isoformat(),
    )
    if meeting.agenda_sent_at is not None:
        _send_agenda_mail(session, settings, meeting, now, update=True)


def cancel_meeting(
    session: Session, settings: Settings, meeting: WgMeeting, *, reason: str, now: dt.datetime, actor: str
) -> None:
    """Cancel a planned meeting; those who had the invitation get an iCalendar CANCEL."""
    _require_status(meeting, BEFORE_MEETING, "Отмена заседания")
    meeting.status, meeting.cancelled_at = "cancelled", now
    log(session, now=now, actor=actor, action="meeting_cancelled", meeting_id=meeting.id, reason=reason)
    if meeting.agenda_sent_at is not None:
        meeting.ics_sequence += 1
        group = session.get(WgGroup, meeting.group_id)
        assert group is not None
        mail.send_cancellation(
            session,
            settings,
            meeting,
            group,
            recipients_of(session, meeting),
            items_of(session, meeting),
            officer(session, group, "secretary"),
            reason,
            now,
        )


# Agenda ---------------------------------------------------------------------------------------------------------


def _agenda_changed(session: Session, meeting: WgMeeting, now: dt.datetime, actor: str) -> None:
    """A change voids the chair's approval (and every approval link already sent)."""
    meeting.agenda_nonce = _nonce()
    if meeting.agenda_approved_at is not None:
        meeting.agenda_approved_at = None
        meeting.agenda_approved_by_id = None
        if meeting.status in ("agenda_approved", "agenda_sent"):
            meeting.status = "agenda_submitted"
        log(session, now=now, actor=actor, action="approval_voided", meeting_id=meeting.id)


def add_item(
    session: Session,
    meeting: WgMeeting,
    *,
    title: str,
    speaker: str = "",
    proposal: str = "",
    status: str = "included",
    proposed_by: WgMember | None = None,
    now: dt.datetime,
    actor: str,
) -> WgAgendaItem:
    """Add a question to the agenda (``proposed``: a member's proposal the secretary has not included yet)."""
    _require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
    if not title.strip():
        raise WorkgroupError("Укажите формулировку вопроса")
    position = (
        session.scalar(select(func.max(WgAgendaItem.position)).where(WgAgendaItem.meeting_id == meeting.id)) or 0
    ) + 1
    item = WgAgendaItem(
        meeting_id=meeting.id,
        position=position,
        title=title.strip(),
        speaker=speaker.strip(),
        proposal=proposal.strip(),
        status=status,
        proposed_by_id=proposed_by.id if proposed_by else None,
        created_at=now,
    )
    session.add(item)
    session.flush()
    if status == "included":
        _agenda_changed(session, meeting, now, actor)
    log(session, now=now, actor=actor, action="item_added", meeting_id=meeting.id, item=item.id, status=status)
    return item


def include_item(session: Session, meeting: WgMeeting, item: WgAgendaItem, *, now: dt.datetime, actor: str) -> None:
    """Include a member's proposal in the agenda (the chair approves the agenda again)."""
    _require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
    if item.status != "included":
        item.status = "included"
        _agenda_changed(session, meeting, now, actor)
        log(session, now=now, actor=actor, action="item_included", meeting_id=meeting.id, item=item.id)


def withdraw_item(session: Session, meeting: WgMeeting, item: WgAgendaItem, *, now: dt.datetime, actor: str) -> None:
    """Take a question off the agenda (kept as withdrawn)."""
    _require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
    if item.status != "withdrawn":
        was_included = item.status == "included"
        item.status = "withdrawn"
        if was_included:
            _agenda_changed(session, meeting, now, actor)
        log(session, now=now, actor=actor, action="item_withdrawn", meeting_id=meeting.id, item=item.id)


def add_material(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    filename: str,
    content_type: str,
    data: bytes,
    item: WgAgendaItem | None = None,
    now: dt.datetime,
    actor: str,
) -> WgMaterial:
    """Attach a file to the agenda (kept in the blob store; sent with the agenda)."""
    if len(data) > settings.max_attachment_bytes:
        raise WorkgroupError(f"Файл больше {settings.max_attachment_bytes} байт")
    content_type = content_type or "application/octet-stream"
    digest = BlobStore(settings.blob_dir).put(data)
    material = WgMaterial(
        meeting_id=meeting.id,
        item_id=item.id if item else None,
        filename=sanitize_filename(filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=digest,
        added_at=now,
    )
    session.add(material)
    session.flush()
    log(session, now=now, actor=actor, action="material_added", meeting_id=meeting.id, material=material.id)
    return material


def record_item_outcome(
    session: Session,
    meeting: WgMeeting,
    item: WgAgendaItem,
    *,
    heard: str | None,
    decision: str | None,
    now: dt.datetime,
    actor: str,
) -> None:
    """What was heard and decided on a question (filled in at or after the meeting)."""
    _refuse_after_signing(meeting)
    if heard is not None:
        item.heard = heard.strip()
    if decision is not None:
        item.decision = decision.strip()
    log(session, now=now, actor=actor, action="item_outcome", meeting_id=meeting.id, item=item.id)


def approver_for(session: Session, group: WgGroup) -> WgMember:
    """Who approves the agenda: the chair, or the deputy chair when there is no chair (seeds 001 p. 2.4, 002
    p. 13)."""
    person = officer(session, group, "chair") or officer(session, group, "deputy_chair")
    if person is None:
        raise WorkgroupError("В группе нет председателя или заместителя председателя")
    return person


def submit_agenda(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> None:
    """Send the agenda and materials to the chair for approval (seed 000 p. 11: ≥ 5 working days before)."""
    _require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Передача повестки")
    items = items_of(session, meeting)
    if not items:
        raise WorkgroupError("В повестке нет ни одного вопроса")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    approver = approver_for(session, group)
    meeting.agenda_nonce = _nonce()  # only the newest approval link works
    meeting.agenda_submitted_at = now
    if meeting.status == "planned":
        meeting.status = "agenda_submitted"
    mail.send_approval_request(session, settings, meeting, group, approver, items, materials_of(session, meeting))
    _done(session, settings, meeting, "agenda_to_chair_by", now)
    log(session, now=now, actor=actor, action="agenda_submitted", meeting_id=meeting.id, approver=approver.id)


def approve_agenda(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    approver: WgMember,
    *,
    nonce: str | None = None,
    now: dt.datetime,
    how: str,
) -> bool:
    """The chair (or deputy) approves the agenda; False when it was approved already. A stale link is refused."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    if approver.group_id != group.id or approver.role not in ("chair", "deputy_chair") or not approver.active:
        raise WorkgroupError("Повестку утверждает председатель рабочей группы (в его отсутствие — заместитель)")
    if nonce is not None and nonce != meeting.agenda_nonce:
        raise WorkgroupError(
            "Повестка изменилась после отправки этой ссылки: утвердите новую редакцию из нового письма"
        )
    if meeting.status == "cancelled":
        raise WorkgroupError("Заседание отменено")
    if meeting.agenda_approved_at is not None:
        return False
    if not items_of(session, meeting):
        raise WorkgroupError("В повестке нет ни одного вопроса")
    meeting.agenda_approved_at, meeting.agenda_approved_by_id = now, approver.id
    if meeting.status in ("planned", "agenda_submitted"):
        meeting.status = "agenda_approved"
    log(session, now=now, actor=approver.email, action="agenda_approved", meeting_id=meeting.id, how=how)
    return True


def send_agenda(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> int:
    """Send the approved agenda, materials and invitation to every member and invitee; returns the count.

    Sending again (after a change) sends an update with the same UID and the next SEQUENCE.
    """
    if meeting.form == "absentee":
        raise WorkgroupError("Для письменного опроса вместо повестки рассылаются бюллетени (wg poll open)")
    _require_status(meeting, ("agenda_approved", "agenda_sent"), "Рассылка повестки")
    if meeting.agenda_approved_at is None:
        raise WorkgroupError("Повестка не утверждена председателем")
    update = meeting.agenda_sent_at is not None
    count = _send_agenda_mail(session, settings, meeting, now, update=update)
    if not update:
        meeting.agenda_sent_at = now
    meeting.status = "agenda_sent"
    _done(session, settings, meeting, "agenda_send_by", now)
    log(session, now=now, actor=actor, action="agenda_sent", meeting_id=meeting.id, recipients=count, update=update)
    return count


def _send_agenda_mail(
    session: Session, settings: Settings, meeting: WgMeeting, now: dt.datetime, *, update: bool
) -> int:
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    if update:
        meeting.ics_sequence += 1
    recipients = recipients_of(session, meeting)
    mail.send_agenda(
        session,
        settings,
        meeting,
        group,
        recipients,
        items_of(session, meeting),
        materials_of(session, meeting),
        officer(session, group, "secretary"),
        update=update,
        written_opinions_by=written_opinions_by(session, settings, meeting),
        now=now,
    )
    return len(recipients)


# Attendance, votes, the meeting itself --------------------------------------------------------------------------


def _refuse_after_signing(meeting: WgMeeting) -> None:
    if meeting.status in FINAL_MINUTES:
        raise WorkgroupError("Протокол подписан: записи заседания больше не меняются")
    if meeting.status == "cancelled":
        raise WorkgroupError("Заседание отменено")


def attendance_of(session: Session, meeting: WgMeeting) -> dict[int, WgAttendance]:
    """Attendance records by member id."""
    rows = session.scalars(select(WgAttendance).where(WgAttendance.meeting_id == meeting.id))
    return {row.member_id: row for row in rows}


def record_attendance(
    session: Session, meeting: WgMeeting, member: WgMember, mode: str, *, now: dt.datetime, actor: str
) -> None:
    """Record how a member (or invitee) took part; a correction replaces the record and is logged."""
    _refuse_after_signing(meeting)
    if meeting.form == "absentee":
        raise WorkgroupError("В письменном опросе участие определяется по бюллетеням")
    if mode not in ATTENDANCE_MODES:
        raise WorkgroupError(f"Участие: одно из {', '.join(ATTENDANCE_MODES)}")
    if mode == "remote" and meeting.form == "in_person":
        group = session.get(WgGroup, meeting.group_id)
        assert group is not None
        if "remote" not in rules_of(group).policy.forms:
            raise WorkgroupError("Положение о группе не предусматривает дистанционного участия")
    if member.group_id != meeting.group_id:
        raise WorkgroupError("Этот человек не состоит в группе")
    row = attendance_of(session, meeting).get(member.id)
    if row is None:
        session.add(
            WgAttendance(meeting_id=meeting.id, member_id=member.id, mode=mode, recorded_at=now, recorded_by=actor)
        )
    else:
        if row.mode != "absent" and mode == "absent" and _votes_by(session, meeting, member):
            raise WorkgroupError("У участника уже записаны голоса: сначала исправьте их")
        log(
            session,
            now=now,
            actor=actor,
            action="attendance_corrected",
            meeting_id=meeting.id,
            member=member.id,
            old=row.mode,
            new=mode,
        )
        row.mode, row.recorded_at, row.recorded_by = mode, now, actor
    session.flush()
    log(session, now=now, actor=actor, action="attendance", meeting_id=meeting.id, member=member.id, mode=mode)


def _votes_by(session: Session, meeting: WgMeeting, member: WgMember) -> list[WgVote]:
    query = (
        select(WgVote)
        .join(WgAgendaItem, WgAgendaItem.id == WgVote.item_id)
        .where(WgAgendaItem.meeting_id == meeting.id, WgVote.member_id == member.id)
    )
    return list(session.scalars(query))


def votes_on(session: Session, item: WgAgendaItem) -> list[WgVote]:
    """The votes recorded on one question."""
    return list(session.scalars(select(WgVote).where(WgVote.item_id == item.id).order_by(WgVote.id)))


def record_vote(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    item: WgAgendaItem,
    member: WgMember,
    choice: Choice,
    *,
    method: str | None = None,
    now: dt.datetime,
    actor: str,
    at: dt.datetime | None = None,
    replace: bool = False,
    ballot: WgBallot | None = None,
    inbox: WgInboxItem | None = None,
) -> WgVote:
    """Record one member's vote on one question. A second vote is refused unless ``replace`` corrects the first
    (the old vote stays in the log)."""
    _refuse_after_signing(meeting)
    if item.meeting_id != meeting.id or item.status != "included":
        raise WorkgroupError("Этого вопроса нет в повестке")
    if member.group_id != meeting.group_id or not member.voting or member.role == "invitee" or not member.active:
        raise WorkgroupError(f"{member.name} не имеет права голоса в рабочей группе")
    if meeting.form == "absentee":
        if method not in ("ballot_link", "email"):
            raise WorkgroupError("В письменном опросе голосуют бюллетенем: по ссылке или ответом на письмо")
        when = at or now
        if meeting.status != "poll_open" and not (meeting.poll_closed_at and when <= meeting.poll_closed_at):
            raise WorkgroupError("Голосование не идёт: опрос не открыт или уже завершён")
        if meeting.poll_closes_at is not None and when > meeting.poll_closes_at:
            raise WorkgroupError("Голос подан после окончания опроса и не учитывается")
    else:
        # Corrections stay possible until the minutes are signed; a new draft then carries them (a signature on an
        # older text is refused: its content hash no longer matches).
        _require_status(
            meeting, ("agenda_approved", "agenda_sent", "held", "minutes_draft", "minutes_signing"), "Запись голосов"
        )
        present = attendance_of(session, meeting).get(member.id)
        if present is None or present.mode == "absent":
            raise WorkgroupError(
                f"{member.name} не отмечен(а) участвующим в заседании: письменное мнение отсутствующего не является "
                "голосом"
            )
        method = method or present.mode
        if method not in ("in_person", "remote"):
            raise WorkgroupError("На заседании голос записывается как очный или дистанционный")
    existing = session.scalar(select(WgVote).where(WgVote.item_id == item.id, WgVote.member_id == member.id))
    if existing is not None:
        if not replace:
            raise WorkgroupError(
                f"Голос {member.name} по вопросу «{item.title}» уже записан ({CHOICE_NAMES[Choice(existing.choice)]}, "
                f"{METHOD_NAMES.get(existing.method, existing.method)}, {fmt_local(settings, existing.at)})"
            )
        if meeting.form == "absentee":
            raise WorkgroupError("Голос в бюллетене изменить нельзя")
        log(
            session,
            now=now,
            actor=actor,
            action="vote_corrected",
            meeting_id=meeting.id,
            item=item.id,
            member=member.id,
            old=existing.choice,
            new=choice.value,
            old_at=existing.at.isoformat(),
        )
        existing.choice, existing.method, existing.at, existing.recorded_by = choice.value, method, at or now, actor
        return existing
    vote = WgVote(
        item_id=item.id,
        member_id=member.id,
        choice=choice.value,
        method=method,
        at=at or now,
        recorded_by=actor,
        ballot_id=ballot.id if ballot else None,
        inbox_id=inbox.id if inbox else None,
    )
    session.add(vote)
    if ballot is not None and ballot.returned_at is None:
        ballot.returned_at = at or now
    session.flush()
    log(
        session,
        now=now,
        actor=actor,
        action="vote",
        meeting_id=meeting.id,
        item=item.id,
        member=member.id,
        choice=choice.value,
        method=method,
    )
    return vote


def presiding_of(session: Session, meeting: WgMeeting) -> WgMember | None:
    """The presiding member: as set, or the chair if present, else the deputy chair if present."""
    if meeting.presiding_id is not None:
        return session.get(WgMember, meeting.presiding_id)
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    if meeting.form == "absentee":
        return officer(session, group, "chair") or officer(session, group, "deputy_chair")
    attendance = attendance_of(session, meeting)
    for role in ("chair", "deputy_chair"):
        person = officer(session, group, role)
        if person is not None and person.id in attendance and attendance[person.id].mode != "absent":
            return person
    return None


def set_presiding(session: Session, meeting: WgMeeting, member: WgMember, *, now: dt.datetime, actor: str) -> None:
    """Name the presiding member (seed 000 p. 8: a member the chair entrusts in the chair's absence)."""
    _refuse_after_signing(meeting)
    if member.group_id != meeting.group_id or not member.voting:
        raise WorkgroupError("Председательствует член рабочей группы с правом голоса")
    meeting.presiding_id = member.id
    log(session, now=now, actor=actor, action="presiding", meeting_id=meeting.id, member=member.id)


@dataclass(frozen=True)
class ItemTally:
    """The counted votes and outcome of one question."""

    item: WgAgendaItem
    number: int
    votes: Votes
    result: TallyResult


def tallies(session: Session, meeting: WgMeeting) -> tuple[int, int, list[ItemTally]]:
    """Members, those taking part (ballots returned in a poll) and each question's outcome."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    policy = rules_of(group).policy
    voters = voting_members(session, group)
    voter_ids = {m.id for m in voters}
    if meeting.form == "absentee":
        ballots = session.scalars(select(WgBallot).where(WgBallot.meeting_id == meeting.id))
        taking_part = sum(1 for b in ballots if b.returned_at is not None and b.member_id in voter_ids)
    else:
        attendance = attendance_of(session, meeting)
        taking_part = sum(1 for mid, row in attendance.items() if mid in voter_ids and row.mode != "absent")
    presiding = presiding_of(session, meeting)
    results = []
    for number, item in enumerate(items_of(session, meeting), 1):
        counted = [v for v in votes_on(session, item) if v.member_id in voter_ids]
        votes = Votes(
            for_=sum(v.choice == Choice.for_ for v in counted),
            against=sum(v.choice == Choice.against for v in counted),
            abstain=sum(v.choice == Choice.abstain for v in counted),
        )
        presiding_vote = next((Choice(v.choice) for v in counted if presiding and v.member_id == presiding.id), None)
        result = tally(
            len(voters), taking_part, votes, presiding_vote, quorum_num=policy.quorum_num, quorum_den=policy.quorum_den
        )
        results.append(ItemTally(item, number, votes, result))
    return len(voters), taking_part, results


def attach_audio(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    filename: str,
    content_type: str,
    data: bytes,
    now: dt.datetime,
    actor: str,
) -> None:
    """Keep the meeting's audio recording (seed 002 p. 12) in the blob store."""
    _refuse_after_signing(meeting)
    if not data:
        raise WorkgroupError("Файл аудиозаписи пуст")
    meeting.audio_sha256 = BlobStore(settings.blob_dir).put(data)
    meeting.audio_filename = sanitize_filename(filename, content_type or "audio/mpeg")
    log(session, now=now, actor=actor, action="audio_attached", meeting_id=meeting.id, sha256=meeting.audio_sha256)


def finish_meeting(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> None:
    """Close a held meeting: members without a record are absent; the federal profile wants the audio."""
    if meeting.form == "absentee":
        raise WorkgroupError("Письменный опрос завершается закрытием опроса (wg poll close)")
    _require_status(meeting, ("agenda_approved", "agenda_sent"), "Завершение заседания")
    if now < meeting.starts_at:
        raise WorkgroupError(f"Заседание назначено на {fmt_local(settings, meeting.starts_at)} и ещё не началось")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    policy = rules_of(group).policy
    if meeting.form in policy.audio_required and not meeting.audio_sha256:
        raise WorkgroupError(
            f"Заседание в форме «{FORM_NAMES[meeting.form]}» нельзя завершить без аудиозаписи: положение группы "
            "требует её вести (типовое положение, п. 12). Приложите запись (wg meeting audio)."
        )
    attendance = attendance_of(session, meeting)
    for member in voting_members(session, group):
        if member.id not in attendance:
            session.add(
                WgAttendance(
                    meeting_id=meeting.id, member_id=member.id, mode="absent", recorded_at=now, recorded_by=actor
                )
            )
    session.flush()
    presiding = presiding_of(session, meeting)
    if presiding is None:
        raise WorkgroupError(
            "Не определён председательствующий: председатель и заместитель отсутствуют (wg meeting presiding)"
        )
    meeting.presiding_id = presiding.id
    meeting.status, meeting.held_at = "held", now
    log(session, now=now, actor=actor, action="meeting_held", meeting_id=meeting.id, presiding=presiding.id)


# Written polls --------------------------------------------------------------------------------------------------


def open_poll(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> int:
    """Send every voting member a ballot with a signed link per question; returns how many were sent."""
    if meeting.form != "absentee":
        raise WorkgroupError("Бюллетени рассылаются только для письменного опроса")
    _require_status(meeting, ("agenda_approved",), "Открытие опроса")
    assert meeting.poll_closes_at is not None
    if meeting.poll_closes_at <= now:
        raise WorkgroupError("Срок окончания опроса уже прошёл: перенесите его")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    items = items_of(session, meeting)
    materials = materials_of(session, meeting)
    count = 0
    for member in voting_members(session, group):
        ballot = WgBallot(meeting_id=meeting.id, member_id=member.id, nonce=_nonce(), sent_at=now)
        session.add(ballot)
        session.flush()
        mail.send_ballot(session, settings, meeting, group, ballot, member, items, materials)
        count += 1
    meeting.status, meeting.agenda_sent_at = "poll_open", now
    _done(session, settings, meeting, "agenda_send_by", now)
    log(session, now=now, actor=actor, action="poll_opened", meeting_id=meeting.id, ballots=count)
    return count


def ballot_vote(
    session: Session,
    settings: Settings,
    ballot: WgBallot,
    item: WgAgendaItem,
    choice: Choice,
    *,
    method: str,
    now: dt.datetime,
    at: dt.datetime | None = None,
    actor: str = "",
    inbox: WgInboxItem | None = None,
) -> WgVote:
    """A vote from a member's ballot (by link, or an e-mail reply the secretary confirmed)."""
    meeting = get_meeting(session, ballot.meeting_id)
    member = session.get(WgMember, ballot.member_id)
    assert member is not None
    return record_vote(
        session,
        settings,
        meeting,
        item,
        member,
        choice,
        method=method,
        now=now,
        at=at,
        actor=actor or member.email,
        ballot=ballot,
        inbox=inbox,
    )


def close_poll(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> None:
    """Close a written poll (at its deadline, or earlier on the chair's decision); the tally is final."""
    _require_status(meeting, ("poll_open",), "Закрытие опроса")
    meeting.status, meeting.poll_closed_at, meeting.held_at = "held", now, now
    presiding = presiding_of(session, meeting)
    meeting.presiding_id = presiding.id if presiding else None
    log(session, now=now, actor=actor, action="poll_closed", meeting_id=meeting.id)


# Opinions and held replies --------------------------------------------------------------------------------------


def add_opinion(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    member: WgMember,
    *,
    kind: str,
    text: str,
    via: str,
    received_at: dt.datetime,
    now: dt.datetime,
    actor: str,
    item: WgAgendaItem | None = None,
    inbox: WgInboxItem | None = None,
) -> WgOpinion:
    """Attach a written opinion (an absent member's, an annex of the minutes) or a dissent (entered in them)."""
    _refuse_after_signing(meeting)
    if kind not in ("written", "dissent"):
        raise WorkgroupError("Вид мнения: written или dissent")
    if member.group_id != meeting.group_id or member.role == "invitee":
        raise WorkgroupError("Мнение приобщается только от члена рабочей группы")
    if not text.strip():
        raise WorkgroupError("Текст мнения пуст")
    late = False
    if kind == "written":
        due = written_opinions_by(session, settings, meeting)
        late = due is not None and received_at.astimezone(settings.tz).date() > due
    opinion = WgOpinion(
        meeting_id=meeting.id,
        member_id=member.id,
        item_id=item.id if item else None,
        kind=kind,
        text=text.strip(),
        received_at=received_at,
        via=via,
        late=late,
        inbox_id=inbox.id if inbox else None,
        confirmed_by=actor,
        created_at=now,
    )
    session.add(opinion)
    session.flush()
    log(session, now=now, actor=actor, action=f"opinion_{kind}", meeting_id=meeting.id, member=member.id, late=late)
    return opinion


def opinions_of(session: Session, meeting: WgMeeting, kind: str | None = None) -> list[WgOpinion]:
    """The meeting's opinions (of one kind)."""
    query = select(WgOpinion).where(WgOpinion.meeting_id == meeting.id)
    if kind is not None:
        query = query.where(WgOpinion.kind == kind)
    return list(session.scalars(query.order_by(WgOpinion.received_at, WgOpinion.id)))


def held_items(session: Session, meeting: WgMeeting | None = None) -> list[WgInboxItem]:
    """Replies waiting for the secretary (of one meeting, or all)."""
    query = select(WgInboxItem).where(WgInboxItem.status == "held")
    if meeting is not None:
        query = query.where(WgInboxItem.meeting_id == meeting.id)
    return list(session.scalars(query.order_by(WgInboxItem.received_at, WgInboxItem.id)))


def get_inbox_item(session: Session, item_id: int) -> WgInboxItem:
    """A held reply by id."""
    row = session.get(WgInboxItem, item_id)
    if row is None:
        raise WorkgroupError(f"Письмо {item_id} не найдено среди ответов рабочей группы")
    return row


# A confirmed reply of these kinds becomes an opinion: (opinion kind, what the secretary is told).
OPINION_REPLIES = {
    "written_opinion": ("written", "письменное мнение приобщено к заседанию"),
    "dissent": ("dissent", "особое мнение внесено в протокол"),
}


def confirm_reply(
    session: Session,
    settings: Settings,
    reply: WgInboxItem,
    *,
    now: dt.datetime,
    actor: str,
    kind: str | None = None,
    member: WgMember | None = None,
    item_number: int | None = None,
) -> str:
    """The secretary confirms a held reply: it becomes an opinion, a proposal or ballot votes. Returns what was
    done. ``kind`` corrects the recognised kind; ``member`` attributes a reply sent from another address."""
    if reply.status != "held":
        raise WorkgroupError("Это письмо уже разобрано")
    kind = kind or reply.kind
    if kind not in REPLY_KINDS or kind == "other":
        raise WorkgroupError(f"Укажите, чем считать письмо: {', '.join(k for k in REPLY_KINDS if k != 'other')}")
    if reply.meeting_id is None:
        raise WorkgroupError("Письмо не относится к заседанию")
    meeting = get_meeting(session, reply.meeting_id)
    person = member or (session.get(WgMember, reply.member_id) if reply.member_id else None)
    if person is None:
        raise WorkgroupError(
            "Отправитель не является членом рабочей группы: укажите, от чьего имени письмо (если это член группы, "
            "написавший с другого адреса), или отклоните его"
        )
    if person.group_id != meeting.group_id:
        raise WorkgroupError("Этот человек не состоит в группе")
    item_number = item_number or reply.payload.get("item_number")
    agenda_item = item_by_number(session, meeting, int(item_number)) if item_number else None
    if kind in OPINION_REPLIES:
        opinion_kind, done = OPINION_REPLIES[kind]
        add_opinion(
            session,
            settings,
            meeting,
            person,
            kind=opinion_kind,
            text=reply.text,
            via="email",
            received_at=reply.received_at,
            now=now,
            actor=actor,
            item=agenda_item,
            inbox=reply,
        )
    elif kind == "agenda_proposal":
        lines = reply.text.strip().splitlines()
        title = str(reply.payload.get("title") or (lines[0] if lines else "") or reply.subject)
        add_item(session, meeting, title=title, status="proposed", proposed_by=person, now=now, actor=actor)
        done = "предложение добавлено в повестку как предложенный вопрос"
    else:
        done = _confirm_ballot(session, settings, meeting, reply, person, now=now, actor=actor)
    reply.status, reply.resolved_at, reply.resolved_by = "confirmed", now, actor
    reply.kind = kind
    if member is not None:
        reply.member_id = member.id
    log(session, now=now, actor=actor, action="reply_confirmed", meeting_id=meeting.id, reply=reply.id, kind=kind)
    return done


def _confirm_ballot(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    reply: WgInboxItem,
    person: WgMember,
    *,
    now: dt.datetime,
    actor: str,
) -> str:
    choices = reply.payload.get("choices") or {}
    if not choices:
        raise WorkgroupError("В письме не распознаны голоса: «номер вопроса — за/против/воздержался»")
    if meeting.form != "absentee":
        raise WorkgroupError("Голос по почте принимается только в письменном опросе; на заседании голосуют лично")
    ballot = session.scalar(select(WgBallot).where(WgBallot.meeting_id == meeting.id, WgBallot.member_id == person.id))
    if ballot is None:
        raise WorkgroupError("У этого члена группы нет бюллетеня в опросе")
    recorded = []
    for item_id, choice in sorted(choices.items(), key=lambda kv: int(kv[0])):
        item = session.get(WgAgendaItem, int(item_id))
        if item is None or item.meeting_id != meeting.id:
            continue
        # The vote counts from when the e-mail arrived: a reply that came in time counts after the close too.
        ballot_vote(
            session,
            settings,
            ballot,
            item,
            Choice(choice),
            method="email",
            now=now,
            at=reply.received_at,
            actor=actor,
            inbox=reply,
        )
        recorded.append(item_id)
    return f"записано голосов: {len(recorded)}"


def reject_reply(session: Session, reply: WgInboxItem, *, note: str, now: dt.datetime, actor: str) -> None:
    """The secretary sets a reply aside; it stays in the list with the reason."""
    if reply.status != "held":
        raise WorkgroupError("Это письмо уже разобрано")
    reply.status, reply.resolved_at, reply.resolved_by, reply.note = "rejected", now, actor, note.strip()
    log(session, now=now, actor=actor, action="reply_rejected", meeting_id=reply.meeting_id, reply=reply.id)


# Minutes --------------------------------------------------------------------------------------------------------


def minutes_versions(session: Session, meeting: WgMeeting) -> list[WgMinutes]:
    """Every version of the minutes, oldest first."""
    query = select(WgMinutes).where(WgMinutes.meeting_id == meeting.id).order_by(WgMinutes.version)
    return list(session.scalars(query))


def latest_minutes(session: Session, meeting: WgMeeting) -> WgMinutes | None:
    """The newest version."""
    versions = minutes_versions(session, meeting)
    return versions[-1] if versions else None


def signatures_of(session: Session, minutes: WgMinutes) -> list[WgSignature]:
    """Signatures requested on one version."""
    query = select(WgSignature).where(WgSignature.minutes_id == minutes.id).order_by(WgSignature.id)
    return list(session.scalars(query))


def required_signers(session: Session, meeting: WgMeeting) -> list[tuple[str, WgMember]]:
    """Who signs, per profile: the presiding member; or chair, secretary and the members who took part."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    policy = rules_of(group).policy
    presiding = presiding_of(session, meeting)
    if policy.signers == "presiding":
        if presiding is None:
            raise WorkgroupError("Не определён председательствующий: протокол некому подписать")
        return [("presiding", presiding)]
    signers: list[tuple[str, WgMember]] = []
    for role, capacity in (("chair", "chair"), ("secretary", "secretary")):
        person = officer(session, group, role)
        if person is not None:
            signers.append((capacity, person))
    taken = {m.id for _c, m in signers}
    if meeting.form == "absentee":
        ballots = session.scalars(select(WgBallot).where(WgBallot.meeting_id == meeting.id))
        took_part = {b.member_id for b in ballots if b.returned_at is not None}
    else:
        took_part = {mid for mid, row in attendance_of(session, meeting).items() if row.mode != "absent"}
    for member in voting_members(session, group):
        if member.id in took_part and member.id not in taken:
            signers.append(("member", member))
    return signers


def minutes_data(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    version: int,
    draft: bool,
    signatures: Sequence[WgSignature] = (),
) -> minutes_doc.MinutesData:
    """The snapshot of the meeting's records the minutes are rendered from."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    rules = rules_of(group)
    members_total, taking_part, results = tallies(session, meeting)
    people = {m.id: m for m in members_of(session, group, include_inactive=True)}
    presiding = presiding_of(session, meeting)
    secretary = officer(session, group, "secretary")
    attendance = attendance_of(session, meeting)
    is_poll = meeting.form == "absentee"
    voter_ids = {m.id for m in voting_members(session, group)}
    if is_poll:
        ballots = list(session.scalars(select(WgBallot).where(WgBallot.meeting_id == meeting.id)))
        returned = {b.member_id for b in ballots if b.returned_at is not None}
        present = [_person(people[i], "") for i in sorted(returned) if i in people]
        absent = [_person(people[b.member_id], "") for b in ballots if b.member_id not in returned]
        invitees: list[minutes_doc.Person] = []
    else:
        present = [
            _person(people[mid], MODE_NAMES[row.mode])
            for mid, row in sorted(attendance.items())
            if row.mode != "absent" and mid in voter_ids
        ]
        absent = [
            _person(people[mid], "")
            for mid, row in sorted(attendance.items())
            if row.mode == "absent" and mid in voter_ids
        ]
        invitees = [
            _person(people[mid], MODE_NAMES[row.mode])
            for mid, row in sorted(attendance.items())
            if row.mode != "absent" and mid not in voter_ids and mid in people
        ]
    dissents = opinions_of(session, meeting, "dissent")
    numbers = {r.item.id: r.number for r in results}
    items = []
    for r in results:
        voters: tuple[tuple[str, str], ...] = ()
        if is_poll:
            voters = tuple(
                (people[v.member_id].name, CHOICE_NAMES[Choice(v.choice)])
                for v in votes_on(session, r.item)
                if v.member_id in people
            )
        item_dissents = [d for d in dissents if d.item_id == r.item.id]
        items.append(
            minutes_doc.ItemRecord(
                number=r.number,
                title=r.item.title,
                speaker=r.item.speaker,
                heard=r.item.heard,
                decision=r.item.decision or r.item.proposal,
                votes=r.votes,
                result=r.result,
                voters=voters,
                dissents=tuple(_opinion(settings, people, d, numbers) for d in item_dissents),
            )
        )
    signed = {s.member_id: s for s in signatures}
    signers = []
    for capacity, person in required_signers(session, meeting):
        sig = signed.get(person.id)
        signers.append(
            minutes_doc.Signer(
                CAPACITY_NAMES[capacity],
                person.name,
                fmt_local(settings, sig.signed_at) if sig and sig.signed_at else "",
            )
        )
    start = meeting.starts_at.astimezone(settings.tz)
    return minutes_doc.MinutesData(
        department=settings.department_name,
        group_title=group.title,
        number=meeting.number,
        date=ru_date(meeting_day(settings, meeting)),
        time="" if is_poll else start.strftime("%H:%M"),
        place=meeting.place,
        form=FORM_NAMES[meeting.form],
        is_poll=is_poll,
        presiding=presiding.name if presiding else "",
        secretary=secretary.name if secretary else "",
        members_total=members_total,
        taking_part=taking_part,
        quorum=bool(results[0].result.quorum) if results else False,
        present=present,
        absent=absent,
        invitees=invitees,
        items=items,
        written_opinions=[_opinion(settings, people, o, numbers) for o in opinions_of(session, meeting, "written")],
        general_dissents=[_opinion(settings, people, d, numbers) for d in dissents if d.item_id is None],
        conciliation=rules.policy.dissent == "conciliation",
        oral_consent=rules.policy.oral_consent,
        audio=meeting.audio_filename,
        poll_closed=fmt_local(settings, meeting.poll_closed_at) if is_poll else "",
        signers=signers,
        version=version,
        draft=draft,
    )


def _person(member: WgMember, mode: str) -> minutes_doc.Person:
    return minutes_doc.Person(member.name, member.position, ROLE_NAMES.get(member.role, ""), mode)


def _opinion(
    settings: Settings, people: Mapping[int, WgMember], opinion: WgOpinion, numbers: Mapping[int, int]
) -> minutes_doc.Opinion:
    return minutes_doc.Opinion(
        member=people[opinion.member_id].name if opinion.member_id in people else "",
        text=opinion.text,
        received=fmt_local(settings, opinion.received_at),
        item_number=numbers.get(opinion.item_id) if opinion.item_id else None,
        late=opinion.late,
    )


def draft_minutes(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str
) -> WgMinutes:
    """Draft (or redraft) the minutes from the records; an unchanged text keeps its version."""
    _require_status(meeting, ("held", "minutes_draft", "minutes_signing"), "Подготовка протокола")
    latest = latest_minutes(session, meeting)
    version = (latest.version + 1) if latest else 1
    data = minutes_data(session, settings, meeting, version=version, draft=True)
    digest = minutes_doc.content_hash(data)
    if latest is not None and latest.status == "draft" and latest.content_sha256 == digest:
        return latest
    docx = minutes_doc.render_docx(data)
    row = WgMinutes(
        meeting_id=meeting.id,
        version=version,
        status="draft",
        html=minutes_doc.render_html(data),
        docx_sha256=BlobStore(settings.blob_dir).put(docx),
        content_sha256=digest,
        created_at=now,
        created_by=actor,
    )
    if latest is not None and latest.status == "draft":
        latest.status = "superseded"  # its signature links stop working
    session.add(row)
    meeting.status = "minutes_draft"
    session.flush()
    log(session, now=now, actor=actor, action="minutes_drafted", meeting_id=meeting.id, version=version)
    return row


def request_signatures(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str
) -> list[WgSignature]:
    """Pass the newest draft for signature: each signer the profile requires gets a link (seed 000 p. 16)."""
    _require_status(meeting, ("minutes_draft", "minutes_signing"), "Передача протокола на подписание")
    minutes = latest_minutes(session, meeting)
    if minutes is None or minutes.status != "draft":
        raise WorkgroupError("Нет проекта протокола: подготовьте его (wg minutes draft)")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    existing = {s.member_id: s for s in signatures_of(session, minutes)}
    docx = BlobStore(settings.blob_dir).get(minutes.docx_sha256)
    rows = []
    for capacity, person in required_signers(session, meeting):
        sig = existing.get(person.id)
        if sig is None:
            sig = WgSignature(minutes_id=minutes.id, member_id=person.id, capacity=capacity, nonce=_nonce())
            session.add(sig)
            session.flush()
        if sig.signed_at is None:
            sig.requested_at = now
            mail.send_signature_request(session, settings, meeting, group, minutes, sig, person, docx)
        rows.append(sig)
    minutes.sent_for_signature_at = minutes.sent_for_signature_at or now
    meeting.status = "minutes_signing"
    _done(session, settings, meeting, "minutes_by", now)
    log(session, now=now, actor=actor, action="signatures_requested", meeting_id=meeting.id, version=minutes.version)
    return rows


def sign_minutes(
    session: Session,
    settings: Settings,
    signature: WgSignature,
    *,
    now: dt.datetime,
    method: str,
    nonce: str | None = None,
    ip: str = "",
) -> bool:
    """Give one signature; the last one makes the minutes final and sends the copies. False if already signed."""
    minutes = session.get(WgMinutes, signature.minutes_id)
    assert minutes is not None
    if nonce is not None and nonce != signature.nonce:
        raise WorkgroupError("Ссылка недействительна")
    if signature.signed_at is not None:
        return False
    if minutes.status != "draft":
        raise WorkgroupError(
            "Эта версия протокола заменена новой или уже подписана: подпишите версию из последнего письма"
        )
    meeting = get_meeting(session, minutes.meeting_id)
    signature.signed_at, signature.method, signature.ip = now, method, ip[:64]
    member = session.get(WgMember, signature.member_id)
    assert member is not None
    log(
        session,
        now=now,
        actor=member.email,
        action="minutes_signed_by",
        meeting_id=meeting.id,
        version=minutes.version,
        capacity=signature.capacity,
        method=method,
    )
    session.flush()
    if all(s.signed_at is not None for s in signatures_of(session, minutes)):
        _finalise(session, settings, meeting, minutes, now)
    return True


def _finalise(session: Session, settings: Settings, meeting: WgMeeting, minutes: WgMinutes, now: dt.datetime) -> None:
    """The signed version: signatures printed in it, its content proven unchanged; copies go out at once."""
    signatures = signatures_of(session, minutes)
    data = minutes_data(session, settings, meeting, version=minutes.version, draft=False, signatures=signatures)
    if minutes_doc.content_hash(data) != minutes.content_sha256:
        raise WorkgroupError("Записи заседания изменились после подготовки этой версии протокола: подготовьте новую")
    docx = minutes_doc.render_docx(data)
    minutes.html = minutes_doc.render_html(data)
    minutes.docx_sha256 = BlobStore(settings.blob_dir).put(docx)
    minutes.status, minutes.signed_at = "signed", now
    meeting.signed_on = local_today(settings, now)
    meeting.status = "minutes_signed"
    sync_deadlines(session, settings, meeting, now)  # copies_by counts from the signing day
    log(session, now=now, actor="", action="minutes_final", meeting_id=meeting.id, version=minutes.version)
    distribute_minutes(session, settings, meeting, now=now, actor="")


def distribute_minutes(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str, again: bool = False
) -> int:
    """Send copies of the signed minutes to members and invitees (seed 000 p. 17); returns the count."""
    minutes = latest_minutes(session, meeting)
    if minutes is None or minutes.status != "signed":
        raise WorkgroupError("Протокол ещё не подписан")
    if meeting.distributed_at is not None and not again:
        raise WorkgroupError("Копии протокола уже направлены")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    docx = BlobStore(settings.blob_dir).get(minutes.docx_sha256)
    title = f"Протокол № {meeting.number} — {group.title}"
    data_html = minutes_doc.render_document(minutes.html, title=title)
    recipients = recipients_of(session, meeting)
    mail.send_minutes(session, settings, meeting, group, recipients, docx, data_html)
    meeting.distributed_at = meeting.distributed_at or now
    meeting.status = "minutes_distributed"
    _done(session, settings, meeting, "copies_by", now)
    log(session, now=now, actor=actor, action="minutes_distributed", meeting_id=meeting.id, recipients=len(recipients))
    return len(recipients)


# The periodic pass: reminders, missed deadlines, polls closing, monthly meetings ---------------------------------


@dataclass
class TickReport:
    """What one pass did."""

    reminders: int = 0
    missed: int = 0
    polls_closed: int = 0
    warnings: list[str] = field(default_factory=list)


def tick(session: Session, settings: Settings, *, now: dt.datetime) -> TickReport:
    """Close polls whose time is up, re-judge every open term, remind before terms and report missed ones once.

    Run it periodically (``mailservice wg tick`` from cron or a timer); it is idempotent.
    """
    report = TickReport()
    day = local_today(settings, now)
    calendar = _calendar(settings)
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
