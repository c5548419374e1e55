"""The proven-address rule itself, function by function, on both databases (README, "Security model": an address is
a client's only when proven by a reply, a signed link or a check in person; a match never moves an address, it
becomes a suggested merge staff decide).

The console and attack tests (tests/test_identity.py, tests/security/test_identity_*.py) go through the pages; these
call :mod:`mailservice.inforequests.identity` directly and read back every row it writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.history.archive import is_client_visible
from mailservice.inforequests import identity
from mailservice.inforequests.identity import IdentityError
from mailservice.inforequests.models import Client, ClientContact, Event, IdentityCheck, MergeSuggestion, Proof
from tests import documented
from tests.conftest import make_env, reset_caches

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
LATER = AT + dt.timedelta(days=3)
PHONE = "+79135554433"


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Settings]:
    """Both backends, nothing else."""
    yield make_env(monkeypatch, tmp_path, db_url)
    reset_caches()


def _client(session: Session, name: str, *contacts: tuple[str, str]) -> Client:
    client = Client(name=name)
    for kind, value in contacts:
        client.contacts.append(ClientContact(kind=kind, value=value, created_at=AT))
    session.add(client)
    session.flush()
    return client


def _contacts(session: Session, client: Client) -> dict[tuple[str, str], tuple[dt.datetime | None, str | None]]:
    rows = session.scalars(select(ClientContact).where(ClientContact.client_id == client.id))
    return {(c.kind, c.value): (c.proven_at, c.proof) for c in rows}


def _notes(session: Session, client: Client) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.client_id == client.id).order_by(Event.id)))


def test_contact_of_finds_the_row_of_that_kind_and_value(db: Settings) -> None:
    with session_scope(db) as session:
        phone_owner = _client(session, "Телефон", ("phone", "same@example.ru"), ("phone", PHONE))
        owner = _client(session, "Адрес", ("email", "same@example.ru"), ("email", "other@example.ru"))
        found = identity.contact_of(session, "email", "same@example.ru")
        assert found is not None and (found.client_id, found.kind) == (owner.id, "email")
        phone = identity.contact_of(session, "phone", PHONE)
        assert phone is not None and phone.client_id == phone_owner.id
        assert identity.contact_of(session, "email", "nobody@example.ru") is None


def test_a_reply_proves_a_new_address_with_an_internal_note(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Иванов", ("email", "old@example.ru"), ("email", "wrote@example.ru"))
        contact = identity.prove(session, client, "new@example.ru", Proof.reply, AT)
        session.flush()
        assert contact is not None and contact.client_id == client.id
        assert _contacts(session, client) == {
            ("email", "old@example.ru"): (None, None),
            ("email", "wrote@example.ru"): (None, None),
            ("email", "new@example.ru"): (AT, "reply"),
        }
        assert contact.created_at == AT
        (note,) = _notes(session, client)
        assert (note.at, note.kind, note.actor) == (AT, "note", "")
        assert note.comment == "Адрес new@example.ru подтверждён: ответ на наше письмо"
        assert note.data == {"internal": True, "proof": "reply"}
        assert not is_client_visible(note)  # staff see it; the client's history leaves it out


def test_proving_an_address_the_client_wrote_from_proves_that_row_only(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Иванов", ("phone", "wrote@example.ru"), ("email", "a@example.ru"))
        client.contacts.append(ClientContact(kind="email", value="wrote@example.ru", created_at=AT))
        session.flush()
        identity.prove(session, client, "wrote@example.ru", Proof.link, AT, actor="clerk@dizo.test")
        session.flush()
        assert _contacts(session, client) == {
            ("phone", "wrote@example.ru"): (None, None),
            ("email", "a@example.ru"): (None, None),
            ("email", "wrote@example.ru"): (AT, "link"),
        }
        (note,) = _notes(session, client)
        assert note.actor == "clerk@dizo.test"
        assert note.comment == "Адрес wrote@example.ru подтверждён: переход по подписанной ссылке"


def test_a_proof_is_kept_and_only_a_check_in_person_replaces_it(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Иванов")
        identity.prove(session, client, "a@example.ru", Proof.reply, AT)
        identity.prove(session, client, "a@example.ru", Proof.link, LATER)  # already proven: nothing changes
        session.flush()
        assert _contacts(session, client) == {("email", "a@example.ru"): (AT, "reply")}
        assert len(_notes(session, client)) == 1
        identity.prove(session, client, "a@example.ru", Proof.in_person, LATER, actor="clerk@dizo.test")
        session.flush()
        assert _contacts(session, client) == {("email", "a@example.ru"): (LATER, "in_person")}
        notes = _notes(session, client)
        assert [n.comment for n in notes][-1] == "Адрес a@example.ru подтверждён: проверка документа лично"
        assert notes[-1].data == {"internal": True, "proof": "in_person"}


def test_another_clients_address_is_not_moved_but_offered_as_a_merge(db: Settings) -> None:
    with session_scope(db) as session:
        holder = _client(session, "Петров", ("phone", "held@example.ru"), ("email", "held@example.ru"))
        claimant = _client(session, "Петров П.")
        assert identity.prove(session, claimant, "held@example.ru", Proof.reply, AT) is None
        session.flush()
        assert _contacts(session, claimant) == {}
        assert _contacts(session, holder)[("email", "held@example.ru")] == (None, None)
        suggestion = session.scalars(select(MergeSuggestion)).one()
        assert (suggestion.client_id, suggestion.other_id, suggestion.status) == (claimant.id, holder.id, "open")
        assert suggestion.reason == (
            f"Адрес held@example.ru подтверждён клиентом № {claimant.id} (ответ на наше письмо), "
            f"но записан за клиентом № {holder.id}"
        )
        assert suggestion.created_at == AT
        assert _notes(session, claimant) == []


def test_a_reply_proves_only_an_address_our_message_went_to(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Иванов")
        identity.prove_by_reply(session, client, "stranger@example.ru", ["a@example.ru", "b@example.ru"], AT)
        session.flush()
        assert _contacts(session, client) == {}
        identity.prove_by_reply(session, client, "b@example.ru", ["a@example.ru", " b@example.ru "], AT)
        session.flush()
        assert _contacts(session, client) == {("email", "b@example.ru"): (AT, "reply")}


def test_a_merge_is_offered_once_per_pair_in_either_direction(db: Settings) -> None:
    with session_scope(db) as session:
        a, b, c, d = (_client(session, name) for name in ("А", "Б", "В", "Г"))
        assert identity.suggest_merge(session, a, a, "сам с собой", AT) is None
        # Suggestions that share one side with the pair (a, b) do not stand for it.
        for x, y in ((a, c), (c, b), (b, d), (d, a)):
            assert identity.suggest_merge(session, x, y, "другая пара", AT) is not None
        session.flush()
        made = identity.suggest_merge(session, a, b, "совпал телефон", AT)
        assert made is not None
        session.flush()
        assert identity.suggest_merge(session, a, b, "ещё раз", LATER) is None
        assert identity.suggest_merge(session, b, a, "в обратную сторону", LATER) is None
        session.flush()
        row = session.scalars(select(MergeSuggestion).where(MergeSuggestion.client_id == a.id)).all()
        assert {(s.other_id, s.reason, s.created_at, s.status) for s in row} == {
            (c.id, "другая пара", AT, "open"),
            (b.id, "совпал телефон", AT, "open"),
        }
        assert [(s.client_id, s.other_id) for s in identity.open_suggestions(session, b.id)] == [
            (c.id, b.id),
            (b.id, d.id),
            (a.id, b.id),
        ]


def test_a_new_record_not_yet_saved_gets_its_suggestion(db: Settings) -> None:
    with session_scope(db) as session:
        older = _client(session, "Орлов")
        newer = Client(name="Орлов П.")
        session.add(newer)
        unsaved = Client(name="Орлов Пётр")
        session.add(unsaved)
        assert identity.suggest_merge(session, unsaved, unsaved, "сам с собой", AT) is None
        assert identity.suggest_merge(session, newer, older, "совпал телефон", AT) is not None
        assert identity.suggest_merge(session, unsaved, newer, "совпало имя", AT) is not None
        session.flush()
        assert len(identity.open_suggestions(session, newer.id)) == 2


def test_open_suggestions_are_the_clients_undecided_ones_in_order(db: Settings) -> None:
    with session_scope(db) as session:
        a, b, c, d = (_client(session, name) for name in ("А", "Б", "В", "Г"))
        first = identity.suggest_merge(session, a, b, "1", AT)
        decided = identity.suggest_merge(session, c, a, "2", AT)
        third = identity.suggest_merge(session, d, a, "3", AT)
        identity.suggest_merge(session, b, c, "чужая", AT)
        assert first is not None and decided is not None and third is not None
        decided.status = "rejected"
        session.flush()
        assert [s.id for s in identity.open_suggestions(session, a.id)] == [first.id, third.id]


def test_a_check_in_person_records_the_document_and_proves_what_was_given(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Смирнова", ("phone", "+79130000000"), ("phone", PHONE))
        check = identity.record_check(
            session,
            client,
            document="passport_rf",
            checked_by="  clerk@dizo.test ",
            now=AT,
            email="smirnova@example.ru",
            phone=PHONE,
            note="  по записи на приём ",
        )
        session.flush()
        stored = session.get(IdentityCheck, check.id)
        assert stored is not None
        assert (stored.client_id, stored.checked_at, stored.checked_by, stored.document) == (
            client.id,
            AT,
            "clerk@dizo.test",
            "passport_rf",
        )
        assert (stored.email, stored.phone, stored.note) == ("smirnova@example.ru", PHONE, "по записи на приём")
        assert _contacts(session, client) == {
            ("phone", "+79130000000"): (None, None),
            ("phone", PHONE): (AT, "in_person"),
            ("email", "smirnova@example.ru"): (AT, "in_person"),
        }
        check_note, proof_note = _notes(session, client)
        assert check_note.comment == (
            f"Личность проверена лично: паспорт гражданина Российской Федерации; smirnova@example.ru, {PHONE}"
        )
        assert (check_note.at, check_note.kind, check_note.actor) == (AT, "note", "clerk@dizo.test")
        assert check_note.data == {"internal": True, "check": True} and not is_client_visible(check_note)
        assert proof_note.actor == "clerk@dizo.test"


def test_a_check_gives_a_new_phone_and_says_when_nothing_was_given(db: Settings) -> None:
    with session_scope(db) as session:
        client = _client(session, "Смирнова")
        identity.record_check(session, client, document="military_id", checked_by="clerk", now=AT, phone=PHONE)
        identity.record_check(session, client, document="refugee_id", checked_by="clerk", now=LATER)
        session.flush()
        phone = session.scalars(select(ClientContact)).one()
        assert (phone.kind, phone.value, phone.created_at, phone.proven_at, phone.proof) == (
            "phone",
            PHONE,
            AT,
            AT,
            "in_person",
        )
        assert [n.comment for n in _notes(session, client)] == [
            f"Личность проверена лично: военный билет; {PHONE}",
            "Личность проверена лично: удостоверение беженца; контакты не указаны",
        ]
        empty = session.scalars(select(IdentityCheck).where(IdentityCheck.document == "refugee_id")).one()
        assert (empty.email, empty.phone, empty.note) == (None, None, "")


def test_a_long_checker_or_note_is_cut_not_refused(db: Settings) -> None:
    # The checker is whatever the caller passes (an account's address up to 320 characters); PostgreSQL refused the
    # whole check when it was longer than the notes' actor column.
    chars = IdentityCheck.__table__.c.checked_by.type.length  # type: ignore[attr-defined]
    actor_chars = Event.__table__.c.actor.type.length  # type: ignore[attr-defined]
    with session_scope(db) as session:
        client = _client(session, "Смирнова")
        identity.record_check(
            session, client, document="passport_rf", checked_by="к" * 400, now=AT, email="s@example.ru", note="н" * 3000
        )
    with session_scope(db) as session:
        check = session.scalars(select(IdentityCheck)).one()
        assert (check.checked_by, check.note) == ("к" * chars, "н" * documented.IDENTITY_NOTE_CHARS)
        assert session.scalars(select(Event.actor)).all() == ["к" * actor_chars] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"document": "library_card", "checked_by": "clerk"}, "Выберите документ из списка"),
        ({"document": "passport_rf", "checked_by": "   "}, "Укажите, кто проверил документ"),
    ],
)
def test_a_check_refuses_an_unknown_document_or_no_checker(db: Settings, args: dict[str, str], message: str) -> None:
    with session_scope(db) as session:
        client = _client(session, "Смирнова")
        with pytest.raises(IdentityError) as refused:
            identity.record_check(session, client, now=AT, **args)  # type: ignore[arg-type]
        assert str(refused.value) == message
        assert session.scalars(select(IdentityCheck)).all() == []


@pytest.mark.parametrize("state", ["merged", "anonymised"])
def test_a_check_goes_only_to_a_live_record(db: Settings, state: str) -> None:
    with session_scope(db) as session:
        live = _client(session, "Смирнова")
        client = _client(session, "Смирнова М.")
        if state == "merged":
            client.merged_into_id = live.id
        else:
            client.anonymised_at = AT
        with pytest.raises(IdentityError) as refused:
            identity.record_check(session, client, document="passport_rf", checked_by="clerk", now=LATER)
        assert str(refused.value) == (
            "Запись объединена с другой или обезличена: проверка записывается в действующую запись"
        )


@pytest.mark.parametrize(
    ("kind", "given", "word"),
    [("email", {"email": "held@example.ru"}, "Адрес"), ("phone", {"phone": PHONE}, "Телефон")],
)
def test_a_check_never_takes_another_clients_contact(db: Settings, kind: str, given: dict[str, str], word: str) -> None:
    value = next(iter(given.values()))
    with session_scope(db) as session:
        holder = _client(session, "Петров", (kind, value))
        client = _client(session, "Смирнова")
        with pytest.raises(IdentityError) as refused:
            identity.record_check(session, client, document="passport_rf", checked_by="clerk", now=AT, **given)
        assert str(refused.value) == f"{word} {value} записан за клиентом № {holder.id}: сначала объедините записи"
        assert _contacts(session, client) == {}
        # The holder's own check with that contact is fine.
        identity.record_check(session, holder, document="passport_rf", checked_by="clerk", now=AT, **given)
        session.flush()
        assert _contacts(session, holder) == {(kind, value): (AT, "in_person")}
