"""Reading and writing the register as a spreadsheet (XLSX through openpyxl, or CSV).

Export follows the template: one header row, the columns in template order, one process per row, repeated values
written in every row and never a merged cell (seed 003, appendix 2, section II: merged cells break sorting and
filtering). Import finds the header row by its titles (departments' files often have a title above it), reads
merged cells by writing the merged value into every cell of the range, and says so.

Reading is bounded whatever the file: XLSX in openpyxl's read-only mode after a streaming pass over the sheet's XML
that finds the extent of the data and the merged ranges (read-only mode has no ``merged_cells``) and refuses a
file beyond :class:`SheetLimits` with the cell named. Every cell written is formula-safe
(:mod:`mailservice.spreadsheets`); the apostrophe that protects it is dropped again on import.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import posixpath
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.worksheet.cell_range import CellRange
from openpyxl.worksheet.worksheet import Worksheet

from mailservice.config import Settings
from mailservice.processes.register import COLUMNS, Column, Problem, RawRow, column_for_heading
from mailservice.spreadsheets import EncodingError, csv_bytes, decode_text, restore_cell, xlsx_value

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
    encoding: str = ""  # of a CSV file, as staff know it («Windows-1251»)


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
    return restore_cell(str(value).strip())


def _map_header(cells: Sequence[str], columns: Sequence[Column] = COLUMNS) -> dict[int, Column]:
    mapping: dict[int, Column] = {}
    for index, cell in enumerate(cells):
        column = column_for_heading(cell, columns) if cell else None
        if column is not None and column not in mapping.values():
            mapping[index] = column
    return mapping


def _rows_from_table(table: Sequence[tuple[int, Sequence[str]]], columns: Sequence[Column] = COLUMNS) -> ReadResult:
    """Find the header among the first rows of ``(row number, cells)``, then read every non-blank data row
    (``columns``: the register's form)."""
    result = ReadResult()
    header_at = None
    mapping: dict[int, Column] = {}
    for position, (_number, cells) in enumerate(table[:HEADER_SEARCH_ROWS]):
        candidate = _map_header(cells, columns)
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
    for column in (c for c in columns if c.mandatory):
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


@dataclass(frozen=True)
class SheetLimits:
    """How large a register file may be (settings SPREADSHEET_*): a file is refused before it is expanded, so
    that a 16 KB file naming cell XFD1048576 cannot take gigabytes (openpyxl's normal mode builds every cell)."""

    max_rows: int = 10_000
    max_columns: int = 100
    max_merged: int = 1_000
    max_unpacked_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> SheetLimits:
        """The limits configured for this service."""
        return cls(
            settings.spreadsheet_max_rows,
            settings.spreadsheet_max_columns,
            settings.spreadsheet_max_merged,
            settings.spreadsheet_max_unpacked_mb * 1024 * 1024,
        )


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
# Every cell of a row, filled or not, up to Excel's own width: beyond it a row is not a spreadsheet's.
MAX_CELLS_PER_ROW = 16_384


@dataclass
class SheetShape:
    """What a streaming pass over the sheet's XML found: where values are, and the merged ranges."""

    last_row: int = 0
    last_column: int = 0
    merged: list[CellRange] = field(default_factory=list)


def _open_archive(source: Path | io.BytesIO, limits: SheetLimits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SpreadsheetError(f"файл не читается как XLSX: {exc}") from exc
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > limits.max_unpacked_bytes:
        mb = limits.max_unpacked_bytes // (1024 * 1024)
        raise SpreadsheetError(f"файл XLSX в распакованном виде больше {mb} МБ: он не похож на реестр процессов")
    for info in infos:
        # Everything but the sheets is read whole (shared strings, styles): each gets a quarter of the budget.
        if "/worksheets/" not in info.filename and info.file_size > limits.max_unpacked_bytes // 4:
            raise SpreadsheetError(
                f"часть файла XLSX {info.filename} слишком велика: файл не похож на реестр процессов"
            )
    return archive


def _no_doctype(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse a part with a document type declaration: Office XML has none, and without one no entity can be
    declared (expat 2.4+ also caps entity expansion, and ElementTree never fetches external entities)."""
    with archive.open(name) as stream:
        if b"<!DOCTYPE" in stream.read(4096).upper():
            raise SpreadsheetError(f"часть файла XLSX {name} содержит объявление DTD: это не реестр процессов")


def _xml_part(archive: zipfile.ZipFile, name: str) -> bytes:
    _no_doctype(archive, name)
    return archive.read(name)


def _sheet_part(archive: zipfile.ZipFile, title: str) -> str:
    """The archive path of the sheet openpyxl opens as ``title`` (workbook.xml and its relationships)."""
    try:
        workbook = ElementTree.fromstring(_xml_part(archive, "xl/workbook.xml"))  # noqa: S314 (see _xml_part)
        rels = ElementTree.fromstring(_xml_part(archive, "xl/_rels/workbook.xml.rels"))  # noqa: S314
    except (KeyError, ElementTree.ParseError) as exc:
        raise SpreadsheetError(f"файл не читается как XLSX: {exc}") from exc
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels.iter(f"{_PKG_REL}Relationship")}
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        if sheet.get("name") == title:
            target = targets.get(sheet.get(f"{_REL}id"), "")
            return target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
    raise SpreadsheetError("в файле XLSX не найден лист")


def _split_ref(ref: str) -> tuple[int, int]:
    column, row = coordinate_from_string(ref)
    return row, column_index_from_string(column)


def _beyond(limits: SheetLimits, where: str) -> SpreadsheetError:
    return SpreadsheetError(
        f"{where}: за пределами допустимого размера реестра ({limits.max_rows} строк, {limits.max_columns} граф; "
        "настройки SPREADSHEET_MAX_ROWS, SPREADSHEET_MAX_COLUMNS)"
    )


def scan_sheet(archive: zipfile.ZipFile, part: str, limits: SheetLimits) -> SheetShape:
    """One streaming pass over a sheet's XML (memory bounded whatever its size): the extent of the cells that hold
    a value and the merged ranges, refused with the cell or range named when beyond ``limits``."""
    shape = SheetShape()
    row_number = 0
    column = 0
    cells_in_row = 0
    parent: ElementTree.Element | None = None
    try:
        _no_doctype(archive, part)
        with archive.open(part) as stream:
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):  # noqa: S314 (_no_doctype)
                tag = element.tag
                if event == "start":
                    if tag == f"{_MAIN}sheetData":
                        parent = element
                    elif tag == f"{_MAIN}row":
                        row_number = int(element.get("r") or row_number + 1)
                        column, cells_in_row = 0, 0
                    continue
                if tag == f"{_MAIN}c":
                    ref = element.get("r")
                    column = _split_ref(ref)[1] if ref else column + 1
                    cells_in_row += 1
                    if cells_in_row > MAX_CELLS_PER_ROW:
                        raise _beyond(limits, f"строка {row_number}: больше {MAX_CELLS_PER_ROW} ячеек")
                    has_value = any(
                        child.tag in (f"{_MAIN}v", f"{_MAIN}is") and "".join(child.itertext()) != ""
                        for child in element
                    )
                    if has_value:
                        if row_number > limits.max_rows or column > limits.max_columns:
                            raise _beyond(limits, f"ячейка {get_column_letter(column)}{row_number}")
                        shape.last_row = max(shape.last_row, row_number)
                        shape.last_column = max(shape.last_column, column)
                    element.clear()
                elif tag == f"{_MAIN}row":
                    element.clear()
                    if parent is not None:
                        parent.clear()  # rows already read leave the tree: memory stays flat
                elif tag == f"{_MAIN}mergeCell":
                    if len(shape.merged) >= limits.max_merged:
                        raise SpreadsheetError(
                            f"больше {limits.max_merged} объединённых диапазонов (настройка SPREADSHEET_MAX_MERGED)"
                        )
                    ref = element.get("ref", "")
                    try:
                        merged = CellRange(ref)
                    except (ValueError, TypeError):
                        raise SpreadsheetError(f"объединённые ячейки {ref!r}: неверный диапазон") from None
                    if merged.max_row > limits.max_rows or merged.max_col > limits.max_columns:
                        raise _beyond(limits, f"объединённые ячейки {merged.coord}")
                    shape.merged.append(merged)
                    element.clear()
    except (KeyError, ElementTree.ParseError, ValueError) as exc:
        if isinstance(exc, SpreadsheetError):
            raise
        raise SpreadsheetError(f"лист файла XLSX не читается: {exc}") from exc
    for merged in shape.merged:  # a merged range counts as filled
        shape.last_row = max(shape.last_row, merged.max_row)
        shape.last_column = max(shape.last_column, merged.max_col)
    return shape


def read_xlsx(
    path: Path | io.BytesIO, columns: Sequence[Column] = COLUMNS, limits: SheetLimits | None = None
) -> ReadResult:
    """Read an XLSX register in openpyxl's read-only (streaming) mode, within ``limits``; merged ranges are filled
    into every cell and reported as warnings (``columns``: the register's form, the template's by default)."""
    limits = limits or SheetLimits()
    archive = _open_archive(path, limits)
    with archive:
        if isinstance(path, io.BytesIO):
            path.seek(0)
        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile, KeyError, ValueError... for a file that is not XLSX
            raise SpreadsheetError(f"файл не читается как XLSX: {exc}") from exc
        try:
            title = SHEET_TITLE if SHEET_TITLE in workbook.sheetnames else workbook.sheetnames[0]
            shape = scan_sheet(archive, _sheet_part(archive, title), limits)
            sheet = workbook[title]
            table: list[tuple[int, list[str]]] = []
            if shape.last_row and shape.last_column:
                rows = sheet.iter_rows(max_row=shape.last_row, max_col=shape.last_column, values_only=True)
                table = [(index, [_text(v) for v in values]) for index, values in enumerate(rows, start=1)]
                # openpyxl stops at the sheet's last row; a merged range may reach below it.
                table += [(index, [""] * shape.last_column) for index in range(len(table) + 1, shape.last_row + 1)]
        finally:
            workbook.close()
    merged: list[tuple[str, int, int, str]] = []
    for cell_range in shape.merged:
        value = table[cell_range.min_row - 1][1][cell_range.min_col - 1]
        for row in range(cell_range.min_row, cell_range.max_row + 1):
            cells = table[row - 1][1]
            for col in range(cell_range.min_col, cell_range.max_col + 1):
                cells[col - 1] = value
        merged.append((cell_range.coord, cell_range.min_row, cell_range.min_col, value))
    result = _rows_from_table(table, columns)
    header = dict(table).get(result.header_row, [])
    for coord, row, col, value in sorted(merged, key=lambda m: (m[1], m[2])):
        title = _title_at(header, col - 1, columns) or get_column_letter(col)
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


def _title_at(header: Sequence[str], index: int, columns: Sequence[Column] = COLUMNS) -> str:
    if index >= len(header):
        return ""
    column = column_for_heading(header[index], columns)
    return column.title if column is not None else header[index]


def read_csv(data: bytes, columns: Sequence[Column] = COLUMNS, limits: SheetLimits | None = None) -> ReadResult:
    """Read a CSV register (UTF-8 with or without BOM, UTF-16 with BOM, Windows-1251 or -1252, detected; comma,
    semicolon or tab separated) within ``limits``."""
    limits = limits or SheetLimits()
    try:
        decoded = decode_text(data)
    except EncodingError as exc:
        raise SpreadsheetError(str(exc)) from None
    text = decoded.text
    # The delimiter is the one under which the header row is recognised best (a header title itself holds commas,
    # so counting characters would mislead).
    best: list[tuple[int, list[str]]] = []
    best_matches = -1
    for delimiter in (",", ";", "\t"):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        table: list[tuple[int, list[str]]] = []
        try:
            for cells in reader:
                if reader.line_num > limits.max_rows:
                    raise _beyond(limits, f"строка {reader.line_num}")
                table.append((reader.line_num, [restore_cell(cell.strip()) for cell in cells[: limits.max_columns]]))
        except csv.Error as exc:
            raise SpreadsheetError(f"строка {reader.line_num}: строка CSV не читается ({exc})") from None
        matches = max((len(_map_header(cells, columns)) for _n, cells in table[:HEADER_SEARCH_ROWS]), default=0)
        if matches > best_matches:
            best, best_matches = table, matches
    result = _rows_from_table(best, columns)
    result.encoding = decoded.encoding_name
    return result


def read_file(path: Path, columns: Sequence[Column] = COLUMNS, limits: SheetLimits | None = None) -> ReadResult:
    """Read an XLSX or CSV register by its extension (``columns``: the register's form, the template's by default)."""
    if not path.is_file():
        raise SpreadsheetError(f"файл не найден: {path}")
    if path.suffix.lower() == ".csv":
        return read_csv(path.read_bytes(), columns, limits)
    return read_xlsx(path, columns, limits)


def headings(columns: Sequence[Column] = COLUMNS) -> list[str]:
    """The header row of the template (or of the register's form)."""
    return [c.heading for c in columns]


def write_xlsx(table: Sequence[Sequence[str]], columns: Sequence[Column] = COLUMNS) -> bytes:
    """An XLSX file: the header row, then ``table`` (rows of cells in the form's order); no merged cells."""
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = SHEET_TITLE
    sheet.append(headings(columns))
    for row in table:
        values = [xlsx_value(str(v)) for v in row]
        sheet.append([value for value, _formula_like in values])
        for cell, (_value, formula_like) in zip(sheet[sheet.max_row], values, strict=False):
            if formula_like:  # what owners typed stays text, never a formula (spreadsheets.xlsx_value)
                cell.data_type, cell.quotePrefix = "s", True
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for cell in sheet[1]:
        cell.font = bold
        cell.alignment = wrap
    widths = {"process_id": 14, "status": 26, "links": 30, "kind": 16, "custom": 14}
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = widths.get(column.code, 36)
    for row_cells in sheet.iter_rows(min_row=2):
        for cell in row_cells:
            cell.alignment = wrap
    # Sorting and filtering are why cells are never merged: give the reader the filter straight away.
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(sheet.max_row, 1)}"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_csv(table: Sequence[Sequence[str]], columns: Sequence[Column] = COLUMNS) -> bytes:
    """A CSV file (UTF-8 with BOM so that spreadsheet programs read Cyrillic, comma, CRLF per RFC 4180)."""
    return csv_bytes([headings(columns), *table], bom=True)
