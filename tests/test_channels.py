"""Every channel and every client (issue 16): terms from arrival, the site's request form, the status page,
contacts on a request, letters for clients without e-mail."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailservice.config import Settings, get_settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Attachment, Client, Event, Request
from mailservice.web.staff import actions
from mailservice.web.staff.actions import ContactRequest
from tests.conftest import make_env, reset_caches
from tests.console_support import client_for, drain, link_in, parsed, text_of
from tests.servers import Sink

NSK = ZoneInfo("Asia/Novosibirsk")  # the department's default time zone (README)


def _local(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=NSK)


# Staff enter a request on ``entered`` that arrived on ``arrived``. RULES.md: an oral request is registered on the
# day of receipt, a written one within 3 days; the answer is due registration + 30 days; the lateness is recorded.
@pytest.mark.parametrize(
    ("channel", "arrived", "entered", "late", "due"),
    [
        (Channel.phone, dt.date(2026, 3, 2), dt.date(2026, 3, 2), False, dt.date(2026, 4, 1)),
        (Channel.phone, dt.date(2026, 3, 2), dt.date(2026, 3, 4), True, dt.date(2026, 4, 1)),
        (Channel.visit, dt.date(2026, 3, 2), dt.date(2026, 3, 3), True, dt.date(2026, 4, 1)),
        (Channel.post, dt.date(2026, 3, 2), dt.date(2026, 3, 4), False, dt.date(2026, 4, 3)),
        (Channel.post, dt.date(2026, 3, 2), dt.date(2026, 3, 9), True, dt.date(2026, 4, 4)),
    ],
)
def test_terms_count_from_arrival_in_the_database(
    settings: Settings, channel: Channel, arrived: dt.date, entered: dt.date, late: bool, due: dt.date
) -> None:
    now = _local(entered, 15).astimezone(dt.UTC)
    data = ContactRequest(
        channel=channel,
        received_at=_local(arrived).astimezone(dt.UTC),
        subject="Сроки",
        text="Прошу сообщить порядок аренды.",
        name="Смирнова Мария",
        postal_address="630099, Новосибирск, ул. Ленина, 1",
    )
    with session_scope(settings) as session:
        request_id = actions.register_contact_request(session, settings, data, actor="op@dizo.test", now=now).id
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        assert request.registered_on == entered  # the registration date itself stays the real one
        assert request.due_date == due
        registered = session.scalars(
            select(Event).where(Event.request_id == request_id, Event.kind == "registered")
        ).one()
        assert bool(registered.data.get("late_registration")) is late
        assert ("с нарушением срока регистрации" in registered.comment) is late


# The site's request form -----------------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _form_fields(html: str) -> dict[str, str]:
    opened = re.search(r'name="opened" value="([^"]+)"', html)
    assert opened, "the form carries when it was opened"
    return {"opened": opened.group(1), "website": ""}


def _submit(http: TestClient, data: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]] | None = None):  # type: ignore[no-untyped-def]
    page = http.get("/request")
    assert page.status_code == 200
    return http.post("/request", data={**_form_fields(page.text), **data}, files=files or None)


@pytest.fixture
def fast_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Settings on both databases with no minimum fill time (a test client fills a form at once)."""
    yield make_env(
        monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", request_min_fill_seconds="0"
    )
    reset_caches()


def test_the_form_registers_at_once_and_the_acknowledgement_links_the_status_page(
    fast_form: Settings, sink: Sink
) -> None:
    http = client_for(fast_form)
    response = _submit(
        http,
        {
            "name": "Кузнецова Анна Петровна",
            "email": "kuznetsova@example.ru",
            "subject": "Аренда участков",
            "text": "Прошу сообщить, сколько земельных участков предоставлено в аренду в 2025 году.",
        },
        files=[("files", ("справка.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 200, response.text
    number = re.search(r'id="number">([0-9]{4}-[0-9]{6})<', response.text)
    assert number, response.text
    assert "Срок ответа" in response.text
    assert "/status/" not in response.text  # with an e-mail address the link goes only to that address
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.number == number.group(1))).one()
        assert (
            request.channel == "web"
            and request.status == "registered"
            and request.reply_email == "kuznetsova@example.ru"
        )
        assert [a.filename for a in request.attachments] == ["справка.pdf"]
        assert request.due_date == request.registered_on + dt.timedelta(days=30)  # RULES.md: registration + 30 days
    drain(fast_form)
    ack = parsed(sink.messages()[-1][2])
    assert ack["To"].addresses[0].addr_spec == "kuznetsova@example.ru"
    assert number.group(1) in str(ack["Subject"]) and "официальный сайт" in text_of(ack)
    status_path = link_in(ack, "/status/")
    page = http.get(status_path)
    assert page.status_code == 200 and number.group(1) in page.text and "зарегистрирован" in page.text
    # README, "Every page": public pages say `Referrer-Policy: no-referrer` (tester's F16: this one said same-origin).
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    # GET only: the page offers no form; a forged token shows nothing.
    assert "<form" not in page.text.split("<main", 1)[1]
    assert http.get(status_path[:-2] + "xx").status_code == 404
    assert http.post(status_path).status_code == 405


def test_the_status_link_survives_key_rotation_and_reaches_only_its_request(
    fast_form: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailservice.webrequests.status import status_token

    http = client_for(fast_form)
    first = _submit(
        http, {"name": "Первый", "postal_address": "630000, Новосибирск, ул. Первая, 1", "text": "Вопрос один"}
    )
    second = _submit(
        http, {"name": "Второй", "postal_address": "630000, Новосибирск, ул. Вторая, 2", "text": "Вопрос два"}
    )
    assert first.status_code == second.status_code == 200
    # Without an e-mail address the answer goes by post and the page itself gives the status link.
    link = re.search(r'href="https?://[^/"]+(/status/[^"]+)"', first.text)
    assert link, first.text
    page = http.get(link.group(1))
    assert "Вопрос два" not in page.text and "Второй" not in page.text
    number = re.search(r'id="number">([^<]+)<', first.text).group(1)  # type: ignore[union-attr]
    old_token = status_token(fast_form, number)
    # A new key signs from now on; the old one still verifies (MAILSERVICE_SECRET_KEYS, newest first).
    monkeypatch.setenv("MAILSERVICE_SECRET_KEYS", "new-key-" + "y" * 40 + ",test-key-" + "x" * 40)
    reset_caches()
    rotated = get_settings()
    assert status_token(rotated, number) != old_token
    assert client_for(rotated).get(f"/status/{old_token}").status_code == 200
    # The answer's files are reachable; any other attachment id is not.
    with session_scope(fast_form) as session:
        req = session.scalars(select(Request).where(Request.number == number)).one()
        other = Attachment(request_id=req.id, filename="x.pdf", content_type="application/pdf", size=1, sha256="0" * 64)
        session.add(other)
        session.flush()
        other_id = other.id
    assert http.get(f"/status/{old_token}/files/{other_id}").status_code == 404


@pytest.mark.parametrize(
    ("extra", "base"),
    [
        # README, "Settings": the web app listens on `WEB_HOST`:`WEB_PORT` (127.0.0.1 by default).
        ({"web_port": "8731"}, "http://127.0.0.1:8731"),
        # Behind a proxy the address set explicitly is kept, whatever port the app listens on.
        ({"web_port": "8731", "public_url": "https://dizo.example"}, "https://dizo.example"),
    ],
)
def test_links_in_mail_lead_where_the_web_app_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, extra: dict[str, str], base: str
) -> None:
    # Tester's F9: with MAILSERVICE_WEB_PORT=8731 the app listened on 8731 while every link said :8000.
    from mailservice.outbox import OutboxMessage
    from tests.console_support import mail_request

    try:
        settings = make_env(monkeypatch, tmp_path, db_url, **extra)
        assert settings.public_url == base
        mail_request(settings)
        with session_scope(settings) as session:
            ack = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).one()
            text = text_of(parsed(ack.raw))
        assert re.search(re.escape(base) + r"/status/\S+", text), text
        assert ":8000" not in text
    finally:
        reset_caches()


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({"email": "a@example.ru", "text": "Вопрос"}, [], "anonymous"),
        ({"name": "Иван", "text": "Вопрос"}, [], "no address"),
        ({"name": "Иван", "email": "not an address", "text": "Вопрос"}, [], "bad e-mail"),
        ({"name": "Иван", "email": "a@example.ru", "text": ""}, [], "no text"),
        (
            {"name": "Иван", "email": "a@example.ru", "text": "Вопрос"},
            [("files", ("run.exe", b"MZ\x90", "application/pdf"))],
            "type",
        ),
        (
            {"name": "Иван", "email": "a@example.ru", "text": "Вопрос"},
            [("files", ("fake.pdf", b"MZ\x90", "application/pdf"))],
            "content",
        ),
    ],
)
def test_the_form_refuses_what_cannot_be_answered(
    fast_form: Settings, data: dict[str, str], files: list[Any], field: str
) -> None:
    http = client_for(fast_form)
    response = _submit(http, data, files)
    assert response.status_code == 422, field
    assert 'role="alert"' in response.text
    with session_scope(fast_form) as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 0


def test_programs_are_turned_away_without_a_captcha(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailservice.webrequests.form import looks_automated

    now = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    opened = now.timestamp() - 60
    assert not looks_automated("", opened, now, 5)
    assert looks_automated("http://spam.example", opened, now, 5)  # the hidden field
    assert looks_automated("", now.timestamp() - 2, now, 5)  # sent 2 s after opening
    assert looks_automated("", now.timestamp() - 2 * 86400, now, 5)  # a form kept for two days
    assert looks_automated("", None, now, 5)  # no or forged value
    http = client_for(settings)  # the default minimum fill time: a form sent at once is shown again
    sent = _submit(http, {"name": "Иван", "email": "a@example.ru", "text": "Вопрос"})
    assert sent.status_code == 400 and "слишком быстро" in sent.text
    forged = http.post("/request", data={"opened": "x", "name": "Иван", "email": "a@example.ru", "text": "Вопрос"})
    assert forged.status_code == 400
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 0


def test_the_form_is_limited_per_ip(fast_form: Settings) -> None:
    http = client_for(fast_form)
    data = {"name": "Иван", "postal_address": "630000, Новосибирск", "text": "Вопрос"}
    codes = [_submit(http, data).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]  # README: 5 requests per address per hour (REQUEST_LIMIT_PER_IP)


# Contacts on an existing request -----------------------------------------------------------------------------------


def test_a_contact_with_a_scan_enters_the_timeline_and_the_history_archive(settings: Settings) -> None:
    import io
    import zipfile

    from mailservice.history.archive import write_zip
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, login, phone_request

    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    csrf = login(http, "op@dizo.test")
    request_id = phone_request(
        settings, name="Орлова Вера", phone="+7 913 222-33-44", subject="Аренда", text="Спросила о порядке аренды"
    )
    at = dt.datetime.now(NSK).replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    response = http.post(
        f"/staff/requests/{request_id}/contact",
        data={
            "csrf_token": csrf,
            "channel": "post",
            "direction": "in",
            "at": at.strftime("%Y-%m-%dT%H:%M"),
            "text": "Заявительница прислала копию договора аренды № 17 и просит учесть её в ответе.",
        },
        files=[("files", ("договор.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303, response.text
    page = http.get(f"/staff/requests/{request_id}")
    assert "Письмо клиента по почте" in page.text and "копию договора аренды № 17" in page.text
    assert "договор.pdf" in page.text
    without_csrf = http.post(
        f"/staff/requests/{request_id}/contact", data={"channel": "phone", "direction": "in", "text": "x"}
    )
    assert without_csrf.status_code == 403
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        event = next(e for e in request.events if e.data.get("contact"))
        assert event.at == at.astimezone(dt.UTC) and event.channel == "post" and event.direction == "in"
        assert [a.filename for a in request.attachments if a.event_id == event.id] == ["договор.pdf"]
        buffer = io.BytesIO()
        write_zip(session, settings, request.client_id, dt.datetime.now(dt.UTC), buffer)
    archive = zipfile.ZipFile(buffer)
    summary = archive.read("index.html").decode()
    assert "Письмо клиента по почте" in summary and "копию договора аренды № 17" in summary
    assert any(name.endswith("договор.pdf") for name in archive.namelist())


def test_staff_attach_scans_when_registering_a_postal_letter(settings: Settings) -> None:
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, login

    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    csrf = login(http, "op@dizo.test")
    response = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf,
            "channel": "post",
            "received": dt.datetime.now(NSK).strftime("%Y-%m-%dT%H:%M"),
            "subject": "Письмо о границах участка",
            "text": "Прошу сообщить границы участка по ул. Садовой, 5.",
            "name": "Зайцев Олег",
            "postal_address": "630001, Новосибирск, ул. Садовая, 5",
        },
        files=[("files", ("скан письма.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303, response.text
    request_id = int(response.headers["location"].split("/")[-1].split("?")[0])
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.number
        assert [a.filename for a in request.attachments] == ["скан письма.pdf"]


# Clients without e-mail: letters to post --------------------------------------------------------------------------


def test_a_client_without_e_mail_gets_the_acknowledgement_and_the_answer_as_letters(
    fast_form: Settings, tmp_path: Path
) -> None:
    from docx import Document as read_docx

    from mailservice.inforequests.models import PostalLetter
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, login
    from tests.test_documents import pdf_text, words

    add_staff(fast_form, "op@dizo.test", Role.operator, name="Петров Пётр Петрович", position="Начальник отдела")
    http = client_for(fast_form)
    sent = _submit(
        http,
        {
            "name": "Белова Нина Ивановна",
            "postal_address": "630091, г. Новосибирск,\nул. Мичурина, д. 12, кв. 4",
            "subject": "График приёма",
            "text": "Прошу сообщить график личного приёма граждан в департаменте.",
        },
    )
    assert sent.status_code == 200
    number = re.search(r'id="number">([^<]+)<', sent.text).group(1)  # type: ignore[union-attr]
    csrf = login(http, "op@dizo.test")
    waiting = http.get("/staff/letters")
    assert f"{number}/1" in waiting.text and "О регистрации запроса" in waiting.text
    with session_scope(fast_form) as session:
        request_id = session.scalars(select(Request.id).where(Request.number == number)).one()
    answer = "Личный приём граждан ведётся по вторникам с 10:00 до 13:00 по предварительной записи."
    response = http.post(
        f"/staff/requests/{request_id}/answer",
        data={"csrf_token": csrf, "text": answer},
        files=[("files", ("график.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 303, response.text
    with session_scope(fast_form) as session:
        letters = session.scalars(select(PostalLetter).order_by(PostalLetter.id)).all()
        assert [(letter.number, letter.title) for letter in letters] == [
            (f"{number}/1", "О регистрации запроса"),
            (f"{number}/2", "О предоставлении информации"),
        ]
        answer_id = letters[1].id
    docx = http.get(f"/staff/letters/{answer_id}.docx")
    pdf = http.get(f"/staff/letters/{answer_id}.pdf")
    assert docx.status_code == pdf.status_code == 200
    document = read_docx(io.BytesIO(docx.content))
    text = "\n".join(p.text for p in document.paragraphs) + "\n".join(
        c.text for t in document.tables for row in t.rows for c in row.cells
    )
    # 8-FZ art. 19 (RULES.md): the department's name and address, the signatory's position, the answer's number/date.
    for needed in (
        answer,
        f"Исх. № {number}/2",
        "ул. Мичурина, д. 12, кв. 4",
        "Белова Нина Ивановна",
        "Начальник отдела",
        "Петров Пётр Петрович",
        "график.pdf",
        fast_form.department_name,
    ):
        assert needed in text, needed
    (tmp_path / "answer.pdf").write_bytes(pdf.content)
    printed = words(pdf_text(tmp_path / "answer.pdf"))
    assert words(answer) in printed and f"Исх. № {number}/2" in printed
    # Staff post it: it leaves the list, and the history says so.
    assert http.post(f"/staff/letters/{answer_id}/sent", data={"csrf_token": csrf}).status_code == 303
    assert http.post(f"/staff/letters/{answer_id}/sent", data={"csrf_token": csrf}).status_code == 409
    with session_scope(fast_form) as session:
        letter = session.get(PostalLetter, answer_id)
        assert letter is not None and letter.sent_at is not None and letter.sent_by == "op@dizo.test"
        request = session.get(Request, request_id)
        assert request is not None
        assert any("отправлено почтой" in e.comment for e in request.events)
    waiting = http.get("/staff/letters")
    assert waiting.text.count("Отправлено</button>") == 1  # only the acknowledgement still waits
    # The status page (its link was on the form's page: no e-mail address) shows the answer and serves its file.
    status_path = re.search(r'href="https?://[^/"]+(/status/[^"]+)"', sent.text).group(1)  # type: ignore[union-attr]
    page = http.get(status_path)
    assert answer in page.text and "дан ответ" in page.text
    file_link = re.search(r'href="(/status/[^"]+/files/\d+)"', page.text)
    assert file_link and http.get(file_link.group(1)).content == PDF


def test_the_history_prints_only_for_a_client_proven_in_person(settings: Settings) -> None:
    from mailservice.inforequests import identity
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, login, phone_request

    add_staff(settings, "op@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "op@dizo.test")
    request_id = phone_request(
        settings, name="Лисин Фёдор", phone="+7 913 555-00-11", subject="Вопрос", text="Текст звонка"
    )
    with session_scope(settings) as session:
        client_id = session.get(Request, request_id).client_id  # type: ignore[union-attr]
    assert http.get(f"/staff/clients/{client_id}/history.zip").status_code == 403
    with session_scope(settings) as session:
        client = session.get(Client, client_id)
        assert client is not None
        identity.record_check(
            session,
            client,
            document=next(iter(identity.DOCUMENTS)),
            checked_by="op@dizo.test",
            now=dt.datetime.now(dt.UTC),
        )
    archive = http.get(f"/staff/clients/{client_id}/history.zip")
    assert archive.status_code == 200
    assert "Текст звонка" in zipfile.ZipFile(io.BytesIO(archive.content)).read("index.html").decode()


# A history a person can read ----------------------------------------------------------------------------------------


def test_the_history_summary_shows_what_was_written_with_quotes_folded(settings: Settings) -> None:
    from mailservice.history.archive import write_zip
    from mailservice.inforequests import service
    from tests.console_support import mail_request

    body = "Прошу предоставить сведения о количестве земельных участков, предоставленных в аренду в 2025 году."
    request_id = mail_request(settings, body=body)
    drain(settings)
    reply = (
        "Уточняю: интересует только Октябрьский район.\n\n"
        "01.03.2026, Департамент пишет:\n> Ваше обращение зарегистрировано.\n> Регистрационный номер: 2026-000001\n"
    )
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.add_client_message(
            session, settings, request, now=dt.datetime.now(dt.UTC), channel=Channel.email, text=reply
        )
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        buffer = io.BytesIO()
        write_zip(session, settings, request.client_id, dt.datetime.now(dt.UTC), buffer)
    summary = zipfile.ZipFile(buffer).read("index.html").decode()
    assert body in summary  # the letter's text, not its size
    assert "Регистрационный номер" in summary  # our acknowledgement, decoded from the message we sent
    assert "байт" not in summary
    _new, folded = summary.split("Уточняю: интересует только Октябрьский район.", 1)[1].split("<details>", 1)
    assert "&gt; Ваше обращение зарегистрировано." in folded.split("</details>", 1)[0]
    assert 'name="viewport"' in summary  # readable on a phone


def test_retention_removes_the_words_of_posted_letters(fast_form: Settings) -> None:
    from mailservice import retention
    from mailservice.blobs import BlobStore
    from mailservice.inforequests import service
    from mailservice.inforequests.lifecycle import Status
    from mailservice.inforequests.models import PostalLetter

    http = client_for(fast_form)
    sent = _submit(
        http, {"name": "Старый Клиент", "postal_address": "630000, Новосибирск, ул. Давняя, 1", "text": "Вопрос"}
    )
    assert sent.status_code == 200
    now = dt.datetime.now(dt.UTC)
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request)).one()
        for target in (Status.answered, Status.closed):
            service.change_status(
                session, fast_form, request, target, now=now, actor="op@dizo.test", comment="Ответ дан"
            )
        letters = session.scalars(select(PostalLetter)).all()
        assert len(letters) == 3  # the acknowledgement, the answer, the closing notice (as by e-mail)
        blobs = {d for letter in letters for d in (letter.docx_sha256, letter.pdf_sha256)}
    later = now + dt.timedelta(days=366 * (fast_form.history_retention_years + 1))
    with session_scope(fast_form) as session:
        _report, dead = retention.run(session, fast_form, later, dry_run=False)
    retention.delete_blobs(fast_form, dead)
    with session_scope(fast_form) as session:
        for letter in session.scalars(select(PostalLetter)):
            assert letter.addressee == letter.body == letter.docx_sha256 == ""
            assert letter.number  # the outgoing register keeps the number and date
    store = BlobStore(fast_form.blob_dir)
    assert not any(store.path(d).exists() for d in blobs)


def test_the_form_changes_nothing_of_the_client_whose_address_it_names(fast_form: Settings) -> None:
    from mailservice.inforequests import service

    now = dt.datetime.now(dt.UTC)
    with session_scope(fast_form) as session:
        victim = service.update_or_create_client(session, None, now=now, name="", email="victim@example.ru")
        session.flush()
        victim_id = victim.id
    http = client_for(fast_form)
    sent = _submit(
        http,
        {"name": "Подставное Имя", "email": "victim@example.ru", "postal_address": "Чужой адрес, 1", "text": "Вопрос"},
    )
    assert sent.status_code == 200
    with session_scope(fast_form) as session:
        victim = session.get(Client, victim_id)
        assert victim is not None and victim.name == "" and victim.postal_address == ""
        request = session.scalars(select(Request)).one()
        assert request.reply_name == "Подставное Имя"
    too_big = http.post(
        "/request", content=b"x" * 10, headers={"content-length": str(fast_form.max_attachment_bytes + 3 * 1024 * 1024)}
    )
    assert too_big.status_code == 413


@pytest.mark.parametrize(
    ("hours_before", "taken_as_arrival"),
    [(1, True), (71, True), (73, False), (-1, False)],  # the Date header: plausible within the 3 days of RULES.md
)
def test_an_e_mail_arrives_when_its_date_is_plausible(hours_before: int, taken_as_arrival: bool) -> None:
    from mailservice.intake.pipeline import arrival

    now = dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)
    header = now - dt.timedelta(hours=hours_before)
    assert arrival(header, now) == (header if taken_as_arrival else now)
    assert arrival(None, now) == now
