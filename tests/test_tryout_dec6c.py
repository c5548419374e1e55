"""Tryout of 6 December, round 4 (U1...): an attacker, a new admin and staff in a browser, as strict expected failures.

Each test fails today because of the defect named in its reason and passes once the defect is fixed. The database
tests run on SQLite and PostgreSQL (the ``settings`` fixture and its kin).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import identity, service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Event, PostalLetter, Request
from mailservice.intake import forwarded_register
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.mailings.render import CampaignSource, TemplateRefused, render_bodies, validate
from mailservice.outbox import OutboxMessage
from mailservice.spreadsheets import restore_cell, safe_cell
from mailservice.web.app import create_app
from mailservice.web.staff import actions
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from mailservice.webrequests.status import status_url
from tests.console_support import add_staff, client_for, drain, link_in, login, mail_request, parsed
from tests.mailfactory import citizen_mail
from tests.security.identity_support import staff_console
from tests.security.test_identity_ack_limit import LIMIT, VICTIM, limited  # noqa: F401  (limited: a fixture)
from tests.servers import Sink
from tests.test_channels import _submit, fast_form  # noqa: F401  (fast_form: a fixture)
from tests.test_cli import run
from tests.test_forwarded_intake import BODY, CITIZEN, forward, fwd_settings  # noqa: F401  (fwd_settings: a fixture)

SECRET_ANSWER = "Аукцион назначен на 15 января; ваш участок № 54:35:000000:1 в него включён."


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


# U1 -------------------------------------------------------------------------------------------------------------


def test_the_forwarders_status_link_shows_nothing_of_the_authors_answer(fwd_settings: Settings, sink: Sink) -> None:  # noqa: F811
    # README "Forwarded appeals" / forwarded_register: the unproven sender gets "no details of the case" once the
    # appeal is the citizen's; the status link of its first acknowledgement must not be a way round that.
    result = process_raw(fwd_settings, forward(), Source("smtp", envelope_from=BODY))
    assert result.request_number
    drain(fwd_settings)
    [(_from, _rcpts, first_ack)] = [m for m in sink.messages() if BODY in m[1]]
    status_path = link_in(parsed(first_ack), "/status/")
    now = utcnow()
    with session_scope(fwd_settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        forwarded_register.reregister(session, fwd_settings, request, actor="op@dizo.test", now=now)
        service.change_status(
            session, fwd_settings, request, Status.answered, now=now, actor="op@dizo.test", comment=SECRET_ANSWER
        )
    http = client_for(fwd_settings)
    page = http.get(status_path)
    assert page.status_code == 404
    assert SECRET_ANSWER not in page.text
    # The author's acknowledgement (sent on the re-registration) carries a link that works and shows the answer.
    drain(fwd_settings)
    author_ack = next(m for m in sink.messages() if CITIZEN in m[1])[2]
    author_page = http.get(link_in(parsed(author_ack), "/status/"))
    assert author_page.status_code == 200
    assert SECRET_ANSWER in author_page.text


def test_the_old_address_status_link_shows_nothing_after_staff_send_the_notices_elsewhere(settings: Settings) -> None:
    # The same rule when staff send a request's notices to another address proven for its client: the link mailed
    # to the earlier address shows nothing; the next notice brings the new address a link of its own.
    request_id = mail_request(settings)
    with session_scope(settings) as session:
        old_path = status_path_of(settings, session.get_one(Request, request_id))
    assert client_for(settings).get(old_path).status_code == 200
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        identity.record_check(
            session, request.client, document="passport_rf", checked_by="t", now=utcnow(), email="work@example.ru"
        )
        session.flush()
        service.set_notification_address(session, request, "work@example.ru", actor="op@dizo.test", now=utcnow())
        service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="op@dizo.test", comment=SECRET_ANSWER
        )
    http = client_for(settings)
    page = http.get(old_path)
    assert page.status_code == 404 and SECRET_ANSWER not in page.text
    with session_scope(settings) as session:
        notice = session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == request_id).order_by(OutboxMessage.id.desc())
        ).first()
        assert notice is not None and notice.recipients == "work@example.ru"
        raw = notice.raw
    new_page = http.get(link_in(parsed(raw), "/status/"))
    assert new_page.status_code == 200 and SECRET_ANSWER in new_page.text


def status_path_of(settings: Settings, request: Request) -> str:
    """The path of the request's status link as its notices carry it now."""
    return re.sub(r"^https?://[^/]+", "", status_url(settings, request))


# U2 -------------------------------------------------------------------------------------------------------------

EXTENSION_REASON = "Запрошены сведения у отдела аренды и в архиве; ответ будет подготовлен после их получения."


def test_a_refused_status_change_keeps_what_staff_typed(settings: Settings) -> None:
    # A request registered twelve days ago: the 8-FZ deferral notice (art. 18, 7 days) can no longer be sent, which
    # the browser cannot know; the page says why, and must still hold the reason staff wrote.
    request_id = mail_request(settings, now=utcnow() - dt.timedelta(days=12))
    with session_scope(settings) as session:
        assert session.get_one(Request, request_id).law == "8-fz"
    http, csrf = staff_console(settings)
    response = http.post(
        f"/staff/requests/{request_id}/status",
        data={"csrf_token": csrf, "target": "extended", "days": "10", "comment": EXTENSION_REASON},
    )
    assert response.status_code == 400
    assert "отсрочка невозможна" in response.text
    assert EXTENSION_REASON in response.text
    # In its own form, open, with the days typed; no other form is filled.
    assert response.text.count(EXTENSION_REASON) == 1
    assert '<details class="action" open><summary>Продлить срок' in response.text
    assert 'name="days" value="10"' in response.text
    # A refusal without the data its ground needs keeps the ground chosen and the motivation.
    motivation = "Заявитель не указал, куда направить ответ; сведения о нём отсутствуют."
    refused = http.post(
        f"/staff/requests/{request_id}/status",
        data={"csrf_token": csrf, "target": "refused", "ground": "8fz-20-1-2", "comment": motivation},
    )
    assert refused.status_code == 400 and "не подходит" in refused.text
    assert motivation in refused.text and 'value="8fz-20-1-2" selected' in refused.text


# U3 -------------------------------------------------------------------------------------------------------------


def test_a_downloaded_letter_is_in_the_audit_log(fast_form: Settings) -> None:  # noqa: F811
    # README "What is logged": the audit log has every staff action, "files and messages downloaded"; a letter on
    # the letterhead holds the citizen's name, postal address and our answer.
    http = client_for(fast_form)
    sent = _submit(
        http,
        {
            "name": "Белова Нина Ивановна",
            "postal_address": "630091, г. Новосибирск, ул. Мичурина, д. 12, кв. 4",
            "subject": "График приёма",
            "text": "Прошу сообщить график личного приёма граждан в департаменте.",
        },
    )
    assert sent.status_code == 200
    add_staff(fast_form, "op@dizo.test", Role.operator)
    login(http, "op@dizo.test")
    with session_scope(fast_form) as session:
        letter_id = session.scalars(select(PostalLetter.id)).one()
    for ext in ("docx", "pdf"):
        # A HEAD (a link checker's probe, answered as GET without the content: RFC 9110 9.3.2) downloads nothing.
        head = http.head(f"/staff/letters/{letter_id}.{ext}")
        assert (head.status_code, head.content) == (200, b""), ext
        assert http.get(f"/staff/letters/{letter_id}.{ext}").status_code == 200
    with session_scope(fast_form) as session:
        logged = session.scalars(
            select(AuditEntry).where(AuditEntry.object_id == letter_id, AuditEntry.actor == "op@dizo.test")
        ).all()
    assert len(logged) == 2, [(a.action, a.object_type) for a in logged]
    assert [(a.action, a.object_type, a.details) for a in logged] == [
        ("letter_download", "letter", {"format": "docx"}),
        ("letter_download", "letter", {"format": "pdf"}),
    ]
    # The audit page names the action in Russian.
    add_staff(fast_form, "admin@dizo.test", Role.administrator)
    admin = client_for(fast_form)
    login(admin, "admin@dizo.test")
    assert "скачано письмо клиенту" in admin.get("/staff/audit").text


# U4 -------------------------------------------------------------------------------------------------------------

# Invisible characters and blanks of the same kinds as those spreadsheets.py already skips (zero-width joiners,
# the word joiner, the other Unicode spaces, the soft hyphen) and the small forms of the formula starts (NFKC makes
# them "=", "+", "-", "@", as it makes the full-width forms the module already knows).
HIDING = ["\u200c", "\u200d", "\u2060", "\u00ad", "\u2009", "\u202f", "\u2007", "\u205f"]
SMALL_STARTS = ["\ufe66", "\ufe62", "\ufe63", "\ufe6b"]


def test_formula_starts_behind_other_invisible_characters_and_in_small_forms_stay_text() -> None:
    # README "Escaping" / OWASP CSV injection: "also after blanks"; spreadsheets.py: "or invisible characters".
    attacks = [hidden + '=HYPERLINK("http://evil.test/","Подробнее")' for hidden in HIDING]
    attacks += [start + 'HYPERLINK("http://evil.test/")' for start in SMALL_STARTS]
    attacks.append("".join(HIDING) + "\u2028\u2029\n@SUM(A1)")  # several, and line/paragraph separators
    unsafe = [attack for attack in attacks if not str(safe_cell(attack)).startswith("'")]
    assert unsafe == []
    # Our own exports read back lose the apostrophe again; text behind invisible characters stays as it is.
    assert [restore_cell(str(safe_cell(attack))) for attack in attacks] == attacks
    for harmless in [hidden + "Прошу сообщить график приёма" for hidden in HIDING] + ["\u200d«=» в тексте", "7-15"]:
        assert safe_cell(harmless) == harmless


# U5 -------------------------------------------------------------------------------------------------------------


def test_an_answer_with_nowhere_to_go_is_not_reported_as_sent(settings: Settings) -> None:
    # A letter on paper whose sender gave a name only: the console registers it (as the CLI does). README "Clients
    # without e-mail": an answer becomes a letter to post; with no postal address either, none can be made, and
    # staff must be told so (59-FZ art. 11 part 1 names this case), not told the client has it.
    http, csrf = staff_console(settings)
    created = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf, "channel": "post", "name": "Сидоров Пётр",
            "subject": "Жалоба на бездействие", "text": "Прошу разобраться с жалобой на бездействие отдела аренды.",
        },
    )  # fmt: skip
    assert created.status_code == 303, created.text
    path = created.headers["location"].split("?")[0]
    # A status change is not reported as told to the client either.
    moved = http.post(f"{path}/status", data={"csrf_token": csrf, "target": "in_progress"})
    assert moved.status_code == 303
    moved_page = http.get(moved.headers["location"]).text
    assert "клиент уведомлён" not in moved_page and "клиенту ничего не направлено" in moved_page
    answered = http.post(f"{path}/answer", data={"csrf_token": csrf, "text": "Ответ по существу жалобы."})
    assert answered.status_code == 303
    with session_scope(settings) as session:
        letters = session.scalars(select(PostalLetter)).all()
        mail = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "status_notice")).all()
    assert (letters, mail) == ([], [])  # nothing went anywhere ...
    page = http.get(answered.headers["location"])
    assert "Ответ отправлен клиенту" not in page.text  # ... so the console must not say it did
    assert "Ответ записан, но не направлен" in page.text  # ... but that it did not
    with session_scope(settings) as session:
        notes = session.scalars(select(Event.comment).where(Event.kind == "note")).all()
    assert any(n.startswith("Ответ не направлен клиенту: нет ни адреса") for n in notes), notes


# U6 -------------------------------------------------------------------------------------------------------------


def test_the_audit_log_speaks_russian(settings: Settings) -> None:
    # The brief and README: every page staff read is in Russian; the statuses have Russian names (STATUS_NAMES).
    request_id = mail_request(settings)
    add_staff(settings, "admin@dizo.test", Role.administrator)
    http = client_for(settings)
    csrf = login(http, "admin@dizo.test")
    moved = http.post(f"/staff/requests/{request_id}/status", data={"csrf_token": csrf, "target": "in_progress"})
    assert moved.status_code == 303
    page = http.get("/staff/audit")
    assert page.status_code == 200 and "изменён статус запроса" in page.text
    shown = re.sub(r"<[^>]+>", " ", page.text.split("<main", 1)[1])
    assert re.findall(r"\b(?:None|in_progress|to=|ground=)", shown) == []
    assert "новый статус: на рассмотрении" in shown  # the status's Russian name, as the request page shows it


# U7 -------------------------------------------------------------------------------------------------------------


def test_requests_show_names_the_events_in_russian(settings: Settings) -> None:
    # README "Commands": the command line speaks Russian; the console names the same events «Сообщение клиента»,
    # «Регистрация», «Сообщение департамента».
    mail_request(settings)
    shown = run("requests", "show", "2026-000001")
    assert shown.returncode == 0, shown.stderr
    history = shown.stdout.split("История:", 1)[1]
    assert re.findall(r"\b(?:message_in|message_out|registered|status_changed)\b", history) == []
    assert "Сообщение клиента" in history and "Регистрация" in history  # the console's names


# U8 -------------------------------------------------------------------------------------------------------------

SIGNING_KEY = "u8-signing-key-" + "Zq7mX2pR9vL4tK8wB3nH6cY1"


def test_a_campaign_template_cannot_reach_the_secrets() -> None:
    # README "Mailings": staff write the templates and "a sandbox keeps a template from reaching Python internals";
    # the keys sign every link (status, claim, unsubscribe, history download) and the SMTP/IMAP passwords are the
    # department's mailboxes. A template that names them is refused, or renders nothing of them.
    settings = Settings(secret_keys=[SIGNING_KEY], smtp_password="u8-smtp-password", imap_password="u8-imap-password")  # type: ignore[call-arg]
    source = CampaignSource(
        subject="Новости департамента",
        text="{{ greeting }}\n{{ settings.secret_keys }} {{ settings.smtp_password }} {{ settings.imap_password }}\n"
        "Отписаться: {{ unsubscribe_url }}\n",
        html=None,
        list_title="Новости",
        list_slug="news",
    )
    with pytest.raises(TemplateRefused, match="ошибка в шаблоне"):
        validate(settings, source)
    for name in ("secret_keys", "smtp_password", "imap_password", "effective_database_url", "database_url"):
        one = dataclasses.replace(source, text="{{ settings.%s }} {{ unsubscribe_url }}" % name)  # noqa: UP031
        with pytest.raises(TemplateRefused):
            validate(settings, one)
    # The department's public facts stay at hand, as the example template uses them.
    public = dataclasses.replace(
        source, text="{{ settings.department_name }} {{ settings.public_url }}\nОтписаться: {{ unsubscribe_url }}\n"
    )
    validate(settings, public)
    text, html = render_bodies(settings, public, "Анна", "https://dizo.example.ru/unsubscribe/x")
    assert settings.department_name in text and settings.public_url in text
    for secret in (SIGNING_KEY, "u8-smtp-password", "u8-imap-password"):
        assert secret not in text + html


# U9 -------------------------------------------------------------------------------------------------------------


def test_the_acknowledgement_limit_holds_whatever_the_case_of_the_address(limited: Settings, sink: Sink) -> None:  # noqa: F811
    # README "Limits": ACK_LIMIT_PER_HOUR acknowledgements to one address per hour (issue 14: forged letters). Every
    # mail provider a citizen uses delivers «Victim@example.ru» and «victim@example.ru» to one mailbox.
    variants = [VICTIM[:i] + VICTIM[i].upper() + VICTIM[i + 1 :] for i in range(10)]
    for i, sender in enumerate(variants):
        raw = citizen_mail(
            sender=sender,
            name="Петрова Анна",
            subject=f"Запрос № {i} о договорах аренды",
            body=f"Прошу сообщить сведения о договоре аренды участка № {i} за 2025 год.",
        )
        process_raw(limited, raw, Source("smtp", envelope_from=sender), now=utcnow())
    drain(limited)
    acks = [rcpts for _from, rcpts, _raw in sink.messages() if any(r.lower() == VICTIM for r in rcpts)]
    assert len(acks) == LIMIT


# U10 ------------------------------------------------------------------------------------------------------------


def test_pages_answer_head_like_get(settings: Settings) -> None:
    # RFC 9110 9.1: "All general-purpose servers MUST support the methods GET and HEAD"; 9.3.2: HEAD is GET without
    # the content. An uptime monitor probing /healthz or /readyz by HEAD sees the service as down.
    http = client_for(settings)
    for path in ("/healthz", "/readyz", "/request", "/subscribe", "/history", "/feedback"):
        assert http.get(path).status_code == 200, path
        head = http.head(path)
        assert (head.status_code, head.content) == (200, b""), path
        # The same header fields as GET (RFC 9110 9.3.2), the security headers included.
        get = http.get(path)
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        assert head.headers.get("content-security-policy") == get.headers.get("content-security-policy"), path
    assert http.head("/staff/requests/1/status").status_code == 405  # a POST-only action stays POST-only


def postgres_only(settings: Settings, why: str) -> None:
    """Skip the SQLite case of a defect only PostgreSQL shows (``why``: what SQLite does instead)."""
    if not settings.effective_database_url.startswith("postgresql"):
        pytest.skip(why)


NUL_ON_SQLITE = "SQLite stores U+0000; the defect is PostgreSQL's refusal"

# U11 ------------------------------------------------------------------------------------------------------------


def test_two_answers_at_once_give_the_citizen_one(settings: Settings) -> None:
    # The console loads the request, checks the transition on what it loaded and writes (web/staff/routes.py
    # request_answer → actions.answer → service.change_status). Two officers press «Отправить ответ» at the same
    # moment: the second must be refused (lifecycle: «дан ответ» → «дан ответ» is no transition), not sent too.
    postgres_only(
        settings, "SQLite opens every transaction with BEGIN IMMEDIATE: a second writer waits and reads afresh"
    )
    request_id = mail_request(settings)
    refused = False
    with session_scope(settings) as first:
        mine = first.get_one(Request, request_id)
        assert mine.status == Status.registered
        with session_scope(settings) as second:  # the colleague's request, served meanwhile
            theirs = second.get_one(Request, request_id)
            actions.answer(second, settings, theirs, text="Ответ коллеги.", files=[], actor="b@dizo.test", now=utcnow())
        try:
            actions.answer(first, settings, mine, text="Мой ответ.", files=[], actor="a@dizo.test", now=utcnow())
        except actions.ConsoleError:
            refused = True
    with session_scope(settings) as session:
        answers = session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == request_id, OutboxMessage.kind == "status_notice")
        ).all()
    assert refused or len(answers) == 1, [a.subject for a in answers]
    assert len(answers) == 1
    assert refused  # the late one is told so, not silently dropped
    with session_scope(settings) as session:
        answered = session.scalars(
            select(Event.comment).where(Event.request_id == request_id, Event.to_status == Status.answered)
        ).all()
    assert answered == ["Ответ коллеги."]


# U12 ------------------------------------------------------------------------------------------------------------


def test_the_form_registers_a_request_with_a_nul_character(fast_form: Settings) -> None:  # noqa: F811
    # 59-FZ art. 8 / README "Every channel": every request from the form is registered at once. PostgreSQL's text
    # cannot hold U+0000 (SQLite can: nothing to show there); mail intake turns it into a space (parse.py), the
    # anonymous feedback and subscription forms cope, the request form does not.
    postgres_only(fast_form, NUL_ON_SQLITE)
    http = TestClient(create_app(fast_form), base_url="http://testserver", raise_server_exceptions=False)
    opened = re.search(r'name="opened" value="([^"]+)"', http.get("/request").text)
    assert opened
    response = http.post(
        "/request",
        data={
            "opened": opened.group(1), "website": "", "name": "Иванов\x00Иван", "email": "nul@example.ru",
            "subject": "График\x00приёма", "text": "Прошу\x00 сообщить график приёма граждан.",
        },
    )  # fmt: skip
    assert response.status_code == 200
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.reply_email == "nul@example.ru")).one()
        assert request.number
        # The NUL becomes a space, as in names (README: a control character in a name becomes a space).
        assert (request.subject, request.text) == ("График приёма", "Прошу  сообщить график приёма граждан.")


# U13 ------------------------------------------------------------------------------------------------------------

NUL_LETTER = (
    b"From: =?utf-8?b?0JjQstCw0L3QvtCyINCY0LLQsNC9?= <ivanov.nul@example.ru>\r\n"
    b"To: info@dizo.test\r\n"
    b"Subject: =?utf-8?q?=D0=93=D1=80=D0=B0=D1=84=D0=B8=D0=BA=00?=\r\n"
    b"Message-ID: <nul-1@example.ru>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"=D0=9F=D1=80=D0=BE=D1=88=D1=83=00 =D1=81=D0=BE=D0=BE=D0=B1=D1=89=D0=B8=D1=82=D1=8C "
    b"=D0=B3=D1=80=D0=B0=D1=84=D0=B8=D0=BA =D0=BF=D1=80=D0=B8=D1=91=D0=BC=D0=B0.\r\n"
)


def test_a_letter_with_a_nul_character_is_registered(settings: Settings) -> None:
    # README "Register first": every letter a person wrote gets its number now (59-FZ art. 8); names already lose
    # NUL (CVE-2024-6923, parse.py), the subject and the text do not, and PostgreSQL refuses U+0000 in text.
    postgres_only(settings, NUL_ON_SQLITE)
    result = process_raw(settings, NUL_LETTER, Source("smtp", envelope_from="ivanov.nul@example.ru"), now=utcnow())
    assert result.request_number, result
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert "\x00" not in request.subject + request.text
        assert request.text.startswith("Прошу  сообщить график приёма"), request.text
