"""The register in the database: versions, status changes, change requests and their approval by e-mail.

Seed 003, appendix 2, section III: only the officer responsible for client-centricity changes the register;
process owners submit change requests with their grounds, the units concerned agree them, and the officer applies
them. The initial version is agreed with the units and approved by that officer; later versions are kept. Here:

* the officer is an address listed in ``MAILSERVICE_PROCESS_OFFICERS``; every changing call takes ``actor``;
* an import makes a version awaiting the officer's approval; a status change or an applied change request makes an
  approved version at once (the officer made it); changes start from the latest version, which must be approved;
* the units concerned are asked through the outbox, each with two signed links (approve, object) whose pages act
  only on POST, so a mail scanner that follows links decides nothing; a used link does nothing a second time.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mail.compose import build_message
from mailservice.mail.headers import normalise_address
from mailservice.outbox import enqueue
from mailservice.processes.catalogue import Catalogue, load_catalogue
from mailservice.processes.models import Approval, ChangeRequest, RegisterRow, RegisterVersion, StatusChange
from mailservice.processes.register import (
    COLUMN_BY_CODE,
    EDITABLE,
    STATUS_LABELS,
    Link,
    LinkKind,
    Problem,
    ProcessKind,
    RowData,
    Status,
    TransitionError,
    Validated,
    cells_of,
    check_register,
    check_transition,
    row_from_cells,
    row_values,
    validate,
    with_status,
)
from mailservice.processes.spreadsheet import ReadResult
from mailservice.tokens import Purpose, TokenError, load, sign

APPROVAL_KIND = "process_approval"
REF_TYPE = "process_change_request"


class RegisterError(ValueError):
    """A refused operation, with a one-line Russian message (and the problems behind it, if any)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class LinkError(Exception):
    """An approval link that is tampered, unknown or already used: nothing is changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestKind(StrEnum):
    """What a change request asks for."""

    add = "add"
    remove = "remove"
    change = "change"
    status = "status"


KIND_NAMES = {
    RequestKind.add: "добавить процесс",
    RequestKind.remove: "исключить процесс",
    RequestKind.change: "изменить сведения о процессе",
    RequestKind.status: "изменить статус реинжиниринга",
}


class RequestState(StrEnum):
    """Where a change request stands."""

    pending = "pending"  # waiting for the units' answers
    approved = "approved"  # every unit agreed: the officer may apply it
    objected = "objected"  # a unit objected: the officer may only reject it
    applied = "applied"
    rejected = "rejected"


STATE_NAMES = {
    RequestState.pending: "на согласовании",
    RequestState.approved: "согласован, ждёт решения ответственного",
    RequestState.objected: "есть возражения",
    RequestState.applied: "внесён в реестр",
    RequestState.rejected: "отклонён",
}
DECISION_NAMES = {"approve": "согласовано", "object": "возражение"}


# Officers ------------------------------------------------------------------------------------------------------


def officers(settings: Settings) -> list[str]:
    """The officers' addresses from the settings (invalid entries are ignored)."""
    found = (normalise_address(part) for part in settings.process_officers.split(","))
    return [address for address in found if address]


def require_officer(settings: Settings, actor: str) -> str:
    """The actor's address when it is an officer's; :class:`RegisterError` otherwise."""
    address = normalise_address(actor)
    if address is None or address.lower() not in {a.lower() for a in officers(settings)}:
        raise RegisterError(
            "Вносить изменения в реестр может только ответственный за внедрение клиентоцентричности "
            "(адреса в настройке MAILSERVICE_PROCESS_OFFICERS)"
        )
    return address


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
    )


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


def _new_version(
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
) -> RegisterVersion:
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


def check_file(read: ReadResult, catalogue: Catalogue | None = None) -> tuple[Validated, list[Problem]]:
    """Validate what was read from a file; returns the validation and all problems (shape first, by row)."""
    validated = validate(read.rows, catalogue or load_catalogue())
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
    do not stop it. The version awaits the officer's approval."""
    actor = require_officer(settings, actor)
    validated, problems = check_file(read)
    if any(p.severity == "error" for p in problems) or not validated.rows:
        if not validated.rows and not problems:
            problems = [Problem(read.header_row or 1, "", "в файле нет ни одного процесса")]
        return ImportOutcome(None, len(read.rows), problems)
    previous = latest_version(session, for_update=True)
    version = _new_version(
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


def approve_version(
    session: Session, settings: Settings, *, actor: str, now: dt.datetime, number: int | None = None
) -> RegisterVersion:
    """Record the officer's approval of the newest version (the initial one: after the units agreed it)."""
    actor = require_officer(settings, actor)
    version = get_version(session, number)
    newest = latest_version(session, for_update=True)
    if newest is not None and newest.id != version.id:
        raise RegisterError(f"Утвердить можно только последнюю версию (№ {newest.number})")
    if version.approved_at is not None:
        raise RegisterError(f"Версия № {version.number} уже утверждена")
    version.approved_at = now
    version.approved_by = actor
    return version


def _base_for_change(session: Session) -> RegisterVersion:
    base = latest_version(session, for_update=True)
    if base is None:
        raise RegisterError("Реестр ещё не сформирован: импортируйте первоначальную версию")
    if base.approved_at is None:
        raise RegisterError(f"Версия реестра № {base.number} ещё не утверждена ответственным")
    return base


def _find(rows: Sequence[RowData], process_id: str) -> RowData:
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
    actor = require_officer(settings, actor)
    if not reason.strip():
        raise RegisterError("Укажите причину изменения статуса")
    base = _base_for_change(session)
    rows = version_rows(base)
    current = _find(rows, process_id)
    try:
        check_transition(current.status, target)
    except TransitionError as exc:
        raise RegisterError(str(exc)) from exc
    new_rows = [with_status(row, target) if row.process_id == process_id else row for row in rows]
    return _new_version(
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


# Change requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approver:
    """A unit concerned and the address its answer is asked from."""

    email: str
    unit: str = ""


def parse_approver(text: str) -> Approver:
    """``Отдел кадров=hr@example.ru`` or ``hr@example.ru``."""
    unit, _, address = text.rpartition("=")
    if any(ord(ch) < 32 for ch in unit):
        raise RegisterError(f"Название подразделения содержит управляющие символы: «{text!r}»")
    email = normalise_address(address)
    if email is None:
        raise RegisterError(f"Адрес согласующего указан неверно: «{text}»")
    return Approver(email=email, unit=unit.strip())


def _problems_text(problems: Sequence[Problem]) -> str:
    return "; ".join(f"графа «{p.column}»: {p.problem}" if p.column else p.problem for p in problems)


def proposed_rows(
    rows: Sequence[RowData],
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    catalogue: Catalogue,
) -> list[RowData]:
    """The register as it would be after the change (pure); :class:`RegisterError` when the change is not
    possible or the result breaks a rule."""
    rows = list(rows)
    if kind is RequestKind.add:
        cells = {code: str(value) for code, value in proposal.items()}
        if any(row.process_id == cells.get("process_id", "").strip() for row in rows):
            raise RegisterError(f"Процесс с идентификатором «{cells.get('process_id')}» уже есть в реестре")
        row, problems = row_from_cells(0, cells, catalogue)
        if row is None:
            raise RegisterError(f"Процесс не может быть добавлен: {_problems_text(problems)}", problems)
        new_rows = [*rows, row]
    elif kind is RequestKind.remove:
        _find(rows, process_id)
        referring = sorted(r.process_id for r in rows if any(link.target == process_id for link in r.links))
        if referring:
            raise RegisterError(
                f"На процесс «{process_id}» ссылаются процессы {', '.join(referring)}: сначала измените их связи"
            )
        new_rows = [row for row in rows if row.process_id != process_id]
    elif kind is RequestKind.change:
        current = _find(rows, process_id)
        unknown = sorted(set(proposal) - set(EDITABLE))
        if unknown:
            raise RegisterError(f"Эти графы нельзя изменить запросом: {', '.join(unknown)}")
        if not proposal:
            raise RegisterError("Не указано, что изменить")
        cells = {**cells_of(current), **{code: str(value) for code, value in proposal.items()}}
        # The mark "outside the catalogue" follows the (possibly new) name.
        cells["custom"] = "" if catalogue.find(cells["process_name"]) else "да"
        row, problems = row_from_cells(0, cells, catalogue)
        if row is None:
            raise RegisterError(f"Изменение невозможно: {_problems_text(problems)}", problems)
        new_rows = [row if r.process_id == process_id else r for r in rows]
    else:
        current = _find(rows, process_id)
        target = Status(str(proposal.get("status")))
        try:
            check_transition(current.status, target)
        except TransitionError as exc:
            raise RegisterError(str(exc)) from exc
        new_rows = [with_status(r, target) if r.process_id == process_id else r for r in rows]
    problems = check_register(list(enumerate(new_rows, start=1)))
    if problems:
        raise RegisterError(f"Изменение нарушает правила реестра: {_problems_text(problems)}", problems)
    return new_rows


def describe(rows: Sequence[RowData], kind: RequestKind, process_id: str, proposal: Mapping[str, Any]) -> list[str]:
    """What a change request asks for, as lines a person reads (against the rows it was made on)."""
    lines = [f"Что просят: {KIND_NAMES[kind]}."]
    existing = next((r for r in rows if r.process_id == process_id), None)
    if existing is not None:
        lines.append(f"Процесс: {existing.process_id} «{existing.process_name}» ({existing.service_name}).")
    if kind is RequestKind.add:
        for code, value in proposal.items():
            if str(value).strip() and code in COLUMN_BY_CODE:
                lines.append(f"{COLUMN_BY_CODE[code].title}: {value}")
    elif kind is RequestKind.change and existing is not None:
        before = cells_of(existing)
        for code, value in proposal.items():
            lines.append(f"{COLUMN_BY_CODE[code].title}: «{before.get(code, '')}» → «{value}»")
    elif kind is RequestKind.status and existing is not None:
        target = Status(str(proposal.get("status")))
        lines.append(f"Статус: «{STATUS_LABELS[existing.status]}» → «{STATUS_LABELS[target]}»")
    return lines


def request_lines(session: Session, request: ChangeRequest) -> list[str]:
    """:func:`describe` for a stored request, against the version it was made on."""
    base = get_version(session, request.base_version)
    return describe(version_rows(base), RequestKind(request.kind), request.process_id, request.proposal)


def approval_token(settings: Settings, approval: Approval, decision: str) -> str:
    """The signed token of one approver's approve or object link (opaque ids only)."""
    return sign(settings, Purpose.process_approval, {"a": approval.id, "n": approval.nonce, "d": decision})


def approval_url(settings: Settings, approval: Approval, decision: str) -> str:
    """The page an approver opens from the e-mail."""
    return f"{settings.public_url.rstrip('/')}/processes/approval/{approval_token(settings, approval, decision)}"


def _subject(request: ChangeRequest, text: str) -> str:
    return f"Реестр процессов, запрос № {request.id}: {text}"


def _ask(session: Session, settings: Settings, request: ChangeRequest, approval: Approval, lines: list[str]) -> None:
    message = build_message(
        settings,
        to=approval.email,
        to_name=approval.unit,
        subject=_subject(request, "просим согласовать изменение"),
        template="process_approval",
        context={
            "request": request,
            "approval": approval,
            "lines": lines,
            "approve_url": approval_url(settings, approval, "approve"),
            "object_url": approval_url(settings, approval, "object"),
        },
    )
    row = enqueue(session, message, kind=APPROVAL_KIND, ref_type=REF_TYPE, ref_id=request.id)
    session.flush()  # the outbox row's id
    approval.outbox_id = row.id


def submit_change_request(
    session: Session,
    settings: Settings,
    *,
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    grounds: str,
    submitted_by: str,
    approvers: Sequence[Approver],
    now: dt.datetime,
) -> ChangeRequest:
    """A process owner's request with its grounds; each unit concerned is asked by e-mail at once."""
    owner = normalise_address(submitted_by)
    if owner is None:
        raise RegisterError("Укажите адрес электронной почты владельца процесса, подающего запрос")
    if not grounds.strip():
        raise RegisterError("Укажите основания изменения")
    if not approvers:
        raise RegisterError("Укажите хотя бы одно согласующее подразделение (адрес для согласования)")
    if len({a.email.lower() for a in approvers}) != len(approvers):
        raise RegisterError("Один и тот же адрес согласующего указан дважды")
    base = _base_for_change(session)
    rows = version_rows(base)
    clean = {code: str(value).strip() for code, value in proposal.items()}
    if kind is RequestKind.add:
        process_id = clean.get("process_id", "")
    proposed_rows(rows, kind, process_id, clean, load_catalogue())
    request = ChangeRequest(
        kind=kind.value,
        process_id=process_id,
        proposal=clean,
        grounds=grounds.strip(),
        submitted_by=owner,
        submitted_at=now,
        base_version=base.number,
        state=RequestState.pending.value,
    )
    session.add(request)
    session.flush()
    lines = describe(rows, kind, process_id, clean)
    for approver in approvers:
        approval = Approval(
            change_request_id=request.id,
            unit=approver.unit[:200],
            email=approver.email,
            nonce=secrets.token_hex(16),
            asked_at=now,
        )
        request.approvals.append(approval)
        session.flush()
        _ask(session, settings, request, approval, lines)
    return request


def get_request(session: Session, number: int, *, for_update: bool = False) -> ChangeRequest:
    """A change request by number; :class:`RegisterError` when there is none."""
    request = session.get(ChangeRequest, number, with_for_update=for_update)
    if request is None:
        raise RegisterError(f"Запроса на изменение № {number} нет")
    return request


def list_requests(session: Session, state: RequestState | None = None) -> list[ChangeRequest]:
    """Change requests, newest first."""
    query = select(ChangeRequest).order_by(ChangeRequest.id.desc())
    if state is not None:
        query = query.where(ChangeRequest.state == state.value)
    return list(session.scalars(query))


_CLOSED = "Запрос уже рассмотрен ответственным за реестр: согласование не требуется."
_BAD_LINK = "Ссылка повреждена, неполна или недействительна. Проверьте, что она скопирована из письма целиком."


def load_approval(
    session: Session, settings: Settings, token: str, *, for_update: bool = False
) -> tuple[Approval, str]:
    """The approval and decision behind a link; :class:`LinkError` when the link is bad or already used."""
    try:
        payload = load(settings, Purpose.process_approval, token)
    except TokenError as exc:
        raise LinkError(_BAD_LINK) from exc
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("a"), int)
        or not isinstance(payload.get("n"), str)
        or payload.get("d") not in DECISION_NAMES
    ):
        raise LinkError(_BAD_LINK)
    approval = session.get(Approval, payload["a"], with_for_update=for_update)
    if approval is None or not secrets.compare_digest(approval.nonce, payload["n"]):
        raise LinkError(_BAD_LINK)
    if approval.decision is not None:
        decided = approval.decided_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M") if approval.decided_at else ""
        raise LinkError(
            f"Решение по этому запросу уже принято ({DECISION_NAMES[approval.decision]}, {decided}). "
            "Повторно ссылка не действует."
        )
    if approval.change_request.state in (RequestState.applied, RequestState.rejected):
        raise LinkError(_CLOSED)
    return approval, str(payload["d"])


def record_decision(
    session: Session, settings: Settings, token: str, *, comment: str, ip: str, now: dt.datetime
) -> Approval:
    """Record one unit's answer (the POST of its page); the request's state follows the answers."""
    approval, decision = load_approval(session, settings, token, for_update=True)
    # The state depends on every unit's answer: lock the request so that two answers given at the same moment are
    # counted one after the other (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers already).
    request = session.scalars(
        select(ChangeRequest)
        .where(ChangeRequest.id == approval.change_request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if request.state in (RequestState.applied, RequestState.rejected):
        raise LinkError(_CLOSED)
    approval.decision = decision
    approval.decided_at = now
    approval.comment = comment.strip()[:2000]
    approval.ip = ip[:64]
    session.flush()
    answers = session.scalars(
        select(Approval).where(Approval.change_request_id == request.id).execution_options(populate_existing=True)
    ).all()
    decisions = [a.decision for a in answers]
    if "object" in decisions:
        state = RequestState.objected
    elif all(d == "approve" for d in decisions):
        state = RequestState.approved
    else:
        state = RequestState.pending
    if state.value != request.state:
        request.state = state.value
        _tell_officers(session, settings, request)
    return approval


def _tell_officers(session: Session, settings: Settings, request: ChangeRequest) -> None:
    lines = request_lines(session, request)
    for officer in officers(settings):
        message = build_message(
            settings,
            to=officer,
            subject=_subject(request, STATE_NAMES[RequestState(request.state)]),
            template="process_ready",
            context={"request": request, "lines": lines, "state": STATE_NAMES[RequestState(request.state)]},
        )
        enqueue(session, message, kind="process_ready", ref_type=REF_TYPE, ref_id=request.id)


def _tell_submitter(session: Session, settings: Settings, request: ChangeRequest, lines: list[str]) -> None:
    message = build_message(
        settings,
        to=request.submitted_by,
        subject=_subject(request, STATE_NAMES[RequestState(request.state)]),
        template="process_decision",
        context={"request": request, "lines": lines, "state": STATE_NAMES[RequestState(request.state)]},
    )
    enqueue(session, message, kind="process_decision", ref_type=REF_TYPE, ref_id=request.id)


def apply_change_request(
    session: Session, settings: Settings, *, number: int, actor: str, now: dt.datetime, comment: str = ""
) -> RegisterVersion:
    """The officer applies an agreed request: a new approved version; the owner is told."""
    actor = require_officer(settings, actor)
    request = get_request(session, number, for_update=True)
    state = RequestState(request.state)
    if state is RequestState.pending:
        waiting = ", ".join(a.unit or a.email for a in request.approvals if a.decision is None)
        raise RegisterError(f"Запрос № {number} ещё не согласован (ждём: {waiting})")
    if state is RequestState.objected:
        objecting = ", ".join(a.unit or a.email for a in request.approvals if a.decision == "object")
        raise RegisterError(f"По запросу № {number} есть возражения ({objecting}): его можно только отклонить")
    if state is not RequestState.approved:
        raise RegisterError(f"Запрос № {number} уже рассмотрен ({STATE_NAMES[state]})")
    base = _base_for_change(session)
    kind = RequestKind(request.kind)
    rows = proposed_rows(version_rows(base), kind, request.process_id, request.proposal, load_catalogue())
    lines = request_lines(session, request)
    version = _new_version(
        session,
        rows=rows,
        previous=base,
        actor=actor,
        now=now,
        source="change_request",
        source_name=f"запрос № {request.id}",
        reason=request.grounds,
        approved=True,
        status_reason=f"Запрос на изменение № {request.id}: {request.grounds}",
    )
    request.state = RequestState.applied.value
    request.decided_at = now
    request.decided_by = actor
    request.decision_reason = comment.strip()
    request.applied_version_id = version.id
    _tell_submitter(session, settings, request, [*lines, f"Изменение внесено в версию реестра № {version.number}."])
    return version


def reject_change_request(
    session: Session, settings: Settings, *, number: int, actor: str, reason: str, now: dt.datetime
) -> ChangeRequest:
    """The officer declines a request (with a reason the owner is told)."""
    actor = require_officer(settings, actor)
    if not reason.strip():
        raise RegisterError("Укажите причину отклонения")
    request = get_request(session, number, for_update=True)
    if request.state in (RequestState.applied, RequestState.rejected):
        raise RegisterError(f"Запрос № {number} уже рассмотрен ({STATE_NAMES[RequestState(request.state)]})")
    request.state = RequestState.rejected.value
    request.decided_at = now
    request.decided_by = actor
    request.decision_reason = reason.strip()
    _tell_submitter(session, settings, request, request_lines(session, request))
    return request


def cells_for_change(values: Mapping[str, str]) -> dict[str, str]:
    """Check the column codes of ``--set`` values; :class:`RegisterError` names an unknown one."""
    unknown = sorted(set(values) - set(COLUMN_BY_CODE))
    if unknown:
        known = ", ".join(c for c in COLUMN_BY_CODE)
        raise RegisterError(f"Неизвестные графы: {', '.join(unknown)} (известны: {known})")
    return dict(values)


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
