"""Issue 14: anyone could stuff the published satisfaction figures (100 anonymous ``POST /feedback rating=1`` in
0.3 s). Now the anonymous form is limited per address, the published figures come from survey answers only, and
a survey takes one answer even when several arrive at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback import service
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import service as requests_service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.processes.figures import group4_figures
from mailservice.web.app import create_app
from tests.console_support import mail_request

# README, "Security model": at most 10 ratings per address per hour from the anonymous form.
FORM_LIMIT_PER_HOUR = 10


def survey_token(settings: Settings) -> str:
    """An answered request's survey link token."""
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        requests_service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="test", comment="Ответ"
        )
        survey = service.queue_survey(session, settings, request, utcnow())
        assert survey is not None
        return service.survey_token(settings, survey)


def from_ip(settings: Settings, ip: str) -> TestClient:
    return TestClient(create_app(settings), client=(ip, 40000))


def test_anonymous_ratings_do_not_move_the_published_figures(settings: Settings) -> None:
    token = survey_token(settings)
    assert from_ip(settings, "192.0.2.1").post(f"/feedback/{token}", data={"rating": "5"}).status_code == 200
    for n in range(30):  # an attacker from thirty addresses
        from_ip(settings, f"198.51.100.{n}").post("/feedback", data={"rating": "1"})
    stats = json.loads(from_ip(settings, "192.0.2.1").get("/feedback/stats.json").text)
    assert (stats["responses"], stats["average"]) == (1, 5.0)
    with session_scope(settings) as session:
        [month] = group4_figures(session, settings)
        assert (month.feedback_count, month.feedback_average) == (1, 5.0)
        # The form's ratings are kept (staff see them apart), not lost.
        assert session.scalar(select(func.count()).where(FeedbackResponse.source == "site")) == 30


def test_anonymous_form_is_limited_per_address(settings: Settings) -> None:
    attacker = from_ip(settings, "203.0.113.7")
    for _ in range(FORM_LIMIT_PER_HOUR):
        assert attacker.post("/feedback", data={"rating": "1"}).status_code == 200
    refused = attacker.post("/feedback", data={"rating": "1"}, headers={"accept": "text/html"})
    assert refused.status_code == 429 and "Слишком много отзывов" in refused.text
    # Someone else is not held up by the attacker.
    assert from_ip(settings, "203.0.113.8").post("/feedback", data={"rating": "4"}).status_code == 200
    # The limit counts with the connection's address: a forged X-Forwarded-For does not reset it.
    forged = attacker.post("/feedback", data={"rating": "1"}, headers={"x-forwarded-for": "192.0.2.99"})
    assert forged.status_code == 429
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(FeedbackResponse.id))) == FORM_LIMIT_PER_HOUR + 1


def test_a_survey_takes_one_answer_even_when_several_arrive_at_once(settings: Settings) -> None:
    token = survey_token(settings)
    app = create_app(settings)

    def answer(rating: int) -> int:
        with TestClient(app) as http:
            return http.post(f"/feedback/{token}", data={"rating": str(rating)}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(answer, [1, 2, 3, 4, 5, 1]))
    assert sorted(codes) == [200, 409, 409, 409, 409, 409], codes
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(FeedbackResponse.id))) == 1
