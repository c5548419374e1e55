"""Public pages of the approval links: a unit concerned approves or objects to a change request of the register.

Mail scanners (Safe Links and the like) fetch every link in a message, so the GET page only shows the request and
a button; the POST decides. A tampered, unknown or already used link gets a plain page with status 400 and changes
nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.processes import service
from mailservice.processes.service import DECISION_NAMES, LinkError
from mailservice.templating import render

router = APIRouter()

# Token-bearing pages are private to their reader: no caching, no Referer to other sites, no indexing.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _page(settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = render(f"web/processes/{template}", settings=settings, **context)
    return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/processes/approval/{token}", response_class=HTMLResponse)
def approval_page(request: Request, token: str) -> HTMLResponse:
    """Show the change request and the one button; nothing is decided by a GET."""
    settings = _settings(request)
    with session_scope(settings) as session:
        try:
            approval, decision = service.load_approval(session, settings, token)
        except LinkError as exc:
            return _page(settings, "bad_link.html", 400, message=exc.message)
        change = approval.change_request
        return _page(
            settings,
            "approval.html",
            change=change,
            approval=approval,
            decision=decision,
            decision_name=DECISION_NAMES[decision],
            lines=service.request_lines(session, change),
        )


@router.post("/processes/approval/{token}", response_class=HTMLResponse)
async def approval_post(request: Request, token: str) -> HTMLResponse:
    """Record the decision the link carries (with the optional comment of the form)."""
    settings = _settings(request)
    try:
        form = await request.form()
        raw = form.get("comment", "")
        comment = raw if isinstance(raw, str) else ""
    except Exception:  # an unreadable body must not turn the decision into a 500
        comment = ""
    ip = request.client.host if request.client is not None else ""

    def work() -> HTMLResponse:
        with session_scope(settings) as session:
            try:
                approval = service.record_decision(session, settings, token, comment=comment, ip=ip, now=utcnow())
            except LinkError as exc:
                return _page(settings, "bad_link.html", 400, message=exc.message)
            assert approval.decision is not None
            return _page(
                settings,
                "decided.html",
                change=approval.change_request,
                decision_name=DECISION_NAMES[approval.decision],
            )

    return await run_in_threadpool(work)
