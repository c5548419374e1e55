"""Identity in person and suggested merges (issue 14): the console, the CLI, the audit, the migration of old data.

The attacks themselves are in tests/security/test_identity_*.py; this file checks the staff side of the rule
"an address is a client's only when proven" (README, "Security model").
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select, text, update

from mailservice import config, db
from mailservice.cli import main as cli_main
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Client, ClientContact, IdentityCheck, Request
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry, StaffUser
from tests.conftest import PG_URL, pg_unreachable_reason
from tests.console_support import PASSWORD, add_staff, mail_request
from tests.security.identity_support import OPERATOR, register_call, staff_console

PHONE = "+7 913 555-44-33"
ACCEPT = {"decision": "accept", "document": "passport_rf"}  # a merge needs an identity check


def _contacts(settings: Settings, client_id: int) -> dict[str, tuple[str | None, bool]]:
    with session_scope(settings) as session:
        rows = session.scalars(select(ClientContact).where(ClientContact.client_id == client_id))
        return {c.value: (c.proof, c.proven) for c in rows}


def _client_of(settings: Settings, request_id: int) -> int:
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        return request.client_id


def test_typing_an_address_proves_nothing_a_check_in_person_does(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    request_id = register_call(
        http, csrf, name="Смирнова Мария", phone=PHONE, email="smirnova@example.ru", subject="Аренда", text="Порядок"
    )
    client_id = _client_of(settings, request_id)
    # The address typed on the call is the request's reply address and nothing more.
    assert _contacts(settings, client_id) == {PHONE: (None, False)}
    with session_scope(settings) as session:
        assert session.get(Request, request_id).reply_email == "smirnova@example.ru"  # type: ignore[union-attr]
    page = http.get(f"/staff/clients/{client_id}")
    assert "Проверка личности" in page.text and "паспорт гражданина Российской Федерации" in page.text
    # The contact's kind in Russian, as every word of the console.
    assert f'{PHONE} <span class="muted">(телефон)</span>' in page.text and "(phone)" not in page.text

    refused = http.post(
        f"/staff/clients/{client_id}/identity",
        data={"csrf_token": csrf, "document": "library_card", "email": "smirnova@example.ru"},
    )
    assert refused.status_code == 400 and "Выберите документ" in refused.text
    done = http.post(
        f"/staff/clients/{client_id}/identity",
        data={"csrf_token": csrf, "document": "passport_rf", "email": "Smirnova@Example.RU", "phone": PHONE},
    )
    assert done.status_code == 303
    assert _contacts(settings, client_id) == {
        PHONE: ("in_person", True),
        "Smirnova@example.ru": ("in_person", True),  # normalised: the domain lower-cased, the local part kept
    }
    with session_scope(settings) as session:
        check = session.scalars(select(IdentityCheck)).one()
        assert (check.client_id, check.document, check.checked_by) == (client_id, "passport_rf", OPERATOR)
        assert check.checked_at is not None and check.email == "Smirnova@example.ru"
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "identity_check")).one()
        assert (audit.actor, audit.object_id, audit.details["check"]) == (OPERATOR, client_id, check.id)
    page = http.get(f"/staff/clients/{client_id}")
    assert "подтверждён: проверка документа лично" in page.text and "проверил(а) operator@dizo.test" in page.text
    assert 'Smirnova@example.ru <span class="muted">(эл. почта)</span>' in page.text and "(email)" not in page.text


def test_a_check_never_takes_another_clients_address(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    owner_request = mail_request(settings, sender="owner@example.ru")
    other = register_call(http, csrf, name="Другой", phone=PHONE, email="x@example.ru", subject="Тема", text="Текст")
    other_client = _client_of(settings, other)
    response = http.post(
        f"/staff/clients/{other_client}/identity",
        data={"csrf_token": csrf, "document": "passport_rf", "email": "owner@example.ru"},
    )
    assert response.status_code == 400 and "сначала объедините записи" in response.text
    assert "owner@example.ru" in _contacts(settings, _client_of(settings, owner_request))
    assert "owner@example.ru" not in _contacts(settings, other_client)


def test_identity_check_from_the_cli(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tester's F10: `--by "кто угодно"` was accepted as the checker. The checker signs in with an account that may
    # operate, as in the console (README: "the checker's operator or administrator account").
    add_staff(settings, "clerk@dizo.test", Role.operator)
    add_staff(settings, "publisher@dizo.test", Role.publisher)
    add_staff(settings, "gone@dizo.test", Role.operator)
    with session_scope(settings) as session:
        session.execute(update(StaffUser).where(StaffUser.email == "gone@dizo.test").values(active=False))
    client_id = _client_of(settings, mail_request(settings, sender="ivanov@example.ru"))
    assert _contacts(settings, client_id) == {"ivanov@example.ru": (None, False)}  # wrote from it: not proven
    check = ["requests", "identity-check", "--client", str(client_id), "--document", "passport_rf"]
    given = ["--email", "ivanov@example.ru"]

    def run(args: list[str], password: str = PASSWORD) -> tuple[int, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        code = cli_main(args)
        return code, capsys.readouterr().err

    refusals = [
        ([*check, "--staff", "кто угодно", *given], PASSWORD, "Неверный адрес учётной записи или пароль"),
        ([*check, "--staff", "clerk@dizo.test", *given], "not the password", "Неверный адрес учётной записи"),
        ([*check, "--staff", "gone@dizo.test", *given], PASSWORD, "Неверный адрес учётной записи или пароль"),
        ([*check, "--staff", "publisher@dizo.test", *given], PASSWORD, "нет права"),
    ]
    for args, password, message in refusals:
        code, err = run(args, password)
        assert code == 1 and message in err, (args, err)
    assert _contacts(settings, client_id) == {"ivanov@example.ru": (None, False)}  # nothing was recorded
    assert run([*check[:-1], "passport", "--staff", "clerk@dizo.test"])[0] == 2
    assert run([*check, "--staff", "clerk@dizo.test", *given]) == (0, "")
    assert _contacts(settings, client_id) == {"ivanov@example.ru": ("in_person", True)}
    with session_scope(settings) as session:
        assert session.scalars(select(IdentityCheck.checked_by)).all() == ["clerk@dizo.test"]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "identity_check")).one()
        assert audit.actor == "clerk@dizo.test" and audit.details["via"] == "cli"
    missing = ["requests", "identity-check", "--client", "999999", "--document", "passport_rf"]
    assert run([*missing, "--staff", "clerk@dizo.test"])[0] == 1


def test_accepting_a_suggested_merge_merges_and_is_audited(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    first = register_call(http, csrf, name="Орлов П.", phone=PHONE, email="orlov@example.ru", subject="А", text="Б")
    second = register_call(http, csrf, name="Орлов П.", phone=PHONE, email="orlov2@example.ru", subject="В", text="Г")
    older, newer = _client_of(settings, first), _client_of(settings, second)
    page = http.get(f"/staff/clients/{newer}")
    suggestion_id = int(re.findall(r'action="/staff/merge-suggestions/(\d+)"', page.text)[0])
    assert (
        http.post(
            f"/staff/merge-suggestions/{suggestion_id}", data={"csrf_token": csrf, "decision": "maybe"}
        ).status_code
        == 400
    )
    accept = {"csrf_token": csrf, "decision": "accept", "document": "passport_rf"}
    response = http.post(f"/staff/merge-suggestions/{suggestion_id}", data=accept)
    assert response.status_code == 303 and response.headers["location"].startswith(f"/staff/clients/{older}")
    with session_scope(settings) as session:
        assert session.get(Client, newer).merged_into_id == older  # type: ignore[union-attr]
        assert session.get(Request, second).client_id == older  # type: ignore[union-attr]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "merge_accept")).one()
        assert audit.details == {"client": newer, "other": older}
    again = http.post(f"/staff/merge-suggestions/{suggestion_id}", data=accept)
    assert again.status_code == 400


# The migration carries the old "verified" flag over -------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """An empty database of this test alone (the migration is run step by step on it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.sqlite3"
        return
    reason = pg_unreachable_reason()
    if reason:
        pytest.skip(reason)
    name = f"mailservice_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    db.dispose_engines()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migration_carries_verified_addresses_over(fresh_url: str) -> None:
    settings = config.Settings(database_url=fresh_url)
    db.upgrade(settings, "console_0001")  # the schema before issue 14
    engine = db._engine_for(fresh_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
                "legal_hold) VALUES (1, 'К', '', '', '2026-01-10 10:00:00+00', '2026-01-10 10:00:00+00', false)"
            )
        )
        for cid, value, verified in ((1, "by-link@example.ru", True), (2, "by-reply@example.ru", True),
                                     (3, "never@example.ru", False)):  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO client_contacts (id, client_id, kind, value, verified, created_at) "
                    "VALUES (:id, 1, 'email', :value, :verified, '2026-01-10 10:00:00+00')"
                ),
                {"id": cid, "value": value, "verified": verified},
            )
        conn.execute(
            text(
                "INSERT INTO history_exports (client_id, created_at, via, address, status, nonce, verified_at, "
                "expires_at, download_count) VALUES (1, '2026-02-01 09:00:00+00', 'email', 'by-link@example.ru', "
                "'ready', 'n', '2026-02-01 09:30:00+00', '2026-02-08 09:30:00+00', 0)"
            )
        )
    db.upgrade(settings)
    with session_scope(settings) as session:
        contacts = {c.value: c for c in session.scalars(select(ClientContact))}
        assert contacts["by-link@example.ru"].proof == "link"
        assert contacts["by-link@example.ru"].proven_at.isoformat() == "2026-02-01T09:30:00+00:00"  # type: ignore[union-attr]
        assert contacts["by-reply@example.ru"].proof == "reply"
        assert contacts["by-reply@example.ru"].proven_at.isoformat() == "2026-01-10T10:00:00+00:00"  # type: ignore[union-attr]
        assert not contacts["never@example.ru"].proven and contacts["never@example.ru"].proof is None
    db.dispose_engines()


def test_request_page_shows_the_claimed_reply_to_and_whether_the_address_is_proven(settings: Settings) -> None:
    from tests.mailfactory import citizen_mail

    http, _csrf = staff_console(settings)
    raw = citizen_mail(sender="ivanov@example.ru", headers={"Reply-To": "elsewhere@example.org"})
    request_id = mail_request(settings, raw=raw)
    page = http.get(f"/staff/requests/{request_id}")
    assert "Reply-To письма" in page.text and "elsewhere@example.org" in page.text
    assert re.search(r"ivanov@example.ru <span class=\"badge\">не подтверждён", page.text)


def test_a_merge_carries_the_duplicates_other_suggestions_to_the_survivor(settings: Settings) -> None:
    from mailservice.inforequests.models import MergeSuggestion

    http, csrf = staff_console(settings)
    calls = [
        register_call(http, csrf, name="Орлов П.", phone=PHONE, email=f"orlov{i}@example.ru", subject="А", text="Б")
        for i in range(3)
    ]
    first, second, third = (_client_of(settings, r) for r in calls)
    with session_scope(settings) as session:
        pairs = {(s.client_id, s.other_id): s.id for s in session.scalars(select(MergeSuggestion))}
    assert set(pairs) == {(second, first), (third, first)}  # each new caller against the phone's record
    with session_scope(settings) as session:  # staff also suspect the third is the second
        session.add(MergeSuggestion(client_id=third, other_id=second, reason="Похожее имя", status="open"))
    http.post(f"/staff/merge-suggestions/{pairs[(second, first)]}", data=ACCEPT | {"csrf_token": csrf})
    with session_scope(settings) as session:
        rows = {s.reason: (s.client_id, s.other_id, s.status) for s in session.scalars(select(MergeSuggestion))}
    # third-vs-second now concerns the survivor, where third-vs-first already waits: closed, not doubled.
    assert rows["Похожее имя"] == (third, second, "rejected")
    assert sorted(v for v in rows.values() if v[2] == "open") == [(third, first, "open")]

    # A suggestion the survivor does not have yet moves to it.
    with session_scope(settings) as session:
        fourth = Client(name="Орлова")
        session.add(fourth)
        session.flush()
        session.add(MergeSuggestion(client_id=fourth.id, other_id=third, reason="Тот же адрес", status="open"))
        fourth_id = fourth.id
    http.post(f"/staff/merge-suggestions/{pairs[(third, first)]}", data=ACCEPT | {"csrf_token": csrf})
    with session_scope(settings) as session:
        moved = session.scalars(select(MergeSuggestion).where(MergeSuggestion.client_id == fourth_id)).one()
        assert (moved.other_id, moved.status) == (first, "open") and f"№ {third} объединена" in moved.reason


def test_a_reply_from_an_address_we_never_wrote_to_proves_nothing(settings: Settings) -> None:
    """README, "How an address is proven": answering one of our messages from another address joins the thread and
    proves nothing; the same answer from the address our message went to proves that address."""
    from mailservice.intake.models import Outcome
    from mailservice.intake.pipeline import Source, process_raw
    from mailservice.outbox import OutboxMessage
    from tests.mailfactory import citizen_mail

    now = db.utcnow()
    first = process_raw(settings, citizen_mail(sender="ivanov@example.ru"), Source("smtp"), now=now)
    assert first.outcome is Outcome.new_request
    with session_scope(settings) as session:
        ack = session.scalars(select(OutboxMessage)).one()
        assert ack.recipients == "ivanov@example.ru"
        ack_id = ack.message_id
        request = session.scalars(select(Request)).one()
        client_id, number = request.client_id, request.number
    # Not proven yet: writing from an address is not proving it.
    assert _contacts(settings, client_id) == {"ivanov@example.ru": (None, False)}

    stranger = citizen_mail(
        sender="ivanov.work@example.com", subject="Re: Запрос", body="Дополняю свой запрос.", in_reply_to=ack_id
    )
    joined = process_raw(settings, stranger, Source("smtp"), now=now)
    assert joined.outcome is Outcome.reply and joined.request_number == number  # it joins the thread
    contacts = _contacts(settings, client_id)
    assert contacts.get("ivanov.work@example.com", (None, False)) == (None, False)  # and proves nothing
    assert contacts["ivanov@example.ru"] == (None, False)

    own = citizen_mail(
        sender="ivanov@example.ru", subject="Re: Запрос", body="И ещё одно уточнение.", in_reply_to=ack_id
    )
    assert process_raw(settings, own, Source("smtp"), now=now).outcome is Outcome.reply
    assert _contacts(settings, client_id)["ivanov@example.ru"] == ("reply", True)
