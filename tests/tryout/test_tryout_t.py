"""Tryout T (tester): citizens' letters that vanish or wait unregistered, on SQLite and PostgreSQL.

README "Register first": every letter a person writes is registered (59-FZ art. 8 p. 2, 8-FZ art. 18) unless it is
a bounce, an automatic reply, list mail, a duplicate, a reply to an open request, a thank-you or a command; list mail
that asks something waits in the held queue; a letter that asks is never held as advertising. Each case below is a
person's letter the service drops or holds today; they are expected failures until the finding is fixed.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest

from mailservice.config import Settings
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from tests.mailfactory import citizen_mail

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def take(settings: Settings, raw: bytes) -> str:
    return str(process_raw(settings, raw, Source("smtp", envelope_from="x@example.ru"), now=NOW).outcome)


@pytest.mark.xfail(strict=True, reason="T1: list mail that asks without the words of spam._REQUEST is dropped")
def test_t1_a_relayed_question_waits_for_staff(settings: Settings) -> None:
    relayed = citizen_mail(
        sender="sidorov@example.ru",
        subject="Аренда",
        body="Подскажите, как оформить аренду земельного участка под огород?",
        headers={"List-Id": "<citizens.groups.example.org>"},
    )
    assert take(settings, relayed) == Outcome.held


@pytest.mark.xfail(strict=True, reason="T2: a person's address ending in -admin/-request is taken for a list robot")
@pytest.mark.parametrize("sender", ["olga-admin@mail.ru", "fedor-request@yandex.ru"])
def test_t2_a_citizen_whose_address_ends_like_a_list_robot_is_registered(settings: Settings, sender: str) -> None:
    letter = citizen_mail(sender=sender, subject="Вопрос", body="Прошу сообщить часы приёма граждан.")
    assert take(settings, letter) == Outcome.new_request


@pytest.mark.xfail(strict=True, reason="T3: a form service's relayed appeal (Auto-Submitted) is dropped")
def test_t3_a_form_service_relay_that_asks_is_not_dropped(settings: Settings) -> None:
    relayed = citizen_mail(
        sender="forms@example.org",
        name="Форма сайта",
        subject="Обращение с сайта",
        body="Прошу сообщить, когда будет аукцион на здание на ул. Ленина, 5. Иванов С. С., s@example.ru",
        headers={"Auto-Submitted": "auto-generated"},
    )
    assert take(settings, relayed) in {Outcome.held, Outcome.new_request}


@pytest.mark.xfail(strict=True, reason="T4: a company named «Почтовый сервис» is taken for a mail system")
def test_t4_a_company_named_like_a_mail_service_is_registered(settings: Settings) -> None:
    letter = citizen_mail(
        sender="office@pochta-servis.ru",
        name="ООО Почтовый сервис",
        subject="Аренда помещения",
        body="Прошу сообщить условия аренды нежилого помещения площадью 50 кв. м.",
    )
    assert take(settings, letter) == Outcome.new_request


@pytest.mark.xfail(strict=True, reason="T5: «Не доставлено письмо» with the letter attached is taken for a bounce")
def test_t5_a_citizen_forwarding_an_undelivered_letter_is_registered(settings: Settings) -> None:
    inner = EmailMessage()
    inner["From"] = "lidia@example.ru"
    inner["To"] = "dizo@nso.example.ru"
    inner["Subject"] = "Запрос о выкупе участка"
    inner.set_content("Прошу сообщить порядок выкупа арендуемого участка.")
    outer = EmailMessage()
    outer["From"] = "Лидия Орлова <lidia@example.ru>"
    outer["To"] = "info@dizo.test"
    outer["Subject"] = "Не доставлено письмо"
    outer["Date"] = "Mon, 02 Mar 2026 11:00:00 +0700"
    outer["Message-ID"] = "<t5@example.ru>"
    outer.set_content("Моё письмо на старый адрес не доставлено, пересылаю его вам во вложении. Прошу ответить.")
    outer.add_attachment(inner)
    assert take(settings, outer.as_bytes()) == Outcome.new_request


@pytest.mark.xfail(strict=True, reason="T6: a letter that asks («Как быть?») is held as advertising")
def test_t6_a_question_with_prices_and_a_link_is_not_held(settings: Settings) -> None:
    letter = citizen_mail(
        sender="maria@example.ru",
        subject="Участок",
        body=(
            "Здравствуйте. Хочу купить земельный участок бесплатно как многодетная семья, на сайте "
            "https://torgi.gov.ru цены от 100 000 руб., а в объявлениях пишут про скидки. Как быть и куда идти? "
            "Нужна консультация, заранее благодарю за ответ."
        ),
    )
    assert take(settings, letter) == Outcome.new_request


@pytest.mark.xfail(strict=True, reason="T7: a command subject with a request in the body («прошу ...», no «?») acts")
@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("История обращений", "Прошу направить копию ответа на моё обращение об аренде участка на ул. Ленина, 5."),
        ("Отписаться от рассылки", "Также прошу сообщить, когда будут торги по аренде участков."),
    ],
    ids=["history+copy-of-answer", "unsubscribe+auction-question"],
)
def test_t7_a_request_written_under_a_command_subject_is_registered(
    settings: Settings, subject: str, body: str
) -> None:
    letter = citizen_mail(sender="nina@example.ru", subject=subject, body=body)
    assert take(settings, letter) == Outcome.new_request
