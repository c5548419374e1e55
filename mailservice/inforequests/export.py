"""The request register as the spreadsheet seed 004 p. 8 asks for (CSV or XLSX)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests import deadlines
from mailservice.inforequests.deadlines import Deadline
from mailservice.inforequests.lifecycle import OPEN_STATUSES, Status
from mailservice.inforequests.models import Client, ClientContact, Request
from mailservice.spreadsheets import safe_cell, safe_record, safe_row
from mailservice.workdays import Calendar

COLUMNS = (
    "number",
    "registered_at",
    "channel",
    "client",
    "email",
    "subject",
    "type",
    "urgency",
    "status",
    "due_date",
    "overdue",
)
HEADERS_RU = (
    "Рег. номер",
    "Дата и время регистрации",
    "Канал",
    "Клиент",
    "Эл. почта",
    "Тема",
    "Тип",
    "Срочность",
    "Статус",
    "Срок ответа",
    "Просрочен",
)


class _Term(Protocol):
    status: str
    due_date: dt.date | None
    control_date: dt.date | None


def _term(request: _Term) -> Deadline | None:
    if request.due_date is None or request.control_date is None or Status(request.status) not in OPEN_STATUSES:
        return None
    return Deadline(request.due_date, request.control_date)


def is_overdue(request: _Term, today: dt.date) -> bool:
    """Still open after its legal due date."""
    term = _term(request)
    return term is not None and deadlines.is_overdue(term, today)


def is_due_soon(request: Request, today: dt.date, calendar: Calendar, working_days: int) -> bool:
    """Still open, not overdue, and its control date at most ``working_days`` working days away."""
    term = _term(request)
    return term is not None and deadlines.is_due_soon(term, today, calendar, working_days)


_REGISTER_COLUMNS = (
    Request.id,
    Request.number,
    Request.registered_at,
    Request.channel,
    Request.client_id,
    Request.reply_email,
    Request.subject,
    Request.type,
    Request.urgency,
    Request.status,
    Request.due_date,
    Request.control_date,
)


def register_rows(
    session: Session, settings: Settings, today: dt.date, *, chunk: int = 2000
) -> Iterator[dict[str, object]]:
    """One dict per registered request, in registration order.

    Plain rows read in chunks by (registration time, id), with their clients' names and addresses read per chunk:
    the whole register streams in bounded memory and without an ORM object per row, whatever its size.
    """
    after: tuple[dt.datetime, int] | None = None
    while True:
        query = (
            select(*_REGISTER_COLUMNS)
            .where(Request.number.is_not(None), Request.registered_at.is_not(None))
            .order_by(Request.registered_at, Request.id)
            .limit(chunk)
        )
        if after is not None:
            bound = tuple_(literal(after[0], Request.registered_at.type), literal(after[1]))
            query = query.where(tuple_(Request.registered_at, Request.id) > bound)
        rows = session.execute(query).all()
        if not rows:
            break
        yield from _register_chunk(session, settings, today, rows)
        after = (rows[-1].registered_at, rows[-1].id)
        if len(rows) < chunk:
            break
    # Registered requests without a registration time (none are written so; kept should old data have them).
    rows = session.execute(
        select(*_REGISTER_COLUMNS)
        .where(Request.number.is_not(None), Request.registered_at.is_(None))
        .order_by(Request.id)
    ).all()
    yield from _register_chunk(session, settings, today, rows)


def _register_chunk(
    session: Session, settings: Settings, today: dt.date, rows: Sequence[Any]
) -> Iterator[dict[str, object]]:
    client_ids = {r.client_id for r in rows}
    if not client_ids:
        return
    clients = {
        c.id: c
        for c in session.execute(select(Client.id, Client.name, Client.organisation).where(Client.id.in_(client_ids)))
    }
    # The client's preferred address as Client.email has it: proven first, then the newest.
    emails: dict[int, tuple[bool, int, str]] = {}
    for client_id, contact_id, value, proven_at in session.execute(
        select(ClientContact.client_id, ClientContact.id, ClientContact.value, ClientContact.proven_at).where(
            ClientContact.client_id.in_(client_ids), ClientContact.kind == "email"
        )
    ):
        key = (proven_at is None, -contact_id, value)
        if client_id not in emails or key < emails[client_id]:
            emails[client_id] = key
    for r in rows:
        client = clients.get(r.client_id)
        client_email = emails[r.client_id][2] if r.client_id in emails else None
        name = (client.name or client.organisation) if client else ""
        registered = r.registered_at.astimezone(settings.tz) if r.registered_at else None
        yield {
            "number": r.number,
            "registered_at": registered.strftime("%Y-%m-%d %H:%M") if registered else "",
            "channel": r.channel,
            "client": name or client_email or f"клиент №{r.client_id}",
            "email": r.reply_email or client_email or "",
            "subject": r.subject,
            "type": r.type,
            "urgency": r.urgency,
            "status": r.status,
            "due_date": r.due_date.isoformat() if r.due_date else "",
            "overdue": "yes" if is_overdue(r, today) else "no",
        }


# Columns whose text comes from outside (citizens, staff); the others are numbers, dates and our own codes.
FREE_TEXT = frozenset({"client", "email", "subject"})


def csv_chunks(rows: Iterable[dict[str, object]], per_chunk: int = 500) -> Iterator[str]:
    """The register as CSV text in pieces (header first), for a streamed download; free text made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    free = [c in FREE_TEXT for c in COLUMNS]
    for count, row in enumerate(rows, start=1):
        writer.writerow([safe_cell(row[c]) if f else row[c] for c, f in zip(COLUMNS, free, strict=True)])
        if count % per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(rows: Iterable[dict[str, object]], target: TextIO) -> int:
    """Write the register as CSV (header with the column names); returns the number of rows."""
    writer = csv.DictWriter(target, fieldnames=COLUMNS)
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(safe_record(row))  # a citizen's "=HYPERLINK(...)" stays text
        count += 1
    return count


def write_xlsx(rows: Iterable[dict[str, object]], path: Path) -> int:
    """Write the register as XLSX: one header row of column names, one row per request, and a second sheet
    that explains each column in Russian."""
    # Imported here: openpyxl (and the numpy it pulls in) costs a fifth of a second at every start of the CLI.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Реестр запросов"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    count = 0
    for row in rows:
        sheet.append(safe_row(row[c] for c in COLUMNS))
        count += 1
    sheet.freeze_panes = "A2"
    legend = workbook.create_sheet("Столбцы")
    legend.append(["Столбец", "Значение"])
    for name, caption in zip(COLUMNS, HEADERS_RU, strict=True):
        legend.append([name, caption])
    workbook.save(path)
    return count
