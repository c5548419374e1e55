"""The console's group page: the head of the department, work plans, the road map, reports and protocols of
disagreements for the head, and expert groups and project committees (issue 18).

``GET /staff/wg/groups/{id}`` is for the group's chair, deputy chair and secretary (and administrators); every
change is the secretary's and goes through :mod:`.plans` and :mod:`.reports` in one transaction; a refusal shows
the page again with the reason. Documents download as DOCX or PDF and never render in the browser.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.web.security import DbId
from mailservice.web.staff import audit
from mailservice.web.staff.deps import Refused, StaffContext, page, redirect
from mailservice.workgroup import meetings, plans, reports, service
from mailservice.workgroup.mail import DOCX_TYPE
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgDisagreement,
    WgGroup,
    WgMeeting,
    WgPlan,
    WgPlanItem,
    WgReport,
    WgRoadmapItem,
)
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.web import OFFICERS, Staff, _actor, _group_or_refuse, _now, _roles, _settings

router = APIRouter(include_in_schema=False)
SECRETARY = frozenset({"secretary"})
DONE = {
    "head": "Руководитель департамента записан.",
    "plan": "План создан.",
    "plan_item": "Пункт плана добавлен.",
    "approve": "Утверждение плана решением группы записано.",
    "plan_state": "Состояние пункта плана записано.",
    "roadmap": "Мероприятие дорожной карты записано.",
    "report": "Доклад подготовлен.",
    "send": "Документ направлен руководителю департамента.",
    "disagreement": "Разногласия записаны, протокол разногласий подготовлен.",
    "subgroup": "Подгруппа сформирована.",
}
Step = Callable[[Session, Settings, WgGroup, dict[str, str], dt.datetime], object]


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise WorkgroupError(f"{what}: укажите дату") from None


def _decision_field(session: Session, group: WgGroup, value: str) -> WgAgendaItem:
    """A decision chosen in a form as the agenda item's id."""
    item = session.get(WgAgendaItem, int(value)) if value.isdigit() else None
    if item is None:
        raise WorkgroupError("Выберите решение рабочей группы")
    plans.decision_of(session, group, item)
    return item


def _approved_by(session: Session, group: WgGroup, plan: WgPlan) -> str:
    if plan.approved_item_id is None:
        return ""
    item = session.get(WgAgendaItem, plan.approved_item_id)
    assert item is not None
    return plans.decision_of(session, group, item).reference


def _group_data(
    session: Session, settings: Settings, ctx: StaffContext, group: WgGroup, now: dt.datetime
) -> dict[str, Any]:
    today = service.local_today(settings, now)
    held = session.scalars(
        select(WgMeeting)
        .where(WgMeeting.group_id == group.id, WgMeeting.held_at.is_not(None))
        .order_by(WgMeeting.number.desc())
    )
    return {
        "group": group,
        "parent": session.get(WgGroup, group.parent_id) if group.parent_id else None,
        "roles": _roles(session, ctx, group),
        "kind_names": reports.KIND_NAMES,
        "plans": [
            {
                "plan": p,
                "rows": [(i, plans.item_status(i, today)) for i in p.items],
                "approved": _approved_by(session, group, p),
            }
            for p in plans.plans_of(session, group)
        ],
        "item_state_names": {**plans.ITEM_STATE_NAMES, "overdue": "просрочено"},
        "plan_state_names": plans.PLAN_STATE_NAMES,
        "roadmap": plans.roadmap_of(session, group),
        "decisions": plans.decisions_of(session, group),
        "reports": reports.reports_of(session, group),
        "report_names": reports.REPORT_NAMES,
        "meetings": [(m, meetings.items_of(session, m)) for m in held],
        "subgroups": reports.subgroups_of(session, group),
        "local": lambda moment: service.fmt_local(settings, moment),
    }


async def _show(
    request: Request, ctx: StaffContext, group_id: DbId, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    settings = _settings(request)

    def work() -> dict[str, Any]:
        with session_scope(settings) as session:
            group = _group_or_refuse(session, ctx, group_id, OFFICERS | {"admin"})
            return _group_data(session, settings, ctx, group, _now(request))

    data = await run_in_threadpool(work)
    done = DONE.get(request.query_params.get("done", ""), "")
    return page(request, "web/wg/console_group.html", ctx=ctx, status_code=status_code, error=error, done=done, **data)


@router.get("/staff/wg/groups/{group_id}", response_class=HTMLResponse)
async def group_page(request: Request, group_id: DbId, ctx: Staff) -> HTMLResponse:
    """Plans, the road map, reports, disagreements and sub-groups of one group."""
    return await _show(request, ctx, group_id)


async def _act(
    request: Request, ctx: StaffContext, group_of: Callable[[Session], int], done: str, step: Step
) -> Response:
    """Run one of the secretary's changes; a refusal shows the group page with the reason."""
    settings = _settings(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}

    def work() -> tuple[int, str]:
        with session_scope(settings) as session:
            group_id = group_of(session)
            group = _group_or_refuse(session, ctx, group_id, SECRETARY)
            try:
                step(session, settings, group, fields, _now(request))
            except WorkgroupError as exc:
                session.rollback()
                return group_id, str(exc)
        return group_id, ""

    group_id, error = await run_in_threadpool(work)
    if error:
        return await _show(request, ctx, group_id, error=error, status_code=409)
    return redirect(f"/staff/wg/groups/{group_id}?done={done}")


def _owner(model: type[Any], object_id: int, attribute: str = "group_id") -> Callable[[Session], int]:
    def find(session: Session) -> int:
        row = session.get(model, object_id)
        if row is None:
            raise Refused(404, "Не найдено")
        if model is WgPlanItem:
            plan = session.get(WgPlan, row.plan_id)
            assert plan is not None
            return plan.group_id
        return int(getattr(row, attribute))

    return find


def _group_id(group_id: int) -> Callable[[Session], int]:
    def find(session: Session) -> int:
        if session.get(WgGroup, group_id) is None:
            raise Refused(404, "Не найдено")
        return group_id

    return find


@router.post("/staff/wg/groups/{group_id}/head")
async def set_head(request: Request, group_id: DbId, ctx: Staff) -> Response:
    """Whom the reports go to."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        reports.set_head(g, name=f.get("name", ""), email=f.get("email", ""), session=s, now=now, actor=_actor(ctx))

    return await _act(request, ctx, _group_id(group_id), "head", step)


@router.post("/staff/wg/groups/{group_id}/plans")
async def create_plan(request: Request, group_id: DbId, ctx: Staff) -> Response:
    """A new draft plan."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        plans.create_plan(
            s,
            g,
            title=f.get("title", ""),
            period_start=_date(f.get("start", ""), "Начало периода"),
            period_end=_date(f.get("end", ""), "Конец периода"),
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _group_id(group_id), "plan", step)


@router.post("/staff/wg/plans/{plan_id}/items")
async def add_plan_item(request: Request, plan_id: DbId, ctx: Staff) -> Response:
    """An item of a draft plan."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        code = f.get("roadmap", "").strip()
        plans.add_plan_item(
            s,
            plans.get_plan(s, plan_id),
            title=f.get("title", ""),
            owner=f.get("owner", ""),
            due=_date(f.get("due", ""), "Срок"),
            roadmap=plans.roadmap_item(s, g, code) if code else None,
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _owner(WgPlan, plan_id), "plan_item", step)


@router.post("/staff/wg/plans/{plan_id}/approve")
async def approve_plan(request: Request, plan_id: DbId, ctx: Staff) -> Response:
    """Record the decision that approved the plan."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        plans.approve_plan(
            s, plans.get_plan(s, plan_id), _decision_field(s, g, f.get("decision", "")), now=now, actor=_actor(ctx)
        )

    return await _act(request, ctx, _owner(WgPlan, plan_id), "approve", step)


@router.post("/staff/wg/plan-items/{item_id}")
async def update_plan_item(request: Request, item_id: DbId, ctx: Staff) -> Response:
    """Progress of a plan item."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        item = s.get(WgPlanItem, item_id)
        assert item is not None
        plans.update_plan_item(s, item, state=f.get("state", ""), note=f.get("note"), now=now, actor=_actor(ctx))

    return await _act(request, ctx, _owner(WgPlanItem, item_id), "plan_state", step)


@router.post("/staff/wg/groups/{group_id}/roadmap")
async def add_roadmap(request: Request, group_id: DbId, ctx: Staff) -> Response:
    """An item of the road map the group tracks."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        due = f.get("due", "").strip()
        plans.add_roadmap_item(
            s,
            g,
            code=f.get("code", ""),
            title=f.get("title", ""),
            act=f.get("act", ""),
            due=_date(due, "Срок") if due else None,
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _group_id(group_id), "roadmap", step)


@router.post("/staff/wg/roadmap/{row_id}")
async def update_roadmap(request: Request, row_id: DbId, ctx: Staff) -> Response:
    """Progress of a road-map item, its result, and the decision that agreed it."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        row = s.get(WgRoadmapItem, row_id)
        assert row is not None
        decision = f.get("agreed", "")
        plans.update_roadmap_item(
            s,
            g,
            row,
            state=f.get("state") or None,
            result=f.get("result"),
            agreed_by=_decision_field(s, g, decision) if decision else None,
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _owner(WgRoadmapItem, row_id), "roadmap", step)


@router.post("/staff/wg/groups/{group_id}/reports")
async def make_report(request: Request, group_id: DbId, ctx: Staff) -> Response:
    """Generate the progress report for a period."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        reports.progress_report(
            s,
            st,
            g,
            start=_date(f.get("start", ""), "Начало периода"),
            end=_date(f.get("end", ""), "Конец периода"),
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _group_id(group_id), "report", step)


@router.post("/staff/wg/reports/{report_id}/send")
async def send_report(request: Request, report_id: DbId, ctx: Staff) -> Response:
    """The secretary sends a document to the head of the department."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        report = s.get(WgReport, report_id)
        assert report is not None
        reports.send_report(s, st, report, now=now, actor=_actor(ctx), again=f.get("again") == "1")

    return await _act(request, ctx, _owner(WgReport, report_id), "send", step)


@router.get("/staff/wg/reports/{report_id}.docx")
async def report_docx(request: Request, report_id: DbId, ctx: Staff) -> Response:
    """Download a report or a protocol of disagreements as DOCX."""
    return await _report_file(request, report_id, ctx, "docx")


@router.get("/staff/wg/reports/{report_id}.pdf")
async def report_pdf(request: Request, report_id: DbId, ctx: Staff) -> Response:
    """Download a report or a protocol of disagreements as PDF (the same document)."""
    return await _report_file(request, report_id, ctx, "pdf")


async def _report_file(request: Request, report_id: int, ctx: StaffContext, kind: str) -> Response:
    settings = _settings(request)

    def work() -> tuple[bytes, str]:
        with session_scope(settings) as session:
            report = session.get(WgReport, report_id)
            if report is None:
                raise Refused(404, "Не найдено")
            _group_or_refuse(session, ctx, report.group_id, OFFICERS | {"admin"})
            digest = report.docx_sha256 if kind == "docx" else report.pdf_sha256
            if not digest:
                raise Refused(404, "Этот документ подготовлен до того, как доклады стали сохраняться в PDF")
            data = BlobStore(settings.blob_dir).get(digest)
            audit.by_staff(session, ctx, "wg_report_download", "wg_report", report.id, format=kind)
            return data, f"{reports.report_file_stem(report)}-{report.id}.{kind}"

    data, filename = await run_in_threadpool(work)
    return Response(
        data,
        media_type=DOCX_TYPE if kind == "docx" else reports.PDF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.post("/staff/wg/meetings/{meeting_id}/disagreements")
async def record_disagreement(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """Record disagreements a meeting could not resolve and prepare the protocol of disagreements."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        meeting = meetings.get_meeting(s, meeting_id)
        number = f.get("item", "")
        positions = [(f.get(f"party_{n}", ""), f.get(f"position_{n}", "")) for n in range(1, 5)]
        row: WgDisagreement = reports.record_disagreement(
            s,
            meeting,
            subject=f.get("subject", ""),
            positions=positions,
            proposal=f.get("proposal", ""),
            item=meetings.item_by_number(s, meeting, int(number)) if number.isdigit() else None,
            now=now,
            actor=_actor(ctx),
        )
        reports.disagreements_protocol(s, st, row, now=now, actor=_actor(ctx))

    return await _act(request, ctx, _owner(WgMeeting, meeting_id), "disagreement", step)


@router.post("/staff/wg/groups/{group_id}/subgroups")
async def create_subgroup(request: Request, group_id: DbId, ctx: Staff) -> Response:
    """Form an expert group or a project committee by the group's decision."""

    def step(s: Session, st: Settings, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        reports.create_subgroup(
            s,
            g,
            slug=f.get("slug", ""),
            title=f.get("title", ""),
            kind=f.get("kind", ""),
            formed_by=_decision_field(s, g, f.get("decision", "")),
            now=now,
            actor=_actor(ctx),
        )

    return await _act(request, ctx, _group_id(group_id), "subgroup", step)
