"""Public pages of the request channel: the form at /request, the status page at /status/{token} and the joining
page at /request/claim/{token} (the owner of a typed address joins the request to their history, defect F12)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from mailservice.blobs import BlobStore
from mailservice.db import session_scope, utcnow
from mailservice.history.routes import notice, public_page
from mailservice.inforequests import claims
from mailservice.mail.headers import normalise_address
from mailservice.mail.parse import sanitize_filename
from mailservice.tokens import Purpose, TokenError, load, sign
from mailservice.web.security import DbId, client_ip, secure_public
from mailservice.web.staff import audit
from mailservice.web.staff.auth import tokens_equal
from mailservice.web.staff.deps import secure_cookies, settings_of
from mailservice.webrequests import form as rules
from mailservice.webrequests import status
from mailservice.webrequests.register import register_web_request, store_files

router = APIRouter(tags=["requests"])

FIELDS = ("name", "organisation", "email", "postal_address", "subject", "text")
AUTOMATED = (
    "Форма отправлена слишком быстро или устарела. Проверьте введённые сведения и отправьте её ещё раз "
    "(файлы нужно выбрать заново)."
)
TOO_MANY = (
    "Слишком много запросов",
    "С вашего адреса за последний час отправлено много запросов. Попробуйте позже или позвоните в справочную службу.",
)
TOO_LARGE = (
    "Слишком большой запрос",
    "Файлы вместе больше допустимого размера. Приложите меньше файлов или направьте их письмом по почте.",
)
NOT_FOUND = (
    "Запрос не найден",
    "Ссылка повреждена, изменена или запрос больше не хранится. Узнать о своём запросе можно в справочной службе.",
)


def _opened_value(request: Request) -> str:
    """When the form was opened, signed (its own salt): the minimum fill time is measured from it."""
    return sign(settings_of(request), Purpose.request_form, {"t": int(utcnow().timestamp())})


def _opened_at(request: Request, value: str) -> float | None:
    try:
        payload = load(settings_of(request), Purpose.request_form, value)
    except TokenError:
        return None
    moment = payload.get("t") if isinstance(payload, dict) else None
    return float(moment) if isinstance(moment, int) else None


def _form_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    settings = settings_of(request)
    return public_page(
        request,
        "web/request/form.html",
        status_code=status_code,
        values=values or {},
        errors=errors or {},
        opened=_opened_value(request),
        accept=rules.ACCEPT,
        max_files=settings.request_max_files,
        max_file=rules.mb(settings.request_max_file_bytes),
        max_total=rules.mb(settings.max_attachment_bytes),
    )


@router.get("/request", response_class=HTMLResponse, summary="Форма запроса информации")
def request_form(request: Request) -> Response:
    """The request form of the official site (8-FZ art. 18, seed 004 p. 7)."""
    return _form_page(request)


def _text(form: FormData, name: str, limit: int = rules.MAX_TEXT + 1) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


@router.post("/request", response_class=HTMLResponse, summary="Направить запрос информации")
async def request_submit(request: Request) -> Response:
    """Register the request at once and show its number and due date."""
    settings = settings_of(request)
    # A body larger than every file and field together is refused before it is read.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_attachment_bytes + 2 * 1024 * 1024:
        return notice(request, *TOO_LARGE, status_code=413, link="/request")
    form = await request.form(max_files=20, max_fields=50)
    values = {name: _text(form, name) for name in FIELDS}
    files: list[rules.FormFile] = []
    for item in form.getlist("files")[:20]:
        if isinstance(item, UploadFile) and item.filename:
            files.append(rules.FormFile(item.filename, await item.read(settings.request_max_file_bytes + 1)))
    honeypot = _text(form, "website")
    opened = _opened_at(request, _text(form, "opened", 500))
    ip = client_ip(request)
    await form.close()

    def work() -> Response:
        now = utcnow()
        if rules.looks_automated(honeypot, opened, now, settings.request_min_fill_seconds):
            return _form_page(request, values=values, errors={"form": AUTOMATED}, status_code=400)
        data = rules.RequestForm(**values)
        email = normalise_address(data.email) if data.email else None
        errors = rules.problems(
            data,
            files,
            email_ok=email is not None,
            max_files=settings.request_max_files,
            max_file_bytes=settings.request_max_file_bytes,
            max_total_bytes=settings.max_attachment_bytes,
        )
        if errors:
            return _form_page(request, values=values, errors=errors, status_code=422)
        from mailservice.mailings.subscribers import allow, ip_key  # the one throttle of the public forms

        with session_scope(settings) as session:
            if not allow(session, "request", ip_key(ip), settings.request_limit_per_ip, now):
                return notice(request, *TOO_MANY, status_code=429, link="/request")
            created = register_web_request(
                session, settings, data, email=email, files=store_files(settings, files), now=now
            )
            context: dict[str, Any] = {
                "number": created.number,
                "due_date": created.due_date,
                "registered_on": created.registered_on,
                "email": email,
                # The status link is shown here only when the answer goes by post: a request that named an e-mail
                # address gets it there, so typing someone else's address shows nothing of their mail.
                "status_link": "" if email else status.status_url(settings, created),
            }
        return public_page(request, "web/request/done.html", **context)

    return await run_in_threadpool(work)


@router.get("/status/{token}", response_class=HTMLResponse, summary="Статус запроса")
def status_page(request: Request, token: str) -> Response:
    """One request's status, due date, events and answer (GET shows only)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        found = status.find(session, settings, token)
        if found is None:
            return notice(request, *NOT_FOUND, status_code=404, link="/request")
        return public_page(
            request,
            "web/request/status.html",
            view=status.view(session, found),
            token=token,
            tz=settings.tz,
        )


@router.get("/status/{token}/files/{attachment_id}", summary="Файл ответа")
def status_file(request: Request, token: str, attachment_id: DbId) -> Response:
    """A file of the department's answer to this request (always a download, never rendered)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        found = status.find(session, settings, token)
        attachment = status.answer_file(session, found, attachment_id) if found is not None else None
        if found is None or attachment is None:
            return notice(request, *NOT_FOUND, status_code=404, link="/request")
        try:
            data = BlobStore(settings.blob_dir).get(attachment.sha256)
        except (FileNotFoundError, ValueError):
            return notice(request, "Файл не сохранился", "Этот файл больше не хранится.", status_code=410, link="")
        name = sanitize_filename(attachment.filename, attachment.content_type)
    response = Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )
    return secure_public(response)


# Joining a request to the history of the address's owner (inforequests/claims.py) ------------------------------

CLAIM_COOKIE = "mailservice_claim"
CLAIM_ERRORS = {
    "invalid": (
        400,
        "Ссылка недействительна",
        "Ссылка повреждена или изменена, либо обращение больше нельзя присоединить по ней. Обратитесь в справочную "
        "службу.",
    ),
    "expired": (
        410,
        "Срок действия ссылки истёк",
        "Ссылка действует 30 дней. Присоединить обращение к вашей истории можно в справочной службе после проверки "
        "личности.",
    ),
    "stale": (
        403,
        "Страница устарела",
        "Откройте ссылку из письма ещё раз и нажмите кнопку на открывшейся странице.",
    ),
}
JOINED = (
    "Обращение присоединено",
    "Обращение № {number} присоединено к вашей истории обращений. Уведомления и ответ придут на этот адрес.",
)


def _claim_error(request: Request, kind: str) -> HTMLResponse:
    status_code, title, text = CLAIM_ERRORS[kind]
    return notice(request, title, text, status_code=status_code, link="")


@router.get("/request/claim/{token}", response_class=HTMLResponse, summary="Присоединение обращения к истории")
def claim_page(request: Request, token: str) -> Response:
    """Show the button (GET changes nothing: a mail scanner that fetches the link joins nothing)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            claim = claims.find(session, settings, token)
        except claims.ClaimLinkError as exc:
            return _claim_error(request, exc.kind)
        if claim.joined:
            return notice(request, JOINED[0], JOINED[1].format(number=claim.request.number), link="")
        number = claim.request.number
    # A double-submit token (cookie + hidden field): only this page can post the form.
    csrf = secrets.token_urlsafe(24)
    response = public_page(request, "web/request/claim.html", token=token, number=number, csrf_token=csrf)
    response.set_cookie(
        CLAIM_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/request/claim",
        max_age=3600,
    )
    return response


@router.post("/request/claim/{token}", response_class=HTMLResponse, summary="Присоединить обращение к истории")
def claim_submit(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Join the request to the history of the address's owner; a second use changes nothing."""
    settings = settings_of(request)
    cookie = request.cookies.get(CLAIM_COOKIE, "")
    if not cookie or not csrf_token or not tokens_equal(cookie, csrf_token):
        return _claim_error(request, "stale")
    now = utcnow()
    with session_scope(settings) as session:
        try:
            claim = claims.join(session, settings, token, now)
        except claims.ClaimLinkError as exc:
            return _claim_error(request, exc.kind)
        if not claim.joined:  # a second use is recorded nowhere: it changed nothing
            audit.record(
                session,
                now=now,
                actor=claim.request.reply_email or "",
                action="request_claim",
                object_type="request",
                object_id=claim.request.id,
                details={"from_client": claim.record_id, "to_client": claim.owner.id},
                ip=client_ip(request),
            )
        number = claim.request.number
    response = notice(request, JOINED[0], JOINED[1].format(number=number), link="")
    response.delete_cookie(CLAIM_COOKIE, path="/request/claim")
    return response
