"""Texts a tester found wrong (tryout F6, F13, F14, F17 and the status page): what a citizen or staff read."""

from __future__ import annotations

from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.mailings.render import CampaignSource, render_bodies
from mailservice.resources import package_path
from mailservice.webrequests.status import status_token
from tests.console_support import client_for, drain, mail_request, parsed, text_of
from tests.security.identity_support import staff_console
from tests.servers import Sink

FEEDBACK_COMMENT_LIMIT = 4000  # README: a comment up to 4000 characters


def _number(settings: Settings, request_id: int) -> str:
    with session_scope(settings) as session:
        number = session.get(Request, request_id).number  # type: ignore[union-attr]
        assert number
        return number


def test_status_letters_end_the_due_date_with_one_period(settings: Settings, sink: Sink) -> None:
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="t", comment="")
        service.change_status(
            session, settings, request, Status.extended, now=utcnow(), actor="t", comment="Сбор сведений",
            extension_days=15,
        )  # fmt: skip
    drain(settings)
    letters = [text_of(parsed(raw)) for _f, _r, raw in sink.messages() if "Статус обращения" in parsed(raw)["Subject"]]
    assert len(letters) == 2
    for text in letters:
        assert "не позднее" in text and "г.." not in text
    assert "продлён на 15 дней" in letters[1] and "дн." not in letters[1]


def test_the_status_page_does_not_repeat_registered(settings: Settings) -> None:
    number = _number(settings, mail_request(settings))
    page = client_for(settings).get(f"/status/{status_token(settings, number)}")
    assert page.status_code == 200 and "— Зарегистрирован" in page.text
    assert "Зарегистрирован: зарегистрирован" not in page.text


def test_the_message_under_take_in_work_is_labelled_as_going_to_the_applicant(settings: Settings) -> None:
    http, _csrf = staff_console(settings)
    page = http.get(f"/staff/requests/{mail_request(settings)}")
    assert page.status_code == 200
    assert ">Комментарий<" not in page.text
    assert page.text.count("Сообщение заявителю") >= 2  # in progress and close (every status change is sent)


def test_the_history_form_promises_no_letter_it_does_not_send(settings: Settings) -> None:
    page = client_for(settings).get("/history")
    assert "сначала придёт письмо" not in page.text
    assert "на неподтверждённый адрес форма ничего не отправляет" in page.text and "История обращений" in page.text


def test_feedback_comment_has_one_limit_said_on_both_forms(settings: Settings) -> None:
    site_form = package_path("site", "overrides", "feedback.html").read_text(encoding="utf-8")
    assert f'maxlength="{FEEDBACK_COMMENT_LIMIT}"' in site_form and f"не более {FEEDBACK_COMMENT_LIMIT}" in site_form
    http = client_for(settings)
    assert f'maxlength="{FEEDBACK_COMMENT_LIMIT}"' in http.get("/feedback").text
    too_long = http.post("/feedback", data={"rating": "4", "comment": "я" * (FEEDBACK_COMMENT_LIMIT + 500)})
    assert too_long.status_code == 422 and f"длиннее {FEEDBACK_COMMENT_LIMIT} символов" in too_long.text
    assert http.post("/feedback", data={"rating": "4", "comment": "я" * FEEDBACK_COMMENT_LIMIT}).status_code == 200
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(FeedbackResponse.id))) == 1


def test_campaign_greeting_without_a_name(settings: Settings) -> None:
    source = CampaignSource(
        subject="Новости", text="{{ greeting }}\n\nТекст.\n{{ unsubscribe_url }}", html=None, list_title="Новости",
        list_slug="news",
    )  # fmt: skip
    assert render_bodies(settings, source, "", "https://x/u")[0].startswith("Здравствуйте!\n")
    assert render_bodies(settings, source, "Анна", "https://x/u")[0].startswith("Здравствуйте, Анна!\n")
