"""Feedback handled by staff (issue 17; seed 004 p. 11): answering a comment left on the site with an address,
recording ratings gathered by a phone call-round, and the call list for that round.

* A site comment's address was typed by whoever filled in the anonymous form: it proves nothing, so the answer
  carries only what staff write (no client data) and goes to that address alone.
* A rating by phone is linked to the request it rates; it counts in the published figures (source ``phone``)
  like a survey answer, once per request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.service import FINAL_STATUSES, FeedbackError, clean_comment
from mailservice.inforequests.lifecycle import EventKind, Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.outbox import OutboxMessage

# Sources of anonymous ratings (the site's form, the QR code's form): shown to staff apart, never published.
ANONYMOUS_SOURCES = ("site", "qr")
CALL_LIST_DAYS = 7


def answer_comment(
    session: Session, settings: Settings, response: FeedbackResponse, text: str, *, actor: str, now: dt.datetime
) -> OutboxMessage:
    """E-mail staff's answer to a comment left on the site with an address; once per comment."""
    from mailservice.mail.compose import build_message, wire_address
    from mailservice.outbox import enqueue

    if response.source not in ANONYMOUS_SOURCES or not response.email:
        raise FeedbackError("answer", "У этого отзыва нет адреса для ответа")
    if response.answered_at is not None:
        raise FeedbackError("answer", "На этот отзыв уже ответили")
    body = clean_comment(text)
    if not body:
        raise FeedbackError("answer", "Текст ответа пуст")
    message = build_message(
        settings,
        to=response.email,
        subject="Ответ на ваш отзыв",
        template="feedback_answer",
        context={"response": response, "text": body},
        auto_submitted="no",  # a person wrote it
    )
    row = enqueue(
        session,
        message,
        kind="feedback_answer",
        ref_type="feedback_response",
        ref_id=response.id,
        envelope=(wire_address(settings.from_address), [wire_address(response.email)]),
    )
    response.answered_at, response.answered_by = now, actor
    return row


def record_phone_rating(
    session: Session, request: Request, *, rating: int, comment: str, actor: str, now: dt.datetime
) -> FeedbackResponse:
    """A rating the client gave on a call-round, linked to the request and counted in the figures; once a request."""
    if request.number is None or request.status not in FINAL_STATUSES:
        raise FeedbackError("rating", "Оценку записывают по запросу, рассмотрение которого завершено")
    taken = session.scalar(
        select(FeedbackResponse.id).where(
            FeedbackResponse.request_id == request.id,
            FeedbackResponse.rating.is_not(None),
            FeedbackResponse.source.in_(("survey", "phone")),
        )
    )
    if taken is not None:
        raise FeedbackError("rating", f"Оценка по запросу № {request.number} уже есть")
    response = FeedbackResponse(
        created_at=now,
        source="phone",
        request_id=request.id,
        client_id=request.client_id,
        channel=request.channel,
        unit=request.unit,
        rating=rating,
        comment=clean_comment(comment),
        recorded_by=actor,
    )
    session.add(response)
    session.add(
        Event(
            client_id=request.client_id,
            request_id=request.id,
            at=now,
            kind=EventKind.note,
            actor=actor,
            comment=f"Оценка по телефону: {rating} из 5" + (f". {response.comment}" if response.comment else ""),
            data={"internal": True, "phone_rating": rating},
        )
    )
    return response


@dataclass(frozen=True)
class Call:
    """A line of the call list: the request, the client and the phone to call."""

    request: Request
    phone: str


def call_list(session: Session, now: dt.datetime, days: int = CALL_LIST_DAYS) -> list[Call]:
    """Last week's answered requests whose client has a phone and that have no rating yet, oldest answer first."""
    rated = select(FeedbackResponse.request_id).where(
        FeedbackResponse.request_id.is_not(None), FeedbackResponse.rating.is_not(None)
    )
    requests = session.scalars(
        select(Request)
        .where(
            Request.status == Status.answered,
            Request.answered_at >= now - dt.timedelta(days=days),
            Request.id.not_in(rated),
        )
        .options(selectinload(Request.client).selectinload(Client.contacts))
        .order_by(Request.answered_at, Request.id)
    ).all()
    calls: list[Call] = []
    for request in requests:
        phones = [c.value for c in request.client.contacts if c.kind == "phone"]
        if phones and request.client.anonymised_at is None:
            calls.append(Call(request, phones[0]))
    return calls
