"""Console pages of issue 16: a contact recorded on a request (call, visit, letter with text, time and scans), the
letters to post for clients without e-mail, and the history printed for a client proven in person."""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request
from fastapi import UploadFile as FastAPIUpload
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.db import session_scope, utcnow
from mailservice.documents import DOCX_TYPE, PDF_TYPE
from mailservice.history.archive import write_zip
from mailservice.inforequests import postal
from mailservice.inforequests.contacts import record_contact
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, IdentityCheck, PostalLetter
from mailservice.web.security import DbId
from mailservice.web.staff import audit
from mailservice.web.staff.actions import ConsoleError
from mailservice.web.staff.auth import OPERATE
from mailservice.web.staff.deps import Refused, StaffContext, page, redirect, require, secure, settings_of
from mailservice.web.staff.uploads import store_uploads

router = APIRouter(prefix="/staff", include_in_schema=False)

Operator = Annotated[StaffContext, Depends(require(OPERATE))]
Text = Annotated[str, Form()]
Files = Annotated[list[FastAPIUpload], File()]
EARLIEST_YEAR = 2000


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
    from mailservice.web.staff.routes import _load_request, _request_page

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
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=contact")


# Letters to post ------------------------------------------------------------------------------------------------


def _audit(session: Session, ctx: StaffContext, action: str, object_type: str, object_id: int) -> None:
    audit.record(
        session,
        now=utcnow(),
        actor=ctx.email,
        actor_id=ctx.user_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        ip=ctx.ip,
    )


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
        try:
            data = BlobStore(settings.blob_dir).get(sha)
        except (FileNotFoundError, ValueError):
            raise Refused(410, "Файл удалён", "Файл письма больше не хранится.") from None
        name = f"letter-{letter.number.replace('/', '-')}.{ext}"
    response = Response(
        data,
        media_type=DOCX_TYPE if ext == "docx" else PDF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return secure(response)


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
        _audit(session, ctx, "letter_sent", "letter", letter.id)
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
        _audit(session, ctx, "history_print", "client", client.id)
        stamp = now.astimezone(settings.tz).strftime("%Y%m%d")
    response = Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="history-{client_id}-{stamp}.zip"'},
    )
    return secure(response)
