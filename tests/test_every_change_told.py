"""Every change told to the client (issue 17 p. 3): automatic status changes and due-date changes through the
outbox, threaded; the notification address changed by staff only to a proven one; the survey after any final
status (p. 4)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback import service as feedback
from mailservice.inforequests import deadlines, identity, service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Client, Request
from mailservice.intake.pipeline import Source, process_raw
from mailservice.outbox import OutboxMessage
from mailservice.templating import ru_date  # the letters' date form (formatting, not the rule tested)
from tests.console_support import mail_request, parsed, text_of
from tests.mailfactory import citizen_mail


def _outbox(settings: Settings, request_id: int) -> list[OutboxMessage]:
    with session_scope(settings) as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == request_id).order_by(OutboxMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_the_clarification_received_is_told_and_threaded(settings: Settings) -> None:
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.change_status(
            session, settings, request, Status.clarification_requested, now=utcnow(), actor="t",
            comment="Уточните, за какой год нужны сведения.",
        )  # fmt: skip
    asked = _outbox(settings, request_id)[-1]
    reply = citizen_mail(subject="Re: уточнение", body="Нужны сведения за 2025 год.", in_reply_to=asked.message_id)
    result = process_raw(settings, reply, Source("smtp", envelope_from="ivanov@example.ru"), now=utcnow())
    assert result.outcome == "reply"
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.status == Status.in_progress  # the automatic change
    notice = _outbox(settings, request_id)[-1]
    assert notice.kind == "status_notice" and notice.id != asked.id
    message = parsed(notice.raw)
    assert "на рассмотрении" in text_of(message) and "Получено уточнение" in text_of(message)
    assert str(message["In-Reply-To"]).strip("<>") == asked.message_id  # threaded under our last letter
    assert notice.recipients == "ivanov@example.ru"


def test_a_due_date_changed_by_reclassification_is_told(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both laws give 30 days today; a term that differs by law (as a region's rules or a later amendment may set)
    # is what moves a due date on reclassification. The rule table is data: set it for this test.
    monkeypatch.setitem(deadlines.ANSWER_DAYS, deadlines.Law.FZ59, 15)
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.law == "8-fz"
        before = request.due_date
        service.reclassify(
            session, settings, request, type_="appeal", topic=request.topic, urgency=request.urgency,
            appeal_kind="application", actor="t", now=utcnow(),
        )  # fmt: skip
        after = request.due_date
    assert before is not None and after is not None and after != before
    notice = _outbox(settings, request_id)[-1]
    assert notice.kind == "due_date_notice"
    body = text_of(parsed(notice.raw))
    assert (
        f"Новый срок ответа: не позднее {ru_date(after)}" in body and f"Прежний срок ответа: {ru_date(before)}" in body
    )
    # A reclassification that keeps the term sends nothing more.
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.reclassify(
            session, settings, request, type_="appeal", topic=request.topic, urgency="urgent",
            appeal_kind="application", actor="t", now=utcnow(),
        )  # fmt: skip
    assert _outbox(settings, request_id)[-1].id == notice.id


def test_notification_address_only_a_proven_one(settings: Settings) -> None:
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        with pytest.raises(service.RequestError, match="не подтверждён"):
            service.set_notification_address(session, request, "new@example.ru", actor="t", now=utcnow())
        client = session.get(Client, request.client_id)
        assert client is not None
        identity.record_check(
            session, client, document="passport_rf", checked_by="clerk@dizo.test", now=utcnow(), email="new@example.ru"
        )
        session.flush()
        service.set_notification_address(session, request, "new@example.ru", actor="clerk@dizo.test", now=utcnow())
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="t")
    assert _outbox(settings, request_id)[-1].recipients == "new@example.ru"


@pytest.mark.parametrize("final", [Status.refused, Status.forwarded, Status.closed])
def test_the_survey_follows_any_final_status(settings: Settings, final: Status) -> None:
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        if final is Status.closed:
            service.change_status(
                session, settings, request, Status.clarification_requested, now=utcnow(), actor="t", comment="?"
            )
        service.change_status(
            session, settings, request, final, now=utcnow(), actor="t", comment="Решение",
            ground="8fz-20-1-3" if final is Status.refused else None,
            forwarded_to="Росреестр" if final is Status.forwarded else "",
        )  # fmt: skip
        assert feedback.sweep(session, settings, utcnow()) == 1
        assert feedback.sweep(session, settings, utcnow()) == 0
    survey = _outbox(settings, request_id)[-1]
    assert survey.kind == "feedback_survey" and "/feedback/" in text_of(parsed(survey.raw))


def test_console_changes_the_notification_address_to_a_proven_one(settings: Settings) -> None:
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, client_for, csrf_of, login

    request_id = mail_request(settings)
    add_staff(settings, "operator@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "operator@dizo.test")
    page = http.get(f"/staff/requests/{request_id}").text
    assert "Адрес для уведомлений" in page
    csrf = csrf_of(page)
    url = f"/staff/requests/{request_id}/notify-address"
    refused = http.post(url, data={"csrf_token": csrf, "address": "stranger@example.ru"})
    assert refused.status_code == 400 and "не подтверждён" in refused.text
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.reply_email == "ivanov@example.ru"
        identity.record_check(
            session, request.client, document="passport_rf", checked_by="t", now=utcnow(), email="work@example.ru"
        )
    assert 'value="work@example.ru"' in http.get(f"/staff/requests/{request_id}").text  # offered in the list
    done = http.post(url, data={"csrf_token": csrf, "address": "work@example.ru"})
    assert done.status_code == 303
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.reply_email == "work@example.ru"
