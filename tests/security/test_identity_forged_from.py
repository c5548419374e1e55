"""Issue 14, medium: a forged From with a Reply-To filed a request in the victim's record and sent the
acknowledgement, greeting the victim by the stored name, and every later notice, to the attacker's Reply-To.

Now the acknowledgement goes to the From address (the person named), greeting with the name this very message
gave; a different Reply-To is recorded and used only once proven for the client; nothing of the victim's other
requests reaches the attacker.
"""

from __future__ import annotations

from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from tests.console_support import drain, text_of
from tests.mailfactory import citizen_mail
from tests.security.identity_support import Outcome, deliver, mail_to, texts_to
from tests.servers import Sink

VICTIM = "victim@example.ru"
ATTACKER = "attacker@evil-mail.ru"
VICTIM_NAME = "Петрова Анна Сергеевна"
SECRET_SUBJECT = "Кадастровая стоимость участка 54:35:011111:42"


def test_forged_from_with_reply_to_reaches_only_the_person_named(settings: Settings, sink: Sink) -> None:
    earlier = deliver(settings, citizen_mail(sender=VICTIM, name=VICTIM_NAME, subject=SECRET_SUBJECT))
    assert earlier.request_number
    drain(settings)
    sink.clear()

    forged = citizen_mail(
        sender=VICTIM,
        name="Иван",
        subject="Запрос о договорах аренды",
        body="Прошу сообщить, сколько договоров аренды заключено в 2025 году.",
        headers={"Reply-To": ATTACKER},
    )
    result = deliver(settings, forged)
    assert result.outcome is Outcome.new_request and result.request_number  # filed all the same
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        # Staff answer it: every notice goes to the person named, never to the unproven Reply-To.
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="op")
        service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="op", comment="Заключено 12 договоров."
        )
    drain(settings)
    assert mail_to(sink, ATTACKER) == []
    to_victim = mail_to(sink, VICTIM)
    assert len(to_victim) >= 3  # acknowledgement, two status notices (a survey may follow)
    ack = to_victim[0]
    # The greeting is the name this message gave, not the one stored in the record it named.
    assert "Здравствуйте, Иван!" in text_of(ack) and "Анна Сергеевна" not in text_of(ack)
    assert VICTIM_NAME not in str(ack["To"])
    everything = texts_to(sink, VICTIM)
    assert earlier.request_number not in everything and SECRET_SUBJECT not in everything  # no other request
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert (request.reply_email, request.reply_to_claimed) == (VICTIM, ATTACKER)  # the Reply-To is recorded


def test_a_reply_to_is_used_for_answers_once_proven_for_the_client(settings: Settings, sink: Sink) -> None:
    """The legitimate case: a client who wants answers at another address proves it (here in person)."""
    from mailservice.inforequests import identity

    first = deliver(
        settings,
        citizen_mail(sender=VICTIM, name=VICTIM_NAME, headers={"Reply-To": "anna.work@example.org"}),
    )
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == first.request_number)).one()
        identity.record_check(
            session, request.client, document="passport_rf", checked_by="op@dizo.test", now=utcnow(),
            email="anna.work@example.org",
        )  # fmt: skip
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="op")
    drain(settings)
    [ack] = mail_to(sink, VICTIM)  # the acknowledgement went to the person named in From
    [notice] = mail_to(sink, "anna.work@example.org")  # the answer-side notice, to the now proven address
    assert "Статус" in str(notice["Subject"]) and "Уважаемая Анна Сергеевна!" in text_of(notice)
    assert "зарегистрировано" in str(ack["Subject"])
