"""Feedback (seed 004 p. 11): one survey e-mail after an answer, its signed link, and the answers.

The survey page is reached by a signed link whose payload holds only the survey's id and a random nonce
(itsdangerous payloads are readable). Following the link only shows the form: a mail scanner that fetches
every link answers nothing; the answer needs a POST.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse, FeedbackSurvey
from mailservice.inforequests.lifecycle import Channel, EventKind, Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.inforequests.notifications import send_to_client
from mailservice.intake.models import IntakeEntry
from mailservice.mail.headers import normalise_address
from mailservice.tokens import Purpose, TokenError, load_timed, sign_timed

SURVEY_LINK_DAYS = 90
# A request answered longer ago than this gets no survey from the sweep (no surprise mail after an upgrade).
SWEEP_MAX_AGE = dt.timedelta(days=30)
MAX_COMMENT = 4000


class FeedbackError(ValueError):
    """A survey link or answer that cannot be taken; ``kind`` picks the page shown."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # invalid | expired | answered | rating


def parse_rating(value: object) -> int:
    """A rating from a form: an integer 1 to 5, else :class:`FeedbackError` (pure)."""
    try:
        rating = int(str(value).strip())
    except (TypeError, ValueError):
        raise FeedbackError("rating", "Выберите оценку от 1 до 5") from None
    if not 1 <= rating <= 5:
        raise FeedbackError("rating", "Выберите оценку от 1 до 5")
    return rating


def clean_comment(value: str | None) -> str:
    """A comment trimmed to a sane length, without NUL characters (PostgreSQL refuses them in text)."""
    return (value or "").replace("\x00", "").strip()[:MAX_COMMENT]


def survey_token(settings: Settings, survey: FeedbackSurvey) -> str:
    """The signed token of a survey link."""
    return sign_timed(settings, Purpose.feedback, {"s": survey.id, "n": survey.nonce})


def survey_url(settings: Settings, survey: FeedbackSurvey) -> str:
    """The public URL of a survey."""
    return f"{settings.public_url.rstrip('/')}/feedback/{survey_token(settings, survey)}"


# The survey follows any final status (issue 17): an answer, a refusal, a forwarding or a closure.
FINAL_STATUSES = (Status.answered, Status.refused, Status.forwarded, Status.closed)


def queue_survey(session: Session, settings: Settings, request: Request, now: dt.datetime) -> FeedbackSurvey | None:
    """Queue the survey e-mail of a registered request in a final status, once; None when there is nothing to
    send (not final, never registered, no address, or a letter staff carried out as a command: its «answer» only
    says what was done, «подтвердите адрес» for a history)."""
    if request.status not in FINAL_STATUSES or request.number is None or not request.reply_email:
        return None
    if any(event.kind == EventKind.note and (event.data or {}).get("command") for event in request.events):
        return None  # carried out by staff as a command (intake/actions.py): nothing was answered to rate
    if session.scalar(select(FeedbackSurvey.id).where(FeedbackSurvey.request_id == request.id)) is not None:
        return None
    survey = FeedbackSurvey(request_id=request.id, client_id=request.client_id, nonce=secrets.token_hex(8), sent_at=now)
    session.add(survey)
    session.flush()
    row = send_to_client(
        session,
        settings,
        request,
        now,
        kind="feedback_survey",
        # A forwarding or a closure is no answer of ours (staff-day tryout of 7 December).
        subject=(
            "Оцените, пожалуйста, ответ на ваше обращение"
            if request.status in (Status.answered, Status.refused)
            else "Оцените, пожалуйста, работу с вашим обращением"
        ),
        template="feedback_survey",
        auto_submitted="auto-generated",
        extra={"url": survey_url(settings, survey), "days": SURVEY_LINK_DAYS, "final": request.status},
        ref_type="feedback_survey",
        ref_id=survey.id,
    )
    if row is not None:
        session.flush()  # the outbox row's id
        survey.outbox_id = row.id
    return survey


def sweep(session: Session, settings: Settings, now: dt.datetime, limit: int = 500) -> int:
    """Queue surveys for requests recently finished (answered, refused, forwarded, closed) that have none."""
    surveyed = select(FeedbackSurvey.request_id)
    candidates = session.scalars(
        select(Request)
        .where(
            Request.status.in_([s.value for s in FINAL_STATUSES]),
            Request.number.is_not(None),
            Request.reply_email.is_not(None),
            func.coalesce(Request.answered_at, Request.closed_at, Request.registered_at) >= now - SWEEP_MAX_AGE,
            Request.id.not_in(surveyed),
        )
        .order_by(Request.id)
        .limit(limit)
    ).all()
    return sum(1 for request in candidates if queue_survey(session, settings, request, now) is not None)


def load_survey(session: Session, settings: Settings, token: str, *, lock: bool = False) -> FeedbackSurvey:
    """The survey behind a link; :class:`FeedbackError` when the link is tampered, unknown or expired.

    ``lock`` takes the survey's row for this transaction (PostgreSQL; SQLite transactions here are serial), so
    two answers sent at once are one answer and one "already answered"."""
    try:
        payload = load_timed(settings, Purpose.feedback, token, SURVEY_LINK_DAYS * 86400)
    except TokenError as exc:
        if exc.expired:
            raise FeedbackError("expired", "Срок действия ссылки на опрос истёк") from exc
        raise FeedbackError("invalid", "Ссылка на опрос повреждена или недействительна") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int) or not isinstance(payload.get("n"), str):
        raise FeedbackError("invalid", "Ссылка на опрос повреждена или недействительна")
    survey = session.get(FeedbackSurvey, payload["s"], with_for_update=lock or None)
    if survey is None or not secrets.compare_digest(survey.nonce, payload["n"]):
        raise FeedbackError("invalid", "Ссылка на опрос повреждена или недействительна")
    return survey


def answer_survey(
    session: Session, survey: FeedbackSurvey, *, rating: int, comment: str, now: dt.datetime
) -> FeedbackResponse:
    """Record the one answer of a survey."""
    if survey.answered_at is not None:
        raise FeedbackError("answered", "Вы уже ответили на этот опрос. Спасибо!")
    request = session.get(Request, survey.request_id)
    assert request is not None
    survey.answered_at = now
    response = FeedbackResponse(
        created_at=now,
        source="survey",
        survey_id=survey.id,
        request_id=request.id,
        channel=request.channel,
        unit=request.unit,
        rating=rating,
        comment=clean_comment(comment),
    )
    session.add(response)
    session.flush()
    return response


def record_email_thanks(
    session: Session,
    *,
    client: Client,
    request: Request | None,
    text: str,
    now: dt.datetime,
    intake: IntakeEntry | None = None,
    message_id: str | None = None,
) -> FeedbackResponse:
    """A thank-you by e-mail (intake/thanks.py): feedback without a rating, linked to the client and to the request
    it thanks for, and a message in the client's history. It opens no request and gets no answer."""
    if client.id is None:
        session.flush()  # a client first seen in this message
    response = FeedbackResponse(
        created_at=now,
        source="email",
        request_id=request.id if request is not None else None,
        client_id=client.id,
        channel=Channel.email,
        unit=request.unit if request is not None else "",
        rating=None,
        comment=clean_comment(text),
    )
    session.add(response)
    session.add(
        Event(
            client=client,
            request=request,
            at=now,
            kind=EventKind.message_in,
            channel=Channel.email,
            direction="in",
            intake=intake,
            comment=text,
            data={"feedback": True, **({"message_id": message_id} if message_id else {})},
        )
    )
    client.last_interaction_at = now
    return response


@dataclass(frozen=True)
class SiteFeedback:
    """What the public site's feedback form sends."""

    rating: int
    comment: str = ""
    email: str | None = None
    source: str = "site"  # "qr": the form the printed QR code opens (issue 17)


def site_feedback_allowed(session: Session, settings: Settings, ip: str, now: dt.datetime) -> bool:
    """Count one rating from ``ip`` on the anonymous form and say whether it is within the hourly limit."""
    from mailservice.mailings.subscribers import allow, ip_key  # the one throttle of the public forms

    return allow(session, "feedback", ip_key(ip), settings.feedback_limit_per_ip, now)


def record_site_feedback(session: Session, data: SiteFeedback, now: dt.datetime) -> FeedbackResponse:
    """Record an answer from the public form (QR code, link on the site); it is kept apart from the figures."""
    email = normalise_address(data.email) if data.email else None
    response = FeedbackResponse(
        created_at=now,
        source="qr" if data.source == "qr" else "site",
        channel=Channel.web,
        unit="",
        rating=data.rating,
        comment=clean_comment(data.comment),
        email=email,
    )
    session.add(response)
    session.flush()
    return response
