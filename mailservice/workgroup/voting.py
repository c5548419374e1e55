"""Attendance, votes and their tally, the presiding member, the audio record, finishing a meeting, and written
polls (ballots by signed link)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.parse import sanitize_filename
from mailservice.workgroup import mail
from mailservice.workgroup.groups import officer, voting_members
from mailservice.workgroup.meetings import get_meeting, items_of, mark_done, materials_of
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgAttendance,
    WgBallot,
    WgGroup,
    WgInboxItem,
    WgMeeting,
    WgMember,
    WgVote,
)
from mailservice.workgroup.policy import FORM_NAMES
from mailservice.workgroup.service import (
    ATTENDANCE_MODES,
    METHOD_NAMES,
    WorkgroupError,
    fmt_local,
    log,
    new_nonce,
    refuse_after_signing,
    require_status,
    rules_of,
)
from mailservice.workgroup.tally import CHOICE_NAMES, Choice, TallyResult, Votes, tally


def attendance_of(session: Session, meeting: WgMeeting) -> dict[int, WgAttendance]:
    """Attendance records by member id."""
    rows = session.scalars(select(WgAttendance).where(WgAttendance.meeting_id == meeting.id))
    return {row.member_id: row for row in rows}


def record_attendance(
    session: Session, meeting: WgMeeting, member: WgMember, mode: str, *, now: dt.datetime, actor: str
) -> None:
    """Record how a member (or invitee) took part; a correction replaces the record and is logged."""
    refuse_after_signing(meeting)
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
    refuse_after_signing(meeting)
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
        require_status(
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
    refuse_after_signing(meeting)
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
    refuse_after_signing(meeting)
    if not data:
        raise WorkgroupError("Файл аудиозаписи пуст")
    meeting.audio_sha256 = BlobStore(settings.blob_dir).put(data)
    meeting.audio_filename = sanitize_filename(filename, content_type or "audio/mpeg")
    log(session, now=now, actor=actor, action="audio_attached", meeting_id=meeting.id, sha256=meeting.audio_sha256)


def finish_meeting(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> None:
    """Close a held meeting: members without a record are absent; the federal profile wants the audio."""
    if meeting.form == "absentee":
        raise WorkgroupError("Письменный опрос завершается закрытием опроса (wg poll close)")
    require_status(meeting, ("agenda_approved", "agenda_sent"), "Завершение заседания")
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
    require_status(meeting, ("agenda_approved",), "Открытие опроса")
    assert meeting.poll_closes_at is not None
    if meeting.poll_closes_at <= now:
        raise WorkgroupError("Срок окончания опроса уже прошёл: перенесите его")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    items = items_of(session, meeting)
    materials = materials_of(session, meeting)
    count = 0
    for member in voting_members(session, group):
        ballot = WgBallot(meeting_id=meeting.id, member_id=member.id, nonce=new_nonce(), sent_at=now)
        session.add(ballot)
        session.flush()
        mail.send_ballot(session, settings, meeting, group, ballot, member, items, materials)
        count += 1
    meeting.status, meeting.agenda_sent_at = "poll_open", now
    mark_done(session, settings, meeting, "agenda_send_by", now)
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
    require_status(meeting, ("poll_open",), "Закрытие опроса")
    meeting.status, meeting.poll_closed_at, meeting.held_at = "held", now, now
    presiding = presiding_of(session, meeting)
    meeting.presiding_id = presiding.id if presiding else None
    log(session, now=now, actor=actor, action="poll_closed", meeting_id=meeting.id)
