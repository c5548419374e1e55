"""The history ZIP: an HTML summary, the original messages (.eml) and the attachments of one client.

Five years of history can hold hundreds of MB of attachments, so no file is read before it is written: the
summary is built from sizes (``stat`` of the blob, ``length`` of a stored message), then each file is copied into
the ZIP in chunks, and the ZIP goes to a spooled temporary file rather than memory. Memory use is then bounded by
the copy buffers and the one largest message kept in the database, whatever the size of the history.

Every row read here is selected by the client's id (events by ``Event.client_id``, files through those events
and the client's requests), so nothing of another client can enter the archive. Internal staff notes and
classification changes are the department's working notes, not interactions with the client, and are left out.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, EVENT_NAMES, STATUS_NAMES, EventKind, Status
from mailservice.inforequests.models import Attachment, Client, ClientContact, Event, Request
from mailservice.intake.models import IntakeEntry
from mailservice.mail.parse import sanitize_filename
from mailservice.mail.quotes import split_reply
from mailservice.outbox import OutboxMessage
from mailservice.templating import render

CHANNEL_BY_VALUE = {c.value: name for c, name in CHANNEL_NAMES.items()}


# Archives up to this size stay in memory; bigger ones go on to an unnamed file in data_dir/tmp.
SPOOL_MAX_SIZE = 1024 * 1024
COPY_CHUNK = 64 * 1024


@dataclass
class HistoryFile:
    """One file of the archive (where to read it: a blob or an outbox row), or a note that it is not available."""

    path: str
    title: str
    size: int
    available: bool = True
    blob: str | None = None  # sha256 in the blob store
    outbox_id: int | None = None  # an outgoing message, kept whole in the outbox table


@dataclass
class TimelineItem:
    """One event of the history with its files and what was written (decoded, the quoted part apart)."""

    event: Event
    title: str
    channel: str
    request_number: str
    files: list[HistoryFile]
    text: str = ""
    quoted: str = ""


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


def fold_quotes(text: str) -> tuple[str, str]:
    """What a message says now, and the quoted earlier letters and signature (shown folded)."""
    new, quoted, signature = split_reply(text)
    return new, "\n\n".join(part for part in (quoted, signature) if part.strip())


def _outgoing_text(session: Session, outbox_id: int) -> str:
    """The plain text of a message we sent (one message read at a time; '' when it cannot be read)."""
    raw = session.scalar(select(OutboxMessage.raw).where(OutboxMessage.id == outbox_id))
    if not raw:
        return ""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",)) if isinstance(message, EmailMessage) else None
        return str(body.get_content()).strip() if body is not None else ""
    except (LookupError, ValueError, AttributeError):
        return ""


def human_size(size: int) -> str:
    """A file size people read: bytes, KB or MB."""
    if size < 1024:
        return f"{size} Б"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} КБ"
    return f"{size / (1024 * 1024):.1f} МБ".replace(".", ",")


def contact_title(event: Event) -> str:
    """The name of a contact staff recorded (a call, a visit, a letter), or ''."""
    title = event.data.get("contact") if isinstance(event.data, dict) else None
    return title if isinstance(title, str) else ""


def _blob_file(store: BlobStore, path: str, title: str, sha256: str) -> HistoryFile:
    """A blob as a file of the archive; its size is the one on disk (what reading it used to give)."""
    try:
        size = store.path(sha256).stat().st_size
    except (FileNotFoundError, ValueError):
        return HistoryFile(path=path, title=title, size=0, available=False)
    return HistoryFile(path=path, title=title, size=size, blob=sha256)


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
    # Only the lengths of outgoing messages: loading the rows would bring every message's bytes into memory.
    outbox_ids = [e.outbox_id for e in events if e.outbox_id is not None]
    outbox_sizes: dict[int, int] = {}
    for start in range(0, len(outbox_ids), 500):  # keeps IN lists short on both backends
        chunk = outbox_ids[start : start + 500]
        query = select(OutboxMessage.id, func.length(OutboxMessage.raw)).where(OutboxMessage.id.in_(chunk))
        for row_id, length in session.execute(query):
            outbox_sizes[row_id] = length or 0
    # The first message of a request carries its subject; the text is the request's own.
    first_messages: dict[int, int] = {}  # the first written, whatever time a later record gives itself
    for event in events:
        if event.kind == EventKind.message_in and event.request_id is not None and not contact_title(event):
            first_messages[event.request_id] = min(event.id, first_messages.get(event.request_id, event.id))
    texts = {r.id: r.text for r in requests}
    items: list[TimelineItem] = []
    for event in events:
        files: list[HistoryFile] = []
        if event.intake_id is not None:
            path, title = f"messages/{event.id:06d}-incoming.eml", "Исходное письмо клиента"
            entry = session.get(IntakeEntry, event.intake_id)
            if entry is not None:
                files.append(_blob_file(store, path, title, entry.raw_sha256))
            else:
                files.append(HistoryFile(path=path, title=title, size=0, available=False))
        if event.outbox_id is not None:
            path, title = f"messages/{event.id:06d}-outgoing.eml", "Письмо департамента"
            size = outbox_sizes.get(event.outbox_id) or 0  # missing row or empty message: not available
            files.append(HistoryFile(path=path, title=title, size=size, available=size > 0, outbox_id=event.outbox_id))
        for att in attachments_by_event.get(event.id, []):
            files.append(_attachment_file(store, att))
        if event.request_id is not None and first_messages.get(event.request_id) == event.id:
            text = texts.get(event.request_id, "") or event.comment
        elif event.outbox_id is not None:
            text = _outgoing_text(session, event.outbox_id) or event.comment
        else:
            text = event.comment
        new, quoted = fold_quotes(text) if event.kind in (EventKind.message_in, EventKind.message_out) else (text, "")
        items.append(
            TimelineItem(
                event=event,
                title=contact_title(event) or EVENT_NAMES.get(event.kind, event.kind),
                channel=CHANNEL_BY_VALUE.get(event.channel, event.channel),
                request_number=numbers.get(event.request_id or 0, ""),
                files=files,
                text=new,
                quoted=quoted,
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


def _attachment_file(store: BlobStore, att: Attachment) -> HistoryFile:
    name = sanitize_filename(att.filename, att.content_type)
    return _blob_file(store, f"attachments/{att.id:06d}-{name}", att.filename, att.sha256)


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
        human_size=human_size,
        Status=Status,
    )


def _entry(archive: zipfile.ZipFile, name: str, size: int) -> zipfile.ZipInfo:
    """The entry ``ZipFile.writestr`` would make (same date, permissions, compression and ZIP64 choice), so
    that streaming changes nothing in the archive."""
    info = zipfile.ZipInfo(filename=name, date_time=time.localtime(time.time())[:6])
    info.compress_type = archive.compression
    info._compresslevel = archive.compresslevel  # type: ignore[attr-defined]  # what writestr sets
    info.external_attr = 0o600 << 16
    info.file_size = size  # writestr's size: open() decides on ZIP64 from it
    return info


def _copy_file(session: Session, store: BlobStore, item: HistoryFile, dest: IO[bytes]) -> None:
    if item.blob is not None:
        # A blob that vanished since collect() raises here: the download fails rather than contradict the summary.
        with store.path(item.blob).open("rb") as src:
            shutil.copyfileobj(src, dest, COPY_CHUNK)
        return
    # An outgoing message lives in one database column: read it alone (not the ORM row, which the session
    # would keep), write it, let it go.
    raw = session.scalar(select(OutboxMessage.raw).where(OutboxMessage.id == item.outbox_id))
    if raw is None:
        raise FileNotFoundError(f"outbox message {item.outbox_id} is gone")
    dest.write(raw)


def write_zip(session: Session, settings: Settings, client_id: int, now: dt.datetime, out: IO[bytes]) -> None:
    """Write the archive of one client to ``out`` (a seekable binary file), one file at a time."""
    data = collect(session, settings, client_id)
    store = BlobStore(settings.blob_dir)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", summary_html(settings, data, now))
        for item in data.files:
            if item.available:
                with archive.open(_entry(archive, item.path, item.size), "w") as dest:
                    _copy_file(session, store, item, dest)


def spool_file(settings: Settings) -> tempfile.SpooledTemporaryFile[bytes]:
    """Where an archive is built: memory while small, then a file in data_dir/tmp that has no name (removed at
    once, so nothing is left behind whatever happens; its space is freed when it is closed)."""
    folder = settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_SIZE, mode="w+b", dir=str(folder))
