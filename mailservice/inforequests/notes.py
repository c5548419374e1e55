"""Lines of a client's history: internal notes for staff only (left out of what the client receives), and the one
way intake's fast mode and everyone else add a history event (:func:`add_event`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from mailservice import bulk
from mailservice.inforequests.lifecycle import EventKind
from mailservice.inforequests.models import Attachment, Client, Event, Request
from mailservice.intake.models import IntakeEntry
from mailservice.outbox import OutboxMessage

# A history event as written: the ORM object, or the row queued while intake's fast mode writes a batch.
EventLike = Event | bulk.Row


def add_event(
    session: Session,
    *,
    client: Client,
    request: Request | None,
    intake: IntakeEntry | None = None,
    outbox: OutboxMessage | bulk.Row | None = None,
    **values: Any,
) -> EventLike:
    """Add a history event: an ORM object, or a queued row while the session writes in bulk (mailservice/bulk.py)."""
    if bulk.collecting(session):
        return bulk.add(
            session, Event, values, client_id=client, request_id=request, intake_id=intake, outbox_id=outbox
        )
    assert not isinstance(outbox, bulk.Row)
    if intake is not None:
        values["intake"] = intake
    if outbox is not None:
        values["outbox"] = outbox
    event = Event(client=client, request=request, **values)
    session.add(event)
    return event


def as_event(event: EventLike) -> Event:
    """``event`` as the ORM object staff actions return (they never run while a batch is written in bulk)."""
    if isinstance(event, bulk.Row):
        raise RuntimeError("a history event queued in bulk where an ORM object is needed")
    return event


def event_rows(session: Session, request: Request) -> list[tuple[str, dict[str, Any]]]:
    """(kind, data) of the request's events, the ORM ones and those still queued in bulk, in order."""
    found = [(event.kind, event.data or {}) for event in request.events]
    for row in bulk.queued_for(session, Event, "request_id", request):
        found.append((row.values["kind"], row.values.get("data") or {}))
    return found


def _reload_collections(session: Session, rows: list[bulk.Row]) -> None:
    """After queued events or attachments were written: their requests' collections, loaded or started empty
    before, are read again from the database when next asked for."""
    seen: set[int] = set()
    for row in rows:
        request = row.ref("request_id")
        if isinstance(request, Request) and id(request) not in seen:
            seen.add(id(request))
            session.expire(request, ["events" if row.model is Event else "attachments"])


bulk.on_written(Event.__tablename__, _reload_collections)
bulk.on_written(Attachment.__tablename__, _reload_collections)


def internal_note(
    session: Session,
    client: Client,
    request: Request | None,
    now: dt.datetime,
    comment: str,
    actor: str = "",
    **data: object,
) -> EventLike:
    """Add an internal note (``data["internal"]``) to ``client``'s history, on ``request`` when given."""
    # The actor may be free text from the console or the CLI: cut to the column, or PostgreSQL refuses the row.
    return add_event(
        session,
        client=client,
        request=request,
        at=now,
        kind=EventKind.note,
        actor=actor[:200],
        comment=comment,
        data={"internal": True, **data},
    )
