"""Tryout of 6 December (G1-G8): what a citizen, an attacker, staff and a new admin met, as strict expected failures.

Each test fails today because of the defect named in its reason and passes once the defect is fixed. The database
tests run on SQLite and PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import email.policy
import re
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import REFUSAL_GROUNDS, Status
from mailservice.inforequests.models import Request
from mailservice.inforequests.search import search_requests
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from tests.cli_support import cli_env
from tests.conftest import make_env, reset_caches
from tests.console_support import client_for, drain, parsed, text_of
from tests.mailfactory import citizen_mail
from tests.security.identity_support import staff_console
from tests.servers import Sink

PDF = b"%PDF-1.4\n%scan of a signed appeal\n"


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def _intake(settings: Settings, raw: bytes, sender: str) -> Request:
    result = process_raw(settings, raw, Source("smtp", envelope_from=sender), now=utcnow())
    assert result.request_number, result
    with session_scope(settings) as session:
        request = session.scalar(select(Request).where(Request.number == result.request_number))
        assert request is not None
        session.expunge(request)
        return request


def _letters_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [parsed(raw) for _from, rcpts, raw in sink.messages() if address in rcpts]


@pytest.fixture
def fast_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Settings on both databases with no minimum fill time (a test client fills a form at once)."""
    yield make_env(
        monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", request_min_fill_seconds="0"
    )
    reset_caches()


# G0 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Иванов\r\nИван", "Иванов\x0bИван", "Иванов\u2028Иван"],
    ids=["crlf", "vertical-tab-from-word", "line-separator"],
)
def test_the_form_registers_a_name_with_a_line_break(fast_form: Settings, name: str) -> None:
    http = client_for(fast_form)
    page = http.get("/request")
    assert page.status_code == 200
    opened = re.search(r'name="opened" value="([^"]+)"', page.text)
    assert opened
    response = http.post(
        "/request",
        data={
            "opened": opened.group(1), "website": "", "name": name, "email": "crlf@example.ru",
            "subject": "График приёма", "text": "Прошу сообщить график приёма граждан.",
        },
    )  # fmt: skip
    assert response.status_code == 200
    with session_scope(fast_form) as session:
        numbers = list(session.scalars(select(Request.number).where(Request.reply_email == "crlf@example.ru")))
    assert len(numbers) == 1 and numbers[0]
    assert re.search(r"\d{4}-\d{6}", response.text)


def test_the_console_registers_a_call_whose_name_has_a_line_break(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    response = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf, "channel": "phone", "name": "Петров\x0bПётр", "email": "vt@example.ru",
            "phone": "+7 913 555-55-55", "subject": "Звонок", "text": "Спрашивает о торгах",
        },
    )  # fmt: skip
    assert response.status_code == 303
    with session_scope(settings) as session:
        assert session.scalar(select(Request.number).where(Request.reply_email == "vt@example.ru"))


# G1 -------------------------------------------------------------------------------------------------------------


def test_refusal_for_no_address_is_not_silent_when_the_request_has_one(settings: Settings, sink: Sink) -> None:
    sender = "sidorov.p@example.ru"
    raw = citizen_mail(
        sender=sender,
        name="Сидоров Пётр Андреевич",
        subject="Жалоба",
        body="Третий месяц не могу оформить участок под домом, никто не отвечает. Прошу разобраться.",
    )
    request = _intake(settings, raw, sender)
    drain(settings)
    sink.clear()
    ground = "59fz-11-1" if request.law == "59-fz" else "8fz-20-1-2"
    refused_by_rules = False
    try:
        with session_scope(settings) as session:
            loaded = session.get(Request, request.id)
            assert loaded is not None and loaded.reply_email == sender and loaded.client.name
            service.change_status(
                session, settings, loaded, Status.refused, now=utcnow(), actor="t",
                comment="Оставлено без ответа", ground=ground,
            )  # fmt: skip
    except ValueError:  # TransitionError: the rules refuse a ground the request contradicts
        refused_by_rules = True
    drain(settings)
    # Either the ground is refused (the request names the citizen and has an address), or the citizen is told.
    assert refused_by_rules or _letters_to(sink, sender)


# G2 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["Обращение", "Обращение в департамент"])
def test_a_scanned_appeal_titled_obrashchenie_is_not_a_history_request(settings: Settings, subject: str) -> None:
    sender = "skan@example.ru"
    message = EmailMessage()
    message["From"] = f"Лебедева Мария <{sender}>"
    message["To"] = "info@dizo.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<scan-{len(subject)}@example.ru>"
    message.set_content("")
    message.add_attachment(PDF, "application", "pdf", filename="Обращение.pdf")
    request = _intake(settings, message.as_bytes(policy=email.policy.SMTP), sender)
    # README / docs/labelling.md: a letter called an appeal is an appeal (59-FZ); when unsure, staff review it.
    assert request.type != "history_request"
    assert request.type == "appeal" or request.needs_review


# G3 -------------------------------------------------------------------------------------------------------------


def test_the_grounds_of_59_fz_art_11_parts_4_and_4_1_are_offered() -> None:
    titles = " ".join(g.title for g in REFUSAL_GROUNDS.values() if g.law == "59-fz")
    assert "ст. 11 ч. 4 59-ФЗ" in titles
    assert "ст. 11 ч. 4.1 59-ФЗ" in titles


# G4 -------------------------------------------------------------------------------------------------------------


def test_the_forwarding_notice_promises_no_answer_date_of_ours(settings: Settings, sink: Sink) -> None:
    sender = "forward@example.ru"
    raw = citizen_mail(sender=sender, subject="Ямы на дороге", body="Прошу отремонтировать дорогу на ул. Лесной.")
    request = _intake(settings, raw, sender)
    with session_scope(settings) as session:
        loaded = session.get(Request, request.id)
        assert loaded is not None
        service.change_status(
            session, settings, loaded, Status.forwarded, now=utcnow(), actor="t",
            comment="Вопрос относится к компетенции мэрии.", forwarded_to="Мэрия города Новосибирска",
        )  # fmt: skip
    drain(settings)
    notices = [text_of(m) for m in _letters_to(sink, sender) if "перенаправлен" in str(m["Subject"])]
    assert len(notices) == 1
    assert "Мэрия города Новосибирска" in notices[0]
    assert "Срок ответа" not in notices[0]


# G5 -------------------------------------------------------------------------------------------------------------


def test_a_letter_forwarded_as_attachment_is_read(settings: Settings) -> None:
    inner = EmailMessage()
    inner["From"] = "Мария Лебедева <lebedeva@example.ru>"
    inner["To"] = "colleague@example.ru"
    inner["Subject"] = "Аукцион"
    inner.set_content("Прошу сообщить, когда будет аукцион на участок в Бердске.")
    outer = EmailMessage()
    outer["From"] = "Коллега <colleague@example.ru>"
    outer["To"] = "info@dizo.test"
    outer["Subject"] = "Fw: Аукцион"
    outer["Message-ID"] = "<fw-as-attachment@example.ru>"
    outer.set_content("")
    outer.add_attachment(inner)
    request = _intake(settings, outer.as_bytes(policy=email.policy.SMTP), "colleague@example.ru")
    with session_scope(settings) as session:
        found = [hit.request.id for hit in search_requests(session, "аукцион Бердске").hits]
    assert request.id in found


# G6 -------------------------------------------------------------------------------------------------------------


def test_an_undeclared_cp866_letter_is_read(settings: Settings) -> None:
    text = "Прошу сообщить, когда будет аукцион на участок в Бердске."
    raw = (
        b"From: dos@example.ru\r\nTo: info@dizo.test\r\nSubject: aukcion\r\nMessage-ID: <cp866@example.ru>\r\n"
        b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text.encode("cp866") + b"\r\n"
    )
    request = _intake(settings, raw, "dos@example.ru")
    assert "аукцион" in request.text


# G7 -------------------------------------------------------------------------------------------------------------


def test_requests_list_help_is_russian() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailservice", "requests", "list", "--help"],
        capture_output=True, text=True, timeout=120, check=False, env=cli_env(COLUMNS="80"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Список запросов" in out  # the Russian help as a user sees it
    for english in ("OPTIONS", "int range", "x>="):
        assert english not in out, english
    json_line = next(line for line in out.splitlines() if "--json" in line)
    assert json_line.replace("--json", "").strip(), "--json has no description"


# G8 -------------------------------------------------------------------------------------------------------------


def test_an_organisation_is_not_greeted_as_a_person(settings: Settings, sink: Sink) -> None:
    sender = "office@romashka.example.ru"
    raw = citizen_mail(
        sender=sender, name="ООО «Ромашка»", subject="Запрос",
        body="Просим сообщить перечень земельных участков, предлагаемых в аренду в 2027 году.",
    )  # fmt: skip
    _intake(settings, raw, sender)
    drain(settings)
    letters = _letters_to(sink, sender)
    assert len(letters) == 1
    greeting = text_of(letters[0]).splitlines()[0]
    assert "ООО" not in greeting or not greeting.startswith("Уважаемый(ая)"), greeting


# G9 -------------------------------------------------------------------------------------------------------------


def test_a_linked_request_does_not_carry_the_old_number_as_its_subject(settings: Settings, sink: Sink) -> None:
    sender = "petrova@example.ru"
    raw = citizen_mail(sender=sender, name="Петрова Анна", subject="Часы приёма", body="Сообщите часы приёма.")
    first = _intake(settings, raw, sender)
    with session_scope(settings) as session:
        loaded = session.get(Request, first.id)
        assert loaded is not None
        service.change_status(
            session, settings, loaded, Status.answered, now=utcnow(), actor="t",
            comment="Приём по вторникам с 9:00 до 13:00.",
        )  # fmt: skip
    drain(settings)
    answer = next(m for m in _letters_to(sink, sender) if "дан ответ" in str(m["Subject"]))
    sink.clear()
    follow_up = EmailMessage()
    follow_up["From"] = f"Петрова Анна <{sender}>"
    follow_up["To"] = "info@dizo.test"
    follow_up["Subject"] = f"Re: {answer['Subject']}"
    follow_up["Message-ID"] = "<follow-up@example.ru>"
    follow_up["In-Reply-To"] = str(answer["Message-ID"])
    follow_up.set_content("Спасибо! А в пятницу приём есть?")
    second = _intake(settings, follow_up.as_bytes(policy=email.policy.SMTP), sender)
    assert second.id != first.id and second.parent_id == first.id
    drain(settings)
    acknowledgement = next(m for m in _letters_to(sink, sender) if "зарегистрировано" in str(m["Subject"]))
    topic = next(line for line in text_of(acknowledgement).splitlines() if line.startswith("Тема:"))
    assert f"[№ {first.number}]" not in topic, topic


# G10 ------------------------------------------------------------------------------------------------------------


def test_requests_list_fits_80_columns_with_whole_statuses(settings: Settings) -> None:
    sender = "list80@example.ru"
    _intake(settings, citizen_mail(sender=sender, subject="Аренда", body="Прошу сообщить ставки аренды."), sender)
    result = subprocess.run(
        [sys.executable, "-m", "mailservice", "requests", "list"],
        capture_output=True, text=True, timeout=120, check=False, env=cli_env(COLUMNS="80"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "2026-" in result.stdout or "2027-" in result.stdout  # the number, whole
    assert "зарегистрирован" in result.stdout  # the status, whole
    header = next(line for line in lines if "№" in line)
    cells = [cell.strip() for cell in header.strip("┃│ ").split("┃")]
    assert all(cells), header


# G11 ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def dedicated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Settings with the dedicated command addresses set (README, "Commands by e-mail")."""
    yield make_env(
        monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1",
        unsubscribe_address="unsubscribe@dizo.test", history_address="history@dizo.test",
    )  # fmt: skip
    reset_caches()


@pytest.mark.parametrize("command_address", ["unsubscribe@dizo.test", "history@dizo.test"])
def test_a_question_copied_to_a_command_address_is_registered(dedicated: Settings, command_address: str) -> None:
    load_routes()
    sender = "cc-command@example.ru"
    raw = citizen_mail(
        sender=sender, name="Орлова Вера", subject="Торги",
        body="Прошу сообщить, когда будут торги по участкам в Бердске, и не присылать мне больше рассылку.",
        headers={"Cc": command_address},
    )  # fmt: skip
    result = process_raw(dedicated, raw, Source("smtp", envelope_from=sender), now=utcnow())
    assert result.request_number, (result.outcome, result.reason)
