"""Names on one line, refusal grounds that must fit the request, forwarding notices and greetings (tryout of
6 December, G0/G1/G3/G4/G8). Values compared are the README's and docs/legal-rules.md's; database tests run on
SQLite and PostgreSQL (the ``settings`` fixture)."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest
from typer.testing import CliRunner

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.cli import app as requests_cli
from mailservice.inforequests.lifecycle import (
    REFUSAL_GROUNDS,
    Channel,
    Status,
    TransitionError,
    check_transition,
    review_note,
)
from mailservice.inforequests.models import Client, Request
from mailservice.mail.compose import format_address
from mailservice.mail.headers import one_line
from mailservice.templating import greeting
from mailservice.webrequests.status import status_url
from tests.console_support import client_for, drain, parsed, staff_request, text_of
from tests.security.identity_support import staff_console
from tests.servers import Sink

# G0 -------------------------------------------------------------------------------------------------------------

BROKEN_NAMES = ["Иванов\r\nИван", "Иванов\x0bИван", "Иванов\u2028Иван", "Иванов\u2029\tИван", "Иванов\x00Иван"]


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_a_display_name_with_a_line_break_is_folded_into_a_space_never_refused(name: str) -> None:
    header = format_address(name, "ivanov@example.ru")
    assert "\r" not in header and "\n" not in header
    shown, address = parseaddr(str(make_header(decode_header(header))))
    assert (shown, address) == ("Иванов Иван", "ivanov@example.ru")  # not a letter lost


@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_names_are_stored_on_one_line(settings: Settings, name: str) -> None:
    request_id, client_id = staff_request(
        settings, subject="Звонок\r\nо торгах", name=name, organisation="ООО\x0b«Ромашка»", email="one@example.ru"
    )
    with session_scope(settings) as session:
        client = session.get_one(Client, client_id)
        request = session.get_one(Request, request_id)
        assert (client.name, client.organisation) == ("Иванов Иван", "ООО «Ромашка»")
        assert request.subject == "Звонок о торгах"
    assert one_line(" Иванов\u2028\u2028 Иван ") == "Иванов Иван"


# G1 -------------------------------------------------------------------------------------------------------------


def _refuse(settings: Settings, request_id: int, ground: str) -> None:
    with session_scope(settings) as session:
        service.change_status(
            session, settings, session.get_one(Request, request_id), Status.refused, now=utcnow(), actor="t",
            comment="Оставлено без ответа", ground=ground,
        )  # fmt: skip


def test_no_address_refusal_is_refused_for_a_phone_call_with_a_phone(settings: Settings) -> None:
    # 8-FZ art. 20 part 1 p. 2: no postal address, e-mail, fax or phone for the answer. A phone is one.
    request_id, _ = staff_request(settings, subject="Звонок", name="Петров Пётр", phone="+7 913 555-00-01")
    with pytest.raises(TransitionError, match="не подходит") as refused:
        _refuse(settings, request_id, "8fz-20-1-2")
    # The message also says why and what to do instead, whole: staff read it in the console and on the command line.
    assert str(refused.value).endswith(
        "По этому основанию заявителю ничего не направляется, поэтому выберите другое основание или дайте ответ."
    )
    with session_scope(settings) as session:
        assert session.get_one(Request, request_id).status == Status.registered


def test_no_address_refusal_stays_for_a_request_with_no_way_to_answer(settings: Settings, sink: Sink) -> None:
    request_id, _ = staff_request(settings, subject="Звонок", name="Петров Пётр")
    drain(settings)
    sink.clear()
    _refuse(settings, request_id, "8fz-20-1-2")
    drain(settings)
    with session_scope(settings) as session:
        assert session.get_one(Request, request_id).status == Status.refused
    assert not sink.messages()  # the ground sends no reply (docs/legal-rules.md)


def test_no_name_refusal_is_refused_in_the_console_and_the_cli(settings: Settings) -> None:
    """59-FZ art. 11 part 1: no name or no address. An appeal with both cannot be left unanswered on it."""
    with session_scope(settings) as session:
        client = service.find_or_create_client(
            session, now=utcnow(), name="Сидоров Пётр", postal_address="630099, Новосибирск, ул. Ленина, 1"
        )
        request = service.create_request(
            session, settings, now=utcnow(), client=client, channel=Channel.phone, subject="Жалоба",
            text="Прошу разобраться.", labels=service.Labels(type="appeal"),
        )  # fmt: skip
        session.flush()
        request_id, number = request.id, request.number
    assert number
    http, csrf = staff_console(settings)
    response = http.post(
        f"/staff/requests/{request_id}/status",
        data={"csrf_token": csrf, "target": "refused", "ground": "59fz-11-1", "comment": "Без ответа"},
    )
    assert response.status_code == 400
    assert "не подходит: в запросе есть фамилия заявителя и адрес для ответа" in response.text
    result = CliRunner().invoke(
        requests_cli, ["status", number, "--to", "refused", "--ground", "59fz-11-1", "--comment", "Без ответа"]
    )
    assert result.exit_code != 0 and "не подходит" in result.output, result.output
    with session_scope(settings) as session:
        assert session.get_one(Request, request_id).status == Status.registered


# G3 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "words"),
    [
        ("ст. 11 ч. 4 59-ФЗ", "не поддаётся прочтению"),
        ("ст. 11 ч. 4.1 59-ФЗ", "не позволяет определить суть"),
        ("ст. 11 ч. 5.1 59-ФЗ", "размещён на официальном сайте"),
        ("ст. 11 ч. 6 59-ФЗ", "охраняемую федеральным законом тайну"),
    ],
)
def test_the_grounds_of_59_fz_art_11_are_offered_with_their_reply(part: str, words: str) -> None:
    # docs/legal-rules.md: under each of these parts the citizen is told (within 7 days for parts 4, 4.1, 5.1).
    (ground,) = [g for g in REFUSAL_GROUNDS.values() if part in g.title]
    assert ground.law == "59-fz" and words in ground.title and ground.send_reply


def test_an_unreadable_appeal_is_told_to_the_citizen(settings: Settings, sink: Sink) -> None:
    request_id, _ = staff_request(settings, subject="Письмо", name="Сидоров Пётр", email="unreadable@example.ru")
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        request.law = "59-fz"
    drain(settings)
    sink.clear()
    (code,) = [g.code for g in REFUSAL_GROUNDS.values() if "ст. 11 ч. 4 59-ФЗ" in g.title]
    _refuse(settings, request_id, code)
    drain(settings)
    (letter,) = [parsed(raw) for _f, rcpts, raw in sink.messages() if rcpts == ["unreadable@example.ru"]]
    text = text_of(letter)
    assert "ст. 11 ч. 4 59-ФЗ" in text and "В предоставлении информации отказано" not in text


# G4 -------------------------------------------------------------------------------------------------------------


def test_the_status_page_of_a_forwarded_request_gives_no_answer_date_of_ours(settings: Settings) -> None:
    request_id, _ = staff_request(settings, subject="Дороги", name="Петров Пётр", email="roads@example.ru")
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        service.change_status(
            session, settings, request, Status.forwarded, now=utcnow(), actor="t",
            forwarded_to="Мэрия города Новосибирска",
        )  # fmt: skip
        path = re.sub(r"^https?://[^/]+", "", status_url(settings, request))
    http = client_for(settings)
    page = http.get(path)
    assert page.status_code == 200
    assert "Мэрия города Новосибирска" in page.text
    assert "Срок ответа" not in page.text
    # Closed afterwards (the console's «Закрыть» for a forwarding in full): still the other body's, still no date
    # of ours (staff-day tryout of 7 December: the department's own due date came back).
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        service.change_status(session, settings, request, Status.closed, now=utcnow(), actor="t")
    closed = http.get(path).text
    assert "Мэрия города Новосибирска" in closed and "ответ по существу даст орган" in closed
    assert "Срок ответа" not in closed
    # Taken back into work and answered by the department after all: its answer and its date again.
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="t")
        service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="t", comment="Ответ департамента."
        )
        service.change_status(session, settings, request, Status.closed, now=utcnow(), actor="t")
    answered = http.get(path).text
    assert "Ответ департамента." in answered and "ответ по существу даст орган" not in answered
    assert "Срок ответа" in answered


def test_the_status_page_names_an_appeal_as_the_letters_do(settings: Settings) -> None:
    """Citizen-side tryout of 7 December: an appeal (59-FZ) was «Запрос № …» on its page and «обращение» in every
    letter; and on a 320-pixel screen the number broke after «2026-»."""
    request_id, _ = staff_request(settings, subject="Жалоба", name="Петров Пётр", email="appeal@example.ru")
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        request.law = "59-fz"
        number = request.number
        path = re.sub(r"^https?://[^/]+", "", status_url(settings, request))
    page = client_for(settings).get(path).text
    assert f'<h1>Обращение <span class="nowrap">№ {number}</span></h1>' in page
    with session_scope(settings) as session:
        session.get_one(Request, request_id).law = "8-fz"
    assert f'<h1>Запрос <span class="nowrap">№ {number}</span></h1>' in client_for(settings).get(path).text


@pytest.mark.parametrize(
    ("current", "target", "ground", "law", "message", "field"),
    [
        (Status.closed, Status.forwarded, None, "8-fz", "Переход «закрыт» → «перенаправлен» не допускается", None),
        (Status.registered, Status.refused, None, "8-fz", "Для отказа нужно указать правовое основание", "ground"),
        (Status.registered, Status.refused, "no-such", "8-fz", "Неизвестное основание отказа: no-such", None),
        (
            Status.registered, Status.refused, "8fz-20-1-3", "59-fz",
            "Основание 8fz-20-1-3 относится к 8-fz, а запрос рассматривается по 59-fz", None,
        ),
        (Status.registered, Status.answered, "8fz-20-1-3", "8-fz", "Основание указывается только при отказе", None),
    ],
)  # fmt: skip
def test_a_refused_status_change_says_why_and_what_to_give(
    current: Status, target: Status, ground: str | None, law: str, message: str, field: str | None
) -> None:
    """The lifecycle's refusals are shown to staff as they are (the console) and with the CLI's option for what is
    missing (``field``: «(--ground)»); the message says which rule refused."""
    with pytest.raises(TransitionError) as refused:
        check_transition(current, target, ground=ground, law=law)
    assert str(refused.value) == message
    assert refused.value.field == field
    check_transition(Status.registered, Status.refused, ground="8fz-20-1-3", law="8-fz")  # the lawful one passes


# G8 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "organisation", "expected"),
    [
        # A patronymic tells «Уважаемый» from «Уважаемая», and the letter names the given name and the patronymic,
        # whatever the order of the words (citizen-side and staff-day tryouts of 7 December: «Уважаемый(ая) Иван
        # Петрович Сидоров!»).
        ("Сидоров Пётр Андреевич", "", "Уважаемый Пётр Андреевич!"),
        ("Иван Петрович Сидоров", "", "Уважаемый Иван Петрович!"),
        ("Белова Анна Ивановна", "", "Уважаемая Анна Ивановна!"),
        ("Людмила Сергеевна Ершова", "", "Уважаемая Людмила Сергеевна!"),
        ("Нина Ильинична", "", "Уважаемая Нина Ильинична!"),
        ("Владимир Ильич Кузьмин", "", "Уважаемый Владимир Ильич!"),
        ("Карпович Иван Сергеевич", "", "Уважаемый Иван Сергеевич!"),  # a surname that ends like a patronymic
        ("Иван Сергеевич Карпович", "", "Уважаемый Иван Сергеевич!"),
        ("ИВАНОВА МАРИЯ ПЕТРОВНА", "", "Уважаемая Мария Петровна!"),  # typed in capitals
        ("Сидоров П. А.", "", "Здравствуйте, Сидоров П. А.!"),  # initials: neither word tells
        ("Бабич Олег", "", "Здравствуйте, Бабич Олег!"),
        ("ООО «Ромашка»", "", "Здравствуйте!"),
        ("ИП Сидоров К.П.", "", "Здравствуйте!"),
        ("ПАО Ромашка", "", "Здравствуйте!"),
        ("ЗАО Ромашка", "", "Здравствуйте!"),
        ("АО Ромашка", "", "Здравствуйте!"),
        ("МУП Горводоканал", "", "Здравствуйте!"),
        ("ГУП Ромашка", "", "Здравствуйте!"),
        ("ТСЖ Лесное", "", "Здравствуйте!"),
        ("СНТ Берёзка", "", "Здравствуйте!"),
        ("Ромашка", "Ромашка", "Здравствуйте!"),  # the organisation given is the name
        ("Иванов Иван", "ООО «Ромашка»", "Здравствуйте, Иванов Иван!"),  # its representative, named
        ("Ипатов Сергей", "", "Здравствуйте, Ипатов Сергей!"),  # «Ип» in a surname is no legal form
        ("Аоки Юко", "", "Здравствуйте, Аоки Юко!"),
        ("", "", "Здравствуйте!"),
    ],
)
def test_the_greeting_of_persons_and_organisations(name: str, organisation: str, expected: str) -> None:
    assert greeting(name, organisation) == expected


def test_a_letter_on_paper_to_an_organisation_has_no_greeting() -> None:
    assert greeting("ООО «Ромашка»", fallback="") == ""
    assert greeting("Сидоров Пётр", fallback="") == "Здравствуйте, Сидоров Пётр!"


def test_an_organisation_given_in_the_console_is_greeted_hello(settings: Settings, sink: Sink) -> None:
    http, csrf = staff_console(settings)
    response = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf, "channel": "phone", "name": "", "organisation": "Ромашка", "email": "r@example.ru",
            "phone": "+7 913 555-00-02", "subject": "Аренда", "text": "Спрашивает о ставках аренды",
        },
    )  # fmt: skip
    assert response.status_code == 303
    drain(settings)
    (letter,) = [parsed(raw) for _f, rcpts, raw in sink.messages() if rcpts == ["r@example.ru"]]
    assert text_of(letter).splitlines()[0] == "Здравствуйте!"


def test_the_review_note_names_what_to_check_only_on_a_flagged_request() -> None:
    # README "Classifier": a flagged decision says «проверить тип», «проверить тему» or «проверить тип и тему»;
    # requests classified before say «проверить классификацию». An unflagged one says nothing.
    assert review_note(False, {"review": ["type"]}) == ""
    assert review_note(True, {"review": ["type"]}) == "проверить тип"
    assert review_note(True, {"review": ["type", "topic"]}) == "проверить тип и тему"
    for older in ({}, None, "type", ["type"]):  # no review list, or no classification kept at all
        assert review_note(True, older) == "проверить классификацию"
