"""The history ZIP: an HTML summary, the original messages (.eml) and the attachments of one client.

Every row read here is selected by the client's id (events by ``Event.client_id``, files through those events
and the client's requests), so nothing of another client can enter the archive. Internal staff notes and
classification changes are the department's working notes, not interactions with the client, and are left out.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, STATUS_NAMES, EventKind, Status
from mailservice.inforequests.models import Attachment, Client, ClientContact, Event, Request
from mailservice.intake.models import IntakeEntry
from mailservice.mail.parse import sanitize_filename
from mailservice.outbox import OutboxMessage
from mailservice.templating import render

CHANNEL_BY_VALUE = {c.value: name for c, name in CHANNEL_NAMES.items()}
EVENT_NAMES: dict[str, str] = {
    EventKind.message_in: "Сообщение клиента",
    EventKind.message_out: "Сообщение департамента",
    EventKind.registered: "Регистрация",
    EventKind.status_changed: "Изменение статуса",
    EventKind.note: "Отметка",
    EventKind.bounce: "Письмо не доставлено",
    EventKind.classified: "Классификация",
}


@dataclass
class HistoryFile:
    """One file of the archive, or a note that it is no longer available."""

    path: str
    title: str
    size: int
    available: bool = True
    data: bytes = field(default=b"", repr=False)


@dataclass
class TimelineItem:
    """One event of the history with its files."""

    event: Event
    title: str
    channel: str
    request_number: str
    files: list[HistoryFile]


@dataclass
class HistoryData:
    """Everything the archive holds for one client."""

    client: Client
    emails: list[str]
    phones: list[str]
    requests: list[Request]
    items: list[TimelineItem]

    @property
    def files(self) -> list[HistoryFile]:
        """All files, in timeline order."""
        return [f for item in self.items for f in item.files]


def is_client_visible(event: Event) -> bool:
    """Whether an event belongs in the history the client receives (pure)."""
    if event.kind == EventKind.classified:
        return False
    return not (isinstance(event.data, dict) and event.data.get("internal"))


def _blob(store: BlobStore, sha256: str) -> bytes | None:
    try:
        return store.get(sha256)
    except (FileNotFoundError, ValueError):
        return None


def collect(session: Session, settings: Settings, client_id: int) -> HistoryData:
    """Read one client's history (the client's own rows only)."""
    client = session.get(Client, client_id)
    if client is None:
        raise LookupError(f"client {client_id} not found")
    store = BlobStore(settings.blob_dir)
    contacts = session.scalars(select(ClientContact).where(ClientContact.client_id == client_id)).all()
    requests = list(session.scalars(select(Request).where(Request.client_id == client_id).order_by(Request.id)))
    numbers = {r.id: r.number or f"без номера ({r.id})" for r in requests}
    events = [
        e
        for e in session.scalars(select(Event).where(Event.client_id == client_id).order_by(Event.at, Event.id))
        if is_client_visible(e)
    ]
    attachments_by_event: dict[int | None, list[Attachment]] = {}
    if requests:
        for att in session.scalars(
            select(Attachment).where(Attachment.request_id.in_(list(numbers))).order_by(Attachment.id)
        ):
            attachments_by_event.setdefault(att.event_id, []).append(att)
    event_ids = {e.id for e in events}
    items: list[TimelineItem] = []
    for event in events:
        files: list[HistoryFile] = []
        if event.intake_id is not None:
            entry = session.get(IntakeEntry, event.intake_id)
            raw = _blob(store, entry.raw_sha256) if entry is not None else None
            files.append(_file(f"messages/{event.id:06d}-incoming.eml", "Исходное письмо клиента", raw))
        if event.outbox_id is not None:
            row = session.get(OutboxMessage, event.outbox_id)
            raw = row.raw if row is not None and row.raw else None
            files.append(_file(f"messages/{event.id:06d}-outgoing.eml", "Письмо департамента", raw))
        for att in attachments_by_event.get(event.id, []):
            files.append(_attachment_file(store, att))
        items.append(
            TimelineItem(
                event=event,
                title=EVENT_NAMES.get(event.kind, event.kind),
                channel=CHANNEL_BY_VALUE.get(event.channel, event.channel),
                request_number=numbers.get(event.request_id or 0, ""),
                files=files,
            )
        )
    # Files of the client's requests whose event is not shown (or missing) still belong to the client.
    orphans = [a for key, atts in attachments_by_event.items() if key not in event_ids for a in atts]
    if orphans:
        first = orphans[0]
        items.append(
            TimelineItem(
                event=Event(client_id=client_id, at=client.created_at, kind=EventKind.note, comment=""),
                title="Прочие материалы",
                channel="",
                request_number=numbers.get(first.request_id or 0, ""),
                files=[_attachment_file(store, a) for a in orphans],
            )
        )
    return HistoryData(
        client=client,
        emails=[c.value for c in contacts if c.kind == "email"],
        phones=[c.value for c in contacts if c.kind == "phone"],
        requests=requests,
        items=items,
    )


def _file(path: str, title: str, data: bytes | None) -> HistoryFile:
    if data is None:
        return HistoryFile(path=path, title=title, size=0, available=False)
    return HistoryFile(path=path, title=title, size=len(data), data=data)


def _attachment_file(store: BlobStore, att: Attachment) -> HistoryFile:
    name = sanitize_filename(att.filename, att.content_type)
    return _file(f"attachments/{att.id:06d}-{name}", att.filename, _blob(store, att.sha256))


def summary_html(settings: Settings, data: HistoryData, now: dt.datetime) -> str:
    """The HTML summary that opens the archive."""
    return render(
        "web/history/summary.html",
        settings=settings,
        data=data,
        generated_at=now.astimezone(settings.tz),
        tz=settings.tz,
        status_names={s.value: n for s, n in STATUS_NAMES.items()},
        channel_names=CHANNEL_BY_VALUE,
        Status=Status,
    )


def build_zip(session: Session, settings: Settings, client_id: int, now: dt.datetime) -> bytes:
    """The whole archive of one client as bytes."""
    data = collect(session, settings, client_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", summary_html(settings, data, now))
        for item in data.files:
            if item.available:
                archive.writestr(item.path, item.data)
    return buffer.getvalue()
