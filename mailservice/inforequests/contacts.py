"""Contacts on an existing request (issue 16): a call, a visit or a letter, either way, recorded by staff with its
text, time and scans. It enters the request's timeline and the client's history like an e-mail does.

A contact from the client is a message in (``message_in``) on its channel; one from the department (we called, we
posted a letter) is a message out. Functions take the caller's session and ``now`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Channel, EventKind, Status
from mailservice.inforequests.models import Event, Request
from mailservice.inforequests.service import RequestError, StoredFile

# The channels of a contact staff record by hand, and the direction names they read.
CONTACT_CHANNELS = (Channel.phone, Channel.visit, Channel.post)
DIRECTIONS = {"in": "от клиента", "out": "клиенту"}
CONTACT_TITLES = {
    (Channel.phone, "in"): "Звонок клиента",
    (Channel.phone, "out"): "Звонок клиенту",
    (Channel.visit, "in"): "Личный приём",
    (Channel.visit, "out"): "Встреча с клиентом",
    (Channel.post, "in"): "Письмо клиента по почте",
    (Channel.post, "out"): "Письмо клиенту по почте",
}


def record_contact(
    session: Session,
    settings: Settings,
    request: Request,
    *,
    channel: Channel,
    direction: str,
    text: str,
    at: dt.datetime,
    files: Sequence[StoredFile],
    actor: str,
    now: dt.datetime,
) -> Event:
    """Record a contact on ``request``; a contact from the client answers a clarification request like a reply."""
    if channel not in CONTACT_CHANNELS:
        raise RequestError("Выберите вид контакта: звонок, визит или письмо")
    if direction not in DIRECTIONS:
        raise RequestError("Укажите, от кого контакт: от клиента или клиенту")
    if not text.strip():
        raise RequestError("Запишите содержание контакта")
    if at > now + dt.timedelta(minutes=1):
        raise RequestError("Время контакта в будущем")
    if request.received_at and at < request.received_at - dt.timedelta(days=1):
        raise RequestError("Время контакта раньше поступления запроса")
    title = CONTACT_TITLES[(channel, direction)]
    event = Event(
        client=request.client,
        request=request,
        at=at,
        kind=EventKind.message_in if direction == "in" else EventKind.message_out,
        channel=channel,
        direction=direction,
        actor=actor,
        comment=text.strip(),
        data={"contact": title, "recorded_at": now.isoformat()},
    )
    session.add(event)
    service.attach_files(session, request, event, files)
    request.client.last_interaction_at = max(request.client.last_interaction_at, at)
    if direction == "in" and request.status == Status.clarification_requested:
        service.change_status(
            session,
            settings,
            request,
            Status.in_progress,
            now=now,
            actor=actor,
            comment="Получено уточнение от заявителя",
            notify=False,
        )
    return event
