"""Intake's route for e-mails the classifier labels ``history_request`` (registered in intake/routes.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.history.service import request_history
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Channel, EventKind
from mailservice.inforequests.models import Event
from mailservice.intake.models import IntakeEntry
from mailservice.mail.parse import ParsedMessage


def handle_history_request(
    session: Session, parsed: ParsedMessage, labels: service.Labels, entry: IntakeEntry
) -> str | None:
    """Answer a request for the whole history: only the sender's own history, only to the sender's address.

    The client is found by the From address alone (a Reply-To or a name in the text could point at someone
    else); the history goes to that address only once it is verified for that client.
    """
    address = parsed.from_addr
    if not address:
        return None  # cannot happen after parsing; let intake register it for staff
    settings = get_settings()
    now = entry.received_at
    client = service.find_client_by_email(session, address)
    if client is not None:
        session.add(
            Event(
                client_id=client.id,
                at=now,
                kind=EventKind.message_in,
                channel=Channel.email,
                direction="in",
                intake_id=entry.id,
                comment=parsed.subject or "Запрос истории взаимодействия",
                data={"message_id": parsed.message_id} if parsed.message_id else {},
            )
        )
        client.last_interaction_at = now
    outcome = request_history(
        session,
        settings,
        client=client,
        address=address,
        via="email",
        now=now,
        intake_id=entry.id,
        notify_refusals=True,
    )
    return f"history request: {outcome.value}"
