"""Meetings and their agendas: creation, deadlines, invitees, moving and cancelling; agenda items and
materials, the chair's approval and sending to members and invitees."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.parse import sanitize_filename
from mailservice.workdays import Calendar, default_calendar
from mailservice.workgroup import mail
from mailservice.workgroup.deadlines import meeting_deadlines
from mailservice.workgroup.groups import members_of, officer
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgDeadline,
    WgGroup,
    WgInvitation,
    WgMaterial,
    WgMeeting,
    WgMember,
)
from mailservice.workgroup.policy import FORM_NAMES, FORMS, deadline_status
from mailservice.workgroup.service import (
    BEFORE_MEETING,
    TRACKED,
    WorkgroupError,
    local_today,
    log,
    meeting_day,
    new_nonce,
    refuse_after_signing,
    require_status,
    rules_of,
)

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
        agenda_nonce=new_nonce(),
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
        rules_of(group).terms, meeting_day(settings, meeting), calendar_of(settings), signed=meeting.signed_on
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


def calendar_of(settings: Settings) -> Calendar:
    return default_calendar(settings)


def mark_done(session: Session, settings: Settings, meeting: WgMeeting, key: str, now: dt.datetime) -> None:
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
    return meeting_deadlines(rules_of(group).terms, meeting_day(settings, meeting), calendar_of(settings))[
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
    require_status(meeting, BEFORE_MEETING, "Перенос заседания")
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
    require_status(meeting, BEFORE_MEETING, "Отмена заседания")
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


def agenda_changed(session: Session, meeting: WgMeeting, now: dt.datetime, actor: str) -> None:
    """A change voids the chair's approval (and every approval link already sent)."""
    meeting.agenda_nonce = new_nonce()
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
    require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
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
        agenda_changed(session, meeting, now, actor)
    log(session, now=now, actor=actor, action="item_added", meeting_id=meeting.id, item=item.id, status=status)
    return item


def include_item(session: Session, meeting: WgMeeting, item: WgAgendaItem, *, now: dt.datetime, actor: str) -> None:
    """Include a member's proposal in the agenda (the chair approves the agenda again)."""
    require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
    if item.status != "included":
        item.status = "included"
        agenda_changed(session, meeting, now, actor)
        log(session, now=now, actor=actor, action="item_included", meeting_id=meeting.id, item=item.id)


def withdraw_item(session: Session, meeting: WgMeeting, item: WgAgendaItem, *, now: dt.datetime, actor: str) -> None:
    """Take a question off the agenda (kept as withdrawn)."""
    require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Изменение повестки")
    if item.status != "withdrawn":
        was_included = item.status == "included"
        item.status = "withdrawn"
        if was_included:
            agenda_changed(session, meeting, now, actor)
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
    refuse_after_signing(meeting)
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
    require_status(meeting, ("planned", "agenda_submitted", "agenda_approved", "agenda_sent"), "Передача повестки")
    from mailservice.workgroup.instructions import refresh_followup_item  # it builds on this module

    refresh_followup_item(session, settings, meeting, now=now, actor=actor)
    items = items_of(session, meeting)
    if not items:
        raise WorkgroupError("В повестке нет ни одного вопроса")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    approver = approver_for(session, group)
    meeting.agenda_nonce = new_nonce()  # only the newest approval link works
    meeting.agenda_submitted_at = now
    if meeting.status == "planned":
        meeting.status = "agenda_submitted"
    mail.send_approval_request(session, settings, meeting, group, approver, items, materials_of(session, meeting))
    mark_done(session, settings, meeting, "agenda_to_chair_by", now)
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
    require_status(meeting, ("agenda_approved", "agenda_sent"), "Рассылка повестки")
    if meeting.agenda_approved_at is None:
        raise WorkgroupError("Повестка не утверждена председателем")
    update = meeting.agenda_sent_at is not None
    count = _send_agenda_mail(session, settings, meeting, now, update=update)
    if not update:
        meeting.agenda_sent_at = now
    meeting.status = "agenda_sent"
    mark_done(session, settings, meeting, "agenda_send_by", now)
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
