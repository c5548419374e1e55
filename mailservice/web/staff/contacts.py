"""Console pages of issue 16: a contact recorded on a request (call, visit, letter with text, time and scans)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request
from fastapi import UploadFile as FastAPIUpload
from fastapi.responses import Response

from mailservice.db import session_scope, utcnow
from mailservice.inforequests.contacts import record_contact
from mailservice.inforequests.lifecycle import Channel
from mailservice.web.security import DbId
from mailservice.web.staff import audit
from mailservice.web.staff.actions import ConsoleError
from mailservice.web.staff.auth import OPERATE
from mailservice.web.staff.deps import StaffContext, redirect, require, settings_of
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
