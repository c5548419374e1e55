"""``mailservice processes``: the catalogue, the register's versions, spreadsheets, statuses and change requests.

Who acts is a staff account, never a name typed in (issue 18): ``--staff ADDRESS`` names the account and its password
is read from standard input (without echo on a terminal); the account's role and its links to owner cells decide
what it may do (:mod:`.people`). A failed password counts toward the console's login limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import click
import typer
from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.db import session_scope, utcnow
from mailservice.processes import figures, people, publication, requests, service, spreadsheet
from mailservice.processes.catalogue import APPEALS_GROUP, as_json, load_catalogue
from mailservice.processes.form import ColumnOp
from mailservice.processes.models import ChangeRequest
from mailservice.processes.register import (
    STATUS_LABELS,
    Problem,
    RowData,
    Status,
    cells_of,
    parse_status,
    row_values,
)
from mailservice.processes.requests import DECISION_NAMES, KIND_NAMES, STATE_NAMES, RequestKind, RequestState
from mailservice.processes.service import RegisterError
from mailservice.staff_cli import StaffOption
from mailservice.staff_cli import signed_in_staff as _staff

app = typer.Typer(help="Реестр межведомственных и внутриведомственных процессов.", no_args_is_help=True)
requests_app = typer.Typer(help="Запросы владельцев процессов на изменение реестра.", no_args_is_help=True)
app.add_typer(requests_app, name="change-request")

GroundsOption = Annotated[str, typer.Option("--grounds", help="Основания изменения")]
ApproverOption = Annotated[
    list[str], typer.Option("--approver", help="Согласующее подразделение: «Отдел=адрес» или адрес (можно несколько)")
]
SetOption = Annotated[list[str], typer.Option("--set", help="Графа=значение, например owner=Иванов И.И.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Вывести JSON")]


@contextmanager
def _session() -> Iterator[Session]:
    """A transaction whose refusals become one-line errors."""
    try:
        with session_scope(get_settings()) as session:
            yield session
    except (RegisterError, people.PeopleError) as exc:  # its message names every problem
        raise click.ClickException(str(exc)) from None


def _problem_line(problem: Problem) -> str:
    where = f"строка {problem.row}" + (f", графа «{problem.column}»" if problem.column else "")
    mark = "предупреждение" if problem.severity == "warning" else "ошибка"
    return f"{where}: {mark}: {problem.problem}"


def _status(value: str, hint: str = "--to") -> Status:
    status = parse_status(value)
    if status is None:
        raise click.BadParameter(f"неизвестный статус; допустимы: {'; '.join(STATUS_LABELS.values())}", param_hint=hint)
    return status


def _pairs(values: list[str]) -> dict[str, str]:
    result = {}
    for item in values:
        code, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"ожидается графа=значение: {item!r}", param_hint="--set")
        result[code.strip()] = value.strip()
    return result


def _read(path: Path) -> spreadsheet.ReadResult:
    with session_scope(get_settings()) as session:
        columns = service.current_form(session)
    try:
        read = spreadsheet.read_file(path, columns, spreadsheet.SheetLimits.from_settings(get_settings()))
    except spreadsheet.SpreadsheetError as exc:
        raise click.ClickException(f"{path.name}: {exc}") from None
    if read.encoding:
        typer.echo(f"Кодировка файла: {read.encoding}", err=True)
    return read


# Catalogue and files ---------------------------------------------------------------------------------------------


@app.command("catalogue", help="Перечень типовых процессов (шесть групп).")
def catalogue_cmd(as_json_flag: JsonOption = False) -> None:
    """Перечень типовых процессов (шесть групп)."""
    catalogue = load_catalogue()
    if as_json_flag:
        typer.echo(json.dumps(as_json(catalogue), ensure_ascii=False, indent=2))
        return
    typer.echo(f"Перечень типовых процессов (версия {catalogue.version})")
    for group in catalogue.groups:
        typer.echo(f"\n{group.number}. {group.name} ({len(group.processes)})")
        for process in group.processes:
            note = f" [{process.note}]" if process.note else ""
            typer.echo(f"  {process.id}. {process.name}{note}")


@app.command("template", help="Реестр для начала работы: процессы Перечня, которые остаётся дополнить и сократить.")
def template_cmd(
    output: Annotated[Path, typer.Option("--output", help="Файл XLSX")],
    group: Annotated[list[int], typer.Option("--group", help="Только эти группы Перечня")] = [],  # noqa: B006
) -> None:
    """Записать заготовку реестра: процессы перечня, которые нужно дополнить и сократить."""
    catalogue = load_catalogue()
    unknown = [g for g in group if catalogue.group(g) is None]
    if unknown:
        raise click.BadParameter(f"нет групп {unknown}; группы 1-{len(catalogue.groups)}", param_hint="--group")
    table = service.catalogue_table(catalogue, group)
    output.write_bytes(spreadsheet.write_xlsx(table))
    typer.echo(f"Записано {output}: процессов {len(table)}. Заполните обязательные графы и исключите лишние строки.")


@app.command("validate", help="Проверить файл по шаблону и Перечню; код выхода 1, если есть замечания.")
def validate_cmd(
    file: Annotated[Path, typer.Argument(help="Реестр в XLSX или CSV")], as_json_flag: JsonOption = False
) -> None:
    """Проверить таблицу по шаблону и перечню; код выхода 1 при любой проблеме."""
    read = _read(file)
    _validated, problems = service.check_file(read)
    if as_json_flag:
        payload = {"rows": len(read.rows), "problems": [p.as_json() for p in problems]}
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for problem in problems:
            typer.echo(_problem_line(problem))
        typer.echo(f"Строк с процессами: {len(read.rows)}; замечаний: {len(problems)}")
    if problems:
        raise typer.Exit(1)


@app.command("import", help="Импортировать файл как новую версию реестра (её затем утверждает ответственный).")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="Реестр в XLSX или CSV")],
    staff: StaffOption,
    reason: Annotated[str, typer.Option(help="Комментарий к версии")] = "",
) -> None:
    """Загрузить таблицу как новую версию (она ждёт утверждения ответственным)."""
    read = _read(file)
    actor = _staff(staff)
    with _session() as session:
        outcome = service.import_register(
            session, get_settings(), read, actor=actor, now=utcnow(), source_name=file.name, reason=reason
        )
        for problem in outcome.problems:
            typer.echo(_problem_line(problem), err=True)
        if outcome.version is None:
            raise click.ClickException("Файл не импортирован: исправьте ошибки")
        typer.echo(
            f"Импортирована версия № {outcome.version.number}: процессов {len(outcome.version.rows)}. "
            "Утвердите её после согласования с подразделениями: mailservice processes approve"
        )


@app.command("approve", help="Утвердить последнюю версию реестра.")
def approve_cmd(staff: StaffOption, version: Annotated[int | None, typer.Option(help="Номер версии")] = None) -> None:
    """Отметить утверждение новейшей версии ответственным."""
    actor = _staff(staff)
    with _session() as session:
        approved = service.approve_version(session, get_settings(), actor=actor, now=utcnow(), number=version)
        typer.echo(f"Версия № {approved.number} утверждена ({approved.approved_by})")


@app.command("versions", help="Версии реестра.")
def versions_cmd(as_json_flag: JsonOption = False) -> None:
    """Версии реестра."""
    from sqlalchemy import select

    from mailservice.processes.models import RegisterVersion

    settings = get_settings()
    with _session() as session:
        versions = session.scalars(select(RegisterVersion).order_by(RegisterVersion.number)).all()
        items = [
            {
                "number": v.number,
                "created_at": v.created_at.isoformat(),
                "created_by": v.created_by,
                "source": v.source,
                "source_name": v.source_name,
                "reason": v.reason,
                "rows": len(v.rows),
                "approved_at": v.approved_at.isoformat() if v.approved_at else None,
                "approved_by": v.approved_by,
            }
            for v in versions
        ]
        if as_json_flag:
            typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        for v in versions:
            when = v.created_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")
            approved = (
                f"утверждена {v.approved_at.astimezone(settings.tz):%d.%m.%Y} ({v.approved_by})"
                if v.approved_at
                else "не утверждена"
            )
            typer.echo(f"№ {v.number}  {when}  {v.source} {v.source_name}  строк {len(v.rows)}  {approved}")


@app.command("list", help="Процессы версии (по умолчанию последней).")
def list_cmd(
    version: Annotated[int | None, typer.Option(help="Номер версии")] = None, as_json_flag: JsonOption = False
) -> None:
    """Процессы версии (по умолчанию новейшей)."""
    with _session() as session:
        found = service.get_version(session, version)
        rows = service.version_rows(found)
        if as_json_flag:
            typer.echo(json.dumps([_row_json(r) for r in rows], ensure_ascii=False, indent=2))
            return
        typer.echo(f"Версия № {found.number}")
        for row in rows:
            mark = " (вне Перечня)" if row.custom else ""
            typer.echo(f"{row.process_id}\t{STATUS_LABELS[row.status]}\t{row.service_name}: {row.process_name}{mark}")


def _row_json(row: RowData) -> dict[str, object]:
    cells: dict[str, object] = dict(cells_of(row))
    cells["status_code"] = row.status.value
    cells["custom"] = row.custom
    cells["catalogue_id"] = row.catalogue_id
    return cells


@app.command("show", help="Процесс, история его статуса и, для группы 4, показатели по реестру запросов.")
def show_cmd(
    process_id: Annotated[str, typer.Argument(help="Идентификатор процесса")],
    version: Annotated[int | None, typer.Option(help="Номер версии")] = None,
    as_json_flag: JsonOption = False,
) -> None:
    """Процесс, история его статусов и, для группы 4, показатели реестра запросов."""
    settings = get_settings()
    with _session() as session:
        row = next(
            (r for r in service.version_rows(service.get_version(session, version)) if r.process_id == process_id),
            None,
        )
        if row is None:
            raise RegisterError(f"Процесса «{process_id}» нет в реестре")
        history = service.status_history(session, process_id)
        typical = load_catalogue().get(row.catalogue_id) if row.catalogue_id else None
        month_figures = (
            figures.group4_figures(session, settings)
            if typical is not None and typical.group == APPEALS_GROUP
            else None
        )
        if as_json_flag:
            payload = {
                "row": _row_json(row),
                "history": [
                    {
                        "at": h.at.isoformat(),
                        "actor": h.actor,
                        "from": h.from_status,
                        "to": h.to_status,
                        "reason": h.reason,
                    }
                    for h in history
                ],
                "figures": [m.as_json() for m in month_figures] if month_figures is not None else None,
            }
            typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
            return
        cells = cells_of(row)
        for column in service.version_form(service.get_version(session, version)):
            if cells.get(column.code):
                typer.echo(f"{column.title}: {cells[column.code]}")
        if typical is not None:
            typer.echo(f"Цель (по Перечню): {typical.goal}")
        typer.echo("\nИстория статуса:")
        for h in history:
            before = STATUS_LABELS[Status(h.from_status)] if h.from_status else "—"
            when = h.at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")
            typer.echo(f"  {when} {h.actor}: {before} → {STATUS_LABELS[Status(h.to_status)]} ({h.reason})")
        if month_figures is not None:
            _print_figures(month_figures)


def _print_figures(month_figures: list[figures.MonthFigures]) -> None:
    typer.echo(
        "\nПоказатели по реестру запросов (месяц: поступило; дан ответ; медиана дней; с нарушением срока; оценка):"
    )
    if not month_figures:
        typer.echo("  нет данных")
    for m in month_figures:
        median = f"{m.median_days:g}" if m.median_days is not None else "—"
        late = f"{m.late_share * 100:.1f}%" if m.late_share is not None else "—"
        score = f"{m.feedback_average:.2f} ({m.feedback_count})" if m.feedback_average is not None else "—"
        typer.echo(f"  {m.month}: {m.received}; {m.answered}; {median}; {late}; {score}")


@app.command("figures", help="Показатели группы 4 «Рассмотрение обращений и запросов» по месяцам.")
def figures_cmd(as_json_flag: JsonOption = False) -> None:
    """Показатели группы 4 («обращения и запросы») из реестра запросов по месяцам."""
    with _session() as session:
        month_figures = figures.group4_figures(session, get_settings())
    if as_json_flag:
        typer.echo(json.dumps([m.as_json() for m in month_figures], ensure_ascii=False, indent=2))
    else:
        _print_figures(month_figures)


@app.command("export", help="Выгрузить версию по шаблону (одна строка заголовков, без объединённых ячеек).")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="xlsx или csv")],
    output: Annotated[Path, typer.Option("--output", help="Файл")],
    version: Annotated[int | None, typer.Option(help="Номер версии (по умолчанию последняя)")] = None,
) -> None:
    """Выгрузить версию точно по шаблону (одна строка заголовка, без объединённых ячеек)."""
    if fmt not in ("xlsx", "csv"):
        raise click.BadParameter("xlsx или csv", param_hint="--format")
    with _session() as session:
        found = service.get_version(session, version)
        columns = service.version_form(found)
        table = [row_values(r, columns) for r in service.version_rows(found)]
        number = found.number
    data = spreadsheet.write_xlsx(table, columns) if fmt == "xlsx" else spreadsheet.write_csv(table, columns)
    output.write_bytes(data)
    typer.echo(f"Версия № {number} записана в {output}: процессов {len(table)}")


@app.command("status", help="Перевести процесс в следующий статус (или вернуть в прежний); создаёт новую версию.")
def status_cmd(
    process_id: Annotated[str, typer.Argument(help="Идентификатор процесса")],
    to: Annotated[str, typer.Option("--to", help="Новый статус (как в шаблоне или код)")],
    reason: Annotated[str, typer.Option("--reason", help="Почему")],
    staff: StaffOption,
) -> None:
    """Ответственный переводит процесс в следующий статус (или назад); это новая версия."""
    target = _status(to)
    actor = _staff(staff)
    with _session() as session:
        made = service.change_status(
            session, get_settings(), process_id=process_id, target=target, reason=reason, actor=actor, now=utcnow()
        )
        typer.echo(f"Статус процесса {process_id}: «{STATUS_LABELS[target]}» (версия № {made.number})")


@app.command("opendata", help="Набор открытых данных публичной части реестра (данные, структура, meta.csv).")
def opendata_cmd(
    output: Annotated[Path, typer.Option("--output", help="Папка для файлов набора")],
    base_url: Annotated[str, typer.Option(help="Адрес папки набора на сайте (со слешем в конце)")] = "",
) -> None:
    """Записать открытые данные публичной части реестра (данные, структура, meta.csv)."""
    settings = get_settings()
    with _session() as session:
        register = publication.public_register(session, settings)
    files = publication.open_data_files(
        register,
        {"creator": settings.department_name},
        today=utcnow().astimezone(settings.tz).date(),
        base_url=base_url or f"{settings.public_url.rstrip('/')}/opendata/processes/",
    )
    output.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (output / name).write_bytes(data)
    typer.echo(f"Записано в {output}: {', '.join(sorted(files))} (процессов {len(register.rows)})")


# Change requests ------------------------------------------------------------------------------------------------


def _submit(
    kind: RequestKind, process_id: str, proposal: dict[str, str], staff: str, grounds: str, approver: list[str]
) -> None:
    settings = get_settings()
    try:
        approvers = [requests.parse_approver(a) for a in approver]
    except RegisterError as exc:
        raise click.BadParameter(str(exc), param_hint="--approver") from None
    owner = _staff(staff)
    with _session() as session:
        request = requests.submit_change_request(
            session,
            settings,
            kind=kind,
            process_id=process_id,
            proposal=proposal,
            grounds=grounds,
            submitted_by=owner,
            approvers=approvers,
            now=utcnow(),
        )
        typer.echo(f"Запрос № {request.id} подан; письма на согласование: {', '.join(a.email for a in approvers)}")


@requests_app.command("add", help="Запрос на добавление процесса (графы: --set код=значение).")
def request_add(staff: StaffOption, grounds: GroundsOption, approver: ApproverOption, set_: SetOption) -> None:
    """Запросить добавление процесса (графы как --set код=значение: process_id, service_name, process_name, ...)."""
    proposal = _pairs(set_)
    try:
        requests.cells_for_change(proposal)
    except RegisterError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    _submit(RequestKind.add, proposal.get("process_id", ""), proposal, staff, grounds, approver)


@requests_app.command("remove", help="Запрос на исключение процесса.")
def request_remove(
    process_id: Annotated[str, typer.Argument(help="Идентификатор процесса")],
    staff: StaffOption,
    grounds: GroundsOption,
    approver: ApproverOption,
) -> None:
    """Запросить исключение процесса."""
    _submit(RequestKind.remove, process_id, {}, staff, grounds, approver)


@requests_app.command("edit", help="Запрос на изменение граф процесса (--set код=значение).")
def request_edit(
    process_id: Annotated[str, typer.Argument(help="Идентификатор процесса")],
    staff: StaffOption,
    grounds: GroundsOption,
    approver: ApproverOption,
    set_: SetOption,
) -> None:
    """Запросить изменение граф процесса (--set код=значение)."""
    _submit(RequestKind.change, process_id, _pairs(set_), staff, grounds, approver)


@requests_app.command("status", help="Запрос на изменение статуса реинжиниринга.")
def request_status(
    process_id: Annotated[str, typer.Argument(help="Идентификатор процесса")],
    to: Annotated[str, typer.Option("--to", help="Новый статус")],
    staff: StaffOption,
    grounds: GroundsOption,
    approver: ApproverOption,
) -> None:
    """Запросить перевод процесса в другой статус реинжиниринга."""
    _submit(RequestKind.status, process_id, {"status": _status(to).value}, staff, grounds, approver)


def _request_json(session: Session, request: ChangeRequest) -> dict[str, object]:
    return {
        "number": request.id,
        "kind": request.kind,
        "process_id": request.process_id,
        "proposal": request.proposal,
        "grounds": request.grounds,
        "submitted_by": request.submitted_by,
        "submitted_at": request.submitted_at.isoformat(),
        "base_version": request.base_version,
        "state": request.state,
        "decided_by": request.decided_by,
        "decision_reason": request.decision_reason,
        "summary": requests.request_lines(session, request),
        "approvals": [
            {"unit": a.unit, "email": a.email, "decision": a.decision, "comment": a.comment} for a in request.approvals
        ],
    }


@requests_app.command("list", help="Запросы на изменение, новые сверху.")
def request_list(
    state: Annotated[str, typer.Option(help="pending, approved, objected, applied, rejected")] = "",
    as_json_flag: JsonOption = False,
) -> None:
    """Запросы на изменение, новые сверху."""
    try:
        wanted = RequestState(state) if state else None
    except ValueError:
        raise click.BadParameter("pending, approved, objected, applied или rejected", param_hint="--state") from None
    with _session() as session:
        found = requests.list_requests(session, wanted)
        if as_json_flag:
            typer.echo(json.dumps([_request_json(session, r) for r in found], ensure_ascii=False, indent=2))
            return
        for r in found:
            kind = KIND_NAMES[RequestKind(r.kind)]
            typer.echo(f"№ {r.id}\t{STATE_NAMES[RequestState(r.state)]}\t{kind} {r.process_id}\t{r.submitted_by}")


@requests_app.command("show", help="Запрос на изменение и ответы подразделений.")
def request_show(number: Annotated[int, typer.Argument()], as_json_flag: JsonOption = False) -> None:
    """Запрос на изменение и ответы подразделений."""
    with _session() as session:
        request = requests.get_request(session, number)
        if as_json_flag:
            typer.echo(json.dumps(_request_json(session, request), ensure_ascii=False, indent=2))
            return
        typer.echo(f"Запрос № {request.id}: {STATE_NAMES[RequestState(request.state)]}")
        for line in requests.request_lines(session, request):
            typer.echo(line)
        typer.echo(f"Основания: {request.grounds}\nПодал: {request.submitted_by}")
        for a in request.approvals:
            answer = DECISION_NAMES.get(a.decision or "", "ответа нет")
            typer.echo(f"  {a.unit or a.email}: {answer}{f' ({a.comment})' if a.comment else ''}")


@requests_app.command("apply", help="Внести согласованный запрос в реестр (новая версия).")
def request_apply(
    number: Annotated[int, typer.Argument()],
    staff: StaffOption,
    comment: Annotated[str, typer.Option(help="Комментарий владельцу")] = "",
) -> None:
    """Ответственный применяет согласованный запрос: новая версия реестра."""
    actor = _staff(staff)
    with _session() as session:
        made = requests.apply_change_request(
            session, get_settings(), number=number, actor=actor, now=utcnow(), comment=comment
        )
        typer.echo(f"Запрос № {number} внесён: версия реестра № {made.number}")


@requests_app.command("reject", help="Отклонить запрос.")
def request_reject(
    number: Annotated[int, typer.Argument()],
    staff: StaffOption,
    reason: Annotated[str, typer.Option("--reason", help="Причина отклонения")],
) -> None:
    """Ответственный отклоняет запрос."""
    actor = _staff(staff)
    with _session() as session:
        requests.reject_change_request(session, get_settings(), number=number, actor=actor, reason=reason, now=utcnow())
        typer.echo(f"Запрос № {number} отклонён")


@requests_app.command("column", help="Запрос на изменение формы реестра: добавить, переименовать или исключить графу.")
def request_column(
    op: Annotated[str, typer.Option("--op", help="add (добавить), rename (переименовать), remove (исключить)")],
    staff: StaffOption,
    grounds: GroundsOption,
    approver: ApproverOption,
    code: Annotated[str, typer.Option("--code", help="Код графы (для rename и remove), см. processes form")] = "",
    title: Annotated[str, typer.Option("--title", help="Название графы (для add и rename)")] = "",
) -> None:
    """Запросить добавление, переименование или исключение графы реестра (изменение его формы)."""
    try:
        chosen = ColumnOp(op)
    except ValueError:
        raise click.BadParameter("add, rename или remove", param_hint="--op") from None
    proposal = {"op": chosen.value, "code": code, "title": title}
    _submit(RequestKind.columns, "", proposal, staff, grounds, approver)


@app.command("form", help="Графы реестра в последней версии (коды для запросов на изменение).")
def form_cmd(as_json_flag: JsonOption = False) -> None:
    """Графы последней версии с их кодами."""
    with _session() as session:
        columns = service.current_form(session)
    if as_json_flag:
        payload = [{"code": c.code, "title": c.title, "mandatory": c.mandatory} for c in columns]
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for column in columns:
        typer.echo(f"{column.code}\t{column.heading}")


owners_app = typer.Typer(help="Владельцы процессов: связь графы «Ответственный за процесс» с учётной записью.")
app.add_typer(owners_app, name="owner")


@owners_app.command("link", help="Связать владельца (текст графы) с учётной записью сотрудника.")
def owner_link(
    owner: Annotated[str, typer.Argument(help="Владелец так, как он записан в графе «Ответственный за процесс»")],
    account: Annotated[str, typer.Option("--account", help="Адрес учётной записи владельца")],
    staff: StaffOption,
) -> None:
    """Ответственный связывает владельца из графы с учётной записью сотрудника."""
    actor = _staff(staff)
    with _session() as session:
        people.link_owner(session, owner=owner, staff_email=account, actor=actor, now=utcnow())
        typer.echo(f"«{owner}» — {account}")


@owners_app.command("list", help="Связи владельцев с учётными записями.")
def owner_list() -> None:
    """Все связи владельцев с учётными записями."""
    with _session() as session:
        for link, user in people.owner_links(session):
            typer.echo(f"{link.id}\t{link.owner}\t{user.email}")


@owners_app.command("unlink", help="Удалить связь владельца с учётной записью.")
def owner_unlink(
    link_id: Annotated[int, typer.Argument(help="Номер связи (processes owner list)")], staff: StaffOption
) -> None:
    """Ответственный удаляет связь."""
    actor = _staff(staff)
    with _session() as session:
        people.unlink_owner(session, link_id, actor=actor)
        typer.echo("Связь удалена.")
