"""Console action of issue 13: re-register a request on the author of the letter its sender forwarded
(intake/forwarded_register.py). One POST with the session's CSRF token (checked in deps), audited, for the roles
that work requests."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailservice.db import session_scope, utcnow
from mailservice.intake import forwarded_register
from mailservice.web.security import DbId
from mailservice.web.staff.deps import redirect, settings_of
from mailservice.web.staff.routes import DONE, Operator, _audit, _load_request, _request_page

router = APIRouter(prefix="/staff", include_in_schema=False)
DONE["reregistered"] = "Запрос перерегистрирован на автора пересланного письма; автору отправлено подтверждение."


@router.post("/requests/{request_id}/reregister-forwarded")
def reregister_forwarded(request: Request, ctx: Operator, request_id: DbId) -> Response:
    """Move the request to a record of its own for the forwarded author and acknowledge it to the author."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            req = _load_request(session, request_id)
            sender_id = req.client_id
            record = forwarded_register.reregister(session, settings, req, actor=ctx.email, now=utcnow())
            _audit(
                session,
                ctx,
                "request_reregister_forwarded",
                "request",
                req.id,
                from_client=sender_id,
                to_client=record.id,
            )
    except forwarded_register.ForwardError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=reregistered")
