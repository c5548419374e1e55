"""One mailbox, one contact, whatever the case of the address (tryout finding U9, identity part).

RFC 5321 2.4: the domain is case-insensitive and "exploiting the case sensitivity of mailbox local-parts impedes
interoperability and is discouraged"; every provider a citizen uses delivers «Ivan@Mail.RU» and «ivan@mail.ru» to
one mailbox. README ("Security model"): an address is compared whatever the case of its letters, and proof of one
spelling is proof of the mailbox. Both databases throughout.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from mailservice import config, db
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.history.service import Outcome, request_history
from mailservice.inforequests import identity, service
from mailservice.inforequests.models import Client, ClientContact, MergeSuggestion, Proof, Request
from mailservice.intake.pipeline import Source, process_batch, process_raw
from mailservice.intake.routes import load_routes
from mailservice.mail.addresses import address_key, same_address
from mailservice.mail.parse import parse_message
from mailservice.mailings import subscribers
from mailservice.mailings.consent import parse_address
from mailservice.mailings.models import MailingList, Subscriber, Subscription, SubscriptionStatus
from mailservice.mailings.sender import send_campaign
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import actions
from mailservice.workgroup import groups
from mailservice.workgroup.service import WorkgroupError
from tests.console_support import drain
from tests.mailfactory import citizen_mail
from tests.servers import Sink
from tests.test_history import ask, history_mail
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_mailings import client_for, dkim_key, mail_settings, new_campaign, subscribe_over_http  # noqa: F401
from tests.waiting import run_within

# ----------------------------------------------------------------------------------------------------------------
# The key
# ----------------------------------------------------------------------------------------------------------------


def test_spellings_of_one_mailbox_share_one_key() -> None:
    assert address_key("Ivan@Mail.RU") == address_key("ivan@mail.ru") == "ivan@mail.ru"
    # A Unicode local part (RFC 6531) and an IDN domain written in punycode or in Unicode: one mailbox too.
    assert address_key("Иван@Пример.рф") == address_key("иван@xn--e1afmkfd.xn--p1ai") == "иван@пример.рф"
    assert address_key(" <Ivan@mail.ru> ") == "ivan@mail.ru"
    assert same_address("Ivan@Mail.RU", "ivan@mail.ru")
    assert not same_address("ivan@mail.ru", "ivan2@mail.ru") and not same_address("", "")


# ----------------------------------------------------------------------------------------------------------------
# Intake and identity
# ----------------------------------------------------------------------------------------------------------------


def _letter(settings: Settings, sender: str, subject: str) -> None:
    raw = citizen_mail(sender=sender, name="Иванов Иван", subject=subject, body=f"Прошу сообщить: {subject}.")
    process_raw(settings, raw, Source("smtp", envelope_from=sender), now=utcnow())


def _requests(settings: Settings) -> list[tuple[int, str | None]]:
    with session_scope(settings) as session:
        return [(r.client_id, r.reply_email) for r in session.scalars(select(Request).order_by(Request.id))]


def _email_contacts(settings: Settings, client_id: int) -> list[tuple[str, bool]]:
    with session_scope(settings) as session:
        rows = session.scalars(
            select(ClientContact).where(ClientContact.client_id == client_id, ClientContact.kind == "email")
        )
        return [(c.value, c.proven) for c in rows]


def test_a_letter_in_another_case_joins_the_client_and_its_proven_contact(settings: Settings) -> None:
    _letter(settings, "ivan@mail.ru", "Договоры аренды за 2025 год")
    [(client_id, _reply)] = _requests(settings)
    with session_scope(settings) as session:
        client = session.get_one(Client, client_id)
        assert identity.prove(session, client, "ivan@mail.ru", Proof.in_person, utcnow()) is not None
    _letter(settings, "Ivan@Mail.RU", "Договоры аренды за 2024 год")
    first, second = _requests(settings)
    assert second[0] == first[0] == client_id
    # The letter's own reply address is kept as the citizen wrote it; the contact stays one, and proven.
    assert second[1] == "Ivan@mail.ru"  # email-validator lower-cases the domain only
    assert _email_contacts(settings, client_id) == [("ivan@mail.ru", True)]
    with session_scope(settings) as session:
        assert session.get_one(Client, client_id).proven_email("IVAN@MAIL.RU")


def test_two_spellings_in_one_batch_make_one_client(settings: Settings) -> None:
    letters = [
        (citizen_mail(sender=sender, subject=f"Запрос № {n}", body=f"Прошу сообщить сведения № {n}."), sender)
        for n, sender in enumerate(("Petr@Mail.ru", "petr@mail.ru", "PETR@MAIL.RU"))
    ]
    process_batch(settings, [(raw, Source("smtp", envelope_from=sender)) for raw, sender in letters], now=utcnow())
    clients = {client_id for client_id, _reply in _requests(settings)}
    assert len(clients) == 1
    assert _email_contacts(settings, clients.pop()) == [("Petr@mail.ru", False)]


def test_the_database_refuses_a_second_spelling_of_a_contact(settings: Settings) -> None:
    with session_scope(settings) as session:
        one = Client(name="Первый")
        other = Client(name="Второй")
        one.contacts.append(ClientContact(kind="email", value="anna@example.ru"))
        session.add_all([one, other])
        session.flush()
        other_id = other.id
    with pytest.raises(IntegrityError), session_scope(settings) as session:
        session.add(ClientContact(client_id=other_id, kind="email", value="Anna@Example.RU"))
    with session_scope(settings) as session:
        found = identity.contact_of(session, "email", "ANNA@example.ru")
        assert found is not None and found.value == "anna@example.ru"
        assert service.find_client_by_email(session, "Anna@Example.ru") is not None


def test_staff_find_a_client_by_any_spelling_of_its_address(settings: Settings) -> None:
    with session_scope(settings) as session:
        client = Client(name="Клиент")
        client.contacts.append(ClientContact(kind="email", value="Иван.Петров@Пример.рф"))
        session.add(client)
    with session_scope(settings) as session:
        # SQLite's ILIKE folds ASCII only: a Cyrillic mailbox in capitals is found by its key.
        for typed in ("ИВАН.ПЕТРОВ@", "иван.петров@пример", "Пример.РФ"):
            found = actions.find_clients_page(session, typed)
            assert [c.name for c in found.items] == ["Клиент"], typed


def test_history_to_another_spelling_of_a_proven_address_and_not_of_an_unproven_one(settings: Settings) -> None:
    _letter(settings, "ivan@mail.ru", "Договоры аренды")
    _letter(settings, "olga@mail.ru", "Аренда участков")
    (ivan, _), (olga, _) = _requests(settings)
    now = utcnow()
    with session_scope(settings) as session:
        identity.prove(session, session.get_one(Client, ivan), "ivan@mail.ru", Proof.link, now)
    with session_scope(settings) as session:
        for address, expected in (("IVAN@Mail.ru", Outcome.link_sent), ("Olga@Mail.RU", Outcome.unproven)):
            client = service.find_client_by_email(session, address)
            assert client is not None and client.id == (ivan if expected is Outcome.link_sent else olga)
            outcome = request_history(session, settings, client=client, address=address, via="web", now=now)
            assert outcome is expected, address


def test_an_unknown_sender_is_told_once_per_interval_whatever_the_case(settings: Settings, sink: Sink) -> None:
    # README "Limits": a refused history request is answered once per interval per address; the spellings of one
    # mailbox must not multiply the letters a forger can send to it.
    load_routes()
    for n, spelling in enumerate(("Someone@example.org", "someone@example.org", "SOMEONE@EXAMPLE.ORG")):
        assert ask(settings, history_mail(spelling, body=f"Прошу историю моих обращений ({n})."), spelling) == (
            "history request: unknown"
        )
    drain(settings)
    told = [rcpts for _f, rcpts, _raw in sink.messages() if any(same_address(r, "someone@example.org") for r in rcpts)]
    assert len(told) == 1


def test_a_reply_to_or_a_second_author_in_another_case_is_the_sender_itself() -> None:
    # RFC 5322 3.6.2: several authors need a Sender; one mailbox written twice is one author. A Reply-To that is
    # From in other letters claims nothing (README "Security model": a differing Reply-To is recorded as claimed).
    raw = citizen_mail(sender="Ivan@Mail.ru", headers={"Reply-To": "ivan@mail.ru"})
    raw = raw.replace(b"From: ", b"From: ivan@mail.ru, ", 1)
    parsed = parse_message(raw)
    assert parsed.from_addr is not None and same_address(parsed.from_addr, "ivan@mail.ru")
    assert not [d for d in parsed.defects if "authors" in d], parsed.defects


def test_a_reply_to_in_another_case_is_not_recorded_as_claimed(settings: Settings) -> None:
    raw = citizen_mail(sender="Ivan@Mail.ru", headers={"Reply-To": "ivan@mail.ru"}, subject="Аренда участков")
    process_raw(settings, raw, Source("smtp", envelope_from="Ivan@Mail.ru"), now=utcnow())
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert (request.reply_email, request.reply_to_claimed) == ("Ivan@mail.ru", None)


def test_a_working_group_member_is_one_person_whatever_the_case(settings: Settings) -> None:
    now = utcnow()
    with session_scope(settings) as session:
        group = groups.create_group(
            session, slug="wg", title="Рабочая группа", profile="novosibirsk", overrides={}, now=now, actor="test"
        )
        person = groups.add_member(
            session, settings, group, name="Петров Пётр Петрович", email="Petrov@Example.ru", role="member", now=now,
            actor="test", verified=True,
        )  # fmt: skip
        with pytest.raises(WorkgroupError, match="уже есть в составе"):
            groups.add_member(
                session, settings, group, name="Петров П. П.", email="petrov@example.ru", role="member", now=now,
                actor="test",
            )  # fmt: skip
        assert groups.find_member(session, group, "PETROV@example.ru") is person
        groups.remove_member(session, person, now=now, actor="test")
        # A returning person keeps their row, whatever the case the address is typed in now.
        back = groups.add_member(
            session, settings, group, name="Петров Пётр Петрович", email="PETROV@EXAMPLE.RU", role="member", now=now,
            actor="test", verified=True,
        )  # fmt: skip
        assert back.id == person.id
        assert len(groups.members_of(session, group, include_inactive=True)) == 1


# ----------------------------------------------------------------------------------------------------------------
# Mailings (seed 004 p. 12-13: consent, and its withdrawal, is checked at the moment of sending)
# ----------------------------------------------------------------------------------------------------------------


def test_two_spellings_subscribe_one_subscriber(mail_settings: Settings) -> None:  # noqa: F811
    http = client_for(mail_settings)
    for address in ("Maria@Example.org", "maria@example.org", "MARIA@EXAMPLE.ORG"):
        subscribe_over_http(http, address)
    with session_scope(mail_settings) as session:
        assert [s.email for s in session.scalars(select(Subscriber))] == ["Maria@example.org"]
        assert len(session.scalars(select(Subscription)).all()) == 1


def _legacy_spellings(settings: Settings) -> list[tuple[int, str]]:
    """Two subscriber rows of one mailbox, as an earlier version made them from two spellings, both active on the
    news list; «Ivan@» is also on the tenders list, so its withdrawal from the news alone does not suppress the
    address, and «ivan@» on the events list. Returns the subscriptions (id, nonce): Ivan@ news, Ivan@ tenders,
    ivan@ news, ivan@ events."""
    now = utcnow()
    made: list[tuple[int, str]] = []
    with session_scope(settings) as session:
        news = subscribers.default_list(session)
        assert news.slug == "news"
        tenders = MailingList(slug="tenders", title="Торги")
        events = MailingList(slug="events", title="Мероприятия")
        session.add_all([tenders, events])
        session.flush()
        for spelling, lists in (("Ivan@example.org", (news, tenders)), ("ivan@example.org", (news, events))):
            address = parse_address(spelling)
            assert address is not None
            person = Subscriber(email=address.normalized, email_ascii=address.ascii, email_hash=address.hash)
            session.add(person)
            session.flush()
            for mailing_list in lists:
                row = Subscription(
                    subscriber_id=person.id,
                    list_id=mailing_list.id,
                    nonce=subscribers.new_nonce(),
                    status=SubscriptionStatus.active,
                    confirmed_at=now,
                )
                session.add(row)
                session.flush()
                made.append((row.id, row.nonce))
    return made


def _states(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return [s.status for s in session.scalars(select(Subscription).order_by(Subscription.id))]


def test_unsubscribing_in_one_spelling_stops_mail_to_the_other(mail_settings: Settings, sink: Sink) -> None:  # noqa: F811
    (first_id, first_nonce), *_others = _legacy_spellings(mail_settings)
    token = subscribers.unsubscribe_token(mail_settings, first_id, first_nonce)
    http = client_for(mail_settings)
    assert http.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    withdrawn, active = SubscriptionStatus.withdrawn, SubscriptionStatus.active
    assert _states(mail_settings) == [withdrawn, active, withdrawn, active]
    sink.clear()
    summary = run_within(send_campaign(mail_settings, new_campaign(mail_settings)), 60, "the campaign")
    assert summary.status == "done"
    assert not [rcpts for _f, rcpts, _raw in sink.messages() if any(same_address(r, "ivan@example.org") for r in rcpts)]


def test_unsubscribing_by_e_mail_in_a_third_spelling_withdraws_every_list(mail_settings: Settings) -> None:  # noqa: F811
    _legacy_spellings(mail_settings)
    load_routes()
    raw = citizen_mail(sender="IVAN@example.org", subject="Отписаться", body="")
    result = process_raw(mail_settings, raw, Source("smtp", envelope_from="IVAN@example.org"))
    assert result.reason.startswith("mailing: withdrawal requested by e-mail (3 lists)"), result.reason
    assert set(_states(mail_settings)) == {SubscriptionStatus.withdrawn}
    with session_scope(mail_settings) as session:
        assert subscribers.is_suppressed(session, parse_address("ivan@example.org").hash)  # type: ignore[union-attr]
        notices = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mailing_withdrawn")).all()
        assert len(notices) == 1


# ----------------------------------------------------------------------------------------------------------------
# The migration of existing spellings (2001_contact_case)
# ----------------------------------------------------------------------------------------------------------------


JAN10 = "2026-01-10 10:00:00+00"
JAN20 = "2026-01-20 10:00:00+00"
FEB01 = "2026-02-01 09:30:00+00"
MAR01 = "2026-03-01 12:00:00+00"


def insert_old_contacts(
    url: str,
    client_ids: tuple[int, ...],
    contacts: list[tuple[int, int, str, str, str | None, str | None]],
    *,
    keyed: bool = False,
) -> None:
    """Clients and their contacts (id, client, value, created, proven, proof) as an older schema holds them;
    ``keyed``: with ``value_key`` as typed (the schema of 2001_contact_case, before a key for phones)."""
    with db._engine_for(url).begin() as conn:
        for cid in client_ids:
            conn.execute(
                text(
                    "INSERT INTO clients (id, name, organisation, postal_address, created_at, last_interaction_at, "
                    "legal_hold) VALUES (:id, :name, '', '', :at, :at, false)"
                ),
                {"id": cid, "name": f"Клиент {cid}", "at": JAN10},
            )
        key = ", value_key" if keyed else ""
        for cid, client_id, value, created, proven, proof in contacts:
            conn.execute(
                text(
                    f"INSERT INTO client_contacts (id, client_id, kind, value{key}, created_at, proven_at, proof) "
                    f"VALUES (:id, :client, :kind, :value{', :value' if keyed else ''}, :created, :proven, :proof)"
                ),
                {
                    "id": cid,
                    "client": client_id,
                    "kind": "email" if "@" in value else "phone",
                    "value": value,
                    "created": created,
                    "proven": proven,
                    "proof": proof,
                },
            )


def test_migration_merges_the_spellings_of_one_address(fresh_url: str) -> None:  # noqa: F811
    settings = config.Settings(database_url=fresh_url)
    db.upgrade(settings, "1905_reply_email_lower")  # the schema before the contact key
    contacts = [
        # One client, two spellings: the proven one stays, created when the first was.
        (1, 1, "Ivan@Mail.RU", JAN10, None, None),
        (2, 1, "ivan@mail.ru", JAN20, FEB01, "reply"),
        # A Unicode local part, the domain once in punycode: one mailbox of client 1 too, neither proven.
        (3, 1, "Иван@пример.рф", JAN20, None, None),
        (4, 1, "иван@xn--e1afmkfd.xn--p1ai", JAN10, None, None),
        # Two clients: the proven contact stays with its client, the other client keeps its record.
        (5, 2, "Victim@example.ru", JAN10, None, None),
        (6, 3, "victim@example.ru", JAN20, MAR01, "in_person"),
        (7, 2, "other@example.ru", JAN10, None, None),
        (8, 3, "+7 913 555-44-33", JAN10, None, None),
    ]
    insert_old_contacts(fresh_url, (1, 2, 3), contacts)
    db.upgrade(settings)
    with session_scope(settings) as session:
        rows = {c.id: c for c in session.scalars(select(ClientContact))}
        assert sorted(rows) == [2, 4, 6, 7, 8]
        ivan = rows[2]
        assert (ivan.client_id, ivan.value, ivan.proof) == (1, "ivan@mail.ru", "reply")
        assert ivan.proven_at == dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)
        assert ivan.created_at == dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.UTC)
        assert (rows[4].client_id, rows[4].proven, rows[4].created_at) == (
            1, False, dt.datetime(2026, 1, 10, 10, 0, tzinfo=dt.UTC),
        )  # fmt: skip
        assert (rows[6].client_id, rows[6].value, rows[6].proof) == (3, "victim@example.ru", "in_person")
        # Nobody's records were merged: client 2 is still there, with its other address, and staff are asked.
        assert session.get_one(Client, 2).merged_into_id is None
        assert rows[7].client_id == 2
        [suggestion] = session.scalars(select(MergeSuggestion)).all()
        assert (suggestion.client_id, suggestion.other_id, suggestion.status) == (2, 3, "open")
        assert "Victim@example.ru" in suggestion.reason and "проверки личности" in suggestion.reason
        # The look-ups and the constraint use the key from now on.
        assert identity.contact_of(session, "email", "IVAN@mail.ru") is ivan
        assert identity.contact_of(session, "email", "Иван@Пример.РФ") is rows[4]
    with pytest.raises(IntegrityError), session_scope(settings) as session:
        session.add(ClientContact(client_id=2, kind="email", value="VICTIM@example.ru"))
    db.dispose_engines()
