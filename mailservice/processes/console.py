"""The register in the staff console (issue 18): versions, the difference between two versions, change requests
and their state; the officer applies or rejects requests, approves an imported version and links owner cells to
accounts; a process owner submits a request from the console.

Every page needs a console login; changes carry the session's CSRF token (:func:`mailservice.web.staff.deps.require`)
and are written to the audit log in the same transaction. Who may do what is decided by the account: its role
(``process_officer``) or its link to the process's owner cell (:mod:`.people`), never by a name typed in a form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.processes import people, requests, service
from mailservice.processes.diff import diff_versions
from mailservice.processes.form import OP_NAMES, ColumnOp
from mailservice.processes.models import RegisterVersion
from mailservice.processes.register import STATUS_LABELS, Status, row_values
from mailservice.processes.requests import DECISION_NAMES, KIND_NAMES, STATE_NAMES, RequestKind, RequestState
from mailservice.processes.service import RegisterError
from mailservice.web.security import DbId
from mailservice.web.staff.auth import ANY_ROLE, Role
from mailservice.web.staff.deps import Refused, StaffContext, page, redirect, require, settings_of
from mailservice.web.staff.routes import _audit as record_action

router = APIRouter(prefix="/staff/processes", include_in_schema=False)

Anyone = Annotated[StaffContext, Depends(require(ANY_ROLE))]
Officer = Annotated[StaffContext, Depends(require(frozenset({Role.process_officer})))]
DONE = {
    "applied": "Запрос внесён в реестр: создана новая версия.",
    "rejected": "Запрос отклонён, владелец процесса уведомлён.",
    "approved": "Версия утверждена.",
    "submitted": "Запрос подан; подразделениям направлены письма на согласование.",
    "linked": "Связь владельца с учётной записью сохранена.",
    "unlinked": "Связь удалена.",
}


def _common(request: Request, ctx: StaffContext) -> dict[str, Any]:
    tz = settings_of(request).tz
    return {
        "officer": ctx.role is Role.process_officer,
        "local": lambda moment: moment.astimezone(tz).strftime("%d.%m.%Y %H:%M") if moment else "",
        "done": DONE.get(request.query_params.get("done", ""), ""),
    }


def _audit(session: Session, ctx: StaffContext, action: str, object_id: int | None = None, **details: Any) -> None:
    """The console's audit entry (:func:`mailservice.web.staff.routes._audit`) for the register."""
    record_action(session, ctx, action, "process_register", object_id, **details)


async def _read(request: Request, work: Callable[[Session], dict[str, Any]]) -> dict[str, Any]:
    settings = settings_of(request)

    def run() -> dict[str, Any]:
        with session_scope(settings) as session:
            try:
                return work(session)
            except RegisterError as exc:
                raise Refused(404, "Не найдено", str(exc)) from None

    return await run_in_threadpool(run)


async def _change(
    request: Request, ctx: StaffContext, work: Callable[[Session, Settings, dict[str, str]], str]
) -> tuple[str, str]:
    """Run one change in a transaction: (where to go, "") on success, ("", the reason) on a refusal."""
    settings = settings_of(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}

    def run() -> tuple[str, str]:
        with session_scope(settings) as session:
            try:
                return work(session, settings, fields), ""
            except (RegisterError, people.PeopleError) as exc:
                session.rollback()
                return "", str(exc)

    return await run_in_threadpool(run)


# Versions and their difference --------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def versions_page(request: Request, ctx: Anyone) -> HTMLResponse:
    """Every version, and the choice of two to compare."""

    def work(session: Session) -> dict[str, Any]:
        versions = session.scalars(select(RegisterVersion).order_by(RegisterVersion.number.desc())).all()
        return {
            "versions": [(v, len(v.rows)) for v in versions],
            "pending": len(requests.list_requests(session, RequestState.pending)),
            "agreed": len(requests.list_requests(session, RequestState.approved)),
        }

    data = await _read(request, work)
    return page(request, "web/processes/console_versions.html", ctx=ctx, **_common(request, ctx), **data)


@router.get("/versions/{number}", response_class=HTMLResponse)
async def version_page(request: Request, number: DbId, ctx: Anyone) -> HTMLResponse:
    """One version as the template lays it out (its own form)."""

    def work(session: Session) -> dict[str, Any]:
        version = service.get_version(session, number)
        columns = service.version_form(version)
        return {
            "version": version,
            "columns": columns,
            "table": [row_values(r, columns) for r in service.version_rows(version)],
            "newest": service.latest_version(session) is version,
        }

    data = await _read(request, work)
    return page(request, "web/processes/console_version.html", ctx=ctx, **_common(request, ctx), **data)


@router.get("/diff", response_class=HTMLResponse)
async def diff_page(request: Request, ctx: Anyone) -> Response:
    """What changed between two versions: columns, processes added and removed, cells changed (highlighted)."""
    a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
    if not (a or b):  # no choice made yet: the versions page is where two are chosen
        return redirect(request.url_for("versions_page").path)
    if not (a.isdigit() and b.isdigit()):
        raise Refused(400, "Выберите две версии", "Укажите номера двух версий реестра.")

    def work(session: Session) -> dict[str, Any]:
        first, second = service.get_version(session, int(a)), service.get_version(session, int(b))
        return {
            "a": first,
            "b": second,
            "diff": diff_versions(
                service.version_rows(first),
                service.version_form(first),
                service.version_rows(second),
                service.version_form(second),
            ),
            "status_labels": STATUS_LABELS,
        }

    data = await _read(request, work)
    return page(request, "web/processes/console_diff.html", ctx=ctx, **_common(request, ctx), **data)


@router.post("/versions/{number}/approve")
async def approve_version(request: Request, number: DbId, ctx: Officer) -> Response:
    """The officer approves the newest (imported) version."""

    def work(session: Session, settings: Settings, fields: dict[str, str]) -> str:
        version = service.approve_version(session, settings, actor=ctx.email, now=utcnow(), number=number)
        _audit(session, ctx, "process_version_approve", version.id, number=number)
        return f"/staff/processes/versions/{number}?done=approved"

    target, error = await _change(request, ctx, work)
    if error:
        raise Refused(409, "Версия не утверждена", error)
    return redirect(target)


# Change requests ----------------------------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(request: Request, ctx: Anyone) -> HTMLResponse:
    """Change requests with their state, newest first."""
    wanted = request.query_params.get("state", "")
    state = RequestState(wanted) if wanted in RequestState.__members__ else None

    def work(session: Session) -> dict[str, Any]:
        return {
            # approvals are loaded here: the page renders after the session closes
            "requests": [
                (r, requests.request_lines(session, r), list(r.approvals))
                for r in requests.list_requests(session, state)
            ],
            "state": state.value if state else "",
        }

    data = await _read(request, work)
    return page(
        request,
        "web/processes/console_requests.html",
        ctx=ctx,
        state_names={s.value: n for s, n in STATE_NAMES.items()},
        kind_names={k.value: n for k, n in KIND_NAMES.items()},
        decision_names=DECISION_NAMES,
        **_common(request, ctx),
        **data,
    )


def _request_data(session: Session, number: int) -> dict[str, Any]:
    change = requests.get_request(session, number)
    change.approvals.sort(key=lambda a: a.id)  # loaded here: the page renders after the session closes
    applied = session.get(RegisterVersion, change.applied_version_id) if change.applied_version_id else None
    return {
        "change": change,
        "lines": requests.request_lines(session, change),
        "applied": applied,
        "state_names": {s.value: n for s, n in STATE_NAMES.items()},
        "kind_names": {k.value: n for k, n in KIND_NAMES.items()},
        "decision_names": DECISION_NAMES,
    }


@router.get("/requests/new", response_class=HTMLResponse)
async def new_request_page(request: Request, ctx: Anyone) -> HTMLResponse:
    """The form a process owner fills in."""
    return await _new_request(request, ctx, {}, "", 200)


async def _new_request(
    request: Request, ctx: StaffContext, fields: dict[str, str], error: str, status_code: int
) -> HTMLResponse:
    def work(session: Session) -> dict[str, Any]:
        version = service.latest_version(session)
        columns = service.version_form(version)
        mine = []
        if version is not None:
            for row in service.version_rows(version):
                linked = people.owner_account(session, row.owner)
                if linked is not None and linked.email == ctx.email:
                    mine.append(row)
        return {"columns": columns, "mine": mine, "version": version}

    data = await _read(request, work)
    return page(
        request,
        "web/processes/console_request_new.html",
        ctx=ctx,
        status_code=status_code,
        error=error,
        fields=fields,
        kinds=[(k.value, KIND_NAMES[k]) for k in RequestKind],
        ops=[(o.value, OP_NAMES[o]) for o in ColumnOp],
        status_labels=[(s.value, STATUS_LABELS[s]) for s in Status],
        **_common(request, ctx),
        **data,
    )


def _cells(text: str) -> dict[str, str]:
    """``код=значение`` lines of the form."""
    cells = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        code, sep, value = line.partition("=")
        if not sep:
            raise RegisterError(f"Строка «{line.strip()}»: ожидается «код графы=значение»")
        cells[code.strip()] = value.strip()
    return cells


@router.post("/requests", response_class=HTMLResponse)
async def submit_request(request: Request, ctx: Anyone) -> Response:
    """Submit a change request as the logged-in account (checked against the process's owner)."""
    form = await request.form()
    submitted = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}

    def work(session: Session, settings: Settings, fields: dict[str, str]) -> str:
        try:
            kind = RequestKind(fields.get("kind", ""))
        except ValueError:
            raise RegisterError("Выберите, что изменить") from None
        process_id = fields.get("process_id", "").strip()
        if kind is RequestKind.columns:
            proposal = {"op": fields.get("op", ""), "code": fields.get("code", ""), "title": fields.get("title", "")}
        elif kind is RequestKind.status:
            proposal = {"status": fields.get("status", "")}
            if fields.get("status") not in Status.__members__:
                raise RegisterError("Выберите новый статус")
        elif kind is RequestKind.remove:
            proposal = {}
        else:
            proposal = requests.cells_for_change(_cells(fields.get("cells", "")))
        approvers = [requests.parse_approver(line) for line in fields.get("approvers", "").splitlines() if line.strip()]
        change = requests.submit_change_request(
            session,
            settings,
            kind=kind,
            process_id=process_id,
            proposal=proposal,
            grounds=fields.get("grounds", ""),
            submitted_by=ctx.email,
            approvers=approvers,
            now=utcnow(),
        )
        _audit(session, ctx, "process_request_submit", change.id, kind=kind.value)
        return f"/staff/processes/requests/{change.id}?done=submitted"

    target, error = await _change(request, ctx, work)
    if error:
        return await _new_request(request, ctx, submitted, error, 409)
    return redirect(target)


@router.get("/requests/{number}", response_class=HTMLResponse)
async def request_page(request: Request, number: DbId, ctx: Anyone) -> HTMLResponse:
    """A change request: what it asks, the units' answers, and (for the officer) apply or reject."""
    data = await _read(request, lambda session: _request_data(session, number))
    return page(request, "web/processes/console_request.html", ctx=ctx, error="", **_common(request, ctx), **data)


async def _decide(request: Request, ctx: StaffContext, number: DbId, apply: bool) -> Response:
    def work(session: Session, settings: Settings, fields: dict[str, str]) -> str:
        if apply:
            version = requests.apply_change_request(
                session, settings, number=number, actor=ctx.email, now=utcnow(), comment=fields.get("comment", "")
            )
            _audit(session, ctx, "process_request_apply", number, version=version.number)
            return f"/staff/processes/requests/{number}?done=applied"
        requests.reject_change_request(
            session, settings, number=number, actor=ctx.email, reason=fields.get("reason", ""), now=utcnow()
        )
        _audit(session, ctx, "process_request_reject", number)
        return f"/staff/processes/requests/{number}?done=rejected"

    target, error = await _change(request, ctx, work)
    if error:
        data = await _read(request, lambda session: _request_data(session, number))
        common = {**_common(request, ctx), "done": ""}
        return page(
            request, "web/processes/console_request.html", ctx=ctx, status_code=409, error=error, **common, **data
        )
    return redirect(target)


@router.post("/requests/{number}/apply")
async def apply_request(request: Request, number: DbId, ctx: Officer) -> Response:
    """The officer applies an agreed request (a new version)."""
    return await _decide(request, ctx, number, True)


@router.post("/requests/{number}/reject")
async def reject_request(request: Request, number: DbId, ctx: Officer) -> Response:
    """The officer rejects a request with a reason."""
    return await _decide(request, ctx, number, False)


# Owners -------------------------------------------------------------------------------------------------------


@router.get("/owners", response_class=HTMLResponse)
async def owners_page(request: Request, ctx: Officer) -> HTMLResponse:
    """Owner cells of the newest version and the accounts linked to them."""

    def work(session: Session) -> dict[str, Any]:
        version = service.latest_version(session)
        cells = sorted({r.owner for r in service.version_rows(version)}) if version is not None else []
        return {
            "links": people.owner_links(session),
            "unlinked": [c for c in cells if people.owner_account(session, c) is None],
        }

    data = await _read(request, work)
    return page(request, "web/processes/console_owners.html", ctx=ctx, error="", **_common(request, ctx), **data)


@router.post("/owners")
async def link_owner(request: Request, ctx: Officer) -> Response:
    """Link an owner cell to a staff account."""

    def work(session: Session, settings: Settings, fields: dict[str, str]) -> str:
        link = people.link_owner(
            session, owner=fields.get("owner", ""), staff_email=fields.get("account", ""), actor=ctx.email, now=utcnow()
        )
        _audit(session, ctx, "process_owner_link", link.id)
        return "/staff/processes/owners?done=linked"

    target, error = await _change(request, ctx, work)
    if error:
        raise Refused(409, "Связь не сохранена", error)
    return redirect(target)


@router.post("/owners/{link_id}/delete")
async def unlink_owner(request: Request, link_id: DbId, ctx: Officer) -> Response:
    """Remove a link."""

    def work(session: Session, settings: Settings, fields: dict[str, str]) -> str:
        people.unlink_owner(session, link_id, actor=ctx.email)
        _audit(session, ctx, "process_owner_unlink", link_id)
        return "/staff/processes/owners?done=unlinked"

    target, error = await _change(request, ctx, work)
    if error:
        raise Refused(409, "Связь не удалена", error)
    return redirect(target)
