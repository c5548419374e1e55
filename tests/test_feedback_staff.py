"""Feedback handled by staff (issue 17 p. 4): site comments with an address answered from the console, ratings from
a phone call-round with its call list, the QR code's answers told apart from the site's."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import qrcode
import qrcode.constants
from sqlalchemy import select, update

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, csrf_of, login, mail_request, parsed, phone_request, text_of
from tests.test_site import _png_modules

OPERATOR = "operator@dizo.test"


def _answer(settings: Settings, request_id: int, when: dt.datetime) -> None:
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.change_status(session, settings, request, Status.answered, now=when, actor="t", comment="Ответ")


def test_site_comment_with_an_address_is_answered_from_the_console(settings: Settings) -> None:
    http = client_for(settings)
    assert (
        http.post("/feedback", data={"rating": "2", "comment": "Долго ждал", "email": "v@example.ru"}).status_code
        == 200
    )
    add_staff(settings, "mm@dizo.test", Role.mailing_manager)
    csrf = login(http, "mm@dizo.test")
    page = http.get("/staff/feedback").text
    assert "Адрес для ответа: v@example.ru" in page
    with session_scope(settings) as session:
        response_id = session.scalars(select(FeedbackResponse.id)).one()
    url = f"/staff/feedback/{response_id}/answer"
    assert http.post(url, data={"text": "Без токена"}).status_code == 403  # CSRF
    done = http.post(url, data={"csrf_token": csrf, "text": "Приносим извинения: срок сокращён."})
    assert done.status_code == 303
    again = http.post(url, data={"csrf_token": csrf, "text": "Ещё раз"})
    assert again.status_code == 400  # once per comment
    with session_scope(settings) as session:
        [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "feedback_answer")).all()
        assert row.recipients == "v@example.ru"
        message = parsed(row.raw)
        response = session.get(FeedbackResponse, response_id)
        assert response is not None and response.answered_by == "mm@dizo.test" and response.answered_at is not None
    assert "срок сокращён" in text_of(message)
    assert message["Auto-Submitted"] in (None, "no")  # a person wrote it: not an automatic message
    assert "Ответ на отзыв отправлен" in http.get("/staff/feedback?done=answer").text


def test_call_list_and_phone_ratings_count_once(settings: Settings) -> None:
    now = utcnow()
    called = phone_request(settings, name="Кузнецов Олег", phone="+7 913 000-00-00", subject="Вакансии", text="т")
    no_phone = mail_request(settings)
    old = phone_request(settings, name="Старов Пётр", phone="+7 913 111-11-11", subject="Аренда", text="т")
    open_one = phone_request(settings, name="Орлова Мария", phone="+7 913 222-22-22", subject="Земля", text="т")
    for request_id in (called, no_phone, old):
        _answer(settings, request_id, now - dt.timedelta(days=2))
    with session_scope(settings) as session:  # answered ten days ago: not last week's
        session.execute(update(Request).where(Request.id == old).values(answered_at=now - dt.timedelta(days=10)))
        numbers = {r.id: r.number for r in session.scalars(select(Request))}
    add_staff(settings, OPERATOR, Role.operator)
    http = client_for(settings)
    login(http, OPERATOR)
    page = http.get("/staff/feedback/calls").text
    listed = {rid for rid, number in numbers.items() if f">{number}<" in page}
    assert listed == {called}  # answered last week, has a phone, no rating yet
    assert "+7 913 000-00-00" in page
    csrf = csrf_of(page)
    done = http.post(
        "/staff/feedback/phone",
        data={"csrf_token": csrf, "number": numbers[called], "rating": "4", "comment": "Всё понятно"},
    )
    assert done.status_code == 303
    twice = http.post("/staff/feedback/phone", data={"csrf_token": csrf, "number": numbers[called], "rating": "5"})
    assert twice.status_code == 400 and "уже есть" in twice.text
    unfinished = http.post(
        "/staff/feedback/phone", data={"csrf_token": csrf, "number": numbers[open_one], "rating": "5"}
    )
    assert unfinished.status_code == 400
    assert f">{numbers[called]}<" not in http.get("/staff/feedback/calls").text  # rated: off the list
    with session_scope(settings) as session:
        [rating] = session.scalars(select(FeedbackResponse)).all()
        assert (rating.source, rating.rating, rating.request_id, rating.recorded_by) == ("phone", 4, called, OPERATOR)
    # A phone rating counts in the published figures (a rating staff record), unlike the anonymous form.
    stats = json.loads(http.get("/feedback/stats.json").text)
    assert stats["responses"] == 1 and stats["average"] == 4.0


def test_the_qr_codes_answers_are_told_apart(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = client_for(settings)
    form = http.get("/feedback?from=qr").text
    assert 'name="source" value="qr"' in form
    assert 'name="source"' not in http.get("/feedback").text
    assert http.post("/feedback", data={"rating": "5", "source": "qr"}).status_code == 200
    assert http.post("/feedback", data={"rating": "3"}).status_code == 200
    assert http.post("/feedback", data={"rating": "4", "source": "survey"}).status_code == 200  # no forged source
    with session_scope(settings) as session:
        sources = sorted(session.scalars(select(FeedbackResponse.source)))
    assert sources == ["qr", "site", "site"]
    # The printed QR code opens the form marked as the QR code's.
    monkeypatch.setenv("MAILSERVICE_PUBLIC_URL", "https://obr.dizo.example.ru")
    from mailservice.config import get_settings

    get_settings.cache_clear()
    out = tmp_path / "qr"
    assert main(["site", "qr", "--output", str(out)]) == 0
    expected = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    expected.add_data("https://obr.dizo.example.ru/feedback?from=qr")
    [png_file] = out.glob("*.png")
    assert _png_modules(png_file.read_bytes()) == expected.get_matrix()
