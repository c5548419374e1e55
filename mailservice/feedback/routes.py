"""Public feedback pages: the survey behind the signed link, the site's generic form and the statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from mailservice.db import session_scope, utcnow
from mailservice.feedback import service
from mailservice.feedback.stats import site_statistics
from mailservice.history.routes import notice, public_page
from mailservice.web.security import client_ip
from mailservice.web.staff.deps import settings_of

router = APIRouter(tags=["feedback"])

LINK_ERRORS = {
    "invalid": (400, "Ссылка недействительна", "Ссылка на опрос повреждена или изменена."),
    "expired": (
        410,
        "Срок действия ссылки истёк",
        "Опрос по этой ссылке закрыт. Отзыв можно оставить на сайте.",
    ),
    "answered": (409, "Спасибо!", "Вы уже ответили на этот опрос."),
}
THANKS = ("Спасибо за отзыв!", "Ваша оценка поможет департаменту работать лучше.")
TOO_MANY = ("Слишком много отзывов", "С вашего адреса уже отправлено много отзывов. Попробуйте через час.")


def _error(request: Request, kind: str) -> HTMLResponse:
    status_code, title, text = LINK_ERRORS.get(kind, LINK_ERRORS["invalid"])
    return notice(request, title, text, status_code, link="/feedback")


@router.get("/feedback", response_class=HTMLResponse, summary="Форма отзыва")
def feedback_form(request: Request) -> Response:
    """The generic form (the site links here, and the QR code of seed 004 p. 11 points here)."""
    source = "qr" if request.query_params.get("from") == "qr" else "site"  # issue 17: the QR code's answers apart
    return public_page(request, "web/feedback/form.html", action="/feedback", error="", ask_email=True, source=source)


@router.post("/feedback", response_class=HTMLResponse, summary="Оставить отзыв")
def feedback_submit(
    request: Request,
    rating: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "site",
) -> Response:
    """Record a rating 1-5 with an optional comment and address (the form on the public site posts here; the form
    the QR code opens says ``source=qr``)."""
    source = "qr" if source == "qr" else "site"
    try:
        value = service.parse_rating(rating)
        if len(comment.strip()) > service.MAX_COMMENT:  # one limit, said on both forms: never cut in silence
            raise service.FeedbackError("comment", f"Комментарий длиннее {service.MAX_COMMENT} символов: сократите его")
    except service.FeedbackError as exc:
        return public_page(
            request,
            "web/feedback/form.html",
            status_code=422,
            action="/feedback",
            error=str(exc),
            ask_email=True,
            source=source,
        )
    settings = settings_of(request)
    with session_scope(settings) as session:
        now = utcnow()
        if not service.site_feedback_allowed(session, settings, client_ip(request), now):
            return notice(request, *TOO_MANY, status_code=429, link="/")
        service.record_site_feedback(
            session,
            service.SiteFeedback(rating=value, comment=comment, email=email.strip()[:320] or None, source=source),
            now,
        )
    return notice(request, *THANKS, link="/")


@router.get("/feedback/stats.json", summary="Статистика отзывов", response_model=None)
def feedback_stats_json(request: Request) -> JSONResponse:
    """Counts and average ratings per month, channel and unit (numbers only, for the statistics page)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        return JSONResponse(site_statistics(session, settings))


@router.get("/feedback/{token}", response_class=HTMLResponse, summary="Опрос после ответа")
def survey_form(request: Request, token: str) -> Response:
    """The one-question survey of an answered request (the GET answers nothing)."""
    settings = settings_of(request)
    with session_scope(settings) as session:
        try:
            survey = service.load_survey(session, settings, token)
        except service.FeedbackError as exc:
            return _error(request, exc.kind)
        if survey.answered_at is not None:
            return _error(request, "answered")
    return public_page(request, "web/feedback/form.html", action=f"/feedback/{token}", error="", ask_email=False)


@router.post("/feedback/{token}", response_class=HTMLResponse, summary="Ответить на опрос")
def survey_submit(
    request: Request,
    token: str,
    rating: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Record the survey's answer, once."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            survey = service.load_survey(session, settings, token, lock=True)
            value = service.parse_rating(rating)
            service.answer_survey(session, survey, rating=value, comment=comment, now=utcnow())
    except IntegrityError:  # another answer to the same survey was written first (the survey's unique key)
        return _error(request, "answered")
    except service.FeedbackError as exc:
        if exc.kind == "rating":
            return public_page(
                request,
                "web/feedback/form.html",
                status_code=422,
                action=f"/feedback/{token}",
                error=str(exc),
                ask_email=False,
            )
        return _error(request, exc.kind)
    return notice(request, *THANKS, link="/")
