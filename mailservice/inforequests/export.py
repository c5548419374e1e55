"""The request register as the spreadsheet seed 004 p. 8 asks for (CSV or XLSX)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mailservice.config import Settings
from mailservice.inforequests import deadlines
from mailservice.inforequests.deadlines import Deadline
from mailservice.inforequests.lifecycle import OPEN_STATUSES, Status
from mailservice.inforequests.models import Client, Request
from mailservice.spreadsheets import safe_record, safe_row
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


def _term(request: Request) -> Deadline | None:
    if request.due_date is None or request.control_date is None or Status(request.status) not in OPEN_STATUSES:
        return None
    return Deadline(request.due_date, request.control_date)


def is_overdue(request: Request, today: dt.date) -> bool:
    """Still open after its legal due date."""
    term = _term(request)
    return term is not None and deadlines.is_overdue(term, today)


def is_due_soon(request: Request, today: dt.date, calendar: Calendar, working_days: int) -> bool:
    """Still open, not overdue, and its control date at most ``working_days`` working days away."""
    term = _term(request)
    return term is not None and deadlines.is_due_soon(term, today, calendar, working_days)


def register_rows(session: Session, settings: Settings, today: dt.date) -> Iterator[dict[str, object]]:
    """One dict per registered request, in registration order."""
    query = (
        select(Request)
        .where(Request.number.is_not(None))
        .options(selectinload(Request.client).selectinload(Client.contacts))
        .order_by(Request.registered_at, Request.id)
    )
    for request in session.scalars(query):
        registered = request.registered_at.astimezone(settings.tz) if request.registered_at else None
        yield {
            "number": request.number,
            "registered_at": registered.strftime("%Y-%m-%d %H:%M") if registered else "",
            "channel": request.channel,
            "client": request.client.display_name,
            "email": request.reply_email or request.client.email or "",
            "subject": request.subject,
            "type": request.type,
            "urgency": request.urgency,
            "status": request.status,
            "due_date": request.due_date.isoformat() if request.due_date else "",
            "overdue": "yes" if is_overdue(request, today) else "no",
        }


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
