"""The register in the database: versions, status changes, change requests and their approval by e-mail.

Seed 003, appendix 2, section III: only the officer responsible for client-centricity changes the register;
process owners submit change requests with their grounds, the units concerned agree them, and the officer applies
them. The initial version is agreed with the units and approved by that officer; later versions are kept. Here:

* the officer is a console account with the role ``process_officer``, and a process owner is the account linked to
  the process's owner cell (:mod:`.people`); every changing call takes the address of an authenticated account;
* an import makes a version awaiting the officer's approval; a status change or an applied change request makes an
  approved version at once (the officer made it); changes start from the latest version, which must be approved;
* a change of the form (add, rename or exclude a column) is a change request like any other (:mod:`.form`); each
  version keeps its form;
* the units concerned are asked through the outbox, each with two signed links (approve, object) whose pages act
  only on POST, so a mail scanner that follows links decides nothing; a used link does nothing a second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.processes import people
from mailservice.processes.catalogue import Catalogue, load_catalogue
from mailservice.processes.form import form_from_json, form_to_json
from mailservice.processes.models import RegisterRow, RegisterVersion, StatusChange
from mailservice.processes.register import (
    COLUMNS,
    Column,
    Link,
    LinkKind,
    Problem,
    ProcessKind,
    RowData,
    Status,
    TransitionError,
    Validated,
    check_transition,
    row_values,
    validate,
    with_status,
)
from mailservice.processes.spreadsheet import ReadResult


class RegisterError(ValueError):
    """A refused operation, with a one-line Russian message (and the problems behind it, if any)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


# Officers and owners --------------------------------------------------------------------------------------------


def officers(session: Session) -> list[str]:
    """The officers' addresses (active accounts with the role ``process_officer``)."""
    return people.officers(session)


def require_officer(session: Session, actor: str) -> str:
    """The actor's address when it is an officer's account; :class:`RegisterError` otherwise."""
    try:
        return people.require_officer(session, actor)
    except people.PeopleError as exc:
        raise RegisterError(str(exc)) from None


# Versions and rows ---------------------------------------------------------------------------------------------


def row_data(row: RegisterRow) -> RowData:
    """A stored row as validated data."""
    return RowData(
        process_id=row.process_id,
        service_name=row.service_name,
        process_name=row.process_name,
        owner=row.owner,
        status=Status(row.status),
        life_situation=row.life_situation,
        regulating_act=row.regulating_act,
        process_group=row.process_group,
        client=row.client,
        client_value=row.client_value,
        input_data=row.input_data,
        output_result=row.output_result,
        links=tuple(Link(str(target), LinkKind(kind)) for target, kind in row.links),
        kind=ProcessKind(row.kind),
        digital_access=row.digital_access,
        custom=row.custom,
        catalogue_id=row.catalogue_id,
        extra=tuple(sorted((row.extra or {}).items())),
    )


def _row_model(data: RowData, position: int) -> RegisterRow:
    return RegisterRow(
        position=position,
        process_id=data.process_id,
        life_situation=data.life_situation,
        service_name=data.service_name,
        regulating_act=data.regulating_act,
        process_group=data.process_group,
        process_name=data.process_name,
        owner=data.owner,
        status=data.status.value,
        client=data.client,
        client_value=data.client_value,
        input_data=data.input_data,
        output_result=data.output_result,
        links=[[link.target, link.kind.value] for link in data.links],
        kind=data.kind.value,
        digital_access=data.digital_access,
        custom=data.custom,
        catalogue_id=data.catalogue_id,
        extra=dict(data.extra),
    )


def version_form(version: RegisterVersion | None) -> tuple[Column, ...]:
    """The columns of a version (the template's for a register nobody changed, or no register yet)."""
    return form_from_json(version.form) if version is not None else COLUMNS


# Key of the PostgreSQL advisory lock that serialises making register versions (any constant unique in the app).
_REGISTER_LOCK = 0x70726F63  # "proc"


def latest_version(session: Session, *, for_update: bool = False) -> RegisterVersion | None:
    """The newest version; with ``for_update``, the right to make the next one is held until the transaction ends.

    A row lock is not enough: before the first import there is no row to lock, and two first imports would both
    make version 1. PostgreSQL takes a transaction-level advisory lock instead; SQLite transactions here already
    hold the database's write lock from their start (BEGIN IMMEDIATE).
    """
    if for_update and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REGISTER_LOCK})
    query = select(RegisterVersion).order_by(RegisterVersion.number.desc()).limit(1)
    return session.scalars(query).first()


def latest_approved(session: Session) -> RegisterVersion | None:
    """The newest version the officer approved (what is published)."""
    query = (
        select(RegisterVersion)
        .where(RegisterVersion.approved_at.is_not(None))
        .order_by(RegisterVersion.number.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def get_version(session: Session, number: int | None = None) -> RegisterVersion:
    """A version by number, or the newest; :class:`RegisterError` when there is none."""
    if number is None:
        version = latest_version(session)
        if version is None:
            raise RegisterError("Реестр ещё не сформирован: импортируйте первоначальную версию")
        return version
    found = session.scalars(select(RegisterVersion).where(RegisterVersion.number == number)).first()
    if found is None:
        raise RegisterError(f"Версии реестра № {number} нет")
    return found


def version_rows(version: RegisterVersion) -> list[RowData]:
    """The rows of a version in register order."""
    return [row_data(row) for row in version.rows]


def new_version(
    session: Session,
    *,
    rows: Sequence[RowData],
    previous: RegisterVersion | None,
    actor: str,
    now: dt.datetime,
    source: str,
    source_name: str,
    reason: str,
    approved: bool,
    status_reason: str,
    form: Sequence[Column] | None = None,
) -> RegisterVersion:
    columns = tuple(form) if form is not None else version_form(previous)
    version = RegisterVersion(
        number=(previous.number if previous else 0) + 1,
        created_at=now,
        created_by=actor,
        source=source,
        source_name=source_name[:255],
        reason=reason,
        catalogue_version=load_catalogue().version,
        approved_at=now if approved else None,
        approved_by=actor if approved else "",
        form=form_to_json(columns),
    )
    version.rows = [_row_model(row, position) for position, row in enumerate(rows, start=1)]
    session.add(version)
    session.flush()
    before = {row.process_id: row.status for row in previous.rows} if previous else {}
    for row in rows:
        old = before.get(row.process_id)
        if old != row.status.value:
            session.add(
                StatusChange(
                    process_id=row.process_id,
                    at=now,
                    actor=actor,
                    from_status=old,
                    to_status=row.status.value,
                    reason=status_reason,
                    version_id=version.id,
                )
            )
    session.flush()
    return version


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: the new version (None when refused) and everything found in the file."""

    version: RegisterVersion | None
    rows: int
    problems: list[Problem]


def check_file(
    read: ReadResult, catalogue: Catalogue | None = None, columns: Sequence[Column] = COLUMNS
) -> tuple[Validated, list[Problem]]:
    """Validate what was read from a file against the register's form; returns the validation and all problems
    (shape first, by row)."""
    validated = validate(read.rows, catalogue or load_catalogue(), columns)
    problems = sorted([*read.problems, *validated.problems], key=lambda p: p.row)
    return validated, problems


def import_register(
    session: Session,
    settings: Settings,
    read: ReadResult,
    *,
    actor: str,
    now: dt.datetime,
    source_name: str,
    reason: str = "",
) -> ImportOutcome:
    """Make a new version from a file; refused (no version) when the file has an error. Warnings (merged cells)
    do not stop it. The version awaits the officer's approval and keeps the register's form (read the file with
    :func:`current_form`)."""
    actor = require_officer(session, actor)
    validated, problems = check_file(read, columns=current_form(session))
    if any(p.severity == "error" for p in problems) or not validated.rows:
        if not validated.rows and not problems:
            problems = [Problem(read.header_row or 1, "", "в файле нет ни одного процесса")]
        return ImportOutcome(None, len(read.rows), problems)
    previous = latest_version(session, for_update=True)
    version = new_version(
        session,
        rows=validated.rows,
        previous=previous,
        actor=actor,
        now=now,
        source="import",
        source_name=source_name,
        reason=reason or f"Импорт файла {source_name}",
        approved=False,
        status_reason=f"Импорт файла {source_name}",
    )
    return ImportOutcome(version, len(read.rows), problems)


def current_form(session: Session) -> tuple[Column, ...]:
    """The form of the newest version: the columns a new file is read with."""
    return version_form(latest_version(session))


def approve_version(
    session: Session, settings: Settings, *, actor: str, now: dt.datetime, number: int | None = None
) -> RegisterVersion:
    """Record the officer's approval of the newest version (the initial one: after the units agreed it)."""
    actor = require_officer(session, actor)
    version = get_version(session, number)
    newest = latest_version(session, for_update=True)
    if newest is not None and newest.id != version.id:
        raise RegisterError(f"Утвердить можно только последнюю версию (№ {newest.number})")
    if version.approved_at is not None:
        raise RegisterError(f"Версия № {version.number} уже утверждена")
    version.approved_at = now
    version.approved_by = actor
    return version


def base_for_change(session: Session) -> RegisterVersion:
    base = latest_version(session, for_update=True)
    if base is None:
        raise RegisterError("Реестр ещё не сформирован: импортируйте первоначальную версию")
    if base.approved_at is None:
        raise RegisterError(f"Версия реестра № {base.number} ещё не утверждена ответственным")
    return base


def find_row(rows: Sequence[RowData], process_id: str) -> RowData:
    for row in rows:
        if row.process_id == process_id:
            return row
    raise RegisterError(f"Процесса «{process_id}» нет в реестре")


def change_status(
    session: Session,
    settings: Settings,
    *,
    process_id: str,
    target: Status,
    reason: str,
    actor: str,
    now: dt.datetime,
) -> RegisterVersion:
    """The officer moves a process to another status (in order); a new approved version records it."""
    actor = require_officer(session, actor)
    if not reason.strip():
        raise RegisterError("Укажите причину изменения статуса")
    base = base_for_change(session)
    rows = version_rows(base)
    current = find_row(rows, process_id)
    try:
        check_transition(current.status, target)
    except TransitionError as exc:
        raise RegisterError(str(exc)) from exc
    new_rows = [with_status(row, target) if row.process_id == process_id else row for row in rows]
    return new_version(
        session,
        rows=new_rows,
        previous=base,
        actor=actor,
        now=now,
        source="status",
        source_name=process_id,
        reason=reason.strip(),
        approved=True,
        status_reason=reason.strip(),
    )


def status_history(session: Session, process_id: str) -> list[StatusChange]:
    """Every status change of a process, oldest first."""
    query = select(StatusChange).where(StatusChange.process_id == process_id).order_by(StatusChange.id)
    return list(session.scalars(query))


def catalogue_table(catalogue: Catalogue, groups: Sequence[int] = ()) -> list[list[str]]:
    """A register to start from: every catalogue process (of the chosen groups) with its id, group, name and
    value for the client, status "в очереди на исследование"; the service and the owner are left to fill in."""
    template = RowData(process_id="", service_name="", process_name="", owner="", status=Status.queued_research)
    table = []
    for group in catalogue.groups:
        if groups and group.number not in groups:
            continue
        for process in group.processes:
            row = replace(
                template,
                process_id=process.id,
                process_group=group.name,
                process_name=process.name,
                client_value=process.value,
            )
            table.append(row_values(row))
    return table
