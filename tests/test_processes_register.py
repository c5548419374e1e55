"""Register rules without a database: statuses and their order, links, validation, spreadsheets in and out.

Also the fixture spreadsheets of the other process tests (``GOOD``, :func:`sheet`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import pytest

from mailservice.processes import spreadsheet
from mailservice.processes.catalogue import load_catalogue
from mailservice.processes.register import (
    COLUMN_BY_CODE,
    COLUMNS,
    STATUS_LABELS,
    Link,
    LinkKind,
    RawRow,
    Status,
    TransitionError,
    allowed_targets,
    check_transition,
    format_links,
    parse_links,
    parse_status,
    validate,
)
from mailservice.processes.requests import RequestKind, proposed_rows
from mailservice.processes.service import RegisterError

HEADINGS = [c.heading for c in COLUMNS]
SERVICE = "Рассмотрение обращений граждан и запросов информации"
# A register of four processes: three from the catalogue, one outside it; 4.1 and 5.2 have a digital access point.
GOOD: list[list[str]] = [
    ["4.1", "", SERVICE, "59-ФЗ; 8-ФЗ", "Рассмотрение обращений и запросов", "Прием и регистрация обращений и запросов",
     "Иванова А. А., начальник отдела", "идет исследование", "гражданин", "быстрая регистрация", "обращение",
     "регистрационная карточка", "4.5 (последующий)", "автоматический", "ЕПГУ; сайт департамента", ""],
    ["4.5", "", SERVICE, "59-ФЗ", "Рассмотрение обращений и запросов",
     "Рассмотрение обращений и запросов и подготовка ответов на них", "Петров П. П.", "в очереди на исследование",
     "гражданин", "", "карточка", "ответ", "4.1 (предшествующий)", "ручной", "", ""],
    ["5.2", "Нужна справка", "Предоставление информации по запросам", "8-ФЗ", "",
     "Предоставления информации о деятельности исполнительного органа области по запросам", "Сидоров С. С.",
     "в очереди на реинжиниринг", "организация", "", "", "", "", "", "сайт департамента", ""],
    ["Д-1", "", SERVICE, "", "", "Сверка реестра запросов с СЭД", "Петров П. П.", "проходит реинжиниринг", "", "", "",
     "", "4.5", "ручной", "", "да"],
]  # fmt: skip


def sheet(
    path: Path, rows: Sequence[Sequence[str]], *, merge: Sequence[str] = (), title_rows: Sequence[str] = ()
) -> Path:
    """Write an XLSX register as a department would: optional title lines above the header, optional merges."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    assert ws is not None
    for line in title_rows:
        ws.append([line])
    ws.append(HEADINGS)
    for row in rows:
        ws.append(list(row))
    for cell_range in merge:
        ws.merge_cells(cell_range)
    workbook.save(path)
    return path


def raw(rows: Sequence[Sequence[str]], first: int = 2) -> list[RawRow]:
    return [RawRow(first + i, dict(zip([c.code for c in COLUMNS], row, strict=True))) for i, row in enumerate(rows)]


# Statuses ---------------------------------------------------------------------------------------------------------

S = list(Status)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (S[0], S[1], True),  # the next stage
        (S[1], S[2], True),
        (S[2], S[3], True),
        (S[3], S[4], True),
        (S[0], S[2], False),  # skipping research
        (S[1], S[4], False),
        (S[0], S[4], False),
        (S[2], S[2], False),  # staying put
        (S[4], S[4], False),
        (S[4], S[3], True),  # back for more work
        (S[3], S[0], True),
    ],
)
def test_status_order(current: Status, target: Status, allowed: bool) -> None:
    if allowed:
        check_transition(current, target)
        assert target in allowed_targets(current)
    else:
        with pytest.raises(TransitionError):
            check_transition(current, target)
        assert target not in allowed_targets(current)


def test_status_names_as_the_template_writes_them() -> None:
    assert [STATUS_LABELS[s] for s in Status] == [
        "в очереди на исследование",
        "идет исследование",
        "в очереди на реинжиниринг",
        "проходит реинжиниринг",
        "прошел реинжиниринг",
    ]
    assert parse_status("Идёт исследование.") is Status.researching
    assert parse_status("прошёл реинжиниринг") is Status.reengineered
    assert parse_status("reengineering") is Status.reengineering
    assert parse_status("на паузе") is None


def test_columns_in_template_order() -> None:
    assert HEADINGS[:15] == [
        "Идентификатор процесса*", "Жизненная ситуация", "Название услуги, функции, сервиса*", "Регулирующий акт",
        "Группа процессов", "Название процесса*", "Ответственный за процесс*", "Статус процесса*", "Клиент",
        "Ценность для клиента", "Данные на входе", "Результат на выходе", "Связь с другими процессами",
        "Вид процесса", "Точка размещения в цифровом виде",
    ]  # fmt: skip
    assert HEADINGS[15] == "Процесс вне Перечня типовых процессов"


@pytest.mark.parametrize(
    ("cell", "links", "errors"),
    [
        ("", (), 0),
        ("1.2", (Link("1.2"),), 0),
        (
            "1.2 (предшествующий); 4.5 (последующий)",
            (Link("1.2", LinkKind.preceding), Link("4.5", LinkKind.following)),
            0,
        ),
        ("1.2 - предшествующий процесс, П-7", (Link("1.2", LinkKind.preceding), Link("П-7")), 0),
        ("1.2 (родительский)", (), 1),
    ],
)
def test_links(cell: str, links: tuple[Link, ...], errors: int) -> None:
    parsed, problems = parse_links(cell)
    assert parsed == links and len(problems) == errors
    assert parse_links(format_links(parsed))[0] == parsed


# Validation -------------------------------------------------------------------------------------------------------


def test_good_register_passes() -> None:
    result = validate(raw(GOOD), load_catalogue())
    assert result.problems == []
    assert [r.process_id for r in result.rows] == ["4.1", "4.5", "5.2", "Д-1"]
    assert [r.catalogue_id for r in result.rows] == ["4.1", "4.5", "5.2", None]
    assert result.rows[3].custom and not result.rows[0].custom


def _problems(rows: Sequence[Sequence[str]]) -> list[tuple[int, str, str]]:
    result = validate(raw(rows), load_catalogue())
    return [(p.row, p.column, p.problem.split(" ")[0]) for p in result.problems]


def _edit(row: int, code: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in GOOD]
    rows[row][[c.code for c in COLUMNS].index(code)] = value
    return rows


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (_edit(1, "owner", ""), [(3, "Ответственный за процесс", "не")]),
        (_edit(0, "status", "на паузе"), [(2, "Статус процесса", "неизвестный")]),
        (_edit(2, "process_name", "Выдача справок"), [(4, "Название процесса", "процесса")]),
        (_edit(3, "process_id", "4.1"), [(5, "Идентификатор процесса", "идентификатор")]),
        (_edit(2, "links", "9.9 (последующий)"), [(4, "Связь с другими процессами", "связь")]),
        (_edit(2, "links", "5.2"), [(4, "Связь с другими процессами", "процесс")]),
        (_edit(1, "kind", "полуавтомат"), [(3, "Вид процесса", "неизвестный")]),
        (_edit(0, "custom", "да"), [(2, "Процесс вне Перечня типовых процессов", "процесс")]),
        # A row with its own problem still counts as present for the links of the others.
        (_edit(1, "service_name", ""), [(3, "Название услуги, функции, сервиса", "не")]),
    ],
)
def test_each_problem_is_reported_with_its_row_and_column(
    rows: list[list[str]], expected: list[tuple[int, str, str]]
) -> None:
    assert _problems(rows) == expected


# Spreadsheets -----------------------------------------------------------------------------------------------------


def test_export_is_the_template_without_merged_cells() -> None:
    rows = validate(raw(GOOD), load_catalogue()).rows
    from mailservice.processes.register import row_values

    data = spreadsheet.write_xlsx([row_values(r) for r in rows])
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    assert not ws.merged_cells.ranges
    assert [c.value for c in ws[1]] == HEADINGS
    # The same service is written in every row, never merged.
    assert [ws.cell(r, 3).value for r in range(2, 6)] == [
        SERVICE,
        SERVICE,
        "Предоставление информации по запросам",
        SERVICE,
    ]
    assert ws.cell(3, 8).value == "в очереди на исследование"
    again = spreadsheet.read_xlsx(io.BytesIO(data))
    assert validate(again.rows, load_catalogue()).rows == rows
    csv_again = spreadsheet.read_csv(spreadsheet.write_csv([row_values(r) for r in rows]))
    assert validate(csv_again.rows, load_catalogue()).rows == rows


def test_merged_cells_are_filled_and_reported(tmp_path: Path) -> None:
    path = sheet(tmp_path / "m.xlsx", GOOD, merge=["C4:C5"], title_rows=["Реестр процессов департамента", ""])
    read = spreadsheet.read_xlsx(path)
    assert read.header_row == 3
    assert [r.number for r in read.rows] == [4, 5, 6, 7]
    assert read.rows[1].cells["service_name"] == SERVICE
    [merged] = read.problems
    assert (merged.row, merged.column, merged.severity) == (4, "Название услуги, функции, сервиса", "warning")
    assert "C4:C5" in merged.problem


def test_semicolon_csv_in_windows_1251() -> None:
    lines = [";".join(HEADINGS), ";".join(GOOD[2]).replace("8-ФЗ", "8-ФЗ, ст. 18")]
    read = spreadsheet.read_csv("\r\n".join(lines).encode("cp1251"))
    assert read.problems == [] and read.rows[0].cells["regulating_act"] == "8-ФЗ, ст. 18"
    assert read.rows[0].cells["digital_access"] == "сайт департамента"


def test_file_without_header_or_mandatory_column() -> None:
    assert spreadsheet.read_csv(b"a,b,c\r\n1,2,3\r\n").problems[0].problem.startswith("не найдена")
    headings = [h for h in HEADINGS if h != "Ответственный за процесс*"]
    buffer = io.StringIO()
    csv.writer(buffer).writerow(headings)
    read = spreadsheet.read_csv(buffer.getvalue().encode())
    assert [(p.row, p.column) for p in read.problems] == [(1, "Ответственный за процесс")]


def test_not_a_spreadsheet(tmp_path: Path) -> None:
    path = tmp_path / "x.xlsx"
    path.write_text("не таблица", encoding="utf-8")
    with pytest.raises(spreadsheet.SpreadsheetError):
        spreadsheet.read_file(path)


# Change requests as table tests (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "process_id", "proposal", "refusal"),
    [
        (RequestKind.status, "4.5", {"status": "researching"}, None),
        (RequestKind.status, "4.5", {"status": "reengineering"}, "по порядку"),
        (RequestKind.status, "9.9", {"status": "researching"}, "нет в реестре"),
        (RequestKind.remove, "5.2", {}, None),
        (RequestKind.remove, "4.5", {}, "ссылаются"),  # 4.1 and Д-1 link to it
        (RequestKind.change, "5.2", {"owner": "Кузнецова К. К."}, None),
        (RequestKind.change, "5.2", {"owner": ""}, "обязательная"),
        (RequestKind.change, "5.2", {"status": "reengineered"}, "нельзя изменить"),
        (RequestKind.change, "5.2", {"links": "7.7"}, "нет в реестре"),
        (RequestKind.change, "5.2", {"process_name": "Выдача выписок"}, None),  # leaves the catalogue: marked
        (RequestKind.add, "", {"process_id": "4.6", "service_name": "Личный приём",
                               "process_name": "Личный прием граждан", "owner": "Иванова А. А.",
                               "status": "в очереди на исследование"}, None),
        (RequestKind.add, "", {"process_id": "4.1", "service_name": "x", "process_name": "Личный прием граждан",
                               "owner": "x", "status": "в очереди на исследование"}, "уже есть"),
        (RequestKind.add, "", {"process_id": "4.6", "service_name": "x", "process_name": "Неизвестный процесс",
                               "owner": "x", "status": "в очереди на исследование"}, "нет в Перечне"),
    ],
)  # fmt: skip
def test_change_request_table(
    kind: RequestKind, process_id: str, proposal: dict[str, str], refusal: str | None
) -> None:
    catalogue = load_catalogue()
    rows = validate(raw(GOOD), catalogue).rows
    if refusal is None:
        after = proposed_rows(rows, kind, process_id, proposal, catalogue)
        ids = [r.process_id for r in after]
        if kind is RequestKind.remove:
            assert process_id not in ids and len(after) == len(rows) - 1
        elif kind is RequestKind.add:
            assert ids[-1] == proposal["process_id"] and after[-1].catalogue_id == "4.6"
        else:
            changed = next(r for r in after if r.process_id == process_id)
            for code, value in proposal.items():
                if code == "status":
                    assert changed.status.value == value
                else:
                    assert getattr(changed, code) == value
            if proposal.get("process_name") == "Выдача выписок":
                assert changed.custom and changed.catalogue_id is None
    else:
        with pytest.raises(RegisterError, match=refusal):
            proposed_rows(rows, kind, process_id, proposal, catalogue)


def test_column_codes_are_documented() -> None:
    assert COLUMN_BY_CODE["digital_access"].title == "Точка размещения в цифровом виде"
