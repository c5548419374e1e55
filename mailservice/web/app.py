"""The FastAPI application: public routes and (console issue) the staff console under /staff/."""

from __future__ import annotations

import email
import email.policy
import logging
from email.message import EmailMessage

from fastapi import FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailservice.config import Environment, Settings, get_settings
from mailservice.db import pending_migrations
from mailservice.templating import render
from mailservice.web import security
from mailservice.web.staff import mount as mount_console

log = logging.getLogger(__name__)


class HeadAsGet:
    """HEAD answered as GET without the content (RFC 9110 9.1: every general-purpose server supports GET and HEAD;
    9.3.2: the same header fields as GET). FastAPI registers GET routes for GET only, so uptime monitors probing
    /healthz by HEAD and link checkers following our status links saw 405 (defect U10). Every GET here changes
    nothing (signed links act on POST only), so running it for a HEAD is safe; a download that counts or audits
    itself asks ``security.is_head`` first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # Marked, so that a download does not count or audit a HEAD as a download (security.is_head).
        await self.app({**scope, "method": "GET", security.HEAD_SCOPE_KEY: True}, receive, without_body)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for the given settings."""
    settings = settings or get_settings()
    development = settings.environment is Environment.development
    # The API schema and its page describe every public route and field: in development only.
    app = FastAPI(
        title="mailservice", docs_url=None, redoc_url=None, openapi_url="/openapi.json" if development else None
    )
    app.state.settings = settings
    security.install(app)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        """The process answers (compose and load balancers: alive)."""
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    def readyz() -> PlainTextResponse:
        """The database answers and carries every migration (compose: ready to take traffic)."""
        try:
            pending = pending_migrations(settings)
        except SQLAlchemyError as exc:
            log.warning("readyz: database unreachable: %s", exc)
            return PlainTextResponse("база данных недоступна", status_code=503)
        if pending:
            return PlainTextResponse(f"не применены миграции: {', '.join(sorted(pending))}", status_code=503)
        return PlainTextResponse("ok")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> str:
        return render("web/home.html", settings=settings, dev=settings.environment is Environment.development)

    # Domain routers. mount: add `app.include_router(...)` lines here, one per domain.
    mount_console(app)  # staff console, /history, /feedback (issue 6)
    from mailservice.mailings.web import router as mailings_router

    app.include_router(mailings_router)  # /subscribe, /unsubscribe (issue 4)
    from mailservice.workgroup.web import router as workgroup_router

    app.include_router(workgroup_router)  # /wg/ signed pages, /staff/wg/ console (issue 8)
    from mailservice.processes.web import router as processes_router

    app.include_router(processes_router)  # /processes/approval/... (issue 9)
    from mailservice.webrequests.routes import router as requests_router

    app.include_router(requests_router)  # /request, /status/... (issue 16)

    if development:

        @app.get("/docs", include_in_schema=False)
        def docs() -> Response:
            """The interactive API page (development only; it loads Swagger UI from its CDN)."""
            page = get_swagger_ui_html(openapi_url="/openapi.json", title="mailservice API")
            page.headers["Content-Security-Policy"] = (
                "default-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' "
                "https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
                "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'"
            )
            return page

        def _loopback_only(request: Request) -> None:
            # The sink holds every letter sent, confirmation and download links included: only this machine.
            if not security.is_loopback_client(request):
                raise HTTPException(status_code=404)

        @app.get("/dev/mail", response_class=HTMLResponse, include_in_schema=False)
        def dev_mail(request: Request) -> str:
            """What the development sink has received, newest first (make run)."""
            _loopback_only(request)
            folder = settings.data_dir / "sink"
            messages = []
            for path in sorted(folder.glob("*.eml"), reverse=True)[:100]:
                parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                body = parsed.get_body(preferencelist=("plain",))
                messages.append(
                    {
                        "name": path.stem,
                        "to": str(parsed["To"]),
                        "subject": str(parsed["Subject"]),
                        "date": str(parsed["Date"]),
                        "text": body.get_content() if body is not None else "",
                    }
                )
            return render("web/dev_mail.html", settings=settings, messages=messages)

        @app.get("/dev/mail/{name}.eml", response_class=PlainTextResponse, include_in_schema=False)
        def dev_mail_raw(request: Request, name: str) -> str:
            _loopback_only(request)
            if not name.isdigit():
                raise HTTPException(status_code=404)
            path = settings.data_dir / "sink" / f"{name}.eml"
            if not path.is_file():
                raise HTTPException(status_code=404)
            return path.read_bytes().decode("utf-8", "replace")

    app.add_middleware(HeadAsGet)  # the outermost: a HEAD gets every header a GET gets (security ones included)
    return app
