"""The client's whole interaction history on request (seed 004 p. 4), sent only to a verified address.

Rules that keep one person's history from reaching another:
- the client is found by the address the request came from (the From of the e-mail, the address typed in the
  web form), never by a name or a number in the text;
- the history goes only to that address, and only once it is verified for that very client; an unverified
  address first gets a signed confirmation link, never the data;
- links carry only opaque ids and a random nonce, are signed (one salt per purpose) and expire; the download
  page re-checks the export's client and state in the database;
- a client gets at most one export per six hours and a link lives seven days (Froide's limits), so the form
  cannot be used to flood anyone's mailbox.
"""

from __future__ import annotations

import datetime as dt
import secrets
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.history.models import HistoryExport
from mailservice.inforequests.lifecycle import Channel, EventKind
from mailservice.inforequests.models import Client, ClientContact, Event
from mailservice.mail.compose import build_message
from mailservice.outbox import OutboxMessage, enqueue
from mailservice.tokens import Purpose, TokenError, load_timed, sign_timed

LINK_VALID = dt.timedelta(days=7)
MIN_INTERVAL = dt.timedelta(hours=6)


class Outcome(StrEnum):
    """What a history request led to."""

    link_sent = "link_sent"  # verified address: the download link was e-mailed
    verification_sent = "verification_sent"  # unverified address: a confirmation link was e-mailed
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


def verify_url(settings: Settings, export: HistoryExport) -> str:
    """Public URL of the confirmation page."""
    return f"{_base(settings)}/history/confirm/{verify_token(settings, export)}"


def _contact(session: Session, client_id: int, address: str) -> ClientContact | None:
    return session.scalar(
        select(ClientContact).where(
            ClientContact.client_id == client_id,
            ClientContact.kind == "email",
            ClientContact.value == address,
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
    row = enqueue(session, message, kind=template, ref_type="history_export", ref_id=export.id if export else None)
    if client.id:
        session.add(
            Event(
                client_id=client.id,
                at=now,
                kind=EventKind.message_out,
                channel=Channel.email,
                direction="out",
                outbox=row,
                comment=subject,
            )
        )


def _recently_told(session: Session, address: str, now: dt.datetime) -> bool:
    # Anyone can put any address in From: answer an unknown address at most once per interval (no mail bomb).
    return (
        session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.kind == "history_unknown",
                OutboxMessage.recipients == address,
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
    if client is None or client.anonymised_at is not None or _contact(session, client.id, address) is None:
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
    contact = _contact(session, client.id, address)
    assert contact is not None
    export = HistoryExport(
        client_id=client.id,
        created_at=now,
        via=via,
        address=address,
        status="ready" if contact.verified else "awaiting_verification",
        nonce=secrets.token_hex(8),
        expires_at=now + LINK_VALID,
        intake_id=intake_id,
    )
    session.add(export)
    session.flush()
    if contact.verified:
        send_link(session, settings, export, client, now)
        return Outcome.link_sent
    _mail(
        session,
        settings,
        client=client,
        address=address,
        template="history_verify",
        subject="Подтвердите адрес для получения истории взаимодействия",
        context={"url": verify_url(settings, export), "expires_at": export.expires_at},
        now=now,
        export=export,
    )
    return Outcome.verification_sent


def send_link(session: Session, settings: Settings, export: HistoryExport, client: Client, now: dt.datetime) -> None:
    """E-mail the download link of a ready export to its (verified) address."""
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
    """Follow a confirmation link (by POST): the address becomes verified for its client, the export ready."""
    export = _load(session, settings, Purpose.history_verify, token)
    if export.status == "ready":
        return export  # a second click on the same link: nothing more to do
    if now >= export.expires_at:
        raise HistoryLinkError("expired", "Срок действия ссылки истёк")
    contact = _contact(session, export.client_id, export.address)
    if contact is None:  # the address left this client (merge, anonymisation) since the link was sent
        raise HistoryLinkError("invalid", "Ссылка недействительна")
    contact.verified = True
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
    if owner(session, export) is None:
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
