"""Tryout of 7 December (an attacker's session): a phone number typed by staff, and a merge staff accepted after
checking the *victim's* document, handed the victim's data to whoever had called with her phone.

1. A stranger calls with the victim's phone and his own postal address: the address was written onto the victim's
   record (it had none), and the answers to her own requests were then posted to him.
2. The stranger, whose record staff then merged into the victim's (the system suggested it by the phone):
   a. the history link he had got for his own record opened the victim's whole history after the merge;
   b. his address, moved to her record unproven, was proven again by his reply to the letter asking to confirm it.

README, "Security model": a phone or a name typed by staff proves nothing; a merged record's contacts come over
unproven and only an identity check in person proves them again.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from mailservice import db
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import identity, service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import (
    Client,
    ClientContact,
    Event,
    MergeSuggestion,
    PostalLetter,
    Proof,
    Request,
)
from tests.console_support import link_in, text_of
from tests.mailfactory import citizen_mail
from tests.security.identity_support import deliver, mail_to, register_call, reply_to, run_worker_once, staff_console
from tests.servers import Sink
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)

PHONE = "+7 913 777-66-55"
ATTACKER = "attacker@evil-mail.ru"
ATTACKER_POST = "630000, г. Новосибирск,\nул. Злодейская, д. 1, кв. 13"
VICTIM_POST = "630099, г. Новосибирск,\nКрасный проспект, д. 50, кв. 7"
SECRET = "задолженность по аренде 184 000 руб., участок 54:35:011111:42"


def _call(http: TestClient, csrf: str, **fields: str) -> int:
    response = http.post("/staff/requests/new", data={"csrf_token": csrf, "channel": "phone", **fields})
    assert response.status_code == 303, response.text
    return int(response.headers["location"].split("/")[-1].split("?")[0])


def _client_of(settings: Settings, request_id: int) -> Client:
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        client = request.client
        session.expunge(client)
        return client


# 1. A postal address typed on a call -----------------------------------------------------------------------------


def test_a_strangers_postal_address_on_a_call_with_her_phone_does_not_become_hers(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    victim_request = _call(
        http, csrf, name="Петрова Анна Сергеевна", phone=PHONE, subject="Задолженность", text="Сумма задолженности?"
    )
    stranger_request = _call(
        http,
        csrf,
        name="Петрова А. С.",
        phone="8 (913) 777-66-55",  # her number, typed the other usual way
        postal_address=ATTACKER_POST,
        subject="Справка",
        text="Просит направлять ответы почтой",
    )
    victim, stranger = _client_of(settings, victim_request), _client_of(settings, stranger_request)
    assert victim.id != stranger.id
    assert victim.postal_address == ""
    assert stranger.postal_address == ATTACKER_POST
    with session_scope(settings) as session:
        suggestion = session.scalars(select(MergeSuggestion)).one()
        assert (suggestion.client_id, suggestion.other_id) == (stranger.id, victim.id)
        assert "Злодейская" in suggestion.reason and "Объединяйте записи только после проверки личности" in (
            suggestion.reason
        )
        # The phone stays hers: nobody else holds it.
        holders = session.scalars(select(ClientContact.client_id).where(ClientContact.kind == "phone")).all()
        assert holders == [victim.id]
        # Her request answered: no letter goes by post to the stranger's address with her answer.
        request = session.get_one(Request, victim_request)
        service.change_status(session, settings, request, Status.in_progress, now=utcnow(), actor="op")
        service.change_status(
            session, settings, request, Status.answered, now=utcnow(), actor="op", comment=f"Сообщаем: {SECRET}"
        )
    with session_scope(settings) as session:
        letters = session.scalars(select(PostalLetter).where(PostalLetter.request_id == victim_request)).all()
        assert not any("Злодейская" in letter.addressee for letter in letters)


def test_the_same_postal_address_however_typed_and_none_keep_the_caller_on_his_record(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    first = _call(
        http, csrf, name="Петрова Анна", phone=PHONE, postal_address=VICTIM_POST, subject="Вопрос", text="Текст"
    )
    retyped = "  630099, г. Новосибирск, красный проспект,\n д. 50,   кв. 7 "
    again = _call(http, csrf, name="Петрова Анна", phone=PHONE, postal_address=retyped, subject="Ещё", text="Текст")
    no_post = _call(http, csrf, name="Петрова Анна", phone=PHONE, subject="И ещё", text="Текст")
    ids = {_client_of(settings, rid).id for rid in (first, again, no_post)}
    assert len(ids) == 1
    assert _client_of(settings, first).postal_address == VICTIM_POST
    with session_scope(settings) as session:
        assert session.scalars(select(MergeSuggestion)).all() == []


def test_a_different_postal_address_does_not_replace_the_one_on_her_record(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    mine = _call(http, csrf, name="Петрова Анна", phone=PHONE, postal_address=VICTIM_POST, subject="В", text="Т")
    theirs = _call(http, csrf, name="Петрова", phone=PHONE, postal_address=ATTACKER_POST, subject="В", text="Т")
    assert _client_of(settings, mine).postal_address == VICTIM_POST
    assert _client_of(settings, theirs).id != _client_of(settings, mine).id


# 2. A merge staff accepted -------------------------------------------------------------------------------------


def _accept_the_suggestion(settings: Settings, http: TestClient, csrf: str) -> httpx.Response:
    """Staff accept the one suggested merge after checking the document of the person before them (the victim)."""
    with session_scope(settings) as session:
        suggestion = session.scalars(select(MergeSuggestion)).one()
    response = http.post(
        f"/staff/merge-suggestions/{suggestion.id}",
        data={"csrf_token": csrf, "decision": "accept", "document": "passport_rf", "phone": PHONE},
    )
    assert response.status_code == 303, response.text
    return response


def _links(sink: Sink) -> list[str]:
    return [link_in(m, "/history/download/") for m in mail_to(sink, ATTACKER) if "/history/download/" in text_of(m)]


def _archive(http: TestClient, link: str) -> tuple[int, str]:
    response = http.get(link + "/archive.zip")
    if response.status_code != 200:
        return response.status_code, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return 200, b"".join(archive.read(name) for name in archive.namelist()).decode("utf-8", "replace")


def _stranger_merged_in(settings: Settings, sink: Sink, *, link_first: bool) -> tuple[TestClient, int, list[str]]:
    """The victim's call, the stranger's call with her phone and his address (his own record, a suggested merge),
    his address proven for his record by his reply, optionally his history link; then staff accept the merge
    after checking *her* document. Returns the console, her client id and the links he got before the merge."""
    http, csrf = staff_console(settings)
    victim_request = register_call(
        http, csrf, name="Петрова Анна Сергеевна", phone=PHONE, email="", subject="Долг", text=f"Сообщила: {SECRET}"
    )
    register_call(http, csrf, name="Петрова А. С.", phone=PHONE, email=ATTACKER, subject="Копии", text="Копии")
    run_worker_once(settings)
    deliver(settings, reply_to(sink, ATTACKER, "Получил.", "зарегистрировано"))
    links: list[str] = []
    if link_first:
        http.post("/history", data={"email": ATTACKER})
        run_worker_once(settings)
        links = _links(sink)
        assert len(links) == 1
        status, body = _archive(http, links[0])
        assert status == 200 and SECRET not in body  # his own record's history only
    victim = _client_of(settings, victim_request).id
    response = _accept_the_suggestion(settings, http, csrf)
    assert response.headers["location"].startswith(f"/staff/clients/{victim}")
    return http, victim, links


def test_a_history_link_made_before_a_merge_does_not_open_the_survivors_history(settings: Settings, sink: Sink) -> None:
    http, _victim, [link] = _stranger_merged_in(settings, sink, link_first=True)
    status, body = _archive(http, link)
    assert status != 200 and SECRET not in body
    assert "Ссылка недействительна" in http.get(link).text


def test_a_reply_does_not_prove_again_an_address_a_merge_brought(settings: Settings, sink: Sink) -> None:
    http, victim, _links_before = _stranger_merged_in(settings, sink, link_first=False)
    deliver(settings, citizen_mail(sender=ATTACKER, name="", subject="История обращений", body="История обращений"))
    run_worker_once(settings)
    [letter] = [m for m in mail_to(sink, ATTACKER) if "подтвердите адрес" in str(m["Subject"])]
    # The letter does not offer a reply that would prove nothing.
    assert "ответьте на это письмо" not in text_of(letter)
    assert "только лично" in text_of(letter)
    deliver(settings, reply_to(sink, ATTACKER, "Подтверждаю", "подтвердите адрес"))
    run_worker_once(settings)
    assert _links(sink) == []
    with session_scope(settings) as session:
        contact = session.scalars(select(ClientContact).where(ClientContact.value == ATTACKER)).one()
        assert contact.client_id == victim and contact.proven_at is None and contact.moved_at is not None
        notes = session.scalars(select(Event.comment).where(Event.client_id == victim)).all()
        assert any("перенесён к этой записи при объединении" in note for note in notes)
    page = http.get(f"/staff/clients/{victim}").text
    assert "перенесён при объединении, подтверждается только лично" in page


def test_an_address_a_merge_brought_is_proven_in_person_and_only_so(settings: Settings, sink: Sink) -> None:
    _http, victim, _links_before = _stranger_merged_in(settings, sink, link_first=False)
    then = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # not the clock's time: the note takes the one given
    with session_scope(settings) as session:
        client = session.get_one(Client, victim)
        assert identity.prove(session, client, ATTACKER, Proof.reply, then, actor="robot") is None
        assert identity.prove(session, client, ATTACKER, Proof.link, then) is None
        session.flush()
        notes = session.scalars(
            select(Event).where(Event.client_id == victim, Event.at == then).order_by(Event.id)
        ).all()
        assert [(n.comment, n.actor, n.data.get("refused_proof"), n.data.get("internal")) for n in notes] == [
            (
                f"Адрес {ATTACKER} перенесён к этой записи при объединении: ответ на наше письмо его не "
                "подтверждает, подтвердить адрес можно только при проверке документа лично",
                "robot",
                "reply",
                True,
            ),
            (
                f"Адрес {ATTACKER} перенесён к этой записи при объединении: переход по подписанной ссылке его не "
                "подтверждает, подтвердить адрес можно только при проверке документа лично",
                "",
                "link",
                True,
            ),
        ]
        contact = identity.prove(session, client, ATTACKER, Proof.in_person, then, actor="op")
        assert contact is not None and contact.proven and contact.proof == Proof.in_person


def test_a_legacy_confirmation_link_does_not_prove_an_address_a_merge_brought(settings: Settings, sink: Sink) -> None:
    """Confirmation links of the old kind (still out for seven days) prove by a link: not an address a merge
    brought, and the export they were for does not become ready."""
    from mailservice.history import service as history
    from mailservice.history.models import HistoryExport

    _http, victim, _links_before = _stranger_merged_in(settings, sink, link_first=False)
    now = utcnow()
    with session_scope(settings) as session:
        export = HistoryExport(
            client_id=victim,
            created_at=now,
            via="email",
            address=ATTACKER,
            status="awaiting_verification",
            nonce="legacy-nonce",
            expires_at=now + dt.timedelta(days=7),
        )
        session.add(export)
        session.flush()
        token = history.verify_token(settings, export)
    with session_scope(settings) as session:
        with pytest.raises(history.HistoryLinkError) as refused:
            history.confirm_address(session, settings, token, now)
        assert refused.value.kind == "invalid"
    with session_scope(settings) as session:
        assert session.get_one(HistoryExport, export.id).status == "awaiting_verification"
        contact = session.scalars(select(ClientContact).where(ClientContact.value == ATTACKER)).one()
        assert contact.proven_at is None


def test_a_merge_does_not_carry_the_other_records_postal_address(settings: Settings) -> None:
    http, csrf = staff_console(settings)
    victim_request = _call(http, csrf, name="Петрова Анна", phone=PHONE, subject="Вопрос", text="Текст")
    stranger_request = _call(
        http, csrf, name="Петрова", phone=PHONE, postal_address=ATTACKER_POST, subject="Вопрос", text="Текст"
    )
    victim, stranger = _client_of(settings, victim_request), _client_of(settings, stranger_request)
    _accept_the_suggestion(settings, http, csrf)
    with session_scope(settings) as session:
        assert session.get_one(Client, stranger.id).merged_into_id == victim.id
        assert session.get_one(Client, victim.id).postal_address == ""
        notes = session.scalars(select(Event.comment).where(Event.client_id == victim.id)).all()
        assert any("почтовый адрес не перенесён" in note and "Злодейская" in note for note in notes)


def test_migration_2125_marks_the_unproven_addresses_of_records_that_absorbed_another(
    fresh_url: str,  # noqa: F811
) -> None:
    """Contacts moved before the column existed cannot be told apart from the survivor's own: every unproven
    address of a record that absorbed another is marked (proven only in person); nothing else is."""
    from alembic import command

    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "2124_merged_contacts")
    engine = db._engine_for(fresh_url)
    at = utcnow()
    with engine.begin() as conn:
        for client_id, merged_into in ((1, None), (2, 1), (3, None)):
            conn.execute(
                text(
                    "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
                    "legal_hold, merged_into_id) VALUES (:id, 'Клиент', '', '', :at, :at, false, :merged)"
                ),
                {"id": client_id, "at": at, "merged": merged_into},
            )
        contacts = [
            (1, "email", "moved@example.ru", None),  # the survivor's, unproven: marked
            (1, "email", "proven@example.ru", at),  # proven: left alone
            (1, "phone", "+79130000001", None),  # a phone is never proven by a reply: left alone
            (3, "email", "own@example.ru", None),  # a record that absorbed nobody: left alone
        ]
        for client_id, kind, value, proven_at in contacts:
            conn.execute(
                text(
                    "INSERT INTO client_contacts (client_id, kind, value, value_key, created_at, proven_at, proof) "
                    "VALUES (:c, :k, :v, :v, :at, :p, :proof)"
                ),
                {
                    "c": client_id,
                    "k": kind,
                    "v": value,
                    "at": at,
                    "p": proven_at,
                    "proof": "reply" if proven_at else None,
                },
            )
    try:
        db.upgrade(settings)
        with session_scope(settings) as session:
            marked = {c.value for c in session.scalars(select(ClientContact)) if c.moved_at is not None}
            assert marked == {"moved@example.ru"}
            client = session.get_one(Client, 1)
            assert identity.prove(session, client, "moved@example.ru", Proof.reply, utcnow()) is None
        command.downgrade(db.alembic_config(settings), "2124_merged_contacts")
        db.upgrade(settings)
        with session_scope(settings) as session:
            assert len(session.scalars(select(ClientContact)).all()) == 4
    finally:
        db.dispose_engines()
