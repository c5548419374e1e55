"""List mail (tryout F3), end to end on SQLite and PostgreSQL: a newsletter is ignored, but a letter a list or a
form service relays that asks something waits visibly for staff, never dropped (59-FZ art. 8 p. 2: every appeal
is registered) and never acting as a command.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.history.models import HistoryExport
from mailservice.inforequests.models import Request
from mailservice.intake.actions import register_held
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.outbox import OutboxMessage
from tests.mailfactory import citizen_mail
from tests.test_cli import run

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
LIST = {"List-Id": "<zhiteli-lenina.groups.example.ru>", "List-Unsubscribe": "<mailto:leave@groups.example.ru>"}
COMPLAINT = "Прошу принять меры: у дома 5 по ул. Ленина третий месяц не вывозят строительный мусор с участка."


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def take(settings: Settings, raw: bytes) -> str:
    return str(process_raw(settings, raw, Source("smtp", envelope_from="x@example.ru"), now=NOW).outcome)


def sent(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


NEWS = "Главные новости недели: открыт новый сквер, стартовал фестиваль уличной еды."
VACATION = "Я в отпуске до 10.03. По срочным вопросам прошу обращаться к заместителю."


def _mail(sender: str, name: str, subject: str, body: str, headers: dict[str, str]) -> bytes:
    return citizen_mail(sender=sender, name=name, subject=subject, body=body, headers=headers)


@pytest.mark.parametrize(
    "raw",
    [
        # Newsletters, by each of the list headers alone or together.
        *(
            pytest.param(_mail("news@portal.example.ru", "Портал", "Дайджест недели", NEWS, headers), id=label)
            for label, headers in (
                ("newsletter-list-id+unsubscribe", LIST),
                ("newsletter-list-id", {"List-Id": "<news.example.ru>"}),
                ("newsletter-precedence-bulk", {"Precedence": "bulk"}),
                ("newsletter-list-unsubscribe", {"List-Unsubscribe": "<https://x.example/u>"}),
            )
        ),
        # Precedence: auto_reply marks an automatic answer (RFC 3834 §3.1.8 names the header's use), not list mail.
        pytest.param(
            _mail("ivanov@example.ru", "Иванов Иван Иванович", "Я в отпуске", VACATION, {"Precedence": "auto_reply"}),
            id="auto-reply-by-precedence",
        ),
        # A program's notice marked Auto-Submitted that asks nothing (tryout T).
        pytest.param(
            _mail(
                "backup@example.org",
                "Резервное копирование",
                "Отчёт",
                "Резервное копирование завершено успешно.",
                {"Auto-Submitted": "auto-generated"},
            ),
            id="auto-generated-notice-that-asks-nothing",
        ),
    ],
)
def test_machine_mail_that_asks_nothing_is_ignored_and_nothing_is_answered(settings: Settings, raw: bytes) -> None:
    assert take(settings, raw) == Outcome.ignored_auto_reply
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 0
    assert sent(settings) == []


@pytest.mark.parametrize("headers", [LIST, {"Precedence": "list"}], ids=["list-headers", "precedence-list"])
def test_a_relayed_letter_that_asks_waits_for_staff_and_is_registered_by_them(
    settings: Settings, headers: dict[str, str]
) -> None:
    relayed = citizen_mail(sender="petrova@example.ru", subject="Мусор", body=COMPLAINT, headers=headers)
    assert take(settings, relayed) == Outcome.held
    assert sent(settings) == []  # held letters get no acknowledgement until staff register them
    held = json.loads(run("intake", "held", "--json").stdout)
    assert [(row["from"], row["register_by"]) for row in held] == [("petrova@example.ru", "2026-03-05")]
    assert "письмо рассылки" in " ".join(held[0]["reasons"])
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.number is None and request.text.startswith("Прошу принять меры")
        register_held(session, settings, request, actor="op@dizo.test", now=NOW)
        assert request.number
    assert sent(settings) == ["acknowledgement"]


def test_a_relayed_command_does_not_act(settings: Settings) -> None:
    # The strict command form of the history request (README «Команды по электронной почте»), relayed by a list.
    relayed = citizen_mail(
        sender="petrova@example.ru", subject="Прошу предоставить историю моих обращений", body="", headers=LIST
    )
    assert take(settings, relayed) == Outcome.held
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(HistoryExport.id))) == 0
    assert sent(settings) == []


# ------------------------------------------------------------------------------------------------------------------
# Tryout T: a relayed question without «прошу», and a form service's appeal marked Auto-Submitted
# ------------------------------------------------------------------------------------------------------------------


def held_reasons(settings: Settings) -> list[str]:
    held = json.loads(run("intake", "held", "--json").stdout)
    assert len(held) == 1
    return [str(reason) for reason in held[0]["reasons"]]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(
            _mail(
                "sidorov@example.ru",
                "Иванов Иван Иванович",
                "Аренда",
                "Подскажите, как оформить аренду земельного участка под огород?",
                {"List-Id": "<citizens.groups.example.org>"},
            ),
            "письмо рассылки",
            id="list-question-without-the-word-proshu",
        ),
        pytest.param(
            _mail(
                "forms@example.org",
                "Форма сайта",
                "Обращение с сайта",
                "Прошу сообщить, когда будет аукцион на здание на ул. Ленина, 5. Иванов С. С., s@example.ru",
                {"Auto-Submitted": "auto-generated"},
            ),
            "сформированное программой",
            id="form-service-appeal-auto-generated",
        ),
    ],
)
def test_a_relayed_letter_that_asks_waits_for_staff(settings: Settings, raw: bytes, reason: str) -> None:
    assert take(settings, raw) == Outcome.held
    assert sent(settings) == []
    assert reason in " ".join(held_reasons(settings))
