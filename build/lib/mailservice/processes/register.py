"""Register rows and their rules, as pure functions: columns, statuses and their order, links, validation.

Seed 003, appendix 2, section II sets the template: the columns below in this order, mandatory ones marked with
an asterisk, process names from the catalogue of typical processes, five re-engineering statuses, links to other
processes by id with their kind, and no merged cells. One column is ours: processes outside the catalogue "may be
added at the body's discretion" and RULES.md asks that they be marked as such, so a last column carries the mark.
Nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum

from mailservice.processes.catalogue import Catalogue, normalise


class Status(StrEnum):
    """The re-engineering status of a process, in the order a process goes through them."""

    queued_research = "queued_research"
    researching = "researching"
    queued_reengineering = "queued_reengineering"
    reengineering = "reengineering"
    reengineered = "reengineered"


STATUS_LABELS: dict[Status, str] = {
    Status.queued_research: "в очереди на исследование",
    Status.researching: "идет исследование",
    Status.queued_reengineering: "в очереди на реинжиниринг",
    Status.reengineering: "проходит реинжиниринг",
    Status.reengineered: "прошел реинжиниринг",
}
STATUS_ORDER: tuple[Status, ...] = tuple(Status)


class TransitionError(ValueError):
    """A status change the order of statuses does not allow."""


def parse_status(text: str) -> Status | None:
    """The status a cell or an argument names (its Russian label or its code), or None."""
    key = normalise(text)
    for status, label in STATUS_LABELS.items():
        if key in (normalise(label), status.value):
            return status
    return None


def check_transition(current: Status, target: Status) -> None:
    """Allow the next status, or a return to an earlier one (a process sent back for more research); refuse
    staying put and skipping a stage."""
    if target is current:
        raise TransitionError(f"Процесс уже имеет статус «{STATUS_LABELS[current]}»")
    here, there = STATUS_ORDER.index(current), STATUS_ORDER.index(target)
    if there > here + 1:
        following = STATUS_LABELS[STATUS_ORDER[here + 1]]
        raise TransitionError(
            f"Нельзя перейти из статуса «{STATUS_LABELS[current]}» в «{STATUS_LABELS[target]}»: "
            f"статусы проходят по порядку, следующий — «{following}»"
        )


def allowed_targets(current: Status) -> list[Status]:
    """The statuses a process in ``current`` may move to."""
    here = STATUS_ORDER.index(current)
    return [s for i, s in enumerate(STATUS_ORDER) if i < here or i == here + 1]


class LinkKind(StrEnum):
    """How a linked process relates to this one ("предшествующий (или последующий) процесс")."""

    unspecified = ""
    preceding = "preceding"
    following = "following"


LINK_LABELS = {LinkKind.preceding: "предшествующий", LinkKind.following: "последующий"}


class ProcessKind(StrEnum):
    """Whether the process runs in an information system or by hand ("Вид процесса")."""

    unspecified = ""
    automatic = "automatic"
    manual = "manual"


KIND_LABELS = {ProcessKind.automatic: "автоматический", ProcessKind.manual: "ручной"}


@dataclass(frozen=True)
class Column:
    """A column of the register template."""

    code: str
    title: str
    mandatory: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def heading(self) -> str:
        """The header cell as the template writes it (mandatory columns end with an asterisk)."""
        return f"{self.title}*" if self.mandatory else self.title


COLUMNS: tuple[Column, ...] = (
    Column("process_id", "Идентификатор процесса", True, ("идентификатор", "id процесса")),
    Column("life_situation", "Жизненная ситуация"),
    Column("service_name", "Название услуги, функции, сервиса", True, ("название услуги", "наименование услуги")),
    Column("regulating_act", "Регулирующий акт"),
    Column("process_group", "Группа процессов"),
    Column("process_name", "Название процесса", True, ("наименование процесса",)),
    Column("owner", "Ответственный за процесс", True, ("владелец процесса",)),
    Column("status", "Статус процесса", True, ("статус", "статус реинжиниринга")),
    Column("client", "Клиент"),
    Column("client_value", "Ценность для клиента", False, ("ценность",)),
    Column("input_data", "Данные на входе"),
    Column("output_result", "Результат на выходе"),
    Column("links", "Связь с другими процессами", False, ("связи с другими процессами",)),
    Column("kind", "Вид процесса"),
    Column("digital_access", "Точка размещения в цифровом виде"),
    Column("custom", "Процесс вне Перечня типовых процессов", False, ("вне перечня",)),
)
COLUMN_BY_CODE = {c.code: c for c in COLUMNS}
MANDATORY = tuple(c for c in COLUMNS if c.mandatory)
# The columns a change request may rewrite: the id identifies the row, the mark "outside the catalogue" follows
# from the name, and the status has its own kind of request (its order is checked).
EDITABLE = tuple(c.code for c in COLUMNS if c.code not in ("process_id", "custom", "status"))


def column_for_heading(text: str) -> Column | None:
    """The column a header cell names (loosely: case, "ё", asterisk and spacing do not matter)."""
    key = normalise(text)
    for column in COLUMNS:
        if key == normalise(column.title) or key in {normalise(a) for a in column.aliases}:
            return column
    return None


@dataclass(frozen=True)
class Link:
    """A link from one process to another, by the other's id."""

    target: str
    kind: LinkKind = LinkKind.unspecified


@dataclass(frozen=True)
class RowData:
    """One process of the register, as validated."""

    process_id: str
    service_name: str
    process_name: str
    owner: str
    status: Status
    life_situation: str = ""
    regulating_act: str = ""
    process_group: str = ""
    client: str = ""
    client_value: str = ""
    input_data: str = ""
    output_result: str = ""
    links: tuple[Link, ...] = ()
    kind: ProcessKind = ProcessKind.unspecified
    digital_access: str = ""
    custom: bool = False
    catalogue_id: str | None = None  # derived from the name; not a column


ROW_FIELDS = tuple(f.name for f in fields(RowData))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spreadsheet or a proposed row: where (row number, column title) and what."""

    row: int
    column: str
    problem: str
    severity: str = "error"  # error: the file cannot be imported; warning: it can, and the user is told

    def as_json(self) -> dict[str, object]:
        """The form printed by ``processes validate --json``."""
        return {"row": self.row, "column": self.column, "problem": self.problem, "severity": self.severity}


@dataclass(frozen=True)
class RawRow:
    """A data row as read: its spreadsheet row number and its cells by column code (stripped strings)."""

    number: int
    cells: Mapping[str, str]


@dataclass
class Validated:
    """Rows that passed and every problem found."""

    rows: list[RowData] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems that block an import."""
        return [p for p in self.problems if p.severity == "error"]


_LINK_ITEM = re.compile(r"^(?P<id>[^\s()]+)\s*(?:\((?P<paren>[^)]*)\)|\s[-–—:]?\s*(?P<tail>.+))?$")


def _link_kind(text: str) -> LinkKind | None:
    key = normalise(text)
    if not key:
        return LinkKind.unspecified
    if key.startswith("предш"):
        return LinkKind.preceding
    if key.startswith("послед") or key.startswith("следующ"):
        return LinkKind.following
    return None


def parse_links(cell: str) -> tuple[tuple[Link, ...], list[str]]:
    """Links from a cell such as ``1.2 (предшествующий); 4.5 (последующий)`` or ``1.2, 1.3``, and what could not
    be read."""
    links: list[Link] = []
    errors: list[str] = []
    for item in re.split(r"[;,\n]", cell):
        item = item.strip()
        if not item:
            continue
        match = _LINK_ITEM.match(item)
        if match is None:
            errors.append(f"связь «{item}» не прочитана: укажите идентификатор и вид в скобках")
            continue
        kind = _link_kind(match["paren"] or match["tail"] or "")
        if kind is None:
            errors.append(f"неизвестный вид связи в «{item}»: предшествующий или последующий")
            continue
        links.append(Link(match["id"].rstrip("."), kind))
    return tuple(links), errors


def format_links(links: Iterable[Link]) -> str:
    """The cell text of links (the form :func:`parse_links` reads back)."""
    parts = []
    for link in links:
        label = LINK_LABELS.get(link.kind)
        parts.append(f"{link.target} ({label})" if label else link.target)
    return "; ".join(parts)


def parse_kind(cell: str) -> ProcessKind | None:
    """The process kind a cell names, or None when it names something else."""
    key = normalise(cell)
    if not key:
        return ProcessKind.unspecified
    if key in ("автоматический", "автоматически", "автоматизированный", "automatic"):
        return ProcessKind.automatic
    if key in ("ручной", "вручную", "manual"):
        return ProcessKind.manual
    return None


def parse_flag(cell: str) -> bool | None:
    """A yes/no mark: blank or "нет" is no; "да", "+", "x" is yes; anything else None."""
    key = normalise(cell)
    if key in ("", "нет", "no", "0", "-"):
        return False
    if key in ("да", "yes", "1", "+", "x", "х", "вне перечня"):
        return True
    return None


def cells_of(row: RowData) -> dict[str, str]:
    """A row as cell texts by column code (the export form)."""
    cells = {
        "process_id": row.process_id,
        "life_situation": row.life_situation,
        "service_name": row.service_name,
        "regulating_act": row.regulating_act,
        "process_group": row.process_group,
        "process_name": row.process_name,
        "owner": row.owner,
        "status": STATUS_LABELS[row.status],
        "client": row.client,
        "client_value": row.client_value,
        "input_data": row.input_data,
        "output_result": row.output_result,
        "links": format_links(row.links),
        "kind": KIND_LABELS.get(row.kind, ""),
        "digital_access": row.digital_access,
        "custom": "да" if row.custom else "",
    }
    return cells


def row_values(row: RowData) -> list[str]:
    """The cells of a row in template order."""
    cells = cells_of(row)
    return [cells[c.code] for c in COLUMNS]


def row_from_cells(number: int, cells: Mapping[str, str], catalogue: Catalogue) -> tuple[RowData | None, list[Problem]]:
    """Validate one row's own cells (mandatory cells, status, catalogue name, kind, link syntax)."""
    problems: list[Problem] = []

    def problem(code: str, text: str, severity: str = "error") -> None:
        problems.append(Problem(number, COLUMN_BY_CODE[code].title, text, severity))

    value = {c.code: str(cells.get(c.code, "") or "").strip() for c in COLUMNS}
    for column in MANDATORY:
        if not value[column.code]:
            problem(column.code, "не заполнена обязательная графа")
    status = parse_status(value["status"]) if value["status"] else None
    if value["status"] and status is None:
        allowed = "; ".join(STATUS_LABELS.values())
        problem("status", f"неизвестный статус «{value['status']}»; допустимы: {allowed}")
    custom = parse_flag(value["custom"])
    if custom is None:
        problem("custom", f"отметка «{value['custom']}» не прочитана: «да» или пусто")
    name = value["process_name"]
    catalogue_id: str | None = None
    if name:
        typical = catalogue.find(name)
        if typical is not None:
            name, catalogue_id = typical.name, typical.id
            if custom:
                problem("custom", f"процесс есть в Перечне типовых процессов ({typical.id}): отметка не ставится")
        elif not custom:
            problem(
                "process_name",
                f"процесса «{name}» нет в Перечне типовых процессов; процесс вне Перечня отметьте «да» в графе "
                f"«{COLUMN_BY_CODE['custom'].title}»",
            )
    kind = parse_kind(value["kind"])
    if kind is None:
        problem("kind", f"неизвестный вид процесса «{value['kind']}»: автоматический или ручной")
    links, link_errors = parse_links(value["links"])
    for text in link_errors:
        problem("links", text)
    if any(p.severity == "error" for p in problems) or status is None or kind is None:
        return None, problems
    row = RowData(
        process_id=value["process_id"],
        service_name=value["service_name"],
        process_name=name,
        owner=value["owner"],
        status=status,
        life_situation=value["life_situation"],
        regulating_act=value["regulating_act"],
        process_group=value["process_group"],
        client=value["client"],
        client_value=value["client_value"],
        input_data=value["input_data"],
        output_result=value["output_result"],
        links=links,
        kind=kind,
        digital_access=value["digital_access"],
        custom=bool(custom),
        catalogue_id=catalogue_id,
    )
    return row, problems


def _duplicates(pairs: Iterable[tuple[int, str]]) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for number, process_id in pairs:
        if process_id in first:
            problems.append(
                Problem(
                    number,
                    COLUMN_BY_CODE["process_id"].title,
                    f"идентификатор «{process_id}» повторяется (впервые в строке {first[process_id]})",
                )
            )
        else:
            first[process_id] = number
    return problems


def _dangling(numbered: Iterable[tuple[int, RowData]], ids: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    title = COLUMN_BY_CODE["links"].title
    for number, row in numbered:
        for link in row.links:
            if link.target == row.process_id:
                problems.append(Problem(number, title, f"процесс «{link.target}» связан сам с собой"))
            elif link.target not in ids:
                problems.append(Problem(number, title, f"связь с процессом «{link.target}», которого нет в реестре"))
    return problems


def check_register(numbered: Sequence[tuple[int, RowData]]) -> list[Problem]:
    """Problems between rows: a duplicate id, a link to an id that is not in the register or to the row itself."""
    return _duplicates((n, r.process_id) for n, r in numbered) + _dangling(
        numbered, {r.process_id for _n, r in numbered}
    )


def _rank(problem: Problem) -> tuple[int, int]:
    titles = [c.title for c in COLUMNS]
    return problem.row, titles.index(problem.column) if problem.column in titles else -1


def validate(raw_rows: Sequence[RawRow], catalogue: Catalogue) -> Validated:
    """Every row's own checks, then the checks between rows (ids of rows with other problems count as present)."""
    result = Validated()
    numbered: list[tuple[int, RowData]] = []
    for raw in raw_rows:
        row, problems = row_from_cells(raw.number, raw.cells, catalogue)
        result.problems.extend(problems)
        if row is not None:
            numbered.append((raw.number, row))
    ids = [(raw.number, str(raw.cells.get("process_id", "")).strip()) for raw in raw_rows]
    ids = [(n, pid) for n, pid in ids if pid]
    result.problems.extend(_duplicates(ids))
    result.problems.extend(_dangling(numbered, {pid for _n, pid in ids}))
    result.problems.sort(key=_rank)
    result.rows = [row for _n, row in numbered]
    return result


def with_status(row: RowData, status: Status) -> RowData:
    """The same row in another status."""
    return replace(row, status=status)
