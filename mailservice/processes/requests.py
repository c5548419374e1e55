"""Change requests of the register: a process owner asks, the units concerned agree by signed links, the officer
applies or rejects (seed 003, appendix 2, section III).

A request changes rows (add, remove or change a process, or move it to another status) or the form (add, rename
or exclude a column: :mod:`.form`). It is checked when submitted against the version it is made on and again when
applied against the newest one; the submitter must be the owner's staff account (:mod:`.people`). The units
concerned are asked through the outbox, each with two signed links (approve, object) whose pages act only on POST,
so a mail scanner that follows links decides nothing; a used link does nothing a second time.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.mail.compose import build_message
from mailservice.mail.headers import normalise_address
from mailservice.outbox import enqueue
from mailservice.processes import people
from mailservice.processes.catalogue import Catalogue, load_catalogue
from mailservice.processes.form import ColumnOp, FormError, change_form, describe_change
from mailservice.processes.models import Approval, ChangeRequest, RegisterVersion
from mailservice.processes.register import (
    COLUMN_BY_CODE,
    COLUMNS,
    STATUS_LABELS,
    Column,
    Problem,
    ProcessKind,
    RowData,
    Status,
    TransitionError,
    cells_of,
    check_register,
    check_transition,
    row_from_cells,
    with_status,
)
from mailservice.processes.service import (
    RegisterError,
    base_for_change,
    find_row,
    get_version,
    new_version,
    officers,
    require_officer,
    version_form,
    version_rows,
)
from mailservice.tokens import Purpose, TokenError, load, sign
from mailservice.web.staff.models import StaffUser

APPROVAL_KIND = "process_approval"
REF_TYPE = "process_change_request"


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
    columns = "columns"  # a change of the form: add, rename or exclude a column


KIND_NAMES = {
    RequestKind.add: "добавить процесс",
    RequestKind.remove: "исключить процесс",
    RequestKind.change: "изменить сведения о процессе",
    RequestKind.status: "изменить статус реинжиниринга",
    RequestKind.columns: "изменить форму реестра (графы)",
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


# Requests ---------------------------------------------------------------------------------------------------------


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


def editable(columns: Sequence[Column]) -> tuple[str, ...]:
    """The columns of a form a change request may rewrite: the id identifies the row, the mark "outside the
    catalogue" follows from the name, and the status has its own kind of request (its order is checked)."""
    return tuple(c.code for c in columns if c.code not in ("process_id", "custom", "status"))


def proposed_rows(
    rows: Sequence[RowData],
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    catalogue: Catalogue,
    columns: Sequence[Column] = COLUMNS,
) -> list[RowData]:
    """The register's rows as they would be after a change of rows (pure); :class:`RegisterError` when the change
    is not possible or the result breaks a rule."""
    rows = list(rows)
    if kind is RequestKind.add:
        cells = {code: str(value) for code, value in proposal.items()}
        if any(row.process_id == cells.get("process_id", "").strip() for row in rows):
            raise RegisterError(f"Процесс с идентификатором «{cells.get('process_id')}» уже есть в реестре")
        unknown = sorted(set(cells) - {c.code for c in columns})
        if unknown:
            raise RegisterError(f"В форме реестра нет граф: {', '.join(unknown)}")
        row, problems = row_from_cells(0, cells, catalogue, columns)
        if row is None:
            raise RegisterError(f"Процесс не может быть добавлен: {_problems_text(problems)}", problems)
        new_rows = [*rows, row]
    elif kind is RequestKind.remove:
        find_row(rows, process_id)
        referring = sorted(r.process_id for r in rows if any(link.target == process_id for link in r.links))
        if referring:
            raise RegisterError(
                f"На процесс «{process_id}» ссылаются процессы {', '.join(referring)}: сначала измените их связи"
            )
        new_rows = [row for row in rows if row.process_id != process_id]
    elif kind is RequestKind.change:
        current = find_row(rows, process_id)
        unknown = sorted(set(proposal) - set(editable(columns)))
        if unknown:
            raise RegisterError(f"Эти графы нельзя изменить запросом: {', '.join(unknown)}")
        if not proposal:
            raise RegisterError("Не указано, что изменить")
        cells = {**cells_of(current), **{code: str(value) for code, value in proposal.items()}}
        # The mark "outside the catalogue" follows the (possibly new) name.
        cells["custom"] = "" if catalogue.find(cells["process_name"]) else "да"
        row, problems = row_from_cells(0, cells, catalogue, columns)
        if row is None:
            raise RegisterError(f"Изменение невозможно: {_problems_text(problems)}", problems)
        new_rows = [row if r.process_id == process_id else r for r in rows]
    elif kind is RequestKind.status:
        current = find_row(rows, process_id)
        target = Status(str(proposal.get("status")))
        try:
            check_transition(current.status, target)
        except TransitionError as exc:
            raise RegisterError(str(exc)) from exc
        new_rows = [with_status(r, target) if r.process_id == process_id else r for r in rows]
    else:
        raise RegisterError("Изменение формы реестра меняет графы, а не строки")
    problems = check_register(list(enumerate(new_rows, start=1)))
    if problems:
        raise RegisterError(f"Изменение нарушает правила реестра: {_problems_text(problems)}", problems)
    return new_rows


_OPTIONAL_DEFAULTS: dict[str, Any] = {
    c.code: {"links": (), "kind": ProcessKind.unspecified}.get(c.code, "")
    for c in COLUMNS
    if not c.mandatory and c.code != "custom"
}


def proposed_form(
    rows: Sequence[RowData], columns: Sequence[Column], proposal: Mapping[str, Any]
) -> tuple[list[RowData], tuple[Column, ...]]:
    """The rows and the form after a change of the form (pure): an excluded column's cells are emptied."""
    try:
        op = ColumnOp(str(proposal.get("op", "")))
        after = change_form(columns, op, code=str(proposal.get("code", "")), title=str(proposal.get("title", "")))
    except ValueError as exc:  # FormError, or an unknown operation
        raise RegisterError(str(exc) if isinstance(exc, FormError) else "Операция: add, rename или remove") from None
    kept = {c.code for c in after}
    cleared = []
    for row in rows:
        # Emptying an excluded column: text cells become "", links none, the kind unspecified (RowData's defaults).
        blank: dict[str, Any] = {code: default for code, default in _OPTIONAL_DEFAULTS.items() if code not in kept}
        cleared.append(replace(row, **blank, extra=tuple((k, v) for k, v in row.extra if k in kept)))
    return cleared, after


def proposed_register(
    rows: Sequence[RowData],
    columns: Sequence[Column],
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    catalogue: Catalogue,
) -> tuple[list[RowData], tuple[Column, ...]]:
    """The register (rows and form) after any change request (pure)."""
    if kind is RequestKind.columns:
        return proposed_form(rows, columns, proposal)
    return proposed_rows(rows, kind, process_id, proposal, catalogue, columns), tuple(columns)


def describe(
    rows: Sequence[RowData],
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    columns: Sequence[Column] = COLUMNS,
) -> list[str]:
    """What a change request asks for, as lines a person reads (against the rows it was made on)."""
    if kind is RequestKind.columns:
        return describe_change(
            columns,
            ColumnOp(str(proposal.get("op"))),
            code=str(proposal.get("code", "")),
            title=str(proposal.get("title", "")),
        )
    titles = {c.code: c.title for c in columns}
    lines = [f"Что просят: {KIND_NAMES[kind]}."]
    existing = next((r for r in rows if r.process_id == process_id), None)
    if existing is not None:
        lines.append(f"Процесс: {existing.process_id} «{existing.process_name}» ({existing.service_name}).")
    if kind is RequestKind.add:
        for code, value in proposal.items():
            if str(value).strip() and code in titles:
                lines.append(f"{titles[code]}: {value}")
    elif kind is RequestKind.change and existing is not None:
        before = cells_of(existing)
        for code, value in proposal.items():
            lines.append(f"{titles.get(code, code)}: «{before.get(code, '')}» → «{value}»")
    elif kind is RequestKind.status and existing is not None:
        target = Status(str(proposal.get("status")))
        lines.append(f"Статус: «{STATUS_LABELS[existing.status]}» → «{STATUS_LABELS[target]}»")
    return lines


def request_lines(session: Session, request: ChangeRequest) -> list[str]:
    """:func:`describe` for a stored request, against the version it was made on."""
    base = get_version(session, request.base_version)
    return describe(
        version_rows(base), RequestKind(request.kind), request.process_id, request.proposal, version_form(base)
    )


def check_submitter(
    session: Session,
    rows: Sequence[RowData],
    kind: RequestKind,
    process_id: str,
    proposal: Mapping[str, Any],
    submitter: str,
) -> StaffUser:
    """The submitter's account when it is the owner of the process concerned (:mod:`.people`)."""
    try:
        if kind is RequestKind.columns:
            user = people.account(session, submitter)
            if user is not None and user.role == people.OFFICER_ROLE.value:
                return user
            return people.require_owner(session, submitter, {r.owner for r in rows}, what="об изменении формы реестра")
        if kind is RequestKind.add:
            return people.require_owner(
                session, submitter, [str(proposal.get("owner", ""))], what="о добавлении процесса"
            )
        current = find_row(rows, process_id)
        return people.require_owner(session, submitter, [current.owner], what=f"по процессу «{process_id}»")
    except people.PeopleError as exc:
        raise RegisterError(str(exc)) from None


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
    """A process owner's request with its grounds; each unit concerned is asked by e-mail at once.

    ``submitted_by`` is the address of an authenticated staff account; it must be the owner's (:mod:`.people`).
    """
    if not grounds.strip():
        raise RegisterError("Укажите основания изменения")
    if not approvers:
        raise RegisterError("Укажите хотя бы одно согласующее подразделение (адрес для согласования)")
    if len({a.email.lower() for a in approvers}) != len(approvers):
        raise RegisterError("Один и тот же адрес согласующего указан дважды")
    base = base_for_change(session)
    rows, columns = version_rows(base), version_form(base)
    clean = {code: str(value).strip() for code, value in proposal.items()}
    if kind is RequestKind.add:
        process_id = clean.get("process_id", "")
    elif kind is RequestKind.columns:
        process_id = ""
    owner = check_submitter(session, rows, kind, process_id, clean, submitted_by)
    proposed_register(rows, columns, kind, process_id, clean, load_catalogue())
    request = ChangeRequest(
        kind=kind.value,
        process_id=process_id,
        proposal=clean,
        grounds=grounds.strip(),
        submitted_by=owner.email,
        submitted_by_staff_id=owner.id,
        submitted_at=now,
        base_version=base.number,
        state=RequestState.pending.value,
    )
    session.add(request)
    session.flush()
    lines = describe(rows, kind, process_id, clean, columns)
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
    for officer in officers(session):
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
    actor = require_officer(session, actor)
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
    base = base_for_change(session)
    kind = RequestKind(request.kind)
    rows, form = proposed_register(
        version_rows(base), version_form(base), kind, request.process_id, request.proposal, load_catalogue()
    )
    lines = request_lines(session, request)
    version = new_version(
        session,
        form=form,
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
    actor = require_officer(session, actor)
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
