"""The request register as the spreadsheet seed 004 p. 8 asks for (CSV or XLSX), in Russian.

One row per registered request, the columns of :data:`COLUMNS` in that order: Russian headers and Russian values
(the channel, type, topic, urgency and status as staff name them). The XLSX has a frozen header, an auto-filter
and column widths; the CSV carries the same columns. Every text cell is formula-safe
(:func:`mailservice.spreadsheets.safe_cell`). The rows can be limited by any SELECT of requests (the console's
queue filters): :func:`register_rows` keeps the registered ones of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Select, literal, select, tuple_
from sqlalchemy.orm import Session, selectinload

from mailservice.config import Settings
from mailservice.inforequests.lifecycle import (
    CHANNEL_NAMES,
    REFUSAL_GROUNDS,
    STATUS_NAMES,
    Channel,
    Status,
)
from mailservice.inforequests.models import Client, Event, Request
from mailservice.inforequests.queues import is_overdue
from mailservice.spreadsheets import safe_cell, safe_row


@dataclass(frozen=True)
class Column:
    """A column of the register: its key in a row, its Russian header and its width in the XLSX (characters)."""

    key: str
    header: str
    width: int


COLUMNS = (
    Column("number", "№", 13),
    Column("received_at", "Дата и время поступления", 18),
    Column("registered_at", "Дата регистрации", 18),
    Column("channel", "Канал", 16),
    Column("client", "Заявитель", 28),
    Column("contact", "Контакт", 26),
    Column("subject", "Тема письма", 40),
    Column("type", "Тип", 22),
    Column("topic", "Тематика", 24),
    Column("urgency", "Срочность", 11),
    Column("unit", "Подразделение", 22),
    Column("assignee", "Исполнитель", 22),
    Column("status", "Статус", 18),
    Column("due_date", "Срок ответа по закону", 14),
    Column("control_date", "Контрольная дата", 14),
    Column("answered_at", "Дата ответа", 14),
    Column("refusal_ground", "Основание отказа", 40),
    Column("forwarded_to", "Куда перенаправлен", 28),
    Column("overdue", "Просрочен", 11),
)
HEADERS = tuple(c.header for c in COLUMNS)
DATE_FORMAT = "%d.%m.%Y"
DATETIME_FORMAT = "%d.%m.%Y %H:%M"


def _forwarded_to(session: Session, requests: Sequence[Request]) -> dict[int, str]:
    """Where each request of a chunk was last forwarded (the body named in its forwarding event), in one query
    that reads only forwarding events (loading every event of the register's requests reads half a million)."""
    ids = [r.id for r in requests]
    found: dict[int, str] = {}
    if not ids:
        return found
    for request_id, data in session.execute(
        select(Event.request_id, Event.data)
        .where(Event.request_id.in_(ids), Event.to_status == Status.forwarded)
        .order_by(Event.id)
    ):
        if request_id is not None and isinstance(data, dict) and data.get("forwarded_to"):
            found[request_id] = str(data["forwarded_to"])
    return found


def _contact(request: Request) -> str:
    if request.reply_email:
        return request.reply_email
    contacts = request.client.contacts
    for kind in ("email", "phone", "social"):
        for contact in contacts:
            if contact.kind == kind:
                return contact.value
    return request.client.postal_address


def _chunks(session: Session, base: Select[Request], chunk: int) -> Iterator[Sequence[Request]]:
    """The requests of ``base`` in registration order, ``chunk`` at a time by keyset (registration time, id).

    Each chunk's objects leave the session before the next is read, so the whole register streams in bounded
    memory at any size (five years is 100,000+ requests and half a million events).
    """
    ordered = base.where(Request.registered_at.is_not(None)).order_by(None).order_by(Request.registered_at, Request.id)
    after: tuple[dt.datetime, int] | None = None
    while True:
        query = ordered.limit(chunk)
        if after is not None:
            moment, last_id = after
            # A row comparison: both databases walk the (registered_at, id) index from there (an OR of the two
            # conditions made PostgreSQL sort the rest of the register for every chunk).
            bound = tuple_(literal(moment, Request.registered_at.type), literal(last_id))
            query = query.where(tuple_(Request.registered_at, Request.id) > bound)
        rows = session.scalars(query).all()
        if not rows:
            break
        after = (rows[-1].registered_at, rows[-1].id)  # type: ignore[assignment]
        yield rows
        session.expunge_all()
        if len(rows) < chunk:
            break
    # Registered rows without a registration time (none are written so; old data might hold some).
    yield session.scalars(base.where(Request.registered_at.is_(None)).order_by(None).order_by(Request.id)).all()


def register_rows(
    session: Session,
    settings: Settings,
    today: dt.date,
    query: Select[Request] | None = None,
    *,
    chunk: int = 1000,
) -> Iterator[dict[str, object]]:
    """One dict per registered request of ``query`` (default: all), in registration order.

    Dates and times are the department's local ones (naive values: a spreadsheet has no time zones). Read in
    chunks (see ``_chunks``): the session must hold no pending changes while it runs.
    """
    from mailservice.classify.rules import load_taxonomy

    tax = load_taxonomy()
    base = query if query is not None else select(Request)
    base = base.where(Request.number.is_not(None)).options(selectinload(Request.client).selectinload(Client.contacts))
    for rows in _chunks(session, base, chunk):
        forwarded = _forwarded_to(session, rows)
        yield from (_register_row(r, settings, today, tax, forwarded) for r in rows)


def _register_row(
    request: Request, settings: Settings, today: dt.date, tax: Any, forwarded: dict[int, str]
) -> dict[str, object]:
    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(settings.tz).replace(tzinfo=None, microsecond=0) if moment else None

    answered = local(request.answered_at)
    ground = REFUSAL_GROUNDS.get(request.refusal_ground or "")
    try:
        channel = CHANNEL_NAMES[Channel(request.channel)]
    except ValueError:
        channel = request.channel
    try:
        status = STATUS_NAMES[Status(request.status)]
    except ValueError:
        status = request.status
    return {
        "number": request.number,
        "received_at": local(request.received_at),
        "registered_at": local(request.registered_at),
        "channel": channel,
        "client": request.client.display_name,
        "contact": _contact(request),
        "subject": request.subject,
        "type": tax["type"].display_name(request.type),
        "topic": tax["topic"].display_name(request.topic),
        "urgency": tax["urgency"].display_name(request.urgency),
        "unit": request.unit,
        "assignee": request.assignee,
        "status": status,
        "due_date": request.due_date,
        "control_date": request.control_date,
        "answered_at": answered.date() if answered and request.status != Status.refused else None,
        "refusal_ground": (ground.title if ground else request.refusal_ground or "")
        if request.status == Status.refused
        else "",
        "forwarded_to": forwarded.get(request.id, ""),
        "overdue": "да" if is_overdue(request, today) else "нет",
    }


def _text(value: object) -> object:
    """A CSV field: dates in the Russian form, None as empty."""
    if isinstance(value, dt.datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, dt.date):
        return value.strftime(DATE_FORMAT)
    return "" if value is None else value


def csv_chunks(rows: Iterable[dict[str, object]], per_chunk: int = 500) -> Iterator[str]:
    """The register as CSV text in pieces, header first (the Russian column names), for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(_text(row[c.key])) for c in COLUMNS])  # "=HYPERLINK(...)" stays text
        if count % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(rows: Iterable[dict[str, object]], target: TextIO) -> int:
    """Write the register as CSV (a header of the Russian column names); returns the number of rows."""
    counted = _Counted(rows)
    for piece in csv_chunks(counted):
        target.write(piece)
    return counted.count


class _Counted:
    """An iterable of rows that counts what was taken from it."""

    def __init__(self, rows: Iterable[dict[str, object]]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[dict[str, object]]:
        for row in self.rows:
            self.count += 1
            yield row


def xlsx_bytes(rows: Iterable[dict[str, object]]) -> tuple[bytes, int]:
    """The register as XLSX (bytes, number of rows): bold frozen header, auto-filter over the table, widths."""
    # Imported here: openpyxl (and the numpy it pulls in) costs a fifth of a second at every start of the CLI.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Реестр запросов"
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    count = 0
    for row in rows:
        sheet.append(safe_row(row[c.key] for c in COLUMNS))
        count += 1
        for index, column in enumerate(COLUMNS, start=1):
            value = row[column.key]
            if isinstance(value, dt.datetime):
                sheet.cell(row=count + 1, column=index).number_format = "DD.MM.YYYY HH:MM"
            elif isinstance(value, dt.date):
                sheet.cell(row=count + 1, column=index).number_format = "DD.MM.YYYY"
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue(), count


def write_xlsx(rows: Iterable[dict[str, object]], path: Path) -> int:
    """Write the register as an XLSX file; returns the number of rows."""
    data, count = xlsx_bytes(rows)
    path.write_bytes(data)
    return count
