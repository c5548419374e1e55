"""Public pages of the history export: the request form, address confirmation and the download.

The form's answer is the same page after the same work whatever the address (nothing, not even its timing, tells
whether someone is a client); data only ever leave by the download link e-mailed to a proven address. Following a
link by GET only shows a page: the confirmation that changes state needs a POST, so a mail scanner fetching links
confirms nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from mailservice.db import session_scope, utcnow
from mailservice.history import service
from mailservice.history.archive import COPY_CHUNK, spool_file, write_zip
from mailservice.mail.headers import normalise_address
from mailservice.templating import render
from mailservice.web.security import is_head, secure_public
from mailservice.web.staff.deps import redirect, settings_of

router = APIRouter(tags=["history"])

LINK_ERRORS = {
    "invalid": (
        400,
        "Ссылка недействительна",
        "Ссылка повреждена или изменена. Запросите историю взаимодействия заново.",
    ),
    "expired": (
        410,
        "Срок действия ссылки истёк",
        "Ссылка действует 7 дней. Запросите историю взаимодействия заново: новая ссылка придёт на ваш адрес.",
    ),
}


def public_page(request: Request, template: str, status_code: int = 200, **context: object) -> HTMLResponse:
    """Render a public page with the public pages' security headers (shared with the feedback and status pages):
    their own inline scripts (the high-contrast switch) allowed by hash, no Referer (README: public pages say
    ``no-referrer``, the console ``same-origin``), no framing, no caching of signed links."""
    html = render(template, settings=settings_of(request), **context)
    return secure_public(HTMLResponse(html, status_code=status_code))


def notice(request: Request, title: str, text: str, status_code: int = 200, link: str = "/history") -> HTMLResponse:
    """A page with one message."""
    return public_page(request, "web/history/notice.html", status_code, title=title, text=text, link=link)


def _link_error(request: Request, kind: str) -> HTMLResponse:
    status_code, title, text = LINK_ERRORS.get(kind, LINK_ERRORS["invalid"])
    return notice(request, title, text, status_code)


@router.get("/history", response_class=HTMLResponse, summary="Форма запроса истории взаимодействия")
def history_form(request: Request) -> Response:
    """The form: one field, the e-mail address the client used with the department."""
    return public_page(request, "web/history/form.html", error="", email="")


@router.post("/history", response_class=HTMLResponse, summary="Запросить историю взаимодействия")
def history_submit(request: Request, email: Annotated[str, Form(max_length=320)] = "") -> Response:
    """Send the history (or a confirmation link) if the address is a client's; say the same anyway."""
    address = normalise_address(email.strip()) if email.strip() else None
    if address is None:
        return public_page(
            request,
            "web/history/form.html",
            status_code=422,
            error="Укажите правильный адрес электронной почты",
            email=email[:320],
        )
    settings = settings_of(request)
    # The same work for every address: the address is looked up by the worker, not here (timing tells nothing).
    with session_scope(settings) as session:
        service.ask(session, address, utcnow())
    return notice(
        request,
        "Запрос принят",
        "Если этот адрес подтверждён как ваш, в течение нескольких минут на него придёт ссылка на архив истории "
        "взаимодействия. Повторный запрос возможен не чаще одного раза в 6 часов. Если письмо не пришло, "
        "позвоните в справочную службу: историю можно получить почтой или лично.",
    )


@router.get("/history/confirm/{token}", response_class=HTMLResponse, summary="Страница подтверждения адреса")
def confirm_page(request: Request, token: str) -> Response:
    """Show the confirmation button (GET changes nothing)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            service.peek_confirmation(session, settings, token)
        except service.HistoryLinkError as exc:
            return _link_error(request, exc.kind)
    return public_page(request, "web/history/confirm.html", token=token)


@router.post("/history/confirm/{token}", response_class=HTMLResponse, summary="Подтвердить адрес")
def confirm_submit(request: Request, token: str) -> Response:
    """Confirm the address; the browser goes on to the download page."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            export = service.confirm_address(session, settings, token, utcnow())
        except service.HistoryLinkError as exc:
            return _link_error(request, exc.kind)
        target = f"/history/download/{service.download_token(settings, export)}"
    return redirect(target)


@router.get("/history/download/{token}", response_class=HTMLResponse, summary="Страница скачивания архива")
def download_page(request: Request, token: str) -> Response:
    """What the archive holds and the button that downloads it."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            export = service.open_download(session, settings, token, utcnow())
        except service.HistoryLinkError as exc:
            return _link_error(request, exc.kind)
        return public_page(
            request,
            "web/history/download.html",
            token=token,
            expires_at=export.expires_at.astimezone(settings.tz),
        )


def _chunks(file: IO[bytes]) -> Iterator[bytes]:
    """The built archive in chunks; the file is closed (its space freed) once it is sent."""
    try:
        while chunk := file.read(COPY_CHUNK):
            yield chunk
    finally:
        file.close()


@router.get("/history/download/{token}/archive.zip", summary="Скачать архив истории взаимодействия")
def download_archive(request: Request, token: str) -> Response:
    """The ZIP, built now from the client's own records into a temporary file, then streamed."""
    settings = settings_of(request)
    now = utcnow()
    file: IO[bytes] | None = None
    try:
        with session_scope(settings) as session:
            try:
                export = service.open_download(session, settings, token, now)
            except service.HistoryLinkError as exc:
                return _link_error(request, exc.kind)
            client = service.owner(session, export)
            assert client is not None  # open_download checked it
            file = spool_file(settings)
            write_zip(session, settings, client.id, now, file)
            # Counted in the same transaction as the build: a failed build or commit counts nothing, nor a HEAD.
            if not is_head(request):
                export.download_count += 1
                export.downloaded_at = export.downloaded_at or now
            stamp = now.astimezone(settings.tz).strftime("%Y%m%d")
    except BaseException:
        if file is not None:  # a failed build or commit: free the temporary file now
            file.close()
        raise
    # The session is closed here, before any byte is sent.
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    response = StreamingResponse(
        _chunks(file),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="history-{stamp}.zip"', "Content-Length": str(size)},
        # Also closes a file whose stream never started (closing twice is harmless). Should a dropped connection
        # skip both, the file has no name on disk and its space is freed when Python collects the response.
        background=BackgroundTask(file.close),
    )
    return secure_public(response)
