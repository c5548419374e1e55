"""The staff console (issue 6) and the public pages it brings: history on request and feedback.

``mount(app)`` is the one call :func:`mailservice.web.app.create_app` makes: it adds the routers and the pages
shown when the console refuses a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package (its models) must not import FastAPI: the CLI starts faster
    from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the console under /staff/, the public /history and /feedback pages, and the refusal pages."""
    from fastapi import Request
    from fastapi.responses import Response

    from mailservice.feedback.routes import router as feedback_router
    from mailservice.history.routes import router as history_router
    from mailservice.web.staff.contacts import router as contacts_router
    from mailservice.web.staff.deps import NotLoggedIn, Refused, login_redirect, page
    from mailservice.web.staff.feedback_console import router as feedback_console_router
    from mailservice.web.staff.forwarded import router as forwarded_router
    from mailservice.web.staff.identity import router as identity_router
    from mailservice.web.staff.notify import router as notify_router
    from mailservice.web.staff.quarantine import router as quarantine_router
    from mailservice.web.staff.reports import router as reports_router
    from mailservice.web.staff.routes import router as staff_router
    from mailservice.web.staff.search import router as search_router

    async def not_logged_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotLoggedIn)
        return login_redirect(exc.next_path)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        from mailservice.web.staff.deps import current_user

        return page(
            request,
            "web/staff/error.html",
            ctx=await current_user(request),
            status_code=exc.status_code,
            title=exc.title,
            message=exc.message,
        )

    app.add_exception_handler(NotLoggedIn, not_logged_in)
    app.add_exception_handler(Refused, refused)
    app.include_router(contacts_router)  # issue 16: other channels, contacts, letters to post (before /requests/{id})
    app.include_router(staff_router)
    app.include_router(identity_router)  # issue 14: identity checks, suggested merges
    app.include_router(reports_router)  # issue 17: register spreadsheet, charts, monthly report
    app.include_router(notify_router)  # issue 17: a request's notification address
    app.include_router(feedback_console_router)  # issue 17: answers to site comments, phone ratings
    app.include_router(search_router)  # issue 19: full-text search, the register export
    app.include_router(quarantine_router)  # tryout F2: letters intake could not take
    app.include_router(forwarded_router)  # issue 13: re-register a forwarded appeal on its author
    app.include_router(history_router)
    app.include_router(feedback_router)
