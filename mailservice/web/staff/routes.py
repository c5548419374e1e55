"""The staff console's pages under ``/staff/``: login, queue, request page and its actions, clients, feedback,
audit log. Server-rendered, no JavaScript; every POST carries the session's CSRF token (checked in deps)."""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from mailservice.blobs import BlobStore
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.staff import ANONYMOUS_SOURCES
from mailservice.feedback.stats import channel_label, feedback_stats
from mailservice.history.archive import EVENT_NAMES
from mailservice.history.service import Outcome as HistoryOutcome
from mailservice.history.service import request_history
from mailservice.inforequests import notifications, queues
from mailservice.inforequests.deadlines import Law, max_extensions
from mailservice.inforequests.lifecycle import (
    CHANNEL_NAMES,
    ORAL_CHANNELS,
    REFUSAL_GROUNDS,
    STAFF_SETTABLE,
    STATUS_NAMES,
    TRANSITIONS,
    Status,
)
from mailservice.inforequests.models import Attachment, Client, ClientContact, Event
from mailservice.inforequests.models import Request as InfoRequest
from mailservice.intake import actions as intake_actions
from mailservice.intake.commands import COMMAND_NAMES, Command
from mailservice.intake.forwarded_register import pending_author
from mailservice.intake.models import IntakeEntry
from mailservice.ipkeys import limit_key
from mailservice.mail.addresses import address_key
from mailservice.mail.parse import sanitize_filename
from mailservice.outbox import OutboxMessage
from mailservice.web.security import DbId
from mailservice.web.staff import actions, audit, auth, queue
from mailservice.web.staff.actions import ANSWER_TEMPLATES, ConsoleError, UploadedFile
from mailservice.web.staff.auth import ADMIN, ANY_ROLE, FEEDBACK_VIEW, OPERATE, ROLE_NAMES, Role
from mailservice.web.staff.deps import (
    COOKIE,
    LOGIN_COOKIE,
    Refused,
    StaffContext,
    client_ip,
    current_user,
    download,
    page,
    redirect,
    require,
    safe_next,
    secure_cookies,
    session_cookie_value,
    session_token,
    settings_of,
    stored_file,
)
from mailservice.web.staff.models import AuditEntry, StaffUser

router = APIRouter(prefix="/staff", include_in_schema=False)

Operator = Annotated[StaffContext, Depends(require(OPERATE))]
Anyone = Annotated[StaffContext, Depends(require(ANY_ROLE))]
FeedbackViewer = Annotated[StaffContext, Depends(require(FEEDBACK_VIEW))]
Admin = Annotated[StaffContext, Depends(require(ADMIN))]
Text = Annotated[str, Form()]

# Confirmation lines after a successful action (only these fixed texts are ever shown from the query string).
DONE = {
    "assign": "Исполнитель назначен.",
    "reclassify": "Классификация сохранена.",
    "status": "Статус изменён, клиент уведомлён.",
    "status_unsent": "Статус изменён; клиенту ничего не направлено: у него нет ни адреса электронной почты, ни "
    "почтового адреса.",
    "answer": "Ответ отправлен клиенту.",
    # The answer is recorded, but there is no address to send it to (defect U5): never say it was sent.
    "answer_unsent": "Ответ записан, но не направлен: у клиента нет ни адреса электронной почты, ни почтового "
    "адреса. Сообщите ответ по телефону или на личном приёме и запишите контакт в историю.",
    "register": "Запрос зарегистрирован.",
    "spam": "Письмо подтверждено как реклама и закрыто без регистрации.",
    "convert": "Письмо исполнено как команда; клиенту отправлен ответ.",
    "created": "Запрос зарегистрирован.",
    # The registration form sent again (defect V4): the first submission's request, and nothing new.
    "created_before": "Эта форма уже была отправлена: запрос зарегистрирован по первой отправке, второй не создан.",
    "contact": "Контакт записан в историю.",
    "merge": "Записи клиентов объединены.",
    "history": "Запрос истории обработан.",
    "identity": "Проверка личности записана.",
    "suggestion": "Решение по объединению записей сохранено.",
    "address": "Адрес для уведомлений изменён.",
}
HISTORY_OUTCOMES = {
    HistoryOutcome.link_sent: "Ссылка на архив истории отправлена на подтверждённый адрес.",
    HistoryOutcome.unproven: "Адрес не подтверждён: по электронной почте история не отправляется. Проверьте "
    "личность клиента (раздел «Проверка личности») или распечатайте историю и направьте её почтой.",
    HistoryOutcome.limited: "История уже отправлялась менее 6 часов назад.",
    HistoryOutcome.unknown: "Этот адрес не принадлежит клиенту.",
}
MAX_UPLOAD_FILES = 20


def _today(request: Request) -> dt.date:
    return utcnow().astimezone(settings_of(request).tz).date()


def _local(request: Request) -> Any:
    tz = settings_of(request).tz

    def local(moment: dt.datetime | None, fmt: str = "%d.%m.%Y %H:%M") -> str:
        return moment.astimezone(tz).strftime(fmt) if moment else ""

    return local


def _page_param(request: Request, name: str) -> int:
    """A page number from the query string (1 when absent or not a number; the lists clamp it)."""
    value = request.query_params.get(name, "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


def _numbers(session: Session, events: Sequence[Event]) -> dict[int, str | None]:
    """Registration numbers of the requests these events belong to."""
    ids = {e.request_id for e in events if e.request_id is not None}
    if not ids:
        return {}
    return dict(session.execute(select(InfoRequest.id, InfoRequest.number).where(InfoRequest.id.in_(ids))).all())


def _names() -> dict[str, Any]:
    tax = queue.taxonomy()
    return {
        "status_names": {s.value: n for s, n in STATUS_NAMES.items()},
        "channel_names": {c.value: n for c, n in CHANNEL_NAMES.items()},
        "role_names": {r.value: n for r, n in ROLE_NAMES.items()},
        "tax": tax,
        "event_names": EVENT_NAMES,
        # A refusal's ground as staff chose it from the form (its title), never the internal code (defect V9).
        "ground_names": {code: ground.title for code, ground in REFUSAL_GROUNDS.items()},
    }


_audit = audit.by_staff


# Login and logout -------------------------------------------------------------------------------------------


def _login_page(
    request: Request, *, error: str = "", status_code: int = 200, next_path: str = "/staff/", email: str = ""
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "web/staff/login.html",
        ctx=None,
        status_code=status_code,
        csrf_token=token,
        error=error,
        next_path=safe_next(next_path),
        email=email,
    )
    # Login CSRF: a double-submit token (cookie + hidden field), since there is no session yet.
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings_of(request)),
        path="/staff/login",
        max_age=3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/staff/") -> Response:
    """The login form (an already logged-in user goes straight on)."""
    if await current_user(request) is not None:
        return redirect(safe_next(next))
    return _login_page(request, next_path=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Text = "",
    password: Text = "",
    csrf_token: Text = "",
    next: Text = "/staff/",
) -> Response:
    """Check the password (rate-limited), open a session, set the HttpOnly cookie."""
    settings = settings_of(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not csrf_token or not auth.tokens_equal(cookie, csrf_token):
        return _login_page(request, error="Форма входа устарела. Повторите вход.", status_code=403, next_path=next)
    ip = client_ip(request)
    now = utcnow()
    with session_scope(settings) as session:
        # Failures count per address, an IPv6 address by its /64 network (mailservice/ipkeys.py).
        result = auth.authenticate(session, email=email, password=password, ip=limit_key(ip), now=now)
        address = auth.normalise_email(email)[:320]
        if result.blocked:
            audit.record(session, now=now, actor=address, action="login_blocked", ip=ip)
        elif result.user is None:
            audit.record(session, now=now, actor=address, action="login_failed", ip=ip)
        else:
            token = auth.open_session(
                session, result.user, ip=ip, user_agent=request.headers.get("user-agent", ""), now=now
            )
            audit.record(session, now=now, actor=result.user.email, actor_id=result.user.id, action="login", ip=ip)
    response: Response
    if result.blocked:
        seconds = max(1, math.ceil(result.retry_after.total_seconds()))
        wait = f"{math.ceil(seconds / 60)} мин." if seconds >= 60 else f"{seconds} с"
        response = _login_page(
            request,
            error=f"Слишком много неудачных попыток входа с этого адреса. Повторите через {wait}",
            status_code=429,
            next_path=next,
            email=email,
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    if result.user is None:
        return _login_page(request, error="Неверный адрес или пароль.", status_code=401, next_path=next, email=email)
    response = redirect(safe_next(next))
    response.set_cookie(
        COOKIE,
        session_cookie_value(settings, token),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
        path="/staff",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/staff/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Anyone) -> Response:
    """End the session."""
    settings = settings_of(request)
    token = session_token(settings, request.cookies.get(COOKIE))
    with session_scope(settings) as session:
        if token:
            auth.close_session(session, token)
        _audit(session, ctx, "logout")
    response = redirect("/staff/login")
    response.delete_cookie(COOKIE, path="/staff")
    return response


# Home and queue ---------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ctx: Anyone) -> Response:
    """Start page: what the role may open, and the queue's counters for those who work it."""
    counters, charts = None, []
    if ctx.can(OPERATE):
        from mailservice.reports.figures import home_charts  # issue 17: SVG charts drawn here, no script

        with session_scope(settings_of(request)) as session:
            counters = queue.counters(session, _today(request))
            charts = home_charts(session, settings_of(request), _today(request))
    return page(request, "web/staff/home.html", ctx=ctx, counters=counters, charts=charts, **_names())


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request, ctx: Operator) -> Response:
    """The request queue with filters and counters."""
    filters = queue.QueueFilters.parse(request.query_params)
    today = _today(request)
    settings = settings_of(request)
    with session_scope(settings) as session:
        rows, total = queue.fetch(session, filters, today, settings.tz)
        counters = queue.counters(session, today)
        return page(
            request,
            "web/staff/queue.html",
            ctx=ctx,
            filters=filters,
            rows=rows,
            total=total,
            more=total > queue.COUNT_CAP,
            count_cap=queue.COUNT_CAP,
            counters=counters,
            pages=queue.page_count(total, filters.page, len(rows)),
            overdue={r.id for r in rows if queues.is_overdue(r, today)},
            register_by={r.id: queues.registration_date(settings, r) for r in rows},
            forward_by={r.id: queues.forwarding_date(r, settings.tz) for r in rows},
            today=today,
            local=_local(request),
            **_names(),
        )


# The request page -------------------------------------------------------------------------------------------


def _load_request(session: Session, request_id: int) -> InfoRequest:
    found = session.scalar(
        select(InfoRequest)
        .where(InfoRequest.id == request_id)
        .options(joinedload(InfoRequest.client).selectinload(Client.contacts), selectinload(InfoRequest.events))
    )
    if found is None:
        raise Refused(404, "Запрос не найден")
    return found


def _request_page(
    request: Request,
    ctx: StaffContext,
    request_id: DbId,
    *,
    error: str = "",
    status_code: int = 200,
    answer_text: str | None = None,
    status_form: dict[str, str] | None = None,
    contact_form: dict[str, str] | None = None,
) -> HTMLResponse:
    settings = settings_of(request)
    today = _today(request)
    with session_scope(settings) as session:
        req = _load_request(session, request_id)
        template = request.query_params.get("template", "")
        if answer_text is None and template in ANSWER_TEMPLATES:
            answer_text = actions.answer_text(settings, template, req, ctx.name, ctx.position, today)
        timeline = actions.client_timeline(session, req.client_id, _page_param(request, "tl"))
        numbers = _numbers(session, timeline.items)
        attachments = session.scalars(select(Attachment).where(Attachment.request_id == req.id)).all()
        staff = session.scalars(
            select(StaffUser)
            .where(StaffUser.active.is_(True), StaffUser.role.in_([Role.operator, Role.administrator]))
            .order_by(StaffUser.name, StaffUser.email)
        ).all()
        current = Status(req.status)
        targets = [s for s in TRANSITIONS[current] if s in STAFF_SETTABLE]
        extensions = sum(1 for e in req.events if e.to_status == Status.extended)
        if extensions >= max_extensions(Law(req.law)):  # the law allows one: no form that can only be refused
            targets = [s for s in targets if s is not Status.extended]
        done = request.query_params.get("done", "")
        return page(
            request,
            "web/staff/request.html",
            ctx=ctx,
            status_code=status_code,
            req=req,
            client=req.client,
            timeline=timeline.items,
            timeline_page=timeline,
            numbers=numbers,
            attachments=attachments,
            classification=req.classification if isinstance(req.classification, dict) else {},
            targets={s.value for s in targets},
            grounds=[g for g in REFUSAL_GROUNDS.values() if g.law == req.law],
            answer_templates=ANSWER_TEMPLATES,
            answer_text=answer_text or "",
            status_form=status_form or {},
            # A refused «Записать контакт» comes back open with what was typed (defect V11).
            contact_form=contact_form or {},
            chosen_template=template if template in ANSWER_TEMPLATES else "",
            staff=staff,
            register_by=queues.registration_date(settings, req),
            registration_term=queues.registration_term(settings, req),
            registered_late=any(e.kind == "registered" and (e.data or {}).get("late_registration") for e in req.events),
            oral=req.channel in ORAL_CHANNELS,
            now_local=utcnow().astimezone(settings.tz).strftime("%Y-%m-%dT%H:%M"),
            forward_by=queues.forwarding_date(req, settings.tz),
            hold_reasons=intake_actions.hold_reasons_of(req),
            hold_summary=intake_actions.held_summary(intake_actions.hold_reasons_of(req)),
            commands=COMMAND_NAMES if intake_actions.can_convert(req) else {},
            forwarded_author=pending_author(req),
            today=today,
            overdue=queues.is_overdue(req, today),
            error=error,
            done=DONE.get(done, ""),
            local=_local(request),
            **_names(),
        )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, ctx: Operator, request_id: DbId) -> Response:
    """One request: details, classification with reasons, the client's timeline, the lifecycle's actions."""
    return _request_page(request, ctx, request_id)


@router.post("/requests/{request_id}/assign")
def request_assign(request: Request, ctx: Operator, request_id: DbId, assignee: Text = "", unit: Text = "") -> Response:
    """Assign the request to a member of staff and a unit."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            actions.assign(session, req, assignee=assignee, unit=unit, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "request_assign", "request", req.id)
    except ConsoleError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=assign")


@router.post("/requests/{request_id}/reclassify")
def request_reclassify(
    request: Request,
    ctx: Operator,
    request_id: DbId,
    type: Text = "",
    topic: Text = "",
    urgency: Text = "",
    appeal_kind: Text = "",
) -> Response:
    """Correct the type, topic, urgency (and kind of appeal); clears "needs review"."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            actions.reclassify(
                session,
                settings,
                req,
                type_=type,
                topic=topic,
                urgency=urgency,
                appeal_kind=appeal_kind or None,
                actor=ctx.email,
                now=utcnow(),
            )
            _audit(session, ctx, "request_reclassify", "request", req.id, type=type, topic=topic, urgency=urgency)
    except ConsoleError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=reclassify")


@router.post("/requests/{request_id}/register")
def request_register(request: Request, ctx: Operator, request_id: DbId) -> Response:
    """Register a request that was kept without a number."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            actions.register(session, settings, req, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "request_register", "request", req.id)
    except ConsoleError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=register")


@router.post("/requests/{request_id}/spam")
def request_spam(request: Request, ctx: Operator, request_id: DbId) -> Response:
    """Confirm a held letter is advertising with no request in it: closed without a number, no notice."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            intake_actions.confirm_spam(session, req, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "request_spam", "request", req.id)
    except intake_actions.ActionError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=spam")


@router.post("/requests/{request_id}/convert")
def request_convert(request: Request, ctx: Operator, request_id: DbId, command: Text = "") -> Response:
    """Carry out a registered letter as the command it really was (subscribe, unsubscribe, history)."""
    settings = settings_of(request)
    try:
        chosen = Command(command)
    except ValueError:
        return _request_page(request, ctx, request_id, error="Выберите команду", status_code=400)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            outcome = intake_actions.convert_to_command(session, settings, req, chosen, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "request_convert", "request", req.id, command=chosen.value, outcome=outcome)
    except intake_actions.ActionError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=convert")


@router.post("/requests/{request_id}/status")
def request_status(
    request: Request,
    ctx: Operator,
    request_id: DbId,
    target: Text = "",
    comment: Text = "",
    ground: Text = "",
    days: Text = "",
    forwarded_to: Text = "",
) -> Response:
    """Clarification, extension, forwarding, refusal (legal ground required), closing, back to work."""
    settings = settings_of(request)
    # A refusal gives the page back with what was typed (brief "staff's working day": an error loses no input).
    typed = {"target": target, "comment": comment, "ground": ground, "days": days, "forwarded_to": forwarded_to}
    try:
        status = Status(target)
    except ValueError:
        return _request_page(request, ctx, request_id, error="Неизвестный статус", status_code=400)
    extension: int | None = None
    if status is Status.extended:
        try:
            extension = int(days)
        except ValueError:
            return _request_page(
                request, ctx, request_id, error="Укажите число дней продления", status_code=400, status_form=typed
            )
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            actions.change_status(
                session,
                settings,
                req,
                status,
                actor=ctx.email,
                now=utcnow(),
                comment=comment,
                ground=ground or None,
                extension_days=extension,
                forwarded_to=forwarded_to,
            )
            _audit(session, ctx, "request_status", "request", req.id, to=status.value, ground=ground or None)
            done = "status" if notifications.reachable(req) else "status_unsent"  # never «уведомлён» in vain (U5)
    except ConsoleError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400, status_form=typed)
    return redirect(f"/staff/requests/{request_id}?done={done}")


@router.post("/requests/{request_id}/answer")
async def request_answer(request: Request, ctx: Operator, request_id: DbId) -> Response:
    """Send the answer (text from a template, edited) with attached files."""
    settings = settings_of(request)
    form = await request.form()
    text = form.get("text")
    text = text if isinstance(text, str) else ""
    files: list[UploadedFile] = []
    for item in form.getlist("files")[:MAX_UPLOAD_FILES]:
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(settings.max_attachment_bytes + 1)
            content_type = item.content_type or "application/octet-stream"
            if "/" not in content_type or any(c in content_type for c in "\r\n"):
                content_type = "application/octet-stream"
            files.append(UploadedFile(sanitize_filename(item.filename, content_type), content_type, data))

    def work() -> Response:
        try:
            with session_scope(settings) as session:
                req = _load_request(session, request_id)
                actions.answer(
                    session, settings, req, text=text, files=files, actor=ctx.email, now=utcnow(), answerer=ctx.name
                )
                _audit(session, ctx, "request_answer", "request", req.id, files=len(files))
                done = "answer" if notifications.reachable(req) else "answer_unsent"
        except ConsoleError as exc:
            return _request_page(request, ctx, request_id, error=str(exc), status_code=400, answer_text=text)
        return redirect(f"/staff/requests/{request_id}?done={done}")

    return await run_in_threadpool(work)


# Files ------------------------------------------------------------------------------------------------------


@router.get("/attachments/{attachment_id}")
def attachment_download(request: Request, ctx: Operator, attachment_id: DbId) -> Response:
    """Download an attachment of a request."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        att = session.get(Attachment, attachment_id)
        if att is None:
            raise Refused(404, "Вложение не найдено")
        data = stored_file(settings, att.sha256, "Файл больше не хранится (срок хранения истёк).")
        _audit(session, ctx, "attachment_download", "attachment", att.id)
        return download(data, sanitize_filename(att.filename, att.content_type))


@router.get("/events/{event_id}/message.eml")
def message_download(request: Request, ctx: Operator, event_id: DbId) -> Response:
    """Download the original e-mail of a history event (received or sent)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        event = session.get(Event, event_id)
        data: bytes | None = None
        if event is not None and event.intake_id is not None:
            entry = session.get(IntakeEntry, event.intake_id)
            if entry is not None:
                try:
                    data = BlobStore(settings.blob_dir).get(entry.raw_sha256)
                except (FileNotFoundError, ValueError):
                    data = None
        elif event is not None and event.outbox_id is not None:
            row = session.get(OutboxMessage, event.outbox_id)
            data = row.raw if row is not None and row.raw else None
        if event is None or data is None:
            raise Refused(404, "Письмо не найдено")
        _audit(session, ctx, "message_download", "event", event.id)
        return download(data, f"message-{event.id}.eml")


# Clients ----------------------------------------------------------------------------------------------------


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, ctx: Operator, q: str = "") -> Response:
    """Find clients by name, organisation, address or phone."""
    with session_scope(settings_of(request)) as session:
        found = actions.find_clients_page(session, q[:100], page=_page_param(request, "page"))
        return page(request, "web/staff/clients.html", ctx=ctx, q=q[:100], clients=found.items, found=found, **_names())


def _client_page(  # also renders the identity pages' errors (web/staff/identity.py)
    request: Request,
    ctx: StaffContext,
    client_id: int,
    *,
    error: str = "",
    message: str = "",
    status_code: int = 200,
    client_form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The client page; ``client_form``: a refused check or merge as typed (its ``form`` key names which form:
    ``identity``, ``m`` for a merge, ``s<id>`` for a suggested one) to fill in again (defect V11)."""
    from mailservice.web.staff import identity as identity_pages

    with session_scope(settings_of(request)) as session:
        client = session.scalar(select(Client).where(Client.id == client_id).options(selectinload(Client.contacts)))
        if client is None:
            raise Refused(404, "Клиент не найден")
        requests_ = actions.client_requests(session, client.id, _page_param(request, "rq"))
        timeline = actions.client_timeline(session, client.id, _page_param(request, "tl"))
        merged = session.scalars(select(Client).where(Client.merged_into_id == client.id)).all()
        return page(
            request,
            "web/staff/client.html",
            ctx=ctx,
            status_code=status_code,
            client=client,
            requests=requests_.items,
            requests_page=requests_,
            numbers=_numbers(session, timeline.items),
            timeline=timeline.items,
            timeline_page=timeline,
            merged=merged,
            **identity_pages.page_context(session, client.id),
            client_form=client_form or {},
            error=error,
            message=message or DONE.get(request.query_params.get("done", ""), ""),
            local=_local(request),
            **_names(),
        )


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, ctx: Operator, client_id: DbId) -> Response:
    """All requests and events of one client."""
    return _client_page(request, ctx, client_id)


@router.post("/clients/{client_id}/history")
def client_history(request: Request, ctx: Operator, client_id: DbId, address: Text = "") -> Response:
    """Send the client their history: only to an address proven for the client (README, "Security model")."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        client = session.get(Client, client_id)
        if client is None:
            raise Refused(404, "Клиент не найден")
        contact = session.scalar(
            select(ClientContact).where(
                ClientContact.client_id == client.id,
                ClientContact.kind == "email",
                ClientContact.value_key == address_key(address),
            )
        )
        if contact is None:
            outcome = HistoryOutcome.unknown
        else:
            outcome = request_history(session, settings, client=client, address=address, via="staff", now=utcnow())
            _audit(session, ctx, "history_send", "client", client.id, outcome=outcome.value)
    if outcome in (HistoryOutcome.unknown, HistoryOutcome.unproven):
        return _client_page(request, ctx, client_id, error=HISTORY_OUTCOMES[outcome], status_code=400)
    return _client_page(request, ctx, client_id, message=HISTORY_OUTCOMES[outcome])


# Feedback, audit, staff -------------------------------------------------------------------------------------


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(request: Request, ctx: FeedbackViewer) -> Response:
    """Ratings: averages per month, channel and unit, and the latest comments."""
    return _feedback_page(request, ctx)


def _feedback_page(  # also renders a refused answer (web/staff/feedback_console.py)
    request: Request,
    ctx: StaffContext,
    *,
    error: str = "",
    status_code: int = 200,
    typed_answer: tuple[int, str] | None = None,
) -> HTMLResponse:
    """The feedback page; ``typed_answer``: (comment id, text) of a refused answer, its form opened again."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        stats = feedback_stats(session, settings)
        anonymous = feedback_stats(session, settings, sources=ANONYMOUS_SOURCES)  # the site's and the QR code's form
        latest = session.scalars(select(FeedbackResponse).order_by(FeedbackResponse.id.desc()).limit(50)).all()
        return page(
            request,
            "web/staff/feedback.html",
            ctx=ctx,
            stats=stats,
            anonymous=anonymous,
            latest=latest,
            channel_label=channel_label,
            answered=request.query_params.get("done") == "answer",
            error=error,
            typed_answer=typed_answer or (0, ""),
            status_code=status_code,
            local=_local(request),
            **_names(),
        )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Admin, page_no: Annotated[int, Query(alias="page")] = 1) -> Response:
    """The audit log, newest first."""
    page_no = max(1, min(page_no, 10_000))
    with session_scope(settings_of(request)) as session:
        entries = session.scalars(
            select(AuditEntry).order_by(AuditEntry.id.desc()).limit(100).offset((page_no - 1) * 100)
        ).all()
        # A request is named by its registration number, as staff know it, not by the row's id (staff-day tryout of
        # 7 December: «запрос 16» was 2026-000015).
        request_ids = {e.object_id for e in entries if e.object_type == "request" and e.object_id is not None}
        numbers = dict(
            session.execute(select(InfoRequest.id, InfoRequest.number).where(InfoRequest.id.in_(request_ids))).all()
        )
        return page(
            request,
            "web/staff/audit.html",
            ctx=ctx,
            entries=entries,
            numbers=numbers,
            page_no=page_no,
            action_names=audit.ACTION_NAMES,
            object_names=audit.OBJECT_NAMES,
            details_text=audit.details_text,
            local=_local(request),
            **_names(),
        )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: Admin) -> Response:
    """Staff accounts (created and changed with `mailservice staff`)."""
    with session_scope(settings_of(request)) as session:
        users = session.scalars(select(StaffUser).order_by(StaffUser.email)).all()
        return page(request, "web/staff/users.html", ctx=ctx, users=users, local=_local(request), **_names())
