"""Web pages of instructions: the assignee's signed report page and the console's list with its decisions.

* ``/wg/instruction/{token}``: the link from the instruction's e-mail. A GET shows the instruction and two forms;
  only a POST acts (mail scanners fetch every link): report it done (a comment and up to ten files) or ask for more
  time (a reason and a date). A tampered or superseded link gets 400, a closed instruction 409; nothing changes.
* ``/staff/wg/instructions``: every instruction of the groups the user serves (chair, deputy chair, secretary;
  administrators see all), with filters (state, assignee, overdue, meeting) and the pending requests for more time,
  which the chair or the secretary approves or refuses. The secretary gives instructions on the meeting page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.web.security import DbId
from mailservice.web.staff import audit
from mailservice.web.staff.deps import Refused, StaffContext, client_ip, page, redirect
from mailservice.web.staff.models import StaffUser
from mailservice.workgroup import instructions, meetings, service
from mailservice.workgroup.models import WgGroup, WgInstruction, WgMeeting
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.web import (
    OFFICERS,
    Staff,
    _act,
    _actor,
    _group_or_refuse,
    _member_field,
    _message,
    _now,
    _page,
    _roles,
    _settings,
    _transact,
)

router = APIRouter(include_in_schema=False)


def _date_field(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise WorkgroupError(f"{what}: укажите дату") from None


# The assignee's page ---------------------------------------------------------------------------------------------


def _instruction_context(
    session: Session, settings: Settings, instruction: WgInstruction, now: dt.datetime
) -> dict[str, Any]:
    meeting = meetings.get_meeting(session, instruction.meeting_id)
    group = session.get(WgGroup, instruction.group_id)
    today = service.local_today(settings, now)
    return {
        "instruction": instruction,
        "meeting": meeting,
        "group": group,
        "date": service.meeting_day(settings, meeting),
        "state_name": instructions.STATE_NAMES[instructions.status(instruction.state, instruction.due, today)],
        "reports": instructions.reports_of(session, instruction),
        "local": lambda moment: service.fmt_local(settings, moment),
    }


def _report_view(
    settings: Settings,
    token: str,
    now: dt.datetime,
    fields: dict[str, str] | None,
    files: list[tuple[str, str, bytes]],
    ip: str,
) -> HTMLResponse:
    with session_scope(settings) as session:
        instruction = instructions.by_token(session, settings, token)
        if instruction is None:
            return _message(
                settings,
                400,
                "Ссылка недействительна",
                "Ссылка повреждена, неполна или заменена более новой. "
                "Откройте ссылку из последнего письма о поручении.",
            )
        context = _instruction_context(session, settings, instruction, now)
        if fields is None:
            return _page(settings, "instruction.html", **context)
        if instruction.state not in instructions.OPEN:
            return _page(
                settings, "instruction.html", 409, error="Поручение уже закрыто: отчёт не требуется.", **context
            )
        action = fields.get("action", "")
        try:
            if action == "done":
                instructions.report_done(
                    session, settings, instruction, text=fields.get("text", ""), files=files, now=now, via="link", ip=ip
                )
                done = "Спасибо: сообщение об исполнении передано секретарю и председателю рабочей группы."
            elif action == "extension":
                instructions.request_extension(
                    session,
                    settings,
                    instruction,
                    reason=fields.get("text", ""),
                    proposed_due=_date_field(fields.get("proposed_due", ""), "Новый срок"),
                    now=now,
                    via="link",
                    ip=ip,
                )
                done = "Просьба о продлении срока направлена; о решении вам сообщат письмом."
            else:
                return _page(settings, "instruction.html", 400, error="Выберите действие.", **context)
        except WorkgroupError as exc:
            session.rollback()
            instruction = instructions.by_token(session, settings, token)
            assert instruction is not None
            return _page(
                settings,
                "instruction.html",
                400,
                error=str(exc),
                **_instruction_context(session, settings, instruction, now),
            )
        session.flush()
        return _page(
            settings, "instruction.html", done=done, **_instruction_context(session, settings, instruction, now)
        )


@router.get("/wg/instruction/{token}", response_class=HTMLResponse)
def instruction_page(request: Request, token: str) -> HTMLResponse:
    """Show the instruction and the two forms (a GET reports nothing)."""
    return _report_view(_settings(request), token, _now(request), None, [], "")


@router.post("/wg/instruction/{token}", response_class=HTMLResponse)
async def instruction_post(request: Request, token: str) -> HTMLResponse:
    """Report the instruction done or ask for more time."""
    settings = _settings(request)
    try:
        form = await request.form(max_files=instructions.MAX_FILES, max_fields=10)
    except Exception:  # a malformed or oversized body is a bad request, not a 500
        return _message(settings, 400, "Форма не принята", f"Приложите не больше {instructions.MAX_FILES} файлов.")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    files = []
    for value in form.getlist("files"):
        if isinstance(value, UploadFile) and value.filename:
            data = await value.read(settings.max_attachment_bytes + 1)
            files.append((value.filename, value.content_type or "application/octet-stream", data))
    return await run_in_threadpool(_report_view, settings, token, _now(request), fields, files, client_ip(request))


# The console -----------------------------------------------------------------------------------------------------

DONE = {
    "extension": "Решение о сроке записано, исполнителю направлено письмо.",
    "cancel": "Поручение снято с контроля.",
    "send": "Поручение направлено исполнителю.",
}


def _visible_groups(session: Session, ctx: StaffContext) -> list[WgGroup]:
    return [
        g
        for g in session.scalars(select(WgGroup).order_by(WgGroup.id))
        if _roles(session, ctx, g) & (OFFICERS | {"admin"})
    ]


@router.get("/staff/wg/instructions", response_class=HTMLResponse)
async def console_instructions(request: Request, ctx: Staff) -> HTMLResponse:
    """Every instruction of the user's groups, filtered."""
    settings = _settings(request)
    params = request.query_params
    meeting_param = params.get("meeting", "")
    filters = instructions.Filters(
        state=params.get("state", "") if params.get("state", "") in (*instructions.STATE_NAMES, "open") else "",
        assignee=params.get("assignee", "")[:200],
        overdue=params.get("overdue") == "1",
        meeting_id=int(meeting_param) if meeting_param.isdigit() else None,
    )

    def work() -> dict[str, Any]:
        now = _now(request)
        with session_scope(settings) as session:
            groups = _visible_groups(session, ctx)
            wanted = instructions.Filters(**{**filters.__dict__, "group_ids": tuple(g.id for g in groups) or (-1,)})
            found = instructions.matching(session, settings, wanted, now=now)
            today = service.local_today(settings, now)
            by_id = {
                m.id: m
                for m in session.scalars(
                    select(WgMeeting).where(WgMeeting.group_id.in_([g.id for g in groups] or [-1]))
                )
            }
            rows = []
            for i in found:
                rows.append(
                    {
                        "i": i,
                        "status": instructions.status(i.state, i.due, today),
                        "meeting": by_id.get(i.meeting_id),
                        "group": next(g for g in groups if g.id == i.group_id),
                        "roles": _roles(session, ctx, next(g for g in groups if g.id == i.group_id)),
                        "pending": instructions.pending_extension(session, i),
                        "reports": instructions.reports_of(session, i),
                    }
                )
            return {
                "rows": rows,
                "filters": filters,
                "meetings": sorted(by_id.values(), key=lambda m: (m.group_id, m.number)),
                "groups": {g.id: g for g in groups},
                "state_names": instructions.STATE_NAMES,
                "local": lambda moment: service.fmt_local(settings, moment),
            }

    data = await run_in_threadpool(work)
    done = DONE.get(request.query_params.get("done", ""), "")
    return page(request, "web/wg/console_instructions.html", ctx=ctx, done=done, error="", **data)


async def _on_instruction(
    request: Request, ctx: StaffContext, instruction_id: DbId, done: str, need: frozenset[str], step: Any
) -> Response:
    """Run one console action on an instruction; a refusal is a page with the reason."""
    error = await _transact(request, ctx, WgInstruction, instruction_id, need, step)
    if error:
        raise Refused(409, "Действие не выполнено", error)
    return redirect(f"/staff/wg/instructions?done={done}")


@router.post("/staff/wg/instructions/{instruction_id}/extension")
async def console_extension(request: Request, instruction_id: DbId, ctx: Staff) -> Response:
    """The chair or the secretary approves or refuses more time."""

    def step(s: Session, st: Settings, i: WgInstruction, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        new_due = _date_field(f["due"], "Новый срок") if f.get("due", "").strip() else None
        instructions.decide_extension(
            s,
            st,
            i,
            approve=f.get("decision") == "approve",
            note=f.get("note", ""),
            new_due=new_due,
            now=now,
            actor=_actor(ctx),
        )

    return await _on_instruction(request, ctx, instruction_id, "extension", OFFICERS, step)


@router.post("/staff/wg/instructions/{instruction_id}/cancel")
async def console_cancel(request: Request, instruction_id: DbId, ctx: Staff) -> Response:
    """The secretary takes an instruction off control (by the group's decision)."""

    def step(s: Session, st: Settings, i: WgInstruction, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        instructions.cancel(s, i, reason=f.get("reason", ""), now=now, actor=_actor(ctx))

    return await _on_instruction(request, ctx, instruction_id, "cancel", frozenset({"secretary"}), step)


@router.post("/staff/wg/instructions/{instruction_id}/send")
async def console_send(request: Request, instruction_id: DbId, ctx: Staff) -> Response:
    """The secretary sends (or sends again, with a new link) an instruction."""

    def step(s: Session, st: Settings, i: WgInstruction, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        instructions.send(s, st, i, now=now, actor=_actor(ctx))

    return await _on_instruction(request, ctx, instruction_id, "send", frozenset({"secretary"}), step)


@router.get("/staff/wg/instructions/{instruction_id}/files/{report_id}/{index}")
async def console_report_file(
    request: Request, instruction_id: DbId, report_id: DbId, index: int, ctx: Staff
) -> Response:
    """A file the assignee attached to a report (always a download, never rendered)."""
    settings = _settings(request)

    def work() -> tuple[bytes, str]:
        with session_scope(settings) as session:
            instruction = session.get(WgInstruction, instruction_id)
            if instruction is None:
                raise Refused(404, "Не найдено")
            _group_or_refuse(session, ctx, instruction.group_id, OFFICERS | {"admin"})
            report = next((r for r in instructions.reports_of(session, instruction) if r.id == report_id), None)
            if report is None or not 0 <= index < len(report.files):
                raise Refused(404, "Не найдено")
            entry = report.files[index]
            data = BlobStore(settings.blob_dir).get(str(entry["sha256"]))
            audit.by_staff(session, ctx, "wg_report_file_download", "wg_instruction", instruction.id, report=report.id)
            return data, str(entry["filename"])

    data, filename = await run_in_threadpool(work)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post("/staff/wg/meetings/{meeting_id}/instructions")
async def console_give(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """The secretary records an instruction of an adopted decision."""

    def step(s: Session, st: Settings, m: WgMeeting, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        number = f.get("item", "")
        if not number.isdigit():
            raise WorkgroupError("Выберите вопрос")
        item = meetings.item_by_number(s, m, int(number))
        assignee = f.get("assignee", "")
        member = staff = None
        if assignee.startswith("m"):
            member = _member_field(s, g, {"member_id": assignee[1:]})
        elif assignee.startswith("s") and assignee[1:].isdigit():
            staff = s.get(StaffUser, int(assignee[1:]))
            if staff is None:
                raise WorkgroupError("Выберите исполнителя")
        else:
            raise WorkgroupError("Выберите исполнителя")
        days = f.get("due_wd", "").strip()
        instructions.give(
            s,
            st,
            m,
            item,
            text=f.get("text", ""),
            expected_result=f.get("expected_result", ""),
            member=member,
            staff=staff,
            due_wd=int(days) if days.isdigit() else None,
            due=_date_field(f["due"], "Срок") if not days and f.get("due", "").strip() else None,
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, meeting_id, "instruction", frozenset({"secretary"}), step)
