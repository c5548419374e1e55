"""A new letter that names an earlier request of the same client («Дополнение к обращению № 2026-000001»): a staff
note on each, linked in the console, never a merge; nothing for another client's number or an unproven address
(README "Register first": identity is proven, not matched). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Request
from mailservice.intake.mentions import mentioned_numbers
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, drain, login
from tests.mailfactory import citizen_mail, message_id_of
from tests.servers import Sink

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
IVANOV, PETROVA = "ivanov@example.ru", "petrova@example.ru"
ADDITION = "Прилагаю к обращению копию договора аренды от 01.02.2025. Прошу учесть её при рассмотрении."


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


@pytest.mark.parametrize(
    ("subject", "body", "numbers"),
    [
        ("Дополнение к обращению № 2026-000001", ADDITION, ["2026-000001"]),
        ("Дополнение", "Здравствуйте!\nПо обращению №2026-000017 сообщаю номер договора.", ["2026-000017"]),
        (
            "Re: Дополнение к обращению № 2026-000001",
            "к запросу 2025-000301 и 2026-000001",
            ["2026-000001", "2025-000301"],
        ),
        ("Вопрос", "Телефон 8-913-123-4567, договор 12026-0000011 от 2026-03-01.", []),  # no registration number
        ("Вопрос", "1\n2\n3\n4\n5\nПо обращению № 2026-000001", []),  # a number far down is not what it adds to
    ],
)
def test_the_numbers_a_letter_names_in_its_subject_and_first_lines(subject: str, body: str, numbers: list[str]) -> None:
    assert mentioned_numbers(subject, body) == numbers


def _take(settings: Settings, sender: str, subject: str, body: str, **kw: object) -> tuple[Outcome, str | None]:
    raw = citizen_mail(sender=sender, subject=subject, body=body, **kw)  # type: ignore[arg-type]
    result = process_raw(settings, raw, Source("smtp", envelope_from=sender), now=NOW)
    return result.outcome, result.request_number


def _proven_client_with_a_request(settings: Settings, sink: Sink, sender: str) -> str:
    """A letter from ``sender``, and its reply to our acknowledgement (which proves the address); its number."""
    outcome, number = _take(settings, sender, "Аренда участка", "Прошу сообщить размер арендной платы за участок.")
    assert outcome is Outcome.new_request and number
    drain(settings)
    ack = [raw for _f, rcpts, raw in sink.messages() if sender in rcpts][-1]
    reply = _take(settings, sender, "Re: ответ", "Участок в Ленинском районе.", in_reply_to=message_id_of(ack))
    assert reply[0] is Outcome.reply
    return number


def _notes(settings: Settings, number: str) -> list[tuple[str, dict[str, object]]]:
    with session_scope(settings) as session:
        request = session.scalar(select(Request).where(Request.number == number))
        assert request is not None
        return [(e.comment, dict(e.data or {})) for e in request.events if e.kind == "note"]


def test_an_addition_to_a_clients_request_is_noted_on_both_never_merged(settings: Settings, sink: Sink) -> None:
    first = _proven_client_with_a_request(settings, sink, IVANOV)
    outcome, second = _take(settings, IVANOV, f"Дополнение к обращению № {first}", ADDITION)
    assert outcome is Outcome.new_request and second and second != first  # its own number: not merged
    with session_scope(settings) as session:
        old = session.scalar(select(Request).where(Request.number == first))
        new = session.scalar(select(Request).where(Request.number == second))
        assert old is not None and new is not None and old.id != new.id
        old_id, new_id = old.id, new.id
        assert new.text == ADDITION and old.text != ADDITION
    assert (
        f"Упоминает обращение № {first}",
        {"internal": True, "mentions": {"request_id": old_id, "number": first}},
    ) in (_notes(settings, second))
    assert (
        f"Упомянуто в обращении № {second}",
        {"internal": True, "mentions": {"request_id": new_id, "number": second}},
    ) in _notes(settings, first)
    # The console links each to the other.
    add_staff(settings, "operator@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "operator@dizo.test")
    page = http.get(f"/staff/requests/{new_id}")
    assert page.status_code == 200
    assert f'href="/staff/requests/{old_id}">→ обращение № {first}</a>' in page.text
    back = http.get(f"/staff/requests/{old_id}")
    assert f'href="/staff/requests/{new_id}">→ обращение № {second}</a>' in back.text


def test_another_clients_number_leaves_no_trace(settings: Settings, sink: Sink) -> None:
    theirs = _proven_client_with_a_request(settings, sink, PETROVA)
    mine = _proven_client_with_a_request(settings, sink, IVANOV)
    outcome, new = _take(settings, IVANOV, f"Дополнение к обращению № {theirs}", f"И к обращению № {mine}. {ADDITION}")
    assert outcome is Outcome.new_request and new
    notes = [comment for comment, _data in _notes(settings, new)]
    assert f"Упоминает обращение № {mine}" in notes  # the client's own request only
    assert not any(theirs in comment for comment in notes), notes
    assert not any("Упомянуто" in comment for comment, _data in _notes(settings, theirs))


def test_an_unproven_address_gets_no_note(settings: Settings) -> None:
    outcome, first = _take(settings, IVANOV, "Аренда участка", "Прошу сообщить размер арендной платы за участок.")
    assert outcome is Outcome.new_request and first
    outcome, second = _take(settings, IVANOV, f"Дополнение к обращению № {first}", ADDITION)
    assert outcome is Outcome.new_request and second
    assert not any("Упомина" in comment for comment, _data in _notes(settings, second))
    assert not any("Упомянуто" in comment for comment, _data in _notes(settings, first))
