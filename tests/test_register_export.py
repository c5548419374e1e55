"""The register spreadsheet in Russian (the Procedure p. 8): from the console's queue with its filters, and from the
CLI; XLSX read back with openpyxl, CSV with the same columns, cells formula-safe (issue 17)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import openpyxl

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, login, mail_request, phone_request

# The columns as README ("Реестр запросов в таблице") names them, in order.
COLUMNS = [
    "№", "Дата и время поступления", "Дата регистрации", "Канал", "Заявитель", "Контакт", "Тема письма", "Тип",
    "Тематика", "Срочность", "Подразделение", "Исполнитель", "Статус", "Срок ответа по закону", "Контрольная дата",
    "Дата ответа", "Основание отказа", "Куда перенаправлен", "Просрочен",
]  # fmt: skip
OPERATOR = "operator@dizo.test"


def _seed(settings: Settings) -> dict[str, int]:
    ids = {
        "mail": mail_request(settings),
        "phone": phone_request(
            settings, name="Кузнецов Олег", phone="+7 913 000-00-00", subject='=HYPERLINK("http://x")', text="т"
        ),
        "phone2": phone_request(settings, name="Орлова Мария", phone="+7 913 111-11-11", subject="Вакансии", text="т"),
    }
    now = utcnow()
    with session_scope(settings) as session:
        phone = session.get(Request, ids["phone"])
        assert phone is not None
        phone.assignee, phone.unit = "Петров П. П.", "Отдел аренды"
        service.change_status(
            session, settings, phone, Status.forwarded, now=now, actor="t", forwarded_to="Росреестр по НСО"
        )
        phone2 = session.get(Request, ids["phone2"])
        assert phone2 is not None
        service.change_status(
            session, settings, phone2, Status.refused, now=now, actor="t", ground="8fz-20-1-3", comment="Не наше"
        )
    return ids


def _xlsx_rows(data: bytes) -> list[tuple[object, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    return list(book.worksheets[0].iter_rows(values_only=True))


def test_console_register_xlsx_of_a_filtered_queue(settings: Settings) -> None:
    ids = _seed(settings)
    add_staff(settings, OPERATOR, Role.operator)
    http = client_for(settings)
    login(http, OPERATOR)
    page = http.get("/staff/queue?channel=phone&status=all").text
    assert 'href="/staff/queue/register.xlsx?status=all&amp;channel=phone"' in page  # the button keeps the filters
    response = http.get("/staff/queue/register.xlsx?status=all&channel=phone")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    rows = _xlsx_rows(response.content)
    assert list(rows[0]) == COLUMNS
    body = {row[4]: dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]}
    assert set(body) == {"Кузнецов Олег", "Орлова Мария"}  # the e-mailed request is filtered out
    forwarded, refused = body["Кузнецов Олег"], body["Орлова Мария"]
    assert forwarded["Канал"] == "телефон" and forwarded["Статус"] == "перенаправлен"
    assert forwarded["Куда перенаправлен"] == "Росреестр по НСО"
    assert forwarded["Исполнитель"] == "Петров П. П." and forwarded["Подразделение"] == "Отдел аренды"
    # A leading + or = is a formula start: a text cell with the quote prefix, and no apostrophe in what it says
    # (staff-day tryout of 7 December: «'+7 913 …» in every phone).
    assert forwarded["Контакт"] == "+7 913 000-00-00"
    assert forwarded["Тема письма"] == '=HYPERLINK("http://x")'
    assert forwarded["Тип"] == "Запрос информации" and forwarded["Просрочен"] == "нет"
    assert isinstance(forwarded["Дата и время поступления"], dt.datetime)
    assert isinstance(forwarded["Срок ответа по закону"], dt.datetime)  # a date cell (openpyxl reads datetimes)
    assert refused["Статус"] == "отказано" and "ст. 20 ч. 1 п. 3 8-ФЗ" in str(refused["Основание отказа"])
    assert refused["Дата ответа"] is None  # a refusal is no answer
    # Frozen header, auto-filter and widths (read in full mode: these are sheet properties).
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets[0]
    typed = {cell.value: (cell.data_type, cell.quotePrefix) for row in sheet.iter_rows(min_row=2) for cell in row}
    assert typed["+7 913 000-00-00"] == typed['=HYPERLINK("http://x")'] == ("s", True)  # text, never a formula
    assert typed["Кузнецов Олег"] == ("s", False)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:S3"
    assert (sheet.column_dimensions["G"].width or 0) > 20

    searched = _xlsx_rows(http.get("/staff/queue/register.xlsx?status=all&q=Вакансии").content)
    assert [row[4] for row in searched[1:]] == ["Орлова Мария"]  # the search box narrows the register too
    csv_response = http.get("/staff/queue/register.csv?status=all&channel=phone")
    table = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    assert table[0] == COLUMNS and len(table) == 3
    assert ids  # every request was registered


def test_cli_export_in_russian_with_filters(settings: Settings, tmp_path: Path) -> None:
    _seed(settings)
    target = tmp_path / "r.xlsx"
    assert main(["requests", "export", "--format", "xlsx", "--output", str(target)]) == 0
    rows = _xlsx_rows(target.read_bytes())
    assert list(rows[0]) == COLUMNS and len(rows) == 4
    out = tmp_path / "r.csv"
    assert main(["requests", "export", "--format", "csv", "--status", "refused", "--output", str(out)]) == 0
    table = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    assert table[0] == COLUMNS and [r[4] for r in table[1:]] == ["Орлова Мария"]
    assert table[1][COLUMNS.index("Дата регистрации")].count(".") == 2  # 05.12.2026 10:15, the Russian form
    assert main(["requests", "export", "--status", "nope", "--output", str(out)]) == 2
