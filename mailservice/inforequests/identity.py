"""Whose an address is: proving addresses, identity checks in person, suggested merges.

The rule (README, "Security model"): an e-mail address belongs to a client only when that client proved it:
- *reply*: the client answered, from the address, a message we had sent to that address (the reply names our
  Message-ID and comes from an address that message went to);
- *link*: the client followed a signed link we had sent to the address (an address the client wrote from);
- *in person*: staff saw an identity document and recorded the address given then.

Matching by phone or name never attaches an address: such matches become :class:`MergeSuggestion` rows that
staff accept or reject. An address someone only claimed (typed by staff on a phone call, a Reply-To) is the reply
address of its one request and nothing more. History, and automatic mail that names the client, go only to
proven addresses. Functions take the caller's session and ``now`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mailservice.inforequests.identity_documents import DOCUMENTS as DOCUMENTS  # where callers read it
from mailservice.inforequests.models import Client, ClientContact, IdentityCheck, MergeSuggestion, Proof
from mailservice.inforequests.notes import internal_note
from mailservice.mail.addresses import address_key, contact_key

PROOF_NAMES: dict[str, str] = {
    Proof.reply: "ответ на наше письмо",
    Proof.link: "переход по подписанной ссылке",
    Proof.in_person: "проверка документа лично",
}


# How the client page names a contact's kind.
CONTACT_KINDS: dict[str, str] = {"email": "эл. почта", "phone": "телефон", "social": "соцсети"}


class IdentityError(ValueError):
    """An identity operation that cannot be done; the message is Russian and shown as is."""


def contact_of(session: Session, kind: str, value: str) -> ClientContact | None:
    """The contact row holding this address or phone, whoever's it is; an address in any case of its letters (one
    mailbox, RFC 5321 2.4), by the unique key."""
    key = contact_key(kind, value)
    return session.scalar(select(ClientContact).where(ClientContact.kind == kind, ClientContact.value_key == key))


def suggest_merge(
    session: Session, client: Client, other: Client, reason: str, now: dt.datetime
) -> MergeSuggestion | None:
    """Offer staff to merge ``client`` (the newer record) into ``other``; None when one is already offered."""
    if client is other or (client.id is not None and client.id == other.id):
        return None
    if client.id is not None and other.id is not None:
        pair = or_(
            (MergeSuggestion.client_id == client.id) & (MergeSuggestion.other_id == other.id),
            (MergeSuggestion.client_id == other.id) & (MergeSuggestion.other_id == client.id),
        )
        if session.scalar(select(MergeSuggestion.id).where(pair).limit(1)) is not None:
            return None
    suggestion = MergeSuggestion(client=client, other=other, reason=reason[:2000], created_at=now, status="open")
    session.add(suggestion)
    return suggestion


def prove(
    session: Session, client: Client, address: str, proof: Proof, now: dt.datetime, *, actor: str = ""
) -> ClientContact | None:
    """Record that ``client`` proved ``address``; the contact is created when the address is nobody's.

    An address that is another client's contact is not moved (that would be matching by a claim): staff get a
    suggested merge instead, and None is returned. An address a merge brought to the record (``moved_at``) is
    proven only in person: a reply or a link proves that someone reads the mailbox, not that it is this person's,
    since it came from the record merged in (README, "Security model"); None is returned and staff get a note.
    """
    key = address_key(address)
    contact = next((c for c in client.contacts if c.kind == "email" and c.value_key == key), None)
    if contact is None:
        holder = contact_of(session, "email", address)
        if holder is not None:
            suggest_merge(
                session,
                client,
                holder.client,
                f"Адрес {address} подтверждён клиентом № {client.id} ({PROOF_NAMES[proof]}), "
                f"но записан за клиентом № {holder.client_id}",
                now,
            )
            return None
        contact = ClientContact(kind="email", value=address, created_at=now)
        client.contacts.append(contact)
    if contact.proven_at is None and contact.moved_at is not None and proof is not Proof.in_person:
        internal_note(
            session,
            client,
            None,
            now,
            f"Адрес {address} перенесён к этой записи при объединении: {PROOF_NAMES[proof]} его не подтверждает, "
            "подтвердить адрес можно только при проверке документа лично",
            actor,
            refused_proof=str(proof),
        )
        return None
    if contact.proven_at is None or proof is Proof.in_person:
        contact.proven_at, contact.proof = now, proof
        internal_note(
            session, client, None, now, f"Адрес {address} подтверждён: {PROOF_NAMES[proof]}", actor, proof=str(proof)
        )
    return contact


def prove_by_reply(session: Session, client: Client, address: str, sent_to: Sequence[str], now: dt.datetime) -> None:
    """Prove ``address`` for ``client`` when it answered our message that went to that very address (that very
    mailbox: the reply may spell it in another case)."""
    if address_key(address) in {address_key(a) for a in sent_to}:
        prove(session, client, address, Proof.reply, now)


def record_check(
    session: Session,
    client: Client,
    *,
    document: str,
    checked_by: str,
    now: dt.datetime,
    email: str | None = None,
    phone: str | None = None,
    note: str = "",
) -> IdentityCheck:
    """Record an identity check in person; the e-mail address and phone given then become proven contacts.

    Refused when the address or phone is another client's: staff merge the records first (or correct them), so a
    check never silently moves someone else's contact.
    """
    if document not in DOCUMENTS:
        raise IdentityError("Выберите документ из списка")
    checked_by = checked_by.strip()
    if not checked_by:
        raise IdentityError("Укажите, кто проверил документ")
    if client.merged_into_id is not None or client.anonymised_at is not None:
        raise IdentityError("Запись объединена с другой или обезличена: проверка записывается в действующую запись")
    for kind, value in (("email", email), ("phone", phone)):
        holder = contact_of(session, kind, value) if value else None
        if holder is not None and holder.client_id != client.id:
            raise IdentityError(
                f"{'Адрес' if kind == 'email' else 'Телефон'} {value} записан за клиентом № {holder.client_id}: "
                "сначала объедините записи"
            )
    check = IdentityCheck(
        client_id=client.id,
        checked_at=now,
        checked_by=checked_by[:320],
        document=document,
        email=email,
        phone=phone,
        note=note.strip()[:2000],
    )
    session.add(check)
    given = ", ".join(v for v in (email, phone) if v) or "контакты не указаны"
    internal_note(
        session, client, None, now, f"Личность проверена лично: {DOCUMENTS[document]}; {given}", checked_by, check=True
    )
    if email:
        prove(session, client, email, Proof.in_person, now, actor=checked_by)
    if phone:
        key = contact_key("phone", phone)
        contact = next((c for c in client.contacts if c.kind == "phone" and c.value_key == key), None)
        if contact is None:
            contact = ClientContact(kind="phone", value=phone, created_at=now)
            client.contacts.append(contact)
        contact.proven_at, contact.proof = now, Proof.in_person
    return check


def open_suggestions(session: Session, client_id: int) -> list[MergeSuggestion]:
    """Suggested merges of a client still waiting for staff (either side)."""
    return list(
        session.scalars(
            select(MergeSuggestion)
            .where(
                MergeSuggestion.status == "open",
                or_(MergeSuggestion.client_id == client_id, MergeSuggestion.other_id == client_id),
            )
            .order_by(MergeSuggestion.id)
        )
    )


__all__ = [
    "CONTACT_KINDS",
    "DOCUMENTS",
    "IdentityError",
    "contact_of",
    "open_suggestions",
    "prove",
    "prove_by_reply",
    "record_check",
    "suggest_merge",
]
