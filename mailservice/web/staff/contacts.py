"""Console pages of every channel (issue 16): requests registered from the phone, a visit, the post or a social
network (with scans), a contact recorded on a request (call, visit, letter with text, time and scans), the letters
to post for clients without e-mail, and the history printed for a client proven in person.

Its router is mounted before the console's own, so that ``/staff/requests/new`` is not taken for a request id."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request
from fastapi import UploadFile as FastAPIUpload
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from mailservice.db import session_scope, utcnow
from mailservice.documents import DOCX_TYPE, PDF_TYPE
from mailservice.history.archive import write_zip
from mailservice.inforequests import postal
from mailservice.inforequests.contacts import record_contact
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, IdentityCheck, PostalLetter
from mailservice.mail.headers import normalise_address
from mailservice.web.security import DbId
from mailservice.web.staff import actions, audit, once
from mailservice.web.staff.actions import ConsoleError, ContactRequest
from mailservice.web.staff.auth import OPERATE
from mailservice.web.staff.deps import (
    Refused,
    StaffContext,
    download,
    page,
    redirect,
    require,
    secure,
    settings_of,
    stored_file,
)
from mailservice.web.staff.routes import _names
from mailservice.web.staff.uploads import store_uploads

router = APIRouter(prefix="/staff", include_in_schema=False)

Operator = Annotated[StaffContext, Depends(require(OPERATE))]
Text = Annotated[str, Form()]
Files = Annotated[list[FastAPIUpload], File()]
EARLIEST_YEAR = 2000
ALREADY_SENT = "Эта форма уже отправлена: запрос по ней зарегистрирован. Откройте форму заново для нового запроса."
STALE_FORM = (
    f"Форма открыта более {once.MAX_AGE.total_seconds() / 3600:.0f} часов назад и больше не принимается. Проверьте "
    "в реестре, не зарегистрирован ли уже этот запрос; если нет, отправьте форму ещё раз — введённое сохранено."
)


def local_moment(value: str, tz: dt.tzinfo, now: dt.datetime) -> dt.datetime:
    """A ``datetime-local`` value typed by staff, in the department's zone, as UTC (empty: now)."""
    if not value:
        return now
    try:
        moment = dt.datetime.fromisoformat(value)
        if moment.year < EARLIEST_YEAR:
            raise ValueError(moment.year)
        return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ConsoleError("Неверные дата и время") from None


# Registering requests from other channels -------------------------------------------------------------------


def _register_page(
    request: Request,
    ctx: StaffContext,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    settings = settings_of(request)
    now_local = utcnow().astimezone(settings.tz)
    return page(
        request,
        "web/staff/register.html",
        ctx=ctx,
        error=error,
        form=form or {"received": now_local.strftime("%Y-%m-%dT%H:%M"), "form_id": once.new_token(settings)},
        channels=actions.MANUAL_CHANNELS,
        status_code=status_code,
        **_names(),
    )


@router.get("/requests/new", response_class=HTMLResponse)
def register_form(request: Request, ctx: Operator) -> Response:
    """Form for a request taken by phone, at a visit, by post or from a social network."""
    return _register_page(request, ctx)


@router.post("/requests/new", response_class=HTMLResponse)
def register_submit(
    request: Request,
    ctx: Operator,
    channel: Text = "",
    received: Text = "",
    subject: Text = "",
    text: Text = "",
    name: Text = "",
    organisation: Text = "",
    email: Text = "",
    phone: Text = "",
    social: Text = "",
    postal_address: Text = "",
    form_id: Text = "",
    files: Files = [],  # noqa: B006  (FastAPI reads the default; never mutated)
) -> Response:
    """Register it (number and term at once; oral requests with date and time; scans of a letter attached).

    The same page sent twice registers once (``form_id``, the page load's token): the second is shown the first."""
    settings = settings_of(request)
    form_id = form_id.strip()[: once.TOKEN_CHARS]
    form = {k: v for k, v in locals().items() if isinstance(v, str)}
    try:
        chosen = Channel(channel)
    except ValueError:
        return _register_page(request, ctx, error="Выберите канал", form=form, status_code=400)
    address = None
    if email.strip():
        address = normalise_address(email.strip())
        if address is None:
            return _register_page(request, ctx, error="Неверный адрес электронной почты", form=form, status_code=400)
    now = utcnow()
    try:
        local = dt.datetime.fromisoformat(received) if received else now.astimezone(settings.tz).replace(tzinfo=None)
        if local.year < EARLIEST_YEAR:  # 0001-01-01 would overflow in UTC; no request predates the service by decades
            raise ValueError(local.year)
        received_at = (local if local.tzinfo else local.replace(tzinfo=settings.tz)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return _register_page(request, ctx, error="Неверные дата и время поступления", form=form, status_code=400)
    data = ContactRequest(
        channel=chosen,
        received_at=min(received_at, now) if received_at <= now + dt.timedelta(minutes=1) else received_at,
        subject=subject[:500],
        text=text,
        name=name[:300],
        organisation=organisation[:300],
        email=address,
        phone=phone.strip()[:40] or None,
        social=social,
        postal_address=postal_address,
    )
    try:
        with session_scope(settings) as session:
            use = once.claim(session, settings, form_id, "request_register", now) if form_id else None
            data = dataclasses.replace(data, files=tuple(store_uploads(settings, files)))
            created = actions.register_contact_request(session, settings, data, actor=ctx.email, now=now)
            audit.by_staff(session, ctx, "request_register", "request", created.id, channel=chosen.value)
            new_id = created.id
            if use is not None:
                use.object_id = new_id
    except ConsoleError as exc:
        return _register_page(request, ctx, error=str(exc), form=form, status_code=400)
    except once.AlreadyUsed as used:
        if used.object_id is None:  # not expected: the first submission records what it created
            return _register_page(request, ctx, error=ALREADY_SENT, form=form, status_code=409)
        return redirect(f"/staff/requests/{used.object_id}?done=created_before")
    except once.Stale:
        # What was typed stays, under a new token: sending it again is a deliberate new registration.
        form["form_id"] = once.new_token(settings)
        return _register_page(request, ctx, error=STALE_FORM, form=form, status_code=409)
    return redirect(f"/staff/requests/{new_id}?done=created")


# Contacts on a request ---------------------------------------------------------------------------------------


@router.post("/requests/{request_id}/contact")
def request_contact(
    request: Request,
    ctx: Operator,
    request_id: DbId,
    channel: Text = "",
    direction: Text = "",
    text: Text = "",
    at: Text = "",
    files: Files = [],  # noqa: B006  (FastAPI reads the default, it is never mutated)
) -> Response:
    """Record a call, visit or letter on the request; it enters the timeline and the client's history."""
    from mailservice.web.staff.routes import _load_request, _request_page  # the request page it returns to

    settings = settings_of(request)
    now = utcnow()
    try:
        try:
            chosen = Channel(channel)
        except ValueError:
            raise ConsoleError("Выберите вид контакта") from None
        moment = local_moment(at, settings.tz, now)
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            stored = store_uploads(settings, files)
            try:
                event = record_contact(
                    session,
                    settings,
                    req,
                    channel=chosen,
                    direction=direction,
                    text=text,
                    at=moment,
                    files=stored,
                    actor=ctx.email,
                    now=now,
                )
            except ValueError as exc:
                raise ConsoleError(str(exc)) from exc
            session.flush()
            audit.record(
                session,
                now=now,
                actor=ctx.email,
                actor_id=ctx.user_id,
                action="request_contact",
                object_type="request",
                object_id=req.id,
                details={"event": event.id, "channel": chosen.value, "files": len(stored)},
                ip=ctx.ip,
            )
    except ConsoleError as exc:
        typed = {"channel": channel, "direction": direction, "text": text, "at": at}
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400, contact_form=typed)
    return redirect(f"/staff/requests/{request_id}?done=contact")


# Letters to post ------------------------------------------------------------------------------------------------


@router.get("/letters", response_class=HTMLResponse)
def letters_page(request: Request, ctx: Operator) -> Response:
    """Letters to clients without e-mail: those waiting to be posted, then the latest sent."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        return page(
            request,
            "web/staff/letters.html",
            ctx=ctx,
            waiting=postal.to_post(session),
            sent=postal.recently_sent(session),
            done=request.query_params.get("done", "") == "sent",
            local=lambda moment: moment.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M") if moment else "",
        )


@router.get("/letters/{letter_id}.{ext}")
def letter_file(request: Request, ctx: Operator, letter_id: DbId, ext: str) -> Response:
    """The letter as DOCX or PDF, to print."""
    if ext not in ("docx", "pdf"):
        raise Refused(404, "Письмо не найдено")
    settings = settings_of(request)
    with session_scope(settings) as session:
        letter = session.get(PostalLetter, letter_id)
        if letter is None:
            raise Refused(404, "Письмо не найдено")
        sha = letter.docx_sha256 if ext == "docx" else letter.pdf_sha256
        data = stored_file(settings, sha, "Файл письма больше не хранится.")
        name = f"letter-{letter.number.replace('/', '-')}.{ext}"
        # README "What is logged": files downloaded; a letter holds the citizen's name, address and our answer.
        audit.by_staff(session, ctx, "letter_download", "letter", letter.id, format=ext)
    return download(data, name, DOCX_TYPE if ext == "docx" else PDF_TYPE)


@router.post("/letters/{letter_id}/sent")
def letter_sent(request: Request, ctx: Operator, letter_id: DbId) -> Response:
    """Staff posted the letter."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        letter = session.get(PostalLetter, letter_id)
        if letter is None:
            raise Refused(404, "Письмо не найдено")
        try:
            postal.mark_sent(session, letter, actor=ctx.email, now=utcnow())
        except postal.LetterError as exc:
            raise Refused(409, "Письмо уже отправлено", str(exc)) from None
        audit.by_staff(session, ctx, "letter_sent", "letter", letter.id)
    return redirect("/staff/letters?done=sent")


# The history printed for a client proven in person ----------------------------------------------------------------


@router.get("/clients/{client_id}/history.zip")
def client_history_print(request: Request, ctx: Operator, client_id: DbId) -> Response:
    """The client's history archive (summary to print, originals, files), for a client whose identity staff
    checked in person (the check recorded with the document type): handed over or posted on paper."""
    settings = settings_of(request)
    now = utcnow()
    with session_scope(settings) as session:
        client = session.get(Client, client_id)
        if client is None:
            raise Refused(404, "Клиент не найден")
        checked = session.scalar(select(IdentityCheck.id).where(IdentityCheck.client_id == client.id).limit(1))
        if checked is None:
            raise Refused(
                403,
                "Личность клиента не проверена",
                "Историю взаимодействия можно распечатать только для клиента, чья личность проверена лично "
                "(раздел «Проверка личности» на странице клиента).",
            )
        buffer = io.BytesIO()
        write_zip(session, settings, client.id, now, buffer)
        audit.by_staff(session, ctx, "history_print", "client", client.id)
        stamp = now.astimezone(settings.tz).strftime("%Y%m%d")
    response = Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="history-{client_id}-{stamp}.zip"'},
    )
    return secure(response)
