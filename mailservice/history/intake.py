"""Intake's routes of the history: the history command by e-mail (intake/commands.py) and replies to the letter
that asks to prove an address (both registered in intake/routes.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.history.service import request_history
from mailservice.inforequests import identity, service
from mailservice.inforequests.lifecycle import Channel, EventKind
from mailservice.inforequests.models import Client, Event
from mailservice.intake.models import IntakeEntry
from mailservice.mail.addresses import same_address
from mailservice.mail.parse import ParsedMessage
from mailservice.outbox import OutboxMessage


def handle_history_request(session: Session, parsed: ParsedMessage, entry: IntakeEntry, now: dt.datetime) -> str | None:
    """Answer a request for the whole history: only the sender's own history, only to the sender's address.

    The client is found by the From address alone (a Reply-To or a name in the text could point at someone
    else); the history goes to that address only when it is proven for that client.
    """
    address = parsed.from_addr
    if not address:
        return None  # cannot happen after parsing; let intake register it for staff
    settings = get_settings()
    client = service.find_client_by_email(session, address)
    recorded = session.scalar(select(Event.id).where(Event.intake_id == entry.id).limit(1)) is not None
    if client is not None and not recorded:  # a letter staff convert is in the history already
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


def handle_history_proof(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str | None:
    """A reply to our letter that asked to prove an address: from that very address, it proves it for the client
    the letter was about (README, "Security model"), and the history link follows. From another address it proves
    nothing and intake treats it as any other message."""
    address = parsed.from_addr
    recipients = [a.strip() for a in row.recipients.split(",")]
    client = session.get(Client, row.ref_id) if row.ref_id is not None else None
    if not address or not any(same_address(address, r) for r in recipients) or client is None:
        return None
    client = service.survivor(session, client)  # None when anonymised or on a loop of merges
    if client is None:
        return None
    now = entry.received_at
    identity.prove_by_reply(session, client, address, recipients, now)
    outcome = request_history(
        session, get_settings(), client=client, address=address, via="email", now=now, intake_id=entry.id
    )
    return f"history address proof: {outcome.value}"
