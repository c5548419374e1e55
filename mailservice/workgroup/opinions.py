"""Written opinions and dissents, and the members' e-mailed replies held for the secretary to confirm or
reject."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.workgroup.meetings import add_item, get_meeting, item_by_number, written_opinions_by
from mailservice.workgroup.models import WgAgendaItem, WgBallot, WgInboxItem, WgMeeting, WgMember, WgOpinion
from mailservice.workgroup.service import REPLY_KINDS, WorkgroupError, log, refuse_after_signing
from mailservice.workgroup.tally import Choice
from mailservice.workgroup.voting import ballot_vote

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
    refuse_after_signing(meeting)
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
