"""Reading and writing the register as a spreadsheet (XLSX through openpyxl, or CSV).

Export follows the template: one header row, the columns in template order, one process per row, repeated values
written in every row and never a merged cell (seed 003, appendix 2, section II: merged cells break sorting and
filtering). Import finds the header row by its titles (departments' files often have a title above it), reads
merged cells by writing the merged value into every cell of the range, and says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from mailservice.processes.register import COLUMNS, MANDATORY, Column, Problem, RawRow, column_for_heading

SHEET_TITLE = "Реестр процессов"
HEADER_SEARCH_ROWS = 20  # the header row is looked for this far down
MIN_HEADER_MATCHES = 3


class SpreadsheetError(ValueError):
    """A file that cannot be read as a spreadsheet at all."""


@dataclass
class ReadResult:
    """Data rows of a file and the problems of its shape (header, merged cells)."""

    rows: list[RawRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    header_row: int = 0


def _text(value: object) -> str:
    """A cell's value as text: numbers without a spurious ".0", dates as DD.MM.YYYY."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y") if value.time() == dt.time() else value.strftime("%d.%m.%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value).strip()


def _map_header(cells: Sequence[str]) -> dict[int, Column]:
    mapping: dict[int, Column] = {}
    for index, cell in enumerate(cells):
        column = column_for_heading(cell) if cell else None
        if column is not None and column not in mapping.values():
            mapping[index] = column
    return mapping


def _rows_from_table(table: Sequence[tuple[int, Sequence[str]]]) -> ReadResult:
    """Find the header among the first rows of ``(row number, cells)``, then read every non-blank data row."""
    result = ReadResult()
    header_at = None
    mapping: dict[int, Column] = {}
    for position, (_number, cells) in enumerate(table[:HEADER_SEARCH_ROWS]):
        candidate = _map_header(cells)
        if len(candidate) >= MIN_HEADER_MATCHES:
            header_at, mapping = position, candidate
            break
    if header_at is None:
        result.problems.append(
            Problem(
                1,
                "",
                "не найдена строка заголовков: нужны названия граф шаблона реестра («Идентификатор процесса*» и др.)",
            )
        )
        return result
    header_number, header_cells = table[header_at]
    result.header_row = header_number
    for column in MANDATORY:
        if column not in mapping.values():
            result.problems.append(Problem(header_number, column.title, "в файле нет обязательной графы"))
    for index, cell in enumerate(header_cells):
        if cell and index not in mapping:
            result.problems.append(
                Problem(header_number, cell, "графа не из шаблона реестра (или повторяется): не прочитана", "warning")
            )
    for number, cells in table[header_at + 1 :]:
        values = {column.code: cells[index] if index < len(cells) else "" for index, column in mapping.items()}
        if any(values.values()):
            result.rows.append(RawRow(number, values))
    return result


def _sheet(path: Path | io.BytesIO) -> Worksheet:
    try:
        workbook = load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError... for a file that is not XLSX
        raise SpreadsheetError(f"файл не читается как XLSX: {exc}") from exc
    sheet = workbook[SHEET_TITLE] if SHEET_TITLE in workbook.sheetnames else workbook.worksheets[0]
    assert isinstance(sheet, Worksheet)
    return sheet


def read_xlsx(path: Path | io.BytesIO) -> ReadResult:
    """Read an XLSX register; merged ranges are filled into every cell and reported as warnings."""
    sheet = _sheet(path)
    merged: list[tuple[str, int, int, str]] = []
    for cell_range in list(sheet.merged_cells.ranges):
        value = sheet.cell(cell_range.min_row, cell_range.min_col).value
        coord = cell_range.coord
        sheet.unmerge_cells(coord)
        for row in range(cell_range.min_row, cell_range.max_row + 1):
            for col in range(cell_range.min_col, cell_range.max_col + 1):
                sheet.cell(row, col).value = value
        merged.append((coord, cell_range.min_row, cell_range.min_col, _text(value)))
    table = [
        (index, [_text(v) for v in values]) for index, values in enumerate(sheet.iter_rows(values_only=True), start=1)
    ]
    result = _rows_from_table(table)
    header = dict(table).get(result.header_row, [])
    for coord, row, col, value in sorted(merged, key=lambda m: (m[1], m[2])):
        title = _title_at(header, col - 1) or get_column_letter(col)
        result.problems.append(
            Problem(
                row,
                title,
                f"объединённые ячейки {coord}: значение «{value}» записано в каждую ячейку диапазона "
                "(шаблон реестра не допускает объединения ячеек)",
                "warning",
            )
        )
    result.problems.sort(key=lambda p: p.row)
    return result


def _title_at(header: Sequence[str], index: int) -> str:
    if index >= len(header):
        return ""
    column = column_for_heading(header[index])
    return column.title if column is not None else header[index]


def read_csv(data: bytes) -> ReadResult:
    """Read a CSV register (UTF-8 with or without BOM, or Windows-1251; comma, semicolon or tab separated)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251")
    # The delimiter is the one under which the header row is recognised best (a header title itself holds commas,
    # so counting characters would mislead).
    best: list[tuple[int, list[str]]] = []
    best_matches = -1
    for delimiter in (",", ";", "\t"):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        table = [(number, [cell.strip() for cell in cells]) for number, cells in enumerate(reader, start=1)]
        matches = max((len(_map_header(cells)) for _n, cells in table[:HEADER_SEARCH_ROWS]), default=0)
        if matches > best_matches:
            best, best_matches = table, matches
    table = best
    return _rows_from_table(table)


def read_file(path: Path) -> ReadResult:
    """Read an XLSX or CSV register by its extension."""
    if not path.is_file():
        raise SpreadsheetError(f"файл не найден: {path}")
    if path.suffix.lower() == ".csv":
        return read_csv(path.read_bytes())
    return read_xlsx(path)


def headings() -> list[str]:
    """The header row of the template."""
    return [c.heading for c in COLUMNS]


def write_xlsx(table: Sequence[Sequence[str]]) -> bytes:
    """An XLSX file: the header row, then ``table`` (rows of cells in template order); no merged cells."""
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = SHEET_TITLE
    sheet.append(headings())
    for row in table:
        sheet.append([str(v) for v in row])
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[1]:
        cell.font = bold
        cell.alignment = wrap
    widths = {"process_id": 14, "status": 26, "links": 30, "kind": 16, "custom": 14}
    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = widths.get(column.code, 36)
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            cell.alignment = wrap
    # Sorting and filtering are why cells are never merged: give the reader the filter straight away.
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{max(sheet.max_row, 1)}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_csv(table: Sequence[Sequence[str]]) -> bytes:
    """A CSV file (UTF-8 with BOM so that spreadsheet programs read Cyrillic, comma, CRLF per RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headings())
    writer.writerows(table)
    return buffer.getvalue().encode("utf-8-sig")
