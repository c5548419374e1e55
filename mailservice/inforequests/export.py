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
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, literal, select, tuple_
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests import deadlines
from mailservice.inforequests.lifecycle import (
    CHANNEL_NAMES,
    REFUSAL_GROUNDS,
    STATUS_NAMES,
    Status,
)
from mailservice.inforequests.models import Client, ClientContact, Event, Request, client_display_name
from mailservice.inforequests.queues import deadline_of
from mailservice.spreadsheets import safe_cell, xlsx_value


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
KEYS = tuple(c.key for c in COLUMNS)
DATE_FORMAT = "%d.%m.%Y"
DATETIME_FORMAT = "%d.%m.%Y %H:%M"


# What the register reads of a request and its client: plain rows of one joined query per chunk (ORM objects of
# five years, 100,000+ requests with their clients and contacts, cost several times the SQL).
_FIELDS = (
    Request.id,
    Request.number,
    Request.received_at,
    Request.registered_at,
    Request.channel,
    Request.reply_email,
    Request.subject,
    Request.type,
    Request.topic,
    Request.urgency,
    Request.unit,
    Request.assignee,
    Request.status,
    Request.due_date,
    Request.control_date,
    Request.answered_at,
    Request.refusal_ground,
    Request.client_id,
    Client.name.label("client_name"),
    Client.organisation.label("client_organisation"),
    Client.postal_address.label("client_postal_address"),
)


class _Contact(NamedTuple):
    """A contact as the register reads it (see :class:`mailservice.inforequests.models.ContactLike`)."""

    id: int
    kind: str
    value: str
    proven: bool


def _contacts(session: Session, client_ids: set[int]) -> dict[int, list[_Contact]]:
    """The contacts of these clients, oldest first, in one query."""
    found: dict[int, list[_Contact]] = {}
    if not client_ids:
        return found
    for client_id, contact_id, kind, value, proven_at in session.execute(
        select(
            ClientContact.client_id, ClientContact.id, ClientContact.kind, ClientContact.value, ClientContact.proven_at
        )
        .where(ClientContact.client_id.in_(client_ids))
        .order_by(ClientContact.id)
    ):
        found.setdefault(client_id, []).append(_Contact(contact_id, kind, value, proven_at is not None))
    return found


def _forwarded_to(session: Session, request_ids: Sequence[int]) -> dict[int, str]:
    """Where each request of a chunk was last forwarded (the body named in its forwarding event), in one query
    that reads only forwarding events (loading every event of the register's requests reads half a million)."""
    found: dict[int, str] = {}
    if not request_ids:
        return found
    for request_id, data in session.execute(
        select(Event.request_id, Event.data)
        .where(Event.request_id.in_(request_ids), Event.to_status == Status.forwarded)
        .order_by(Event.id)
    ):
        if request_id is not None and isinstance(data, dict) and data.get("forwarded_to"):
            found[request_id] = str(data["forwarded_to"])
    return found


def _contact(reply_email: str | None, contacts: Sequence[_Contact], postal_address: str) -> str:
    """Where to reach the requester: the request's reply address, else the client's first e-mail, phone or social
    contact, else the postal address."""
    if reply_email:
        return reply_email
    for kind in ("email", "phone", "social"):
        for contact in contacts:
            if contact.kind == kind:
                return contact.value
    return postal_address


def _chunks(session: Session, base: Select[*tuple[Any, ...]], chunk: int) -> Iterator[Sequence[Row[*tuple[Any, ...]]]]:
    """The rows of ``base`` in registration order, ``chunk`` at a time by keyset (registration time, id).

    Plain rows, nothing kept between chunks: the whole register streams in bounded memory at any size (five years
    is 100,000+ requests and half a million events).
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
        rows = session.execute(query).all()
        if not rows:
            break
        after = (rows[-1].registered_at, rows[-1].id)
        yield rows
        if len(rows) < chunk:
            break
    # Registered rows without a registration time (none are written so; old data might hold some).
    yield session.execute(base.where(Request.registered_at.is_(None)).order_by(None).order_by(Request.id)).all()


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
    chunks (see ``_chunks``), three queries each (the requests with their clients, the clients' contacts, the
    forwarding events), whatever the chunk's size.
    """
    from mailservice.classify.rules import load_taxonomy

    tax = load_taxonomy()
    tz = settings.tz
    chosen = (query if query is not None else select(Request)).where(Request.number.is_not(None))
    base = chosen.with_only_columns(*_FIELDS).join_from(Request, Client, Client.id == Request.client_id)
    for rows in _chunks(session, base, chunk):
        contacts = _contacts(session, {r.client_id for r in rows})
        forwarded = _forwarded_to(session, [r.id for r in rows])
        for r in rows:
            yield _register_row(r, contacts.get(r.client_id, []), tz, today, tax, forwarded)


def _register_row(
    r: Row[*tuple[Any, ...]],
    contacts: Sequence[_Contact],
    tz: ZoneInfo,
    today: dt.date,
    tax: Any,
    forwarded: dict[int, str],
) -> dict[str, object]:
    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(tz).replace(tzinfo=None, microsecond=0) if moment else None

    answered = local(r.answered_at)
    ground = REFUSAL_GROUNDS.get(r.refusal_ground or "")
    term = deadline_of(r.status, r.due_date, r.control_date)
    return {
        "number": r.number,
        "received_at": local(r.received_at),
        "registered_at": local(r.registered_at),
        "channel": CHANNEL_NAMES.get(r.channel, r.channel),  # keyed by StrEnum members: a plain string finds them
        "client": client_display_name(r.client_name, r.client_organisation, lambda: contacts, r.client_id),
        "contact": _contact(r.reply_email, contacts, r.client_postal_address),
        "subject": r.subject,
        "type": tax["type"].display_name(r.type),
        "topic": tax["topic"].display_name(r.topic),
        "urgency": tax["urgency"].display_name(r.urgency),
        "unit": r.unit,
        "assignee": r.assignee,
        "status": STATUS_NAMES.get(r.status, r.status),
        "due_date": r.due_date,
        "control_date": r.control_date,
        "answered_at": answered.date() if answered and r.status != Status.refused else None,
        "refusal_ground": (ground.title if ground else r.refusal_ground or "") if r.status == Status.refused else "",
        "forwarded_to": forwarded.get(r.id, ""),
        "overdue": "да" if term is not None and deadlines.is_overdue(term, today) else "нет",
    }


@lru_cache(maxsize=4096)
def _date_text(day: dt.date) -> str:
    """A date in the Russian form (cached: the register's dates repeat across its rows, strftime is costly)."""
    return day.strftime(DATE_FORMAT)


# Most of the register's texts repeat from row to row (channel, type, topic, status, unit, assignee, "да"/"нет").
_safe_text = lru_cache(maxsize=8192)(safe_cell)


def _text(value: object) -> object:
    """A CSV field: text formula-safe, dates in the Russian form, None as empty."""
    if isinstance(value, str):
        return _safe_text(value)  # "=HYPERLINK(...)" stays text
    if isinstance(value, dt.datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, dt.date):
        return _date_text(value)
    return "" if value is None else value


def csv_chunks(rows: Iterable[dict[str, object]], per_chunk: int = 500) -> Iterator[str]:
    """The register as CSV text in pieces, header first (the Russian column names), for a streamed download."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADERS)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_text(row[key]) for key in KEYS])
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


def write_xlsx_to(rows: Iterable[dict[str, object]], target: str | Path | BinaryIO) -> int:
    """Write the register as XLSX to a file name or a binary file (bold frozen header, auto-filter over the table,
    widths); returns the number of rows.

    Streamed: openpyxl's write-only mode writes each row to a temporary file as it comes and keeps no cell, so
    memory stays flat at any size (the in-memory workbook held every cell: five years, 100,000 rows, took the web
    process +900 MB, tryout W4). Widths and frozen panes go before the first row, the auto-filter after the last
    (the sheet's XML is written in that order, ECMA-376 part 1, 18.3.1.99).
    """
    # Imported here: openpyxl (and the numpy it pulls in) costs a fifth of a second at every start of the CLI.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Реестр запросов")
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    bold, wrapped = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    header = []
    for title in HEADERS:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font, cell.alignment = bold, wrapped
        header.append(cell)
    sheet.append(header)

    def typed(value: object) -> object:
        # A date or date-time in the Russian form; a text that looks like a formula as a text cell with the quote
        # prefix (spreadsheets.xlsx_value); other values as they are.
        if isinstance(value, dt.datetime | dt.date):
            cell = WriteOnlyCell(sheet, value=value)
            cell.number_format = "DD.MM.YYYY HH:MM" if isinstance(value, dt.datetime) else "DD.MM.YYYY"
            return cell
        value, formula_like = xlsx_value(value)
        if formula_like:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type, cell.quotePrefix = "s", True
            return cell
        return value

    count = 0
    for row in rows:
        sheet.append([typed(row[key]) for key in KEYS])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    workbook.save(target)
    return count


def xlsx_bytes(rows: Iterable[dict[str, object]]) -> tuple[bytes, int]:
    """The register as XLSX (bytes, number of rows): :func:`write_xlsx_to` into memory, for small registers and
    tests (the console streams a large one from a temporary file)."""
    buffer = io.BytesIO()
    count = write_xlsx_to(rows, buffer)
    return buffer.getvalue(), count


def write_xlsx(rows: Iterable[dict[str, object]], path: Path) -> int:
    """Write the register as an XLSX file; returns the number of rows."""
    return write_xlsx_to(rows, path)
