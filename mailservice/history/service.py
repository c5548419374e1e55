"""The client's whole interaction history on request (seed 004 p. 4), sent only to a proven address.

Rules that keep one person's history from reaching another (README, "Security model"):
- the client is found by the address the request came from (the From of the e-mail, the address typed in the
  web form), never by a name, a phone or a number in the text;
- the history goes only to that address, and only when it is *proven* for that very client (the client
  answered our message sent there, followed a signed link sent there, or gave it at an identity check in
  person). Confirming a link proves who reads a mailbox, not whose record it is: an address someone only claimed
  is never a client's contact, and an address the client wrote from but never proved gets no history, only a
  letter saying how to prove it (answering that letter proves it). A client with no proven address gets nothing
  by e-mail: staff are told to print the history and post it;
- links carry only opaque ids and a random nonce, are signed (one salt per purpose) and expire; the download
  page re-checks the export's client and state in the database;
- a client gets at most one export per six hours and a link lives seven days (Froide's limits), so the form
  cannot be used to flood anyone's mailbox; the web form's answer is the same work for every address (the
  worker looks the address up later, :func:`handle_asks`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.history.models import HistoryAsk, HistoryExport
from mailservice.inforequests import identity
from mailservice.inforequests.lifecycle import Channel, EventKind
from mailservice.inforequests.models import Client, ClientContact, Event, Proof
from mailservice.inforequests.notifications import sent_event
from mailservice.mail.addresses import address_key
from mailservice.mail.compose import build_message
from mailservice.outbox import OutboxMessage, enqueue
from mailservice.tokens import Purpose, TokenError, load_timed, sign_timed

LINK_VALID = dt.timedelta(days=7)
MIN_INTERVAL = dt.timedelta(hours=6)


class Outcome(StrEnum):
    """What a history request led to."""

    link_sent = "link_sent"  # proven address: the download link was e-mailed
    unproven = "unproven"  # the client's address, not proven: no history by e-mail, staff told
    limited = "limited"  # an export was made less than six hours ago
    unknown = "unknown"  # no client has this address


class HistoryLinkError(ValueError):
    """A confirmation or download link that does not open; ``kind`` picks the page (invalid | expired)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _base(settings: Settings) -> str:
    return settings.public_url.rstrip("/")


def download_token(settings: Settings, export: HistoryExport) -> str:
    """Signed token of the download page of an export."""
    return sign_timed(settings, Purpose.history_download, {"x": export.id, "n": export.nonce})


def verify_token(settings: Settings, export: HistoryExport) -> str:
    """Signed token of the address confirmation of an export."""
    return sign_timed(settings, Purpose.history_verify, {"x": export.id, "n": export.nonce})


def download_url(settings: Settings, export: HistoryExport) -> str:
    """Public URL of the download page."""
    return f"{_base(settings)}/history/download/{download_token(settings, export)}"


def _contact(session: Session, client_id: int, address: str) -> ClientContact | None:
    return session.scalar(
        select(ClientContact).where(
            ClientContact.client_id == client_id,
            ClientContact.kind == "email",
            ClientContact.value_key == address_key(address),
        )
    )


def _mail(
    session: Session,
    settings: Settings,
    *,
    client: Client,
    address: str,
    template: str,
    subject: str,
    context: dict[str, object],
    now: dt.datetime,
    export: HistoryExport | None = None,
    ref: tuple[str, int | None] | None = None,
) -> None:
    message = build_message(
        settings,
        to=address,
        to_name=client.name if client.id else "",
        subject=subject,
        template=template,
        context={"client": client, **context},
        auto_submitted="auto-replied",
    )
    ref_type, ref_id = ref or ("history_export", export.id if export else None)
    row = enqueue(session, message, kind=template, ref_type=ref_type, ref_id=ref_id)
    if client.id:
        sent_event(session, row, client=client, now=now, subject=subject)


# Letters that refuse the history: anyone can put any address in From, so an address gets one per interval.
_REFUSALS = ("history_unknown", "history_unproven")


def _recently_told(session: Session, address: str, now: dt.datetime) -> bool:
    return (
        session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.kind.in_(_REFUSALS),
                # Per mailbox, not per spelling: «Ivan@» and «ivan@» are one inbox (defect U9). The databases'
                # lower() folds ASCII (all of it on SQLite), as the acknowledgement limit counts.
                func.lower(OutboxMessage.recipients) == address.lower(),
                OutboxMessage.created_at > now - MIN_INTERVAL,
            )
            .limit(1)
        )
        is not None
    )


def latest_export(session: Session, client_id: int) -> HistoryExport | None:
    """The newest export of a client."""
    return session.scalar(
        select(HistoryExport).where(HistoryExport.client_id == client_id).order_by(HistoryExport.id.desc()).limit(1)
    )


def request_history(
    session: Session,
    settings: Settings,
    *,
    client: Client | None,
    address: str,
    via: str,
    now: dt.datetime,
    intake_id: int | None = None,
    notify_refusals: bool = False,
) -> Outcome:
    """Handle a request for the history coming from ``address``.

    ``client`` is the owner of ``address`` (or None). With ``notify_refusals`` (an e-mail request, which
    deserves a reply) the address is also told when nothing can be sent; the web form never says anything by
    e-mail beyond what the rules above allow, and its page says the same whatever happened.
    """
    contact = _contact(session, client.id, address) if client is not None and client.anonymised_at is None else None
    if client is None or contact is None:
        if notify_refusals and not _recently_told(session, address, now):
            _mail(
                session,
                settings,
                client=Client(name=""),
                address=address,
                template="history_unknown",
                subject="История взаимодействия",
                context={},
                now=now,
            )
        return Outcome.unknown
    if not contact.proven:
        _refuse_unproven(session, settings, client, address, via, now, notify=notify_refusals)
        return Outcome.unproven
    previous = latest_export(session, client.id)
    if previous is not None and now - previous.created_at < MIN_INTERVAL:
        if notify_refusals:
            _mail(
                session,
                settings,
                client=client,
                address=address,
                template="history_limited",
                subject="История взаимодействия",
                context={"previous": previous, "next_at": previous.created_at + MIN_INTERVAL},
                now=now,
            )
        return Outcome.limited
    export = HistoryExport(
        client_id=client.id,
        created_at=now,
        via=via,
        address=address,
        status="ready",
        nonce=secrets.token_hex(8),
        expires_at=now + LINK_VALID,
        intake_id=intake_id,
    )
    session.add(export)
    session.flush()
    send_link(session, settings, export, client, now)
    return Outcome.link_sent


VIA_NAMES = {"email": "по электронной почте", "web": "через форму на сайте", "staff": "сотрудником"}


def _refuse_unproven(
    session: Session, settings: Settings, client: Client, address: str, via: str, now: dt.datetime, *, notify: bool
) -> None:
    """No history to an address not proven for the client: a note tells staff what to do, and an e-mail request
    gets a letter (once per interval) saying how to prove the address; answering it proves it."""
    proven = [c.value for c in client.contacts if c.kind == "email" and c.proven]
    advice = (
        f"Подтверждённые адреса клиента: {', '.join(proven)}."
        if proven
        else "У клиента нет подтверждённого адреса: распечатайте историю и направьте её почтой "
        "или проверьте личность клиента при визите."
    )
    session.add(
        Event(
            client_id=client.id,
            at=now,
            kind=EventKind.note,
            comment=f"Запрошена история взаимодействия ({VIA_NAMES.get(via, via)}) на адрес {address}, который не "
            f"подтверждён для клиента: по электронной почте история не отправлена. {advice}",
            data={"internal": True, "history_refused": address},
        )
    )
    if notify and not _recently_told(session, address, now):
        contact = _contact(session, client.id, address)
        _mail(
            session,
            settings,
            client=Client(name=""),  # an unproven address learns nothing of the record, not even the name
            address=address,
            template="history_unproven",
            subject="История взаимодействия: подтвердите адрес",
            # A reply proves no address a merge brought (identity.prove): the letter does not offer it.
            context={"reply_proves": contact is None or contact.moved_at is None},
            now=now,
            ref=("history_proof", client.id),
        )


def send_link(session: Session, settings: Settings, export: HistoryExport, client: Client, now: dt.datetime) -> None:
    """E-mail the download link of a ready export to its (proven) address."""
    _mail(
        session,
        settings,
        client=client,
        address=export.address,
        template="history_link",
        subject="Ваша история взаимодействия с департаментом",
        context={"url": download_url(settings, export), "expires_at": export.expires_at},
        now=now,
        export=export,
    )


def _load(session: Session, settings: Settings, purpose: Purpose, token: str) -> HistoryExport:
    try:
        payload = load_timed(settings, purpose, token, int(LINK_VALID.total_seconds()))
    except TokenError as exc:
        if exc.expired:
            raise HistoryLinkError("expired", "Срок действия ссылки истёк") from exc
        raise HistoryLinkError("invalid", "Ссылка повреждена или недействительна") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("x"), int) or not isinstance(payload.get("n"), str):
        raise HistoryLinkError("invalid", "Ссылка повреждена или недействительна")
    export = session.get(HistoryExport, payload["x"])
    if export is None or not secrets.compare_digest(export.nonce, payload["n"]) or export.status == "revoked":
        raise HistoryLinkError("invalid", "Ссылка повреждена или недействительна")
    return export


def peek_confirmation(session: Session, settings: Settings, token: str) -> HistoryExport:
    """The export behind a confirmation link, without confirming anything (the GET of the page)."""
    return _load(session, settings, Purpose.history_verify, token)


def confirm_address(session: Session, settings: Settings, token: str, now: dt.datetime) -> HistoryExport:
    """Follow a confirmation link (by POST): the address becomes proven for its client, the export ready."""
    export = _load(session, settings, Purpose.history_verify, token)
    if export.status == "ready":
        return export  # a second click on the same link: nothing more to do
    if now >= export.expires_at:
        raise HistoryLinkError("expired", "Срок действия ссылки истёк")
    client = session.get(Client, export.client_id)
    contact = _contact(session, export.client_id, export.address)
    if client is None or contact is None:  # the address left this client (merge, anonymisation) since then
        raise HistoryLinkError("invalid", "Ссылка недействительна")
    # A link sent to an address the client wrote from, followed: proven for this client only (links of this
    # kind are no longer sent; those already out still work). Not an address a merge brought: in person only.
    if identity.prove(session, client, export.address, Proof.link, now) is None:
        raise HistoryLinkError("invalid", "Ссылка недействительна")
    export.status = "ready"
    export.verified_at = now
    export.expires_at = now + LINK_VALID
    session.add(
        Event(
            client_id=export.client_id,
            at=now,
            kind=EventKind.note,
            channel=Channel.web,
            comment="Адрес электронной почты подтверждён для получения истории взаимодействия",
        )
    )
    return export


def open_download(session: Session, settings: Settings, token: str, now: dt.datetime) -> HistoryExport:
    """The ready export behind a download link, or :class:`HistoryLinkError`."""
    export = _load(session, settings, Purpose.history_download, token)
    if export.status != "ready":
        raise HistoryLinkError("invalid", "Ссылка недействительна")
    if now >= export.expires_at:
        raise HistoryLinkError("expired", "Срок действия ссылки истёк")
    client = owner(session, export)
    # The history goes to a proven address of its owner only, when the link is followed as when it was sent: a
    # merge since then makes the record another's, and the address it came to unproven there (README, "Security
    # model"): the link of whoever held the record merged in must not open the survivor's history.
    contact = _contact(session, client.id, export.address) if client is not None else None
    if contact is None or not contact.proven:
        raise HistoryLinkError("invalid", "Ссылка недействительна")
    return export


def owner(session: Session, export: HistoryExport) -> Client | None:
    """The client whose history an export gives: its client, or the record it was merged into since."""
    client = session.get(Client, export.client_id)
    seen: set[int] = set()
    while client is not None and client.merged_into_id is not None and client.id not in seen:
        seen.add(client.id)
        client = session.get(Client, client.merged_into_id)
    if client is None or client.anonymised_at is not None:
        return None
    return client


def ask(session: Session, address: str, now: dt.datetime) -> None:
    """Take a request for the history from the web form: the same one insert (or none, when the same address is
    already waiting) whoever's the address is; the worker answers it (:func:`handle_asks`)."""
    waiting = session.scalar(select(HistoryAsk.id).where(func.lower(HistoryAsk.address) == address.lower()).limit(1))
    if waiting is None:
        session.add(HistoryAsk(address=address, created_at=now))


def handle_asks(session: Session, settings: Settings, now: dt.datetime, limit: int = 200) -> int:
    """Answer the web form's waiting requests: the link to a proven address of its client, nothing otherwise (the
    form never writes to an unknown or unproven address, or the form would mail anyone). Returns how many."""
    from mailservice.inforequests.service import find_client_by_email

    asks = list(session.scalars(select(HistoryAsk).order_by(HistoryAsk.id).limit(limit)))
    for item in asks:
        client = find_client_by_email(session, item.address)
        request_history(session, settings, client=client, address=item.address, via="web", now=now)
        session.delete(item)  # nothing of a stranger's address is kept
    return len(asks)
