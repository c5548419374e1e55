"""Loose ends of 6 December (fixer6a): production link addresses, the monthly report without a head of department,
the console's form tokens purged, migrations frozen, the acknowledgement limit's key, old duplicate subscribers.

Each test failed on the code before its fix. The database tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import ast
import datetime as dt
import email
import email.policy
import hashlib
import html
import importlib
import logging
import re
import time
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import select

import mailservice
from mailservice import db
from mailservice.config import Settings, get_settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Event, Request
from mailservice.intake.pipeline import Source, process_batch, process_raw
from mailservice.jobruns import JobRun
from mailservice.jobs import Job, default_jobs
from mailservice.mailings import subscribers
from mailservice.mailings.consent import Evidence
from mailservice.mailings.models import ConsentEvent, Subscriber, Subscription, Suppression
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import once
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import FormUse, StaffUser
from tests.conftest import make_env, reset_caches
from tests.console_support import add_staff, client_for, csrf_of, login
from tests.documented import SESSION_MAX
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_tryout_dec6d import _LATIN_WORDS, _cli, _prod_env

REAL_KEY = "Zq3vN8pL2xR7tY5wK1mB9cD4fG6hJ0sA-e_UiOo2Pq7Rs9Tu"
PRODUCTION = {
    "environment": "production",
    "secret_keys": [REAL_KEY],
    "department_address": "630007, г. Новосибирск, ул. Серебренниковская, д. 6",
    "from_address": "info@dizo.example.ru",
}

# 1. A production PUBLIC_URL that leads back to the server, or over plain HTTP -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://127.0.0.1",
        "https://127.3.4.5:8443/",
        "https://localhost",
        "https://LOCALHOST.:8000",
        "https://obr.localhost",
        "https://[::1]:8000",
        "https://0.0.0.0",
        "obr.dizo.example.ru",
        "http://obr.dizo.example.ru",
    ],
)
def test_production_refuses_a_link_address_citizens_cannot_open_safely(url: str) -> None:
    # README "Production checks": PUBLIC_URL must be the https address citizens open; a loopback one would put the
    # server's own address into every letter, a plain http one sends tokens and staff passwords in the clear.
    with pytest.raises(ValidationError, match="MAILSERVICE_PUBLIC_URL"):
        Settings(**PRODUCTION, public_url=url)


@pytest.mark.parametrize("url", ["https://obr.dizo-nso.ru", "HTTPS://obr.dizo-nso.ru:8443/mail/"])
def test_production_accepts_a_real_https_link_address(url: str) -> None:
    assert Settings(**PRODUCTION, public_url=url).public_url == url


def test_development_keeps_its_local_link_address() -> None:
    assert Settings(environment="development", public_url="http://127.0.0.1:8000").public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://obr.dizo-nso.ru"])
def test_a_refused_link_address_is_one_russian_line_naming_the_variable(tmp_path: Path, url: str) -> None:
    result = _cli("db", "upgrade", env=_prod_env(tmp_path, MAILSERVICE_PUBLIC_URL=url))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Ошибка") and "MAILSERVICE_PUBLIC_URL" in line and url in line
    assert not _LATIN_WORDS.search(line), line


# 2. The monthly report without HEAD_OF_DEPARTMENT_EMAIL ---------------------------------------------------------

NSK = dt.timezone(dt.timedelta(hours=7))
REPORT_DAY = dt.datetime(2026, 12, 1, 9, 30, tzinfo=NSK)  # Tuesday, the first working day of December, after 9


def _job(name: str) -> Job:
    return next(j for j in default_jobs() if j.name == name)


def test_the_monthly_report_goes_to_the_administrators_without_a_head(settings: Settings) -> None:
    # README "Напоминания": while HEAD_OF_DEPARTMENT_EMAIL is empty, what would go to the head goes to the console's
    # active administrators; the report was dropped instead (send_due returned 0 with no address).
    add_staff(settings, "admin1@dizo.test", Role.administrator)
    add_staff(settings, "admin2@dizo.test", Role.administrator)
    add_staff(settings, "gone@dizo.test", Role.administrator)
    add_staff(settings, "operator@dizo.test", Role.operator)
    with session_scope(settings) as session:
        session.execute(sa.update(StaffUser).where(StaffUser.email == "gone@dizo.test").values(active=False))
    assert _job("monthly-report").run(settings, REPORT_DAY) == 2
    assert _job("monthly-report").run(settings, REPORT_DAY + dt.timedelta(hours=2)) == 0  # once a month
    with session_scope(settings) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()
        assert sorted(r.recipients for r in rows) == ["admin1@dizo.test", "admin2@dizo.test"]
        message = email.message_from_bytes(rows[0].raw, policy=email.policy.default)
    assert "за ноябрь 2026" in str(message["Subject"])


def test_a_monthly_report_that_reaches_nobody_is_recorded_and_warned(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert _job("monthly-report").run(settings, REPORT_DAY) == 0
    assert "MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL" in caplog.text
    with session_scope(settings) as session:
        [run] = session.scalars(select(JobRun).where(JobRun.job == "monthly-report")).all()
        assert run.period == "2026-11" and run.report["to"] == []
        assert "MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL" in run.report["note"]
        assert not session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()


def test_the_monthly_report_still_goes_to_the_head_alone(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    add_staff(settings, "admin1@dizo.test", Role.administrator)
    monkeypatch.setenv("MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL", "chief@dizo.test")
    reset_caches()
    headed = get_settings()
    assert _job("monthly-report").run(headed, REPORT_DAY) == 1
    with session_scope(headed) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()
        assert [r.recipients for r in rows] == ["chief@dizo.test"]


# 3. The console forms' used tokens are purged once too old to be accepted ----------------------------------------

LOADED = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


def _token_loaded_at(monkeypatch: pytest.MonkeyPatch, settings: Settings, moment: dt.datetime) -> str:
    """The form's token of a page loaded at ``moment`` (the token carries the time of its signature)."""
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", moment.timestamp)
        return once.new_token(settings)


def _form_uses(settings: Settings) -> int:
    with session_scope(settings) as session:
        return len(session.scalars(select(FormUse)).all())


def test_a_used_form_token_is_purged_after_the_longest_session_and_stays_refused(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    # One row per console form ever sent was kept for ever. A form is loaded within a session, which ends at the
    # latest 12 hours after the login (README): a row older than that is no longer needed, as long as the token
    # itself is refused after that age.
    old, recent = (_token_loaded_at(monkeypatch, settings, LOADED) for _ in range(2))
    with session_scope(settings) as session:
        once.claim(session, settings, old, "request_register", LOADED).object_id = 7
    with session_scope(settings) as session:
        once.claim(
            session, settings, recent, "request_register", LOADED + SESSION_MAX - dt.timedelta(minutes=1)
        ).object_id = 8
    purge_day = LOADED + SESSION_MAX + dt.timedelta(minutes=1)
    job = _job("form-uses-purge")
    assert job.run(settings, purge_day) == 1
    assert job.run(settings, purge_day + dt.timedelta(hours=1)) == 0  # once a day
    assert _form_uses(settings) == 1
    with session_scope(settings) as session:
        [run] = session.scalars(select(JobRun).where(JobRun.job == "form-uses-purge")).all()
        assert run.report == {"deleted": 1}
    # The purged token sent again (a browser's resend after a new login) creates nothing: refused by its age.
    with pytest.raises(once.Stale), session_scope(settings) as session:
        once.claim(session, settings, old, "request_register", purge_day)
    # The kept one is still recognised and points at what it created.
    with pytest.raises(once.AlreadyUsed) as used, session_scope(settings) as session:
        once.claim(session, settings, recent, "request_register", purge_day)
    assert used.value.object_id == 8
    assert _form_uses(settings) == 1


def test_a_form_token_is_accepted_within_the_longest_session_only(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    token = _token_loaded_at(monkeypatch, settings, LOADED)
    with pytest.raises(once.Stale), session_scope(settings) as session:
        once.claim(session, settings, token, "request_register", LOADED + SESSION_MAX + dt.timedelta(minutes=1))
    with session_scope(settings) as session:
        once.claim(session, settings, token, "request_register", LOADED + SESSION_MAX - dt.timedelta(minutes=1))
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    with pytest.raises(once.Stale), session_scope(settings) as session:
        once.claim(session, settings, forged, "request_register", LOADED)


def test_a_stale_registration_form_registers_nothing_and_keeps_the_text(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    add_staff(settings, "operator@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "operator@dizo.test")
    page = http.get("/staff/requests/new")
    assert page.status_code == 200
    stale = _token_loaded_at(monkeypatch, settings, utcnow() - SESSION_MAX - dt.timedelta(minutes=5))
    answer = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf_of(page.text),
            "channel": "phone",
            "subject": "Аренда участка",
            "text": "Звонил по поводу договора аренды",
            "name": "Смирнов Пётр",
            "form_id": stale,
        },
    )
    assert answer.status_code == 409
    assert "Звонил по поводу договора аренды" in html.unescape(answer.text)
    fresh = re.search(r'name="form_id" value="([^"]+)"', answer.text)
    assert fresh and fresh[1] != stale
    with session_scope(settings) as session:
        assert session.scalar(select(sa.func.count()).select_from(Request)) == 0


# 4. Data migrations do not depend on today's code --------------------------------------------------------------

VERSIONS = Path(mailservice.__file__).parent / "migrations" / "versions"
# 1901 rebuilds the search index, and 2124 the index rows of the records whose contacts it moved: derived data that
# must follow today's code; no stored fact depends on it.
REBUILDS_DERIVED_DATA = {
    "1901_search.py": {"mailservice.inforequests.search_index"},
    "2124_merged_contacts.py": {"mailservice.inforequests.search_index"},
}


def test_migrations_import_no_live_code_but_the_column_types() -> None:
    # A data migration that calls today's functions gives another result on an old database once they change.
    for path in sorted(VERSIONS.glob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        ours = {name for name in imported if name.split(".")[0] == "mailservice"} - {"mailservice.db"}
        assert ours <= REBUILDS_DERIVED_DATA.get(path.name, set()), (path.name, ours)


def _live_code_changed(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Today's functions changed beyond recognition: a migration that still calls them fails."""
    for name in names:
        module, _, function = name.rpartition(".")

        def changed(*_args: object, _name: str = name) -> str:
            raise AssertionError(f"a migration called today's {_name}")

        monkeypatch.setattr(importlib.import_module(module), function, changed)


def _old_client(conn: sa.Connection, client_id: int, address: str = "") -> None:
    conn.execute(
        sa.text(
            "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
            "legal_hold) VALUES (:id, :name, '', :address, :at, :at, false)"
        ),
        {"id": client_id, "name": f"Клиент {client_id}", "address": address, "at": "2026-01-10 10:00:00+00"},
    )


def test_the_contact_key_migration_gives_its_own_keys(
    monkeypatch: pytest.MonkeyPatch,
    fresh_url: str,  # noqa: F811
) -> None:
    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "1905_reply_email_lower")  # before 2001_contact_case
    with db._engine_for(fresh_url).begin() as conn:
        _old_client(conn, 1)
        _old_client(conn, 2)
        for contact_id, client_id, kind, value in [
            (1, 1, "email", "Ivan@Mail.RU"),
            (2, 1, "email", "ivan@mail.ru"),
            (3, 2, "email", "Иван@Пример.РФ"),
            (4, 2, "email", "иван@xn--e1afmkfd.xn--p1ai"),
            (5, 2, "phone", "+7 913 555-44-33"),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO client_contacts (id, client_id, kind, value, created_at) "
                    "VALUES (:id, :client, :kind, :value, '2026-01-10 10:00:00+00')"
                ),
                {"id": contact_id, "client": client_id, "kind": kind, "value": value},
            )
    _live_code_changed(monkeypatch, "mailservice.mail.addresses.address_key", "mailservice.mail.addresses.contact_key")
    db.upgrade(settings, "2001_contact_case")
    with db._engine_for(fresh_url).connect() as conn:
        keys = conn.execute(sa.text("SELECT id, value_key FROM client_contacts ORDER BY id")).all()
    # The first (oldest, none proven) spelling of each mailbox stays, under the key of NFC, Unicode IDN, lower case.
    assert [tuple(row) for row in keys] == [(1, "ivan@mail.ru"), (3, "иван@пример.рф"), (5, "+7 913 555-44-33")]
    db.dispose_engines()


def test_the_postal_address_migration_gives_its_own_cleaning(
    monkeypatch: pytest.MonkeyPatch,
    fresh_url: str,  # noqa: F811
) -> None:
    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "2001_contact_case")  # before 2003_postal_address_format
    with db._engine_for(fresh_url).begin() as conn:
        _old_client(conn, 1, "630099, г. Новосибирск,\r\n\r\nул. Ленина,\u202e д. 1,\t кв. 12 ")
        _old_client(conn, 2, "\u2067630091, г. Новосибирск\u2069\nул. Мичурина, д. 12")
    _live_code_changed(monkeypatch, "mailservice.mail.headers.address_lines", "mailservice.mail.headers.one_line")
    db.upgrade(settings, "2003_postal_address_format")
    with db._engine_for(fresh_url).connect() as conn:
        stored = conn.execute(sa.text("SELECT id, postal_address FROM clients ORDER BY id")).all()
    assert [tuple(row) for row in stored] == [
        (1, "630099, г. Новосибирск,\nул. Ленина, д. 1, кв. 12"),
        (2, "630091, г. Новосибирск\nул. Мичурина, д. 12"),
    ]
    db.dispose_engines()


# 5. The acknowledgement limit counts one mailbox whatever the case of its letters, on both databases -------------


def _letter_from(sender: str, number: int) -> bytes:
    """A letter as a mail program that speaks SMTPUTF8 (RFC 6531) sends it: the address as written, in UTF-8."""
    return (
        f"From: Петров Иван <{sender}>\r\nTo: info@dizo.test\r\nSubject: Вопрос № {number} по аренде\r\n"
        f"Message-ID: {make_msgid(domain='example.ru')}\r\nDate: {formatdate()}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"Прошу сообщить размер арендной платы за участок № {number} под гаражом.\r\n"
    ).encode()


def _auto_replies(settings: Settings) -> int:
    with session_scope(settings) as session:
        kinds = ("acknowledgement", "appeal_channels")
        return len(session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind.in_(kinds))).all())


@pytest.mark.parametrize(
    "spellings",
    [("Иван@пример.рф", "иван@пример.рф", "ИВАН@Пример.РФ"), ("Ivan@Mail.RU", "ivan@mail.ru", "IVAN@mail.ru")],
    ids=["cyrillic", "ascii"],
)
@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_the_acknowledgement_limit_counts_a_mailbox_in_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings, spellings: tuple[str, ...], batch: bool
) -> None:
    # README "Limits": ACK_LIMIT_PER_HOUR acknowledgements to one address per hour. SQLite's lower() folds ASCII
    # only: «Иван@» and «иван@» were two addresses there, each with its own allowance.
    limited = make_env(monkeypatch, tmp_path, settings.effective_database_url, ack_limit_per_hour="1")
    letters = [_letter_from(sender, number) for number, sender in enumerate(spellings)]
    if batch:
        process_batch(limited, [(raw, Source("smtp")) for raw in letters], now=utcnow())
    else:
        for raw in letters:
            assert process_raw(limited, raw, Source("smtp"), now=utcnow()).request_number
    assert _auto_replies(limited) == 1
    with session_scope(limited) as session:
        held = session.scalars(select(Event).where(Event.kind == "note")).all()
        assert len([n for n in held if "не отправлен" in n.comment]) == len(spellings) - 1
        keys = set(session.scalars(select(Request.reply_email_key)))
    assert keys == {spellings[1]}  # the key: the address in lower case, the domain in Unicode


def test_the_key_migration_fills_the_requests_written_before(fresh_url: str) -> None:  # noqa: F811
    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "2003_postal_address_format")  # before 2101_reply_email_key
    with db._engine_for(fresh_url).begin() as conn:
        _old_client(conn, 1)
        for request_id, address in [
            (1, "Иван@Пример.РФ"),
            (2, "иван@xn--e1afmkfd.xn--p1ai"),
            (3, "Ivan@Mail.RU"),
            (4, None),
        ]:
            conn.execute(
                sa.text(
                    "INSERT INTO requests (id, client_id, channel, law, subject, text, status, type, topic, urgency, "
                    "classification, classifier_version, needs_review, received_at, assignee, unit, reply_email, "
                    "reply_name) VALUES (:id, 1, 'email', '8-fz', '', '', 'registered', 'info_request', 'other', "
                    "'normal', '{}', '', false, '2026-01-10 10:00:00+00', '', '', :address, '')"
                ),
                {"id": request_id, "address": address},
            )
    db.upgrade(settings, "2101_reply_email_key")
    with db._engine_for(fresh_url).connect() as conn:
        keys = conn.execute(sa.text("SELECT id, reply_email_key FROM requests ORDER BY id")).all()
    assert [tuple(row) for row in keys] == [
        (1, "иван@пример.рф"),
        (2, "иван@пример.рф"),
        (3, "ivan@mail.ru"),
        (4, None),
    ]
    db.dispose_engines()


# 6. Subscribers an earlier version made for two spellings of one mailbox are merged ------------------------------

JAN10, JAN20, FEB01, MAR01 = (
    "2026-01-10 10:00:00+00",
    "2026-01-20 10:00:00+00",
    "2026-02-01 10:00:00+00",
    "2026-03-01 10:00:00+00",
)


def _mailbox_hash(address: str) -> str:
    # The consent log's key of a mailbox (README "Mailings with consent": a hash of the case-folded address).
    return hashlib.sha256(("mailservice-mailing:" + address.casefold()).encode()).hexdigest()


def _old_subscriptions(conn: sa.Connection) -> None:
    """What the schema before the merge allowed: one mailbox under two spellings, each a subscriber with its lists
    and its consent log."""
    for list_id, slug in enumerate(["news", "tenders", "events", "sport"], start=1):
        conn.execute(
            sa.text(
                "INSERT INTO mailing_lists (id, slug, title, purpose, created_at) VALUES (:id, :slug, :slug, '', :at)"
            ),
            {"id": list_id, "slug": slug, "at": JAN10},
        )
    spellings = ["Ivan@example.org", "ivan@example.org", "Maria@example.org", "maria@example.org", "petr@example.org"]
    for subscriber_id, address in enumerate(spellings, start=1):
        conn.execute(
            sa.text(
                "INSERT INTO mailing_subscribers (id, email, email_ascii, email_hash, name, created_at, confirm_nonce) "
                "VALUES (:id, :email, :email, :hash, :name, :at, '')"
            ),
            {"id": subscriber_id, "email": address, "hash": _mailbox_hash(address), "name": f"П. {subscriber_id}",
             "at": JAN10},
        )  # fmt: skip
    subscriptions = [
        # id, subscriber, list, status, requested/confirmed, withdrawn
        (1, 1, 1, "active", JAN10, None),  # Ivan@ news, withdrawn later as ivan@: the withdrawal wins
        (2, 2, 1, "withdrawn", JAN10, FEB01),
        (3, 2, 2, "active", JAN20, None),  # ivan@ tenders only: moves to the row that stays
        (4, 1, 3, "withdrawn", JAN10, JAN20),  # Ivan@ events withdrawn, then a new consent as ivan@: it stands
        (5, 2, 3, "active", MAR01, None),
        (6, 1, 4, "expired", JAN10, None),  # never confirmed in either spelling
        (7, 2, 4, "expired", JAN10, None),
        (8, 3, 1, "active", JAN10, None),  # Maria@ news, withdrawn as maria@: nothing left, suppressed
        (9, 4, 1, "withdrawn", JAN10, FEB01),
        (10, 5, 1, "active", JAN10, None),  # one spelling only: untouched
    ]
    for sid, subscriber_id, list_id, status, given, withdrawn in subscriptions:
        conn.execute(
            sa.text(
                "INSERT INTO mailing_subscriptions (id, subscriber_id, list_id, status, nonce, created_at, "
                "requested_at, confirmed_at, withdrawn_at, withdrawn_via) VALUES (:id, :person, :list, :status, "
                ":nonce, :given, :given, :confirmed, :withdrawn, :via)"
            ),
            {"id": sid, "person": subscriber_id, "list": list_id, "status": status, "nonce": f"n{sid}",
             "given": given, "confirmed": None if status == "expired" else given, "withdrawn": withdrawn,
             "via": "link" if withdrawn else ""},
        )  # fmt: skip
        records = [("given", given)] + ([("confirmed", given)] if status != "expired" else [])
        records += [("withdrawn", withdrawn)] if withdrawn else []
        for kind, at in records:
            conn.execute(
                sa.text(
                    "INSERT INTO mailing_consent_log (at, kind, subscriber_id, subscription_id, list_id, email_hash, "
                    "method, source, ip, user_agent, purpose, data_processed, operator, term, withdrawal_method, "
                    "consent_version, consent_sha256, detail) VALUES (:at, :kind, :person, :sid, :list, :hash, "
                    "'link', '', '192.0.2.1', 'test', 'Новости', 'адрес', 'Департамент', 'до отзыва', 'ссылка', "
                    "'v1', 'abc', '')"
                ),
                {"at": at, "kind": kind, "person": subscriber_id, "sid": sid, "list": list_id,
                 "hash": _mailbox_hash("ivan@example.org" if subscriber_id < 3 else "maria@example.org")},
            )  # fmt: skip
    conn.execute(
        sa.text(
            "INSERT INTO mailing_suppressions (email_hash, reason, at, detail) VALUES (:hash, 'withdrawn', :at, '')"
        ),
        {"hash": _mailbox_hash("petr@example.org"), "at": FEB01},
    )  # an unrelated entry stays as it is


def test_the_spellings_of_one_subscriber_are_merged_and_a_withdrawal_wins(fresh_url: str) -> None:  # noqa: F811
    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "2001_subscription_confirm_nonce")  # the mailings before the merge
    with db._engine_for(fresh_url).begin() as conn:
        _old_subscriptions(conn)
        logged_before = conn.execute(sa.text("SELECT count(*) FROM mailing_consent_log")).scalar_one()
    db.upgrade(settings)
    with session_scope(settings) as session:
        people = {p.id: p for p in session.scalars(select(Subscriber))}
        assert [people[i].email for i in (1, 2, 3, 4, 5)] == [
            "Ivan@example.org",
            None,
            "Maria@example.org",
            None,
            "petr@example.org",
        ]
        assert people[2].purged_at is not None and people[4].purged_at is not None and people[2].name == ""
        subs = {s.id: (s.subscriber_id, s.list_id, s.status) for s in session.scalars(select(Subscription))}
        assert subs == {
            1: (1, 1, "withdrawn"),  # the later withdrawal in the other spelling
            2: (2, 1, "withdrawn"),
            3: (1, 2, "active"),  # moved to the row that stays
            4: (1, 3, "active"),  # takes the consent given after its withdrawal
            5: (2, 3, "active"),  # its unsubscribe links still withdraw the mailbox (below)
            6: (1, 4, "expired"),
            7: (2, 4, "expired"),
            8: (3, 1, "withdrawn"),
            9: (4, 1, "withdrawn"),
            10: (5, 1, "active"),
        }
        assert session.get_one(Subscription, 4).confirmed_at == dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
        # Every record of both spellings is kept; the merge adds one per change it made.
        log = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
        added = [(e.kind, e.subscription_id, e.subscriber_id, e.method) for e in log[logged_before:]]
        assert len(log) == logged_before + 3
        assert sorted(added) == [
            ("confirmed", 4, 1, "merge"), ("withdrawn", 1, 1, "merge"), ("withdrawn", 8, 3, "merge")
        ]  # fmt: skip
        suppressed = set(session.scalars(select(Suppression.email_hash)))
        assert suppressed == {_mailbox_hash("maria@example.org"), _mailbox_hash("petr@example.org")}
        # An unsubscribe link of a letter sent to the other spelling withdraws the mailbox's consent.
        old_link = session.get_one(Subscription, 5)
        subscribers.withdraw_in_transaction(
            session, settings, old_link, evidence=Evidence(method="link"), now=dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
        )
    with session_scope(settings) as session:
        assert session.get_one(Subscription, 4).status == "withdrawn"
    db.dispose_engines()
