"""Internal notes: lines of a client's history for staff only, left out of what the client receives."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from mailservice.inforequests.lifecycle import EventKind
from mailservice.inforequests.models import Client, Event, Request


def internal_note(
    session: Session,
    client: Client,
    request: Request | None,
    now: dt.datetime,
    comment: str,
    actor: str = "",
    **data: object,
) -> Event:
    """Add an internal note (``data["internal"]``) to ``client``'s history, on ``request`` when given."""
    # The actor may be free text from the console or the CLI: cut to the column, or PostgreSQL refuses the row.
    event = Event(
        client=client,
        request=request,
        at=now,
        kind=EventKind.note,
        actor=actor[:200],
        comment=comment,
        data={"internal": True, **data},
    )
    session.add(event)
    return event
