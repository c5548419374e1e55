"""The console's sheet: a meeting's attendance and votes entered on one page (issue 18).

``GET /staff/wg/meetings/{id}/sheet`` shows one row per person (members and invitees) with their attendance and,
for voting members, one column per question; ``POST`` applies the changes in one transaction
(:func:`mailservice.workgroup.sheet.record_sheet`). Only the secretary (or an administrator acting for them) may.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.web.security import DbId
from mailservice.web.staff.deps import Refused, page, redirect
from mailservice.workgroup import groups, meetings, service, voting
from mailservice.workgroup.models import WgGroup, WgMeeting
from mailservice.workgroup.policy import ROLE_NAMES
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.sheet import record_sheet
from mailservice.workgroup.tally import CHOICE_NAMES, Choice
from mailservice.workgroup.web import Staff, _actor, _group_or_refuse, _settings, _transact

router = APIRouter(include_in_schema=False)
SECRETARY = frozenset({"secretary"})


def _sheet_data(session: Any, settings: Any, ctx: Any, meeting_id: int) -> dict[str, Any]:
    meeting = session.get(WgMeeting, meeting_id)
    if meeting is None:
        raise Refused(404, "Не найдено")
    group = _group_or_refuse(session, ctx, meeting.group_id, SECRETARY)
    if meeting.form == "absentee":
        raise Refused(409, "Нет таблицы", "В письменном опросе участие и голоса определяются бюллетенями.")
    people = [m for m in groups.members_of(session, group)]
    items = meetings.items_of(session, meeting)
    votes = {(v.item_id, v.member_id): v.choice for item in items for v in voting.votes_on(session, item)}
    return {
        "group": group,
        "meeting": meeting,
        "people": people,
        "items": items,
        "attendance": {mid: row.mode for mid, row in voting.attendance_of(session, meeting).items()},
        "votes": votes,
        "mode_names": service.MODE_NAMES,
        "choice_names": {c.value: n for c, n in CHOICE_NAMES.items()},
        "role_names": ROLE_NAMES,
        "editable": meeting.status in ("agenda_approved", "agenda_sent", "held", "minutes_draft", "minutes_signing"),
    }


async def _show(
    request: Request, ctx: Any, meeting_id: DbId, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    settings = _settings(request)

    def work() -> dict[str, Any]:
        with session_scope(settings) as session:
            return _sheet_data(session, settings, ctx, meeting_id)

    data = await run_in_threadpool(work)
    return page(request, "web/wg/console_sheet.html", ctx=ctx, status_code=status_code, error=error, **data)


@router.get("/staff/wg/meetings/{meeting_id}/sheet", response_class=HTMLResponse)
async def sheet_page(request: Request, meeting_id: DbId, ctx: Staff) -> HTMLResponse:
    """The table of attendance and votes."""
    return await _show(request, ctx, meeting_id)


def _parse(fields: dict[str, str]) -> tuple[dict[int, str], dict[tuple[int, int], Choice | None]]:
    attendance: dict[int, str] = {}
    votes: dict[tuple[int, int], Choice | None] = {}
    for name, value in fields.items():
        parts = name.split("_")
        if parts[0] == "mode" and len(parts) == 2 and parts[1].isdigit():
            if value:
                if value not in service.ATTENDANCE_MODES:
                    raise WorkgroupError("Участие: очно, дистанционно или отсутствовал(а)")
                attendance[int(parts[1])] = value
        elif parts[0] == "vote" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            try:
                votes[(int(parts[1]), int(parts[2]))] = Choice(value) if value else None
            except ValueError:
                raise WorkgroupError("Голос: за, против или воздержался") from None
    return attendance, votes


@router.post("/staff/wg/meetings/{meeting_id}/sheet")
async def sheet_post(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """Apply the table's changes at once; a refusal shows the table again with the reason and changes nothing."""

    def step(s: Session, st: Settings, m: WgMeeting, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        attendance, votes = _parse(f)
        record_sheet(s, st, m, attendance=attendance, votes=votes, now=now, actor=_actor(ctx))

    error = await _transact(request, ctx, WgMeeting, meeting_id, SECRETARY, step)
    if error:
        return await _show(request, ctx, meeting_id, error=error, status_code=409)
    return redirect(f"/staff/wg/meetings/{meeting_id}?done=bulk")
