"""The history's rules one at a time, at the service with a given ``now``: the documented limits at their edges
(one export per 6 hours counted from the newest, a refusal letter at most once per 6 hours per address, a link
valid 7 days), what each letter and note says, and who an export belongs to after merges and anonymisation."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.history import service
from mailservice.history.models import HistoryAsk, HistoryExport
from mailservice.inforequests import identity
from mailservice.inforequests.models import Client, ClientContact, Event, Proof
from mailservice.inforequests.service import move_contacts
from mailservice.outbox import OutboxMessage
from mailservice.tokens import Purpose, sign_timed
from tests import documented
from tests.console_support import link_in, parsed, text_of

A = "ivanov@example.ru"
A2 = "ivanov.home@example.ru"
B = "petrova@example.ru"
STRANGER = "someone@example.org"
MINUTE = dt.timedelta(minutes=1)
PER = documented.HISTORY_ONE_EXPORT_PER
VALID = documented.HISTORY_LINK_VALID


def _client(session: Session, name: str, *addresses: tuple[str, bool]) -> Client:
    """A client with e-mail contacts, each proven (by a reply) or not."""
    client = Client(name=name)
    for address, proven in addresses:
        contact = ClientContact(kind="email", value=address)
        if proven:
            contact.proven_at, contact.proof = utcnow(), "reply"
        client.contacts.append(contact)
    session.add(client)
    session.flush()
    return client


def _letters(session: Session, address: str) -> list[OutboxMessage]:
    return list(
        session.scalars(select(OutboxMessage).where(OutboxMessage.recipients == address).order_by(OutboxMessage.id))
    )


def _ask(
    session: Session, settings: Settings, client: Client | None, address: str, now: dt.datetime, *, via: str = "email"
) -> service.Outcome:
    return service.request_history(
        session, settings, client=client, address=address, via=via, now=now, notify_refusals=via == "email"
    )


def _local(moment: dt.datetime, settings: Settings) -> str:
    return moment.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")


def test_one_export_per_six_hours_counted_from_the_newest(settings: Settings) -> None:
    t0 = utcnow()
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, True))
        assert _ask(session, settings, client, A, t0) is service.Outcome.link_sent
        assert _ask(session, settings, client, A, t0 + PER - MINUTE) is service.Outcome.limited
        assert _ask(session, settings, client, A, t0 + PER) is service.Outcome.link_sent  # six hours on: a new one
        # The next six hours count from that second export, not from the first.
        assert _ask(session, settings, client, A, t0 + 2 * PER - MINUTE) is service.Outcome.limited
        assert _ask(session, settings, client, A, t0 + 2 * PER) is service.Outcome.link_sent
        exports = session.scalars(select(HistoryExport).order_by(HistoryExport.id)).all()
        assert [e.created_at for e in exports] == [t0, t0 + PER, t0 + 2 * PER]


def test_the_link_letter_and_the_limited_letter_give_their_dates(settings: Settings) -> None:
    t0 = utcnow()
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, True))
        _ask(session, settings, client, A, t0)
        _ask(session, settings, client, A, t0 + dt.timedelta(hours=1))
        link, limited = _letters(session, A)
        export = session.scalars(select(HistoryExport)).one()
        assert (export.address, export.via, export.status) == (A, "email", "ready")
        assert export.expires_at == t0 + VALID
        nonce_chars = HistoryExport.__table__.c.nonce.type.length  # type: ignore[attr-defined]
        assert 16 <= len(export.nonce) <= nonce_chars  # a random nonce, not a guessable number, that fits its column
        # The link letter is recorded against its export: retention empties such letters after the term (each
        # leads to one person's history).
        assert (link.ref_type, link.ref_id) == ("history_export", export.id)
        link_mail, limited_mail = parsed(link.raw), parsed(limited.raw)
        assert link_mail["Subject"] == "Ваша история взаимодействия с департаментом"
        assert limited_mail["Subject"] == "История взаимодействия"
        token = link_in(link_mail, "/history/download/").removeprefix("/history/download/")
        assert f"{settings.public_url}/history/download/{token}" in text_of(link_mail)
        assert service.open_download(session, settings, token, t0) is export
        assert f"Ссылка действует до {_local(t0 + VALID, settings)}" in text_of(link_mail)
        assert "Иванов Иван" in str(link_mail["To"]) and "Здравствуйте, Иванов Иван!" in text_of(link_mail)
        assert f"Новый запрос можно направить после {_local(t0 + PER, settings)}" in text_of(limited_mail)
        assert "/history/" not in text_of(limited_mail)
        # RFC 3834: answers to a request are auto-replied, so that no responder answers them in turn.
        assert link_mail["Auto-Submitted"] == limited_mail["Auto-Submitted"] == "auto-replied"
        # Each letter is in the client's timeline as a message out.
        events = session.scalars(select(Event).where(Event.client_id == client.id).order_by(Event.id)).all()
        assert [(e.kind, e.direction, e.channel, e.outbox_id, e.at) for e in events] == [
            ("message_out", "out", "email", link.id, t0),
            ("message_out", "out", "email", limited.id, t0 + dt.timedelta(hours=1)),
        ]
        assert [e.comment for e in events] == [link.subject, limited.subject]


def test_a_refusal_letter_goes_at_most_once_per_six_hours_to_each_address(settings: Settings) -> None:
    with session_scope(settings) as session:
        assert _ask(session, settings, None, STRANGER, utcnow()) is service.Outcome.unknown
        [first] = _letters(session, STRANGER)
        told = first.created_at
        assert _ask(session, settings, None, STRANGER, told + PER - MINUTE) is service.Outcome.unknown
        assert len(_letters(session, STRANGER)) == 1
        # Another address is told all the same: the limit is per address.
        assert _ask(session, settings, None, B, told + MINUTE) is service.Outcome.unknown
        assert len(_letters(session, B)) == 1
        assert _ask(session, settings, None, STRANGER, told + PER) is service.Outcome.unknown
        assert len(_letters(session, STRANGER)) == 2
        mail = parsed(first.raw)
        assert mail["Subject"] == "История взаимодействия"
        assert str(mail["To"]) == STRANGER  # no name: the address belongs to no record
        assert "не связано ни одного обращения" in text_of(mail)
        assert mail["Auto-Submitted"] == "auto-replied"
        assert session.scalar(select(Event.id).limit(1)) is None  # a stranger has no timeline


def test_an_unproven_address_is_told_how_to_prove_it_and_staff_where_to_send(settings: Settings) -> None:
    A3 = "ivanov.work@example.ru"
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, True), (A3, True), (A2, False))
        t0 = utcnow()
        assert _ask(session, settings, client, A2, t0, via="web") is service.Outcome.unproven
        assert _letters(session, A2) == []  # the web form mails nobody
        assert _ask(session, settings, client, A2, t0 + MINUTE) is service.Outcome.unproven
        assert _ask(session, settings, client, A2, t0 + 2 * MINUTE) is service.Outcome.unproven
        [letter] = _letters(session, A2)  # the e-mail request is answered once per interval
        assert (letter.ref_type, letter.ref_id) == ("history_proof", client.id)  # answering it proves the address
        mail = parsed(letter.raw)
        assert mail["Subject"] == "История взаимодействия: подтвердите адрес"
        assert "ответьте на это письмо" in text_of(mail) and "Иванов" not in text_of(mail) + str(mail["To"])
        assert str(mail["To"]) == A2  # not even another name: the letter learns nothing of the record
        assert _letters(session, A) == _letters(session, A3) == [] and session.scalar(select(HistoryExport.id)) is None
        notes = session.scalars(
            select(Event).where(Event.client_id == client.id, Event.kind == "note").order_by(Event.id)
        ).all()
        assert [n.data for n in notes] == [{"internal": True, "history_refused": A2}] * 3
        assert [n.at for n in notes] == [t0, t0 + MINUTE, t0 + 2 * MINUTE]
        for note, via in zip(
            notes, ("через форму на сайте", "по электронной почте", "по электронной почте"), strict=True
        ):
            assert f"Запрошена история взаимодействия ({via}) на адрес {A2}" in note.comment
            assert f"Подтверждённые адреса клиента: {A}, {A3}." in note.comment
            assert "распечатайте" not in note.comment


def test_staff_are_told_to_post_the_history_of_a_client_with_no_proven_address(settings: Settings) -> None:
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A2, False))
        assert _ask(session, settings, client, A2, utcnow(), via="web") is service.Outcome.unproven
        [note] = session.scalars(select(Event).where(Event.client_id == client.id, Event.kind == "note")).all()
        assert note.comment.endswith(
            "по электронной почте история не отправлена. У клиента нет подтверждённого адреса: распечатайте историю "
            "и направьте её почтой или проверьте личность клиента при визите."
        )
        assert "Подтверждённые адреса" not in note.comment


def test_an_anonymised_client_has_no_history_to_send(settings: Settings) -> None:
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, True))
        client.anonymised_at = utcnow()
        assert _ask(session, settings, client, A, utcnow()) is service.Outcome.unknown
        assert session.scalar(select(HistoryExport.id)) is None


def _export(session: Session, settings: Settings, client: Client, address: str, now: dt.datetime) -> HistoryExport:
    assert _ask(session, settings, client, address, now) is service.Outcome.link_sent
    export = service.latest_export(session, client.id)
    assert export is not None
    return export


def test_a_download_link_opens_for_seven_days(settings: Settings) -> None:
    t0 = utcnow()
    with session_scope(settings) as session:
        export = _export(session, settings, _client(session, "Иванов Иван", (A, True)), A, t0)
        token = service.download_token(settings, export)
        assert service.open_download(session, settings, token, t0 + VALID - MINUTE) is export
        with pytest.raises(service.HistoryLinkError) as expired:
            service.open_download(session, settings, token, t0 + VALID)
        assert expired.value.kind == "expired"
        export.status = "revoked"
        with pytest.raises(service.HistoryLinkError) as revoked:
            service.open_download(session, settings, token, t0)
        assert revoked.value.kind == "invalid"


def test_a_broken_or_foreign_link_is_invalid_and_an_old_one_expired(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(settings) as session:
        export = _export(session, settings, _client(session, "Иванов Иван", (A, True)), A, utcnow())
        good = service.download_token(settings, export)
        flipped = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
        for token in (flipped, "garbage", service.verify_token(settings, export)):  # the last: another purpose
            with pytest.raises(service.HistoryLinkError) as refused:
                service.open_download(session, settings, token, utcnow())
            assert refused.value.kind == "invalid", token
        # Signed more than seven days ago (the link's own term, whatever the export's).
        monkeypatch.setattr(
            TimestampSigner, "get_timestamp", lambda self: int(time.time()) - int(VALID.total_seconds()) - 60
        )
        old = service.download_token(settings, export)
        monkeypatch.undo()
        with pytest.raises(service.HistoryLinkError) as expired:
            service.open_download(session, settings, old, utcnow())
        assert expired.value.kind == "expired"


@pytest.mark.parametrize(
    "payload",
    [{"x": "1", "n": "0"}, {"x": 1}, {"n": "0"}, {"x": 1, "n": 0}, [1, "0"], 1],
    ids=["id as text", "no nonce", "no id", "nonce as number", "a list", "a number"],
)
def test_a_signed_link_of_another_shape_opens_nothing(settings: Settings, payload: object) -> None:
    with session_scope(settings) as session:
        export = _export(session, settings, _client(session, "Иванов Иван", (A, True)), A, utcnow())
        real = {"x": export.id, "n": export.nonce}
        if isinstance(payload, dict):  # the export's own values where the shape is right
            payload = {k: real[k] if type(v) is type(real[k]) else v for k, v in payload.items()}
        token = sign_timed(settings, Purpose.history_download, payload)
        with pytest.raises(service.HistoryLinkError) as refused:
            service.open_download(session, settings, token, utcnow())
        assert refused.value.kind == "invalid"


def test_a_download_follows_merges_and_stops_at_anonymisation(settings: Settings) -> None:
    with session_scope(settings) as session:
        first = _client(session, "Иванов Иван", (A, True))
        export = _export(session, settings, first, A, utcnow())
        second, third = _client(session, "Иванов И."), _client(session, "Иван Иванов")
        first.merged_into_id, second.merged_into_id = second.id, third.id
        token = service.download_token(settings, export)
        assert service.owner(session, export) is third
        # The address is not the survivor's: the link opens nothing (a merge made the record another's).
        with pytest.raises(service.HistoryLinkError) as elsewhere:
            service.open_download(session, settings, token, utcnow())
        assert elsewhere.value.kind == "invalid"
        # Moved there by the merge, it is proven only in person; then the link opens the survivor's history.
        move_contacts(first.contacts, third, utcnow())
        session.flush()
        with pytest.raises(service.HistoryLinkError):
            service.open_download(session, settings, token, utcnow())
        identity.prove(session, third, A, Proof.in_person, utcnow(), actor="op")
        assert service.open_download(session, settings, token, utcnow()) is export
        # Records merged into each other (damaged data) end the walk instead of looping.
        third.merged_into_id = first.id
        assert service.owner(session, export) in (first, second, third)
        third.merged_into_id = None
        third.anonymised_at = utcnow()
        assert service.owner(session, export) is None
        with pytest.raises(service.HistoryLinkError) as refused:
            service.open_download(session, settings, token, utcnow())
        assert refused.value.kind == "invalid"


def _legacy(session: Session, client: Client, address: str, now: dt.datetime) -> HistoryExport:
    """An export of the old confirmation step (awaiting a click on its link)."""
    export = HistoryExport(
        client_id=client.id, created_at=now, via="email", address=address, status="awaiting_verification",
        nonce="legacy-nonce", expires_at=now + VALID,
    )  # fmt: skip
    session.add(export)
    session.flush()
    return export


def test_a_legacy_confirmation_proves_once_and_restarts_the_seven_days(settings: Settings) -> None:
    t0 = utcnow()
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, False))
        export = _legacy(session, client, A, t0)
        token = service.verify_token(settings, export)
        assert service.peek_confirmation(session, settings, token) is export and export.status != "ready"
        clicked = t0 + dt.timedelta(days=2)
        with pytest.raises(service.HistoryLinkError) as unconfirmed:  # its download link opens only once confirmed
            service.open_download(session, settings, service.download_token(settings, export), t0)
        assert unconfirmed.value.kind == "invalid"
        assert service.confirm_address(session, settings, token, clicked) is export
        assert (export.status, export.verified_at, export.expires_at) == ("ready", clicked, clicked + VALID)
        [contact] = client.contacts
        assert (contact.proof, contact.proven_at) == ("link", clicked)
        note = session.scalars(
            select(Event).where(Event.client_id == client.id, Event.channel == "web").order_by(Event.id)
        ).all()[-1]
        assert (note.kind, note.at) == ("note", clicked)
        assert note.comment == "Адрес электронной почты подтверждён для получения истории взаимодействия"
        # A second click changes nothing (not even the term).
        assert service.confirm_address(session, settings, token, clicked + dt.timedelta(days=3)) is export
        assert (export.verified_at, export.expires_at) == (clicked, clicked + VALID)


def test_a_legacy_confirmation_refused_when_late_or_the_address_left_the_client(settings: Settings) -> None:
    t0 = utcnow()
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, False), (A2, False))
        late = _legacy(session, client, A, t0)
        with pytest.raises(service.HistoryLinkError) as expired:
            service.confirm_address(session, settings, service.verify_token(settings, late), t0 + VALID)
        assert expired.value.kind == "expired"
        gone = _legacy(session, client, A2, t0)
        session.delete(next(c for c in client.contacts if c.value == A2))
        session.flush()
        with pytest.raises(service.HistoryLinkError) as refused:
            service.confirm_address(session, settings, service.verify_token(settings, gone), t0 + MINUTE)
        assert refused.value.kind == "invalid"
        assert all(c.proven_at is None for c in client.contacts)


def test_an_address_proven_for_another_client_gets_nothing_of_this_one(settings: Settings) -> None:
    with session_scope(settings) as session:
        ivanov = _client(session, "Иванов Иван", (A, True))
        _client(session, "Петрова Анна", (B, True))
        assert _ask(session, settings, ivanov, B, utcnow(), via="web") is service.Outcome.unknown
        assert session.scalar(select(HistoryExport.id)) is None and _letters(session, B) == []
        # An old confirmation link of Ivanov's for an address that is now Petrova's proves nothing for him.
        export = _legacy(session, ivanov, B, utcnow())
        with pytest.raises(service.HistoryLinkError) as refused:
            service.confirm_address(session, settings, service.verify_token(settings, export), utcnow())
        assert refused.value.kind == "invalid"
        assert [c.value for c in ivanov.contacts] == [A]


def test_a_revoked_export_confirms_nothing(settings: Settings) -> None:
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A, False))
        export = _legacy(session, client, A, utcnow())
        export.status = "revoked"
        token = service.verify_token(settings, export)
        for follow in (
            lambda: service.peek_confirmation(session, settings, token),
            lambda: service.confirm_address(session, settings, token, utcnow()),
        ):
            with pytest.raises(service.HistoryLinkError) as refused:
                follow()
            assert refused.value.kind == "invalid"
        assert export.status == "revoked" and client.contacts[0].proven_at is None


def test_the_form_queues_an_address_once_and_the_worker_forgets_it(settings: Settings) -> None:
    with session_scope(settings) as session:
        _client(session, "Иванов Иван", (A, True))
    with session_scope(settings) as session:
        for address in (A, STRANGER, A):
            service.ask(session, address, utcnow())
        assert sorted(session.scalars(select(HistoryAsk.address))) == sorted([A, STRANGER])
    with session_scope(settings) as session:
        assert service.handle_asks(session, settings, utcnow(), limit=1) == 1
        assert list(session.scalars(select(HistoryAsk.address))) == [STRANGER]  # the oldest first
        assert [(e.address, e.via) for e in session.scalars(select(HistoryExport))] == [(A, "web")]
        assert service.handle_asks(session, settings, utcnow()) == 1
        assert session.scalar(select(HistoryAsk.id)) is None
        assert _letters(session, STRANGER) == []  # the form never writes to a stranger


def test_a_waiting_form_request_keeps_the_time_it_was_made(settings: Settings) -> None:
    # The row the form writes carries the service's clock, as every other row of the history does, not whatever
    # time the database or the wall clock gives when it is saved.
    made = utcnow() - dt.timedelta(hours=3)
    with session_scope(settings) as session:
        service.ask(session, A, made)
    with session_scope(settings) as session:
        assert [(ask.address, ask.created_at) for ask in session.scalars(select(HistoryAsk))] == [(A, made)]


def _link_letter(settings: Settings, public_url: str, name: str) -> tuple[Settings, HistoryExport, str]:
    """The settings with ``public_url``, and a new proven client's export and the text of its link letter."""
    site = settings.model_copy(update={"public_url": public_url})
    with session_scope(site) as session:
        client = _client(session, f"Иванов {name}", (f"{name}@example.ru", True))
        export = _export(session, site, client, client.contacts[0].value, utcnow())
        text = text_of(parsed(_letters(session, export.address)[0].raw))
    return site, export, text


def test_the_e_mailed_link_opens_the_download_page_whatever_the_public_url_ends_with(settings: Settings) -> None:
    from tests.console_support import client_for

    for n, public_url in enumerate(("https://dizo.example.ru", "https://dizo.example.ru/")):
        site, _, text = _link_letter(settings, public_url, f"i{n}")
        path = re.search(r"https://dizo\.example\.ru(/history/download/\S+)", text)
        assert path, text  # one slash between the site and the path
        assert client_for(site).get(path.group(1)).status_code == 200


def test_the_e_mailed_link_keeps_the_path_of_the_public_url(settings: Settings) -> None:
    # A service published under a path of a portal (the proxy strips it): the link is PUBLIC_URL as configured
    # (README, "Settings": the address in links of e-mails), less one trailing slash, whatever letters end it.
    for n, public_url in enumerate(("https://portal.example.ru/MAILBOX", "https://portal.example.ru/MAILBOX/")):
        site, export, text = _link_letter(settings, public_url, f"p{n}")
        found = re.search(r"(\S+)/history/download/(\S+)", text)
        assert found, text
        assert found.group(1) == "https://portal.example.ru/MAILBOX"
        with session_scope(site) as session:
            assert service.open_download(session, site, found.group(2), utcnow()).id == export.id


def test_only_a_refusal_letter_counts_toward_the_refusal_limit(settings: Settings) -> None:
    # The client's acknowledgement went to the unproven address a minute ago: the letter saying how to prove it
    # is still sent.
    with session_scope(settings) as session:
        client = _client(session, "Иванов Иван", (A2, False))
        t0 = utcnow()
        session.add(
            OutboxMessage(
                kind="acknowledgement", message_id="ack-1@dizo.test", mail_from="info@dizo.test", recipients=A2,
                raw=b"", created_at=t0,
            )
        )  # fmt: skip
        session.flush()
        assert _ask(session, settings, client, A2, t0 + MINUTE) is service.Outcome.unproven
        assert [row.kind for row in _letters(session, A2)] == ["acknowledgement", "history_unproven"]
