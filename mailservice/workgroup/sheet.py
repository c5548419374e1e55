"""Bulk entry of a meeting's attendance and votes from one table (issue 18), in one transaction.

The console's sheet sends every cell; here only changes are applied, through the same service calls as one-by-one
entry (so every check and every log line is the same): first attendance, then votes. A refusal of any cell rolls the
whole sheet back (the caller's transaction) and names the member and the question.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.workgroup import groups, meetings, voting
from mailservice.workgroup.models import WgGroup, WgMeeting, WgMember
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import CHOICE_NAMES, Choice


def record_sheet(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    attendance: Mapping[int, str],
    votes: Mapping[tuple[int, int], Choice | None],
    now: dt.datetime,
    actor: str,
) -> int:
    """Apply a sheet: ``attendance`` member id -> mode, ``votes`` (item id, member id) -> choice (None: no vote).

    Returns the number of cells changed. A vote cannot be erased (only corrected): its history is in the log.
    """
    if meeting.form == "absentee":
        raise WorkgroupError("В письменном опросе участие и голоса определяются бюллетенями")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    people = {m.id: m for m in groups.members_of(session, group)}
    invited = {m.id for m in meetings.invitees_of(session, meeting)}
    current = voting.attendance_of(session, meeting)
    changed = 0
    # Presences first, so that the votes below find everyone who took part.
    for member_id, mode in sorted(attendance.items(), key=lambda kv: kv[1] == "absent"):
        member = _person(people, member_id)
        if member.role == "invitee" and member_id not in invited and mode != "absent":
            meetings.invite(session, meeting, member, now=now, actor=actor)
        row = current.get(member_id)
        if row is not None and row.mode == mode:
            continue
        voting.record_attendance(session, meeting, member, mode, now=now, actor=actor)
        changed += 1
    items = {i.id: (n, i) for n, i in enumerate(meetings.items_of(session, meeting), 1)}
    for (item_id, member_id), choice in sorted(votes.items()):
        if item_id not in items:
            raise WorkgroupError("Этого вопроса нет в повестке")
        number, item = items[item_id]
        member = _person(people, member_id)
        existing = {v.member_id: v for v in voting.votes_on(session, item)}.get(member_id)
        if choice is None:
            if existing is not None:
                raise WorkgroupError(
                    f"Голос {member.name} по вопросу № {number} уже записан "
                    f"({CHOICE_NAMES[Choice(existing.choice)]}): его можно исправить, но не удалить"
                )
            continue
        if existing is not None and existing.choice == choice.value:
            continue
        try:
            voting.record_vote(
                session, settings, meeting, item, member, choice, now=now, actor=actor, replace=existing is not None
            )
        except WorkgroupError as exc:
            raise WorkgroupError(f"Вопрос № {number}, {member.name}: {exc}") from None
        changed += 1
    return changed


def _person(people: Mapping[int, WgMember], member_id: int) -> WgMember:
    member = people.get(member_id)
    if member is None:
        raise WorkgroupError("В таблице есть человек не из состава группы")
    return member
