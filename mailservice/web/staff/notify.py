"""Console action of issue 17: where a registered request's notices go, changed by staff to a proven address."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailservice.db import session_scope, utcnow
from mailservice.inforequests.service import RequestError, set_notification_address
from mailservice.mail.headers import normalise_address
from mailservice.web.security import DbId
from mailservice.web.staff.deps import redirect, settings_of
from mailservice.web.staff.routes import Operator, Text, _audit, _load_request, _request_page

router = APIRouter(prefix="/staff", include_in_schema=False)


@router.post("/requests/{request_id}/notify-address")
def notify_address(request: Request, ctx: Operator, request_id: DbId, address: Text = "") -> Response:
    """Send the request's notices to another address proven for its client (added or changed after registration)."""
    normalised = normalise_address(address.strip()) if address.strip() else None
    if normalised is None:
        return _request_page(request, ctx, request_id, error="Неверный адрес электронной почты", status_code=400)
    try:
        with session_scope(settings_of(request)) as session:
            req = _load_request(session, request_id)
            set_notification_address(session, req, normalised, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "request_notify_address", "request", req.id)
    except RequestError as exc:
        return _request_page(request, ctx, request_id, error=str(exc), status_code=400)
    return redirect(f"/staff/requests/{request_id}?done=address")
