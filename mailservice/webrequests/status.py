"""The status page of one request behind a signed link (issue 16): its status, due date, events and the
department's answer with files.

The link carries the request's registration number and its status key, signed with its own salt
(tokens.Purpose.request_status); it does not expire and keeps working across key rotation (every listed key
verifies). Everything the page shows is read through that one request: no other request or client is reachable
from it, and GET changes nothing. Light on purpose: notifications import it to put the link in every notice.

A link is for the address the request's notices went to when it was sent. When that address changes (staff
re-register a forwarded letter on its author, intake/forwarded_register.py; staff send the notices to another
proven address, service.set_notification_address), :func:`new_link` gives the request a new key and every link
sent before shows nothing (defect U1): the earlier address is not proven to be the citizen's (README "Identity"),
so it keeps no view of the case; the new address gets the new link with its next notice. A claimed address's owner
joining the request (inforequests/claims.py) changes no address: the links went to that owner. A request whose
address never changed has no key, and its links (those already mailed included) carry none.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, STATUS_NAMES, Channel, EventKind, Status
from mailservice.inforequests.models import Attachment, Event, Request
from mailservice.tokens import Purpose, TokenError, load, sign


def status_token(settings: Settings, number: str, key: str | None = None) -> str:
    """The signed token of a request's status page (``key``: the request's status key, if it has one)."""
    return sign(settings, Purpose.request_status, {"n": number} | ({"k": key} if key else {}))


def status_url(settings: Settings, request: Request) -> str:
    """The absolute address of a request's status page ('' for a request without a number)."""
    if not request.number:
        return ""
    return f"{settings.public_url.rstrip('/')}/status/{status_token(settings, request.number, request.status_key)}"


def new_link(request: Request) -> None:
    """Make every status link of the request sent so far show nothing (see the module docstring)."""
    request.status_key = secrets.token_urlsafe(12)


def _payload(settings: Settings, token: str) -> tuple[str, str | None] | None:
    """The registration number and the status key a token names, or None when it is forged or damaged."""
    try:
        payload = load(settings, Purpose.request_status, token)
    except TokenError:
        return None
    if not isinstance(payload, dict):
        return None
    number, key = payload.get("n"), payload.get("k")
    if not isinstance(number, str) or not isinstance(key, str | None):
        return None
    return number, key


EVENT_TITLES = {
    EventKind.message_in: "Получено ваше сообщение",
    EventKind.message_out: "Департамент направил вам сообщение",
    EventKind.registered: "Зарегистрирован",
    EventKind.status_changed: "Статус изменён",
}


@dataclass
class StatusEvent:
    """One line of the page."""

    at: dt.datetime
    title: str
    status: str = ""
    text: str = ""


@dataclass
class StatusView:
    """What the status page shows of one request."""

    number: str
    subject: str
    channel: str
    status: str
    registered_on: dt.date | None
    due_date: dt.date | None
    # A citizen's appeal (59-FZ) is «обращение», a request for information (8-FZ) «запрос»: the page names it as
    # the letters about it do (citizen-side tryout of 7 December: «Запрос № …» above an appeal).
    appeal: bool = False
    events: list[StatusEvent] = field(default_factory=list)
    answer: str = ""
    answered_at: dt.datetime | None = None
    # A refusal's legal ground as the notice cites it: a refusal is reasoned, with its ground (8-FZ art. 20,
    # 59-FZ art. 11; the Procedure p. 9), and the page is all a requester without e-mail reads.
    ground: str = ""
    files: list[Attachment] = field(default_factory=list)
    # Forwarded outside the remit: where and when; the answer is then the other body's, with no date of ours.
    forwarded_to: str = ""
    forwarded_at: dt.datetime | None = None


def _public(event: Event) -> bool:
    if isinstance(event.data, dict) and event.data.get("internal"):
        return False
    return event.kind in EVENT_TITLES


def find(session: Session, settings: Settings, token: str) -> Request | None:
    """The request a status token names (None: forged, damaged, sent before the request changed hands or
    address, or the request no longer exists)."""
    found = _payload(settings, token)
    if found is None:
        return None
    number, key = found
    request = session.scalar(select(Request).where(Request.number == number))
    if request is None or request.client.anonymised_at is not None or request.status_key != key:
        return None
    return request


def answer_event(request: Request) -> Event | None:
    """The latest answer (or reasoned refusal) of the request."""
    answers = [e for e in request.events if e.to_status in (Status.answered, Status.refused)]
    return answers[-1] if answers else None


def view(session: Session, request: Request) -> StatusView:
    """The page's content: this request's own rows only."""
    result = StatusView(
        number=request.number or "",
        subject=request.subject,
        channel=CHANNEL_NAMES[Channel(request.channel)],
        status=STATUS_NAMES[Status(request.status)],
        registered_on=request.registered_on,
        due_date=request.due_date,
        appeal=request.law == "59-fz",
    )
    for event in request.events:
        if not _public(event):
            continue
        status = STATUS_NAMES.get(Status(event.to_status), "") if event.to_status else ""
        if event.kind == EventKind.registered:
            status = ""  # «Зарегистрирован» says it all (not «Зарегистрирован: зарегистрирован»)
        text = ""
        if event.kind == EventKind.status_changed and event.to_status not in (Status.answered, Status.refused):
            text = event.comment
        result.events.append(
            StatusEvent(at=event.at, title=EVENT_TITLES[EventKind(event.kind)], status=status, text=text)
        )
    answer = answer_event(request)
    forwarding = [e for e in request.events if e.to_status == Status.forwarded]
    # Forwarded and then closed with no answer of ours after it is still the other body's to answer: the page
    # keeps saying where it went, and shows no date of ours (staff-day tryout of 7 December: after «Закрыть» the
    # page showed the department's own due date again).
    if forwarding and (
        request.status == Status.forwarded
        or (
            request.status == Status.closed
            and (answer is None or request.events.index(answer) < request.events.index(forwarding[-1]))
        )
    ):
        result.forwarded_to = str((forwarding[-1].data or {}).get("forwarded_to", ""))
        result.forwarded_at = forwarding[-1].at
        result.due_date = None
    if answer is not None:
        result.answer = answer.comment
        result.answered_at = answer.at
        if answer.to_status == Status.refused and answer.ground:
            known = REFUSAL_GROUNDS.get(answer.ground)
            result.ground = known.title if known is not None else answer.ground
        result.files = list(
            session.scalars(
                select(Attachment)
                .where(Attachment.request_id == request.id, Attachment.event_id == answer.id)
                .order_by(Attachment.id)
            )
        )
    return result


def answer_file(session: Session, request: Request, attachment_id: int) -> Attachment | None:
    """A file of the request's answer (None for any other file, of this request or another)."""
    answer = answer_event(request)
    if answer is None:
        return None
    return session.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id, Attachment.request_id == request.id, Attachment.event_id == answer.id
        )
    )
