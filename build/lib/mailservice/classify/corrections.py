"""Staff-confirmed labels as training data: every request whose labels a person set or confirmed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.classify.model import Example
from mailservice.inforequests.lifecycle import EventKind
from mailservice.inforequests.models import Event, Request


def confirmed_examples(session: Session) -> list[Example]:
    """One example per request with a staff classification event, carrying the request's current labels."""
    confirmed = select(Event.request_id).where(Event.kind == EventKind.classified, Event.actor != "")
    requests = session.scalars(select(Request).where(Request.id.in_(confirmed)).order_by(Request.id))
    return [Example(r.subject, r.text, r.type, r.topic, r.urgency) for r in requests]
