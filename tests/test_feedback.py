"""Feedback: one survey after an answer, its signed page, the site's form and the averages."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select, update

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback import service
from mailservice.feedback.models import FeedbackResponse, FeedbackSurvey
from mailservice.feedback.stats import buckets, compute
from mailservice.inforequests import service as requests_service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, drain, link_in, login, mail_request, parsed
from tests.servers import Sink

NSK = dt.timezone(dt.timedelta(hours=7))


def answer(settings: Settings, request_id: int, *, unit: str = "") -> None:
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        request.unit = unit
        requests_service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="test", comment="Ответ по существу"
        )


def test_the_survey_of_a_forwarded_request_asks_about_the_work_not_an_answer(settings: Settings, sink: Sink) -> None:
    """A forwarding (or a closure) is no answer of ours: «Оцените ... ответ» read as if one had been given (staff-day
    tryout of 7 December); an answer's survey keeps its subject (the test above)."""
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        requests_service.change_status(
            session, settings, request, Status.forwarded, now=utcnow(), actor="test", forwarded_to="Мэрия"
        )
        assert service.sweep(session, settings, utcnow()) == 1
    drain(settings)
    subjects = [str(parsed(raw)["Subject"]) for _f, _to, raw in sink.messages()]
    assert "[№ 2026-000001] Оцените, пожалуйста, работу с вашим обращением" in subjects, subjects
    assert not [subject for subject in subjects if "ответ на ваше обращение" in subject], subjects


def test_survey_is_sent_once_and_answered_once(settings: Settings, sink: Sink) -> None:
    request_id = mail_request(settings)
    answer(settings, request_id, unit="Отдел аренды")
    with session_scope(settings) as session:
        assert service.sweep(session, settings, utcnow()) == 1
        assert service.sweep(session, settings, utcnow()) == 0  # once per request
        request = session.get(Request, request_id)
        assert request is not None
        assert service.queue_survey(session, settings, request, utcnow()) is None
    drain(settings)
    [survey_mail] = [parsed(raw) for _f, _to, raw in sink.messages() if "Оцените" in parsed(raw)["Subject"]]
    assert str(survey_mail["Subject"]).endswith("] Оцените, пожалуйста, ответ на ваше обращение")
    path = link_in(survey_mail, "/feedback/")
    http = client_for(settings)
    page = http.get(path)
    assert page.status_code == 200 and 'name="rating"' in page.text
    with session_scope(settings) as session:  # the GET (a scanner) answered nothing
        assert session.scalar(select(func.count(FeedbackResponse.id))) == 0
    assert http.post(path, data={"rating": "7"}).status_code == 422
    assert http.post(path, data={"rating": "4", "comment": "Быстро и понятно"}).status_code == 200
    again = http.post(path, data={"rating": "1"})
    assert again.status_code == 409 and "уже ответили" in again.text
    assert http.get(path).status_code == 409
    with session_scope(settings) as session:
        [response] = session.scalars(select(FeedbackResponse)).all()
        assert (response.rating, response.comment, response.channel, response.unit) == (
            4, "Быстро и понятно", "email", "Отдел аренды")  # fmt: skip
        survey = session.scalars(select(FeedbackSurvey)).one()
        assert survey.answered_at is not None and survey.request_id == request_id


def test_no_survey_before_an_answer_or_without_an_address(lite_settings: Settings) -> None:
    request_id = mail_request(lite_settings)
    with session_scope(lite_settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        assert service.queue_survey(session, lite_settings, request, utcnow()) is None  # not answered yet
    answer(lite_settings, request_id)
    with session_scope(lite_settings) as session:
        session.execute(update(Request).values(reply_email=None))
        assert service.sweep(session, lite_settings, utcnow()) == 0
        assert session.scalar(select(func.count(OutboxMessage.id)).where(OutboxMessage.kind == "feedback_survey")) == 0


def test_tampered_and_expired_survey_links(lite_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = mail_request(lite_settings)
    answer(lite_settings, request_id)
    with session_scope(lite_settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        survey = service.queue_survey(session, lite_settings, request, utcnow())
        assert survey is not None
        token = service.survey_token(lite_settings, survey)
        survey_id, nonce = survey.id, survey.nonce
    http = client_for(lite_settings)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, "1", str(survey_id)):
        for method in ("GET", "POST"):
            response = http.request(method, f"/feedback/{bad}", data={"rating": "5"} if method == "POST" else None)
            assert response.status_code == 400 and "недействительна" in response.text
    from mailservice.tokens import Purpose, sign_timed

    wrong_nonce = sign_timed(lite_settings, Purpose.feedback, {"s": survey_id, "n": nonce[::-1]})
    assert http.post(f"/feedback/{wrong_nonce}", data={"rating": "5"}).status_code == 400
    monkeypatch.setattr(
        TimestampSigner, "get_timestamp", lambda self: int(time.time()) - (service.SURVEY_LINK_DAYS + 1) * 86400
    )
    with session_scope(lite_settings) as session:
        old = service.survey_token(lite_settings, session.get(FeedbackSurvey, survey_id))  # type: ignore[arg-type]
    monkeypatch.undo()
    expired = http.post(f"/feedback/{old}", data={"rating": "5"})
    assert expired.status_code == 410 and "истёк" in expired.text
    with session_scope(lite_settings) as session:
        assert session.scalar(select(func.count(FeedbackResponse.id))) == 0


def test_site_form_stats_page_and_console(lite_settings: Settings) -> None:
    http = client_for(lite_settings)
    assert http.get("/feedback").status_code == 200
    assert (
        http.post("/feedback", data={"rating": "5", "comment": "Отлично", "email": "a@example.ru"}).status_code == 200
    )
    assert http.post("/feedback", data={"rating": "2"}).status_code == 200
    for bad in ("0", "6", "", "пять", "4.5"):
        assert http.post("/feedback", data={"rating": bad}).status_code == 422
    # The anonymous form's ratings are not published (issue 14: anyone could stuff them); staff see them apart.
    stats = json.loads(http.get("/feedback/stats.json").text)
    assert stats["responses"] == 0 and stats["average"] is None and stats["by_channel"] == []
    assert "Отлично" not in json.dumps(stats, ensure_ascii=False) and "a@example.ru" not in json.dumps(stats)
    add_staff(lite_settings, "mm@dizo.test", Role.mailing_manager)
    login(http, "mm@dizo.test")
    page = http.get("/staff/feedback")
    assert page.status_code == 200 and 'id="fb-count">0<' in page.text and "Отлично" in page.text
    assert re.search(r'id="fb-anonymous">[^<]*: 2, средняя 3\.50', page.text)


def test_averages_per_month_channel_and_unit() -> None:
    rows = [
        (dt.datetime(2026, 3, 31, 18, 0, tzinfo=dt.UTC), "email", "Отдел аренды", 5),  # 1 April in Novosibirsk
        (dt.datetime(2026, 3, 31, 16, 0, tzinfo=dt.UTC), "phone", "", 2),
        (dt.datetime(2026, 4, 10, 3, 0, tzinfo=dt.UTC), "email", "Отдел аренды", 4),
    ]
    stats = compute(rows, NSK)
    assert stats.count == 3 and stats.average == 3.67
    assert [(b.key, b.count, b.average) for b in stats.by_month] == [("2026-03", 1, 2.0), ("2026-04", 2, 4.5)]
    assert [(b.label, b.average) for b in stats.by_channel] == [("электронная почта", 4.5), ("телефон", 2.0)]
    assert [(b.key, b.average) for b in stats.by_unit] == [("Отдел аренды", 4.5), ("—", 2.0)]
    assert buckets([]) == [] and compute([], NSK).average is None
    with pytest.raises(service.FeedbackError):
        service.parse_rating("0")
