"""Console pages of feedback handled by staff (issue 17): answer a site comment that left an address, the call
list of last week's answered clients with a phone, and ratings recorded from those calls."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.service import FeedbackError, parse_rating
from mailservice.feedback.staff import answer_comment, call_list, record_phone_rating
from mailservice.inforequests.service import get_by_number
from mailservice.web.security import DbId
from mailservice.web.staff.auth import FEEDBACK_VIEW
from mailservice.web.staff.deps import Refused, StaffContext, page, redirect, require, settings_of
from mailservice.web.staff.routes import Operator, Text, _audit, _feedback_page, _local, _names

router = APIRouter(prefix="/staff", include_in_schema=False)
FeedbackViewer = Annotated[StaffContext, Depends(require(FEEDBACK_VIEW))]


def _calls_page(
    request: Request, ctx: StaffContext, *, error: str = "", done: str = "", status_code: int = 200
) -> Response:
    with session_scope(settings_of(request)) as session:
        calls = call_list(session, utcnow())
        return page(
            request,
            "web/staff/feedback_calls.html",
            ctx=ctx,
            calls=calls,
            error=error,
            done=done,
            status_code=status_code,
            local=_local(request),
            **_names(),
        )


@router.get("/feedback/calls", response_class=HTMLResponse)
def calls_page(request: Request, ctx: Operator) -> Response:
    """The call list: last week's answered requests whose client has a phone, with a form to record the rating."""
    done = "Оценка записана." if request.query_params.get("done") == "rating" else ""
    return _calls_page(request, ctx, done=done)


@router.post("/feedback/phone")
def phone_rating(request: Request, ctx: Operator, number: Text = "", rating: Text = "", comment: Text = "") -> Response:
    """Record a rating the client gave by phone for one request."""
    try:
        value = parse_rating(rating)
        with session_scope(settings_of(request)) as session:
            found = get_by_number(session, number.strip()[:20])
            if found is None:
                raise FeedbackError("rating", f"Запрос № {number.strip()[:20]} не найден")
            response = record_phone_rating(session, found, rating=value, comment=comment, actor=ctx.email, now=utcnow())
            session.flush()
            _audit(session, ctx, "feedback_phone_rating", "feedback", response.id, request_id=found.id)
    except FeedbackError as exc:
        return _calls_page(request, ctx, error=str(exc), status_code=400)
    return redirect("/staff/feedback/calls?done=rating")


@router.post("/feedback/{response_id}/answer")
def answer(request: Request, ctx: FeedbackViewer, response_id: DbId, text: Text = "") -> Response:
    """Answer by e-mail a comment left on the site with an address for the answer."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            response = session.get(FeedbackResponse, response_id)
            if response is None:
                raise Refused(404, "Отзыв не найден")
            answer_comment(session, settings, response, text, actor=ctx.email, now=utcnow())
            _audit(session, ctx, "feedback_answer", "feedback", response.id)
    except FeedbackError as exc:
        # README "Staff console": a refused action loses nothing typed; the answer comes back in its form.
        return _feedback_page(
            request, ctx, error=f"Ответ не отправлен: {exc}", status_code=400, typed_answer=(response_id, text)
        )
    return redirect("/staff/feedback?done=answer")
