"""Register first (issue 13), end to end on SQLite and PostgreSQL with the outbox drained into a real SMTP sink.

Each outcome is the one the law asks for (RULES.md; 59-FZ art. 8, 8-FZ art. 18): a person's letter gets a
number and an acknowledgement whatever it is about; only advertising may wait unregistered, and then visibly with
its registration date counting; a letter outside the remit waits "to forward" with its forwarding date; commands
by e-mail act only in their strict forms; a thank-you to our answer is feedback; a gateway bounce is a bounce.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailservice import retention
from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse, FeedbackSurvey
from mailservice.feedback.service import sweep
from mailservice.feedback.stats import feedback_stats
from mailservice.history.models import HistoryExport
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Event, Request
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.mailings.models import Subscriber, Subscription, SubscriptionStatus, Suppression
from mailservice.mailings.upkeep import apply_bounces
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, drain, login, parsed, text_of
from tests.mailfactory import citizen_mail, message_id_of
from tests.realmail import LETTERS
from tests.servers import Sink
from tests.test_cli import run
from tests.test_mailings import import_active, subscription_of

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
EML = Path(__file__).parent / "data" / "eml"
NUMBER = re.compile(r"^\d{4}-\d{6}$")


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it; sixty letters on a loaded machine may take a while."""
    return run(*args, timeout=900)


def take(settings: Settings, raw: bytes, now: dt.datetime = NOW) -> tuple[Outcome, str | None]:
    result = process_raw(settings, raw, Source("smtp", envelope_from="x@example.ru"), now=now)
    return result.outcome, result.request_number


def mail_to(sink: Sink, address: str) -> list[str]:
    """Subjects of the messages the sink received for ``address``."""
    return [str(parsed(raw)["Subject"]) for _f, rcpts, raw in sink.messages() if address in rcpts]


def outbox_kinds(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


# ------------------------------------------------------------------------------------------------------------------
# Sixty letters that look like real mail, through `mailservice intake import`
# ------------------------------------------------------------------------------------------------------------------


def test_every_persons_letter_gets_a_number_and_an_acknowledgement(
    settings: Settings, sink: Sink, tmp_path: Path
) -> None:
    # Subscribers among the writers: a complaint that says «отписались» must not unsubscribe them.
    import_active(settings, ["r18@example.ru", "r22@example.ru", "r55@example.ru", "r57@example.ru"])
    files = []
    for i, letter in enumerate(LETTERS):
        path = tmp_path / f"letter{i:02d}.eml"
        path.write_bytes(letter.raw())
        files.append(str(path))
    result = cli("intake", "import", *files)
    assert result.returncode == 0, result.stderr
    drain(settings)

    registered = [letter for letter in LETTERS if letter.expect == "registered"]
    held = [letter for letter in LETTERS if letter.expect == "held"]
    assert len(registered) >= 55 and len(held) == 3
    with session_scope(settings) as session:
        entries = {e.from_addr: e for e in session.scalars(select(IntakeEntry))}
        assert len(entries) == len(LETTERS)
        numbers = []
        for letter in registered:
            entry = entries[letter.sender]
            assert entry.outcome == Outcome.new_request, (letter, entry.outcome, entry.reason)
            request = session.get(Request, entry.request_id)
            assert request is not None and request.status == Status.registered, letter
            assert request.number and NUMBER.match(request.number), letter
            assert request.due_date is not None
            numbers.append(request.number)
            # The acknowledgement reached the citizen, with the number in the subject.
            assert any(f"[№ {request.number}]" in s for s in mail_to(sink, letter.sender)), letter
        year = numbers[0][:4]
        assert sorted(numbers) == [f"{year}-{i:06d}" for i in range(1, len(registered) + 1)]  # gap-free
        for letter in held:
            entry = entries[letter.sender]
            assert entry.outcome == Outcome.held, (letter, entry.outcome)
            request = session.get(Request, entry.request_id)
            assert request is not None and request.status == Status.received and request.number is None
            assert mail_to(sink, letter.sender) == []  # no acknowledgement to an advertiser
        # Nothing a citizen wrote in passing subscribed, unsubscribed or exported anyone. The one withdrawal is r22's,
        # whose subject is «Отписаться» above «Почему вы присылаете мне письма?»: registered for its question, and
        # his mail stops at once, as consent ends on the demand (RULES.md, mailings: 152-FZ art. 9 p. 2).
        assert session.scalar(select(func.count(HistoryExport.id))) == 0
        statuses = dict(
            session.execute(
                select(Subscriber.email, Subscription.status).join(
                    Subscriber, Subscriber.id == Subscription.subscriber_id
                )
            ).all()
        )
        assert statuses == {
            "r18@example.ru": SubscriptionStatus.active,
            "r22@example.ru": SubscriptionStatus.withdrawn,
            "r55@example.ru": SubscriptionStatus.active,
            "r57@example.ru": SubscriptionStatus.active,
        }
    assert [k for k in outbox_kinds(settings) if k.startswith(("mailing", "history"))] == ["mailing_withdrawn"]

    # The held ones are in the staff queue with their registration date counting from receipt (3 days).
    listed = cli("intake", "held", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["from"] for r in rows) == sorted(letter.sender for letter in held)
    for row in rows:
        received = dt.datetime.fromisoformat(row["received_at"]).astimezone(settings.tz).date()
        assert row["register_by"] == (received + dt.timedelta(days=3)).isoformat()
        assert row["reasons"]
    as_list = cli("requests", "list", "--held", "--json")
    assert sorted(r["id"] for r in json.loads(as_list.stdout)) == sorted(r["id"] for r in rows)


# ------------------------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------------------------


def test_commands_only_in_their_strict_forms(settings: Settings, sink: Sink) -> None:
    import_active(settings, ["leaver@example.ru", "complainer@example.ru", "stays@example.ru"])
    # «Отписаться от рассылки», short: withdrawn, told so.
    outcome, number = take(
        settings, citizen_mail(sender="leaver@example.ru", subject="Отписаться от рассылки", body="")
    )
    assert outcome is Outcome.routed and number is None
    assert subscription_of(settings, "leaver@example.ru").status == SubscriptionStatus.withdrawn
    # «отписались» in a complaint: registered, and the subscription stays.
    complaint = citizen_mail(
        sender="complainer@example.ru", subject="Отписка", body="Опять отписались, прошу разобраться."
    )
    outcome, number = take(settings, complaint)
    assert outcome is Outcome.new_request and number
    assert subscription_of(settings, "complainer@example.ru").status == SubscriptionStatus.active
    # «Подписаться»: a confirmation link (double opt-in), nothing active yet.
    outcome, _ = take(settings, citizen_mail(sender="joiner@example.ru", subject="Подписаться", body=""))
    assert outcome is Outcome.routed
    assert subscription_of(settings, "joiner@example.ru").status == SubscriptionStatus.pending
    # «Прошу предоставить историю моих обращений»: the history procedure (the address must be confirmed first).
    history = citizen_mail(subject="Прошу предоставить историю моих обращений", body="С уважением, Иванов")
    outcome, _ = take(settings, history)
    assert outcome is Outcome.routed
    # A long letter that mentions the history is registered.
    passing = citizen_mail(
        sender="asker@example.ru",
        subject=None,
        body="Дайте историю переписки по моему делу и объясните, почему мне отказали в аренде участка.",
    )
    assert take(settings, passing)[0] is Outcome.new_request
    drain(settings)
    assert any("отписаны" in s for s in mail_to(sink, "leaver@example.ru"))
    assert mail_to(sink, "stays@example.ru") == []
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 2


def test_dedicated_addresses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> None:
    from tests.conftest import make_env

    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        unsubscribe_address="leave@dizo.test",
        subscribe_address="join@dizo.test",
    )
    import_active(settings, ["reader@example.ru"])
    # Whatever it says, mail to the unsubscribe address withdraws.
    to_leave = citizen_mail(sender="reader@example.ru", to="leave@dizo.test", subject="Новости", body="Надоело.")
    assert take(settings, to_leave)[0] is Outcome.routed
    assert subscription_of(settings, "reader@example.ru").status == SubscriptionStatus.withdrawn
    to_join = citizen_mail(sender="new@example.ru", to="join@dizo.test", subject=None, body="")
    assert take(settings, to_join)[0] is Outcome.routed
    assert subscription_of(settings, "new@example.ru").status == SubscriptionStatus.pending
    # The same words to the ordinary address are a request.
    ordinary = citizen_mail(sender="other@example.ru", subject="Новости", body="Надоело.")
    assert take(settings, ordinary)[0] is Outcome.new_request
    # To the main address with a copy to the unsubscribe address, a letter asking something of its own is
    # registered, with a note that it went to the command's address too (tryout G11); one that says nothing of its
    # own is still the command.
    import_active(settings, ["asks@example.ru", "quiet@example.ru"])
    words = "Когда будут торги в Бердске? И не присылайте мне больше рассылку."
    asks = citizen_mail(sender="asks@example.ru", subject="Торги", body=words, headers={"Cc": "leave@dizo.test"})
    outcome, number = take(settings, asks)
    assert outcome is Outcome.new_request and number
    assert subscription_of(settings, "asks@example.ru").status == SubscriptionStatus.active
    with session_scope(settings) as session:
        request_id = select(Request.id).where(Request.number == number).scalar_subquery()
        notes = session.scalars(select(Event.comment).where(Event.request_id == request_id)).all()
    # README: staff carry it out with the request page's «Исполнить как команду».
    assert any("отписка от рассылки" in (n or "") and "Исполнить как команду" in (n or "") for n in notes), notes
    cc = {"Cc": "leave@dizo.test"}
    quiet = citizen_mail(sender="quiet@example.ru", subject="Рассылка", body="Надоело.", headers=cc)
    assert take(settings, quiet)[0] is Outcome.routed
    assert subscription_of(settings, "quiet@example.ru").status == SubscriptionStatus.withdrawn


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI's ``main`` in this process (the exit code and standard error): a command of its own that needs no
    subprocess (the CLI as a process: the import and held-list tests above)."""
    code = main(list(args))
    return code, capsys.readouterr().err


def test_staff_convert_a_registered_letter_into_its_command(
    settings: Settings, sink: Sink, capsys: pytest.CaptureFixture[str]
) -> None:
    import_active(settings, ["tired@example.ru", "tired2@example.ru"])
    words = "Добрый день. Ваши новости мне не интересны, уберите меня уже наконец из всех списков, пожалуйста."
    _, number = take(settings, citizen_mail(sender="tired@example.ru", subject="Новости", body=words), utcnow())
    _, number2 = take(settings, citizen_mail(sender="tired2@example.ru", subject="Новости", body=words), utcnow())
    assert number and number2
    assert subscription_of(settings, "tired@example.ru").status == SubscriptionStatus.active
    with session_scope(settings) as session:
        request_id = session.scalars(select(Request.id).where(Request.number == number)).one()
    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    csrf = login(http, "op@dizo.test")
    page = http.get(f"/staff/requests/{request_id}")
    assert "Исполнить как команду" in page.text
    response = http.post(f"/staff/requests/{request_id}/convert", data={"csrf_token": csrf, "command": "unsubscribe"})
    assert response.status_code == 303, response.text
    assert subscription_of(settings, "tired@example.ru").status == SubscriptionStatus.withdrawn
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.status == Status.answered
        notes = [e for e in request.events if e.kind == "note" and e.data.get("command") == "unsubscribe"]
        assert len(notes) == 1 and notes[0].actor == "op@dizo.test"
    # The CLI does the same for the other letter.
    code, err = in_process(capsys, "requests", "convert", number2, "--to", "unsubscribe")
    assert code == 0, err
    assert subscription_of(settings, "tired2@example.ru").status == SubscriptionStatus.withdrawn
    # A finished request cannot be converted again.
    code, err = in_process(capsys, "requests", "convert", number2, "--to", "unsubscribe")
    assert code == 1 and "уже рассмотрен" in err
    drain(settings)
    answers = [raw for _f, rcpts, raw in sink.messages() if rcpts == ["tired@example.ru"]]
    assert any("отписке от рассылки" in text_of(parsed(raw)) for raw in answers)
    # Converted to a history request, a letter gets «подтвердите адрес»; neither it nor the others is asked to rate
    # an answer it never had (the survey follows a real answer only).
    history = "Здравствуйте. Хочу видеть всё, что я вам писал, и что вы мне отвечали, если можно."
    _, number3 = take(settings, citizen_mail(sender="curious@example.ru", subject="Переписка", body=history), utcnow())
    assert number3
    code, err = in_process(capsys, "requests", "convert", number3, "--to", "history")
    assert code == 0, err
    with session_scope(settings) as session:
        assert sweep(session, settings, utcnow()) == 0
        assert session.scalar(select(func.count(FeedbackSurvey.id))) == 0
    drain(settings)
    for address in ("tired@example.ru", "curious@example.ru"):
        assert [subject for subject in mail_to(sink, address) if "Оцените" in subject] == []


# ------------------------------------------------------------------------------------------------------------------
# Thanks
# ------------------------------------------------------------------------------------------------------------------


def _answered(settings: Settings, sink: Sink, sender: str) -> tuple[str, str]:
    """A registered, answered request of ``sender``; returns its number and the Message-ID of our answer."""
    _, number = take(settings, citizen_mail(sender=sender))
    assert number
    with session_scope(settings) as session:
        request = service.get_by_number(session, number)
        assert request is not None
        service.change_status(session, settings, request, Status.answered, now=NOW, actor="t", comment="Ответ: 12.")
    drain(settings)
    answer = [raw for _f, rcpts, raw in sink.messages() if rcpts == [sender]][-1]
    return number, message_id_of(answer)


def test_thanks_to_an_answer_joins_it_as_feedback(settings: Settings, sink: Sink) -> None:
    number, answer_id = _answered(settings, sink, "grateful@example.ru")
    sink.clear()
    thanks = citizen_mail(
        sender="grateful@example.ru", subject="Re: ответ", body="Большое спасибо за ответ!", in_reply_to=answer_id
    )
    outcome, joined = take(settings, thanks, NOW + dt.timedelta(days=1))
    assert outcome is Outcome.feedback and joined == number
    drain(settings)
    assert sink.messages() == []  # no acknowledgement loop
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 1  # no new 8-FZ request, no new clock
        request = service.get_by_number(session, number)
        assert request is not None and request.status == Status.answered
        [response] = session.scalars(select(FeedbackResponse)).all()
        assert response.request_id == request.id and response.client_id == request.client_id
        assert response.rating is None and response.source == "email" and "спасибо" in response.comment.lower()
        # The journal row names the request it thanks for; the e-mail in the history, like every letter's, is linked
        # to that row (the original staff can open) and keeps its Message-ID.
        [entry] = session.scalars(select(IntakeEntry).where(IntakeEntry.outcome == Outcome.feedback)).all()
        assert entry.request_id == request.id
        [event] = [e for e in request.events if e.kind == "message_in" and e.data.get("feedback")]
        assert (event.intake_id, event.data.get("message_id")) == (entry.id, message_id_of(thanks))


def test_thanks_with_more_in_it_is_a_new_request(settings: Settings, sink: Sink) -> None:
    number, answer_id = _answered(settings, sink, "critic@example.ru")
    more = citizen_mail(
        sender="critic@example.ru",
        subject="Re: ответ",
        body="Спасибо, но ответа по существу я так и не получил. Когда будет решение?",
        in_reply_to=answer_id,
    )
    outcome, new_number = take(settings, more, NOW + dt.timedelta(days=1))
    assert outcome is Outcome.new_request and new_number and new_number != number
    with session_scope(settings) as session:
        new = service.get_by_number(session, new_number)
        assert new is not None and new.parent_id is not None and new.status == Status.registered
        assert session.scalar(select(func.count(FeedbackResponse.id))) == 0


def test_standalone_thanks_is_feedback_of_the_client(settings: Settings, sink: Sink) -> None:
    letter = citizen_mail(
        sender="kind@example.ru",
        name="Петрова Анна",
        subject="Благодарность",
        body="Благодарю специалиста Смирнову О. В. за помощь в оформлении документов.",
    )
    assert take(settings, letter)[0] is Outcome.feedback
    drain(settings)
    assert sink.messages() == []
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 0
        [response] = session.scalars(select(FeedbackResponse)).all()
        client = service.find_client_by_email(session, "kind@example.ru")
        assert client is not None and response.client_id == client.id and response.request_id is None
        # A client first seen in this letter: recorded at its arrival (SQLite gives the stored UTC back without zone).
        seen = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in (client.created_at, client.last_interaction_at)]
        assert seen == [NOW, NOW]
        assert session.scalars(select(Event.kind).where(Event.client_id == client.id)).all() == ["message_in"]
        assert feedback_stats(session, settings).count == 0  # no rating: the averages leave it out
    # Five years later the words go with the client's other data (retention), the record stays.
    with session_scope(settings) as session:
        retention.run(session, settings, NOW + dt.timedelta(days=6 * 366), dry_run=False)
    with session_scope(settings) as session:
        assert session.scalars(select(FeedbackResponse.comment)).all() == [""]


# ------------------------------------------------------------------------------------------------------------------
# The held queue and the to-forward queue
# ------------------------------------------------------------------------------------------------------------------

AD = "Распродажа окон ПВХ со склада, скидки до 50%. Цены от 9 900 руб. Звоните! https://okna.example.com/sale"


def test_advertising_waits_visibly_and_staff_register_it_or_confirm_spam(settings: Settings, sink: Sink) -> None:
    # Received Monday 02.03.2026: registered within 3 days of receipt, so by Thursday 05.03.2026 (RULES.md).
    first = citizen_mail(sender="promo@okna.example.com", name="", subject="Скидки!", body=AD)
    second = citizen_mail(sender="promo2@okna.example.com", name="", subject="Скидки!", body=AD)
    assert take(settings, first) == (Outcome.held, None)
    assert take(settings, second) == (Outcome.held, None)
    assert outbox_kinds(settings) == []  # nothing is sent to an advertiser
    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    csrf = login(http, "op@dizo.test")
    home = http.get("/staff/queue")
    assert re.search(r"<strong>2</strong>ждут регистрации", home.text)
    queue = http.get("/staff/queue?held=1")
    assert queue.text.count("зарегистрировать до 05.03.2026") == 2
    with session_scope(settings) as session:
        ids = list(session.scalars(select(Request.id).order_by(Request.id)))
    page = http.get(f"/staff/requests/{ids[0]}")
    assert "похоже на рекламу" in page.text and "5 марта 2026 г." in page.text
    # Staff register the first: number, acknowledgement and term from now; the lateness is recorded.
    assert http.post(f"/staff/requests/{ids[0]}/register", data={"csrf_token": csrf}).status_code == 303
    # And confirm the second as spam: closed without a number, nothing sent.
    assert http.post(f"/staff/requests/{ids[1]}/spam", data={"csrf_token": csrf}).status_code == 303
    with session_scope(settings) as session:
        registered, spam = (session.get(Request, i) for i in ids)
        assert registered is not None and spam is not None
        assert registered.number and registered.status == Status.registered
        assert registered.registered_on == utcnow().astimezone(settings.tz).date()
        event = next(e for e in registered.events if e.kind == "registered")
        assert event.data.get("late_registration") is True and event.actor == "op@dizo.test"
        assert spam.number is None and spam.status == Status.closed
    assert outbox_kinds(settings) == ["acknowledgement"]
    assert "ждут регистрации" in http.get("/staff/queue").text
    assert http.get("/staff/queue?held=1").text.count("зарегистрировать до") == 0


def test_a_letter_outside_the_remit_is_registered_and_waits_to_forward(
    settings: Settings, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailservice.inforequests import classification

    real = classification.labels_for

    def outside(subject: str, body: str) -> service.Labels:
        # The classifier's topic for a letter about another body's business (its own tests are elsewhere).
        labels = real(subject, body)
        return service.Labels(type=labels.type, topic="outside", urgency=labels.urgency, version=labels.version)

    monkeypatch.setattr(classification, "labels_for", outside)
    roads = citizen_mail(sender="driver@example.ru", subject="Дорога", body="Яма на дороге у дома 15 по ул. Садовой.")
    outcome, number = take(settings, roads)
    assert outcome is Outcome.new_request and number  # registered at once, acknowledged
    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    csrf = login(http, "op@dizo.test")
    # Registered 02.03.2026: forwarded within 7 days of registration, so by 09.03.2026 (RULES.md).
    queue = http.get("/staff/queue?to_forward=1")
    assert number in queue.text and "перенаправить до 09.03.2026" in queue.text
    with session_scope(settings) as session:
        request_id = session.scalars(select(Request.id)).one()
    page = http.get(f"/staff/requests/{request_id}")
    assert "9 марта 2026 г." in page.text
    listed = json.loads(cli("requests", "list", "--to-forward", "--json").stdout)
    assert [(r["number"], r["forward_by"]) for r in listed] == [(number, "2026-03-09")]
    forwarded = http.post(
        f"/staff/requests/{request_id}/status",
        data={"csrf_token": csrf, "target": "forwarded", "forwarded_to": "Мэрия г. Новосибирска"},
    )
    assert forwarded.status_code == 303
    assert number not in http.get("/staff/queue?to_forward=1").text
    drain(settings)
    notices = [text_of(parsed(raw)) for _f, rcpts, raw in sink.messages() if rcpts == ["driver@example.ru"]]
    assert len(notices) == 2  # the acknowledgement, then the forwarding notice
    assert "направлено по принадлежности: Мэрия г. Новосибирска" in notices[1]


# ------------------------------------------------------------------------------------------------------------------
# Gateway bounces
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "18_gateway_returned_mail",
        "19_gateway_delivery_failure",
        "20_gateway_delivery_warning",
        "21_gateway_non_remis",
        # Lotus Domino, Exchange and Outlook.com (English, French), with the letter they return quoted or attached:
        # our acknowledgement quoting a citizen's questions, a citizen's letter sent on to staff, a citizen's
        # complaint copied to us. None of those words makes the notice an appeal (it was registered on arrival).
        "22_domino_delivery_failure",
        "23_exchange_delivery_delayed",
        "24_outlookcom_mail_delivery_warning",
        "25_outlook_non_remis_fr",
        "26_returned_citizen_letter",
        "27_delivery_failure_attached_letter",
    ],
)
def test_gateway_bounces_are_never_registered_nor_acknowledged(settings: Settings, name: str) -> None:
    raw = (EML / f"{name}.eml").read_bytes()
    assert take(settings, raw)[0] is Outcome.bounce
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id))) == 0
    assert outbox_kinds(settings) == []


def test_a_citizen_writing_not_delivered_is_registered(settings: Settings) -> None:
    letter = citizen_mail(subject="Не доставлено письмо", body="Моё письмо вам не доставлено, прошу разобраться.")
    outcome, number = take(settings, letter)
    assert outcome is Outcome.new_request and number
    assert outbox_kinds(settings) == ["acknowledgement"]


# ------------------------------------------------------------------------------------------------------------------
# Tryout T: a person's letter with a weak machine sign, a question, or a request under a command's subject
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", ["olga-admin@mail.ru", "fedor-request@yandex.ru"])
def test_a_citizen_whose_address_ends_like_a_list_robot_is_registered(settings: Settings, sender: str) -> None:
    letter = citizen_mail(sender=sender, subject="Вопрос", body="Прошу сообщить часы приёма граждан.")
    outcome, number = take(settings, letter)
    assert outcome is Outcome.new_request and number
    assert outbox_kinds(settings) == ["acknowledgement"]


def test_a_company_named_like_a_mail_service_is_registered(settings: Settings) -> None:
    letter = citizen_mail(
        sender="office@pochta-servis.ru",
        name="ООО Почтовый сервис",
        subject="Аренда помещения",
        body="Прошу сообщить условия аренды нежилого помещения площадью 50 кв. м.",
    )
    outcome, number = take(settings, letter)
    assert outcome is Outcome.new_request and number


def test_a_citizen_forwarding_an_undelivered_letter_is_registered_and_nobody_is_suppressed(settings: Settings) -> None:
    # The old address and the writer are both subscribers: a false bounce would suppress the old address (hard:
    # «550 5.1.1 User unknown» is quoted) and stop its mailings.
    import_active(settings, ["dizo@nso.example.ru", "lidia@example.ru"])
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
    outer.set_content(
        "Моё письмо на старый адрес не доставлено, почтовая служба ответила: 550 5.1.1 User unknown. "
        "Пересылаю его вам во вложении. Прошу ответить."
    )
    outer.add_attachment(inner)
    outcome, number = take(settings, outer.as_bytes())
    assert outcome is Outcome.new_request and number
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Bounce.id))) == 0
        assert apply_bounces(session, NOW) == 0
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    for address in ("dizo@nso.example.ru", "lidia@example.ru"):
        assert subscription_of(settings, address).status == SubscriptionStatus.active


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Отписаться от рассылки", "Также прошу сообщить, когда будут торги по аренде участков."),
        (
            "Отписаться",
            "Здравствуйте. Хочу отписаться от рассылки, а также прошу сообщить, когда будут торги по ул. Ленина.",
        ),
    ],
    ids=["unsubscribe+auction-question", "unsubscribe+question-in-one-sentence"],
)
def test_a_question_under_an_unsubscribe_subject_is_registered_and_the_withdrawal_done(
    settings: Settings, sink: Sink, subject: str, body: str
) -> None:
    """The question gets its number, date and acknowledgement (59-FZ art. 8 p. 2); the withdrawal its subject asks
    for is not left waiting for staff: consent ends on the demand (152-FZ art. 9 p. 2, 38-FZ art. 18 p. 1). Until
    7 December the first letter waited for staff to withdraw, and the second was carried out as the command alone,
    its question never registered."""
    import_active(settings, ["nina@example.ru", "other@example.ru"])
    outcome, number = take(settings, citizen_mail(sender="nina@example.ru", subject=subject, body=body))
    assert outcome is Outcome.new_request and number
    withdrawn = subscription_of(settings, "nina@example.ru")
    assert withdrawn.status == SubscriptionStatus.withdrawn and withdrawn.withdrawn_at == NOW  # when the letter came
    assert subscription_of(settings, "other@example.ru").status == SubscriptionStatus.active
    assert outbox_kinds(settings) == ["acknowledgement", "mailing_withdrawn"]
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        assert request.status == Status.registered and request.due_date is not None
        notes = [(e.comment, e.data) for e in request.events if e.kind == "note"]
    said = (
        "Тема или первая фраза письма — просьба отписаться от рассылки; письмо зарегистрировано, так как в нём есть "
        "и другая просьба или вопрос. Подписки отозваны при приёме письма: "
    )
    [(note, data)] = [(comment, data) for comment, data in notes if comment.startswith(said)]
    assert note.endswith("; отправителю сообщено.") and data == {"internal": True}  # staff see it, the client not
    drain(settings)
    assert sorted(mail_to(sink, "nina@example.ru")) == sorted(
        [f"[№ {number}] Ваше обращение зарегистрировано", "Вы отписаны от рассылки"]
    )


def test_a_letter_that_only_mentions_unsubscribing_withdraws_nothing(settings: Settings) -> None:
    """Nothing written in passing unsubscribes (issue 13 p. 2): only a subject or first sentence that is the form."""
    import_active(settings, ["nina@example.ru"])
    body = "Прошу сообщить, когда будут торги. И ещё: как отписаться от рассылки, если ссылка не работает?"
    outcome, number = take(settings, citizen_mail(sender="nina@example.ru", subject="Торги", body=body))
    assert outcome is Outcome.new_request and number
    assert subscription_of(settings, "nina@example.ru").status == SubscriptionStatus.active
    assert outbox_kinds(settings) == ["acknowledgement"]


def test_a_question_with_prices_and_a_link_is_registered_not_held(settings: Settings) -> None:
    letter = citizen_mail(
        sender="maria@example.ru",
        subject="Участок",
        body=(
            "Здравствуйте. Хочу купить земельный участок бесплатно как многодетная семья, на сайте "
            "https://torgi.gov.ru цены от 100 000 руб., а в объявлениях пишут про скидки. Как быть и куда идти? "
            "Нужна консультация, заранее благодарю за ответ."
        ),
    )
    outcome, number = take(settings, letter)
    assert outcome is Outcome.new_request and number
    assert outbox_kinds(settings) == ["acknowledgement"]


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("История обращений", "Прошу направить копию ответа на моё обращение об аренде участка на ул. Ленина, 5."),
        # The citizen-side tryout of 7 December: a question in the same sentence as the command.
        ("История обращений", "Прошу предоставить историю моих обращений и сообщить, когда будет ответ по гаражу."),
        ("Подписаться", "Подписаться на рассылку и сообщить мне дату ближайших торгов."),
    ],
    ids=["history+copy-of-answer", "history+question-in-one-sentence", "subscribe+question-in-one-sentence"],
)
def test_a_request_written_under_a_command_subject_is_registered_and_the_command_waits_for_staff(
    settings: Settings, subject: str, body: str
) -> None:
    import_active(settings, ["nina@example.ru"])
    outcome, number = take(settings, citizen_mail(sender="nina@example.ru", subject=subject, body=body))
    assert outcome is Outcome.new_request and number
    # Nothing acted on its own: the subscription stays, no history export; staff may convert the letter.
    assert subscription_of(settings, "nina@example.ru").status == SubscriptionStatus.active
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(HistoryExport.id))) == 0
    assert outbox_kinds(settings) == ["acknowledgement"]
