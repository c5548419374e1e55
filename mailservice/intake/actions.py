"""What staff do with what intake decided, and the dates that tell them when (console and CLI share these).

* A letter held as advertising (intake/spam.py) waits unregistered, its three-day registration date counting
  from receipt (59-FZ art. 8 p. 2, 8-FZ art. 18): staff register it (number, acknowledgement and term from that
  moment; a registration after the three days is recorded as late) or confirm it as spam. Never silently.
* A letter outside the department's remit (topic ``outside``) is registered like any other and waits "to
  forward": its forwarding date is registration + 7 days (59-FZ art. 8 p. 3; 8-FZ art. 18); staff forward it with
  the ``forwarded`` status, which tells the citizen.
* A registered letter that was really a command (subscribe, unsubscribe, history) is carried out as that command
  in one action, recorded as an event, and the request is answered with what was done.

Each function takes the caller's session and ``now`` and never commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import TRANSITIONS, Channel, EventKind, Status
from mailservice.inforequests.models import Event, Request
from mailservice.inforequests.notes import EventLike, internal_note
from mailservice.inforequests.queues import (
    held_condition,
)
from mailservice.intake.commands import COMMAND_NAMES, Command
from mailservice.intake.models import IntakeEntry
from mailservice.mail.parse import ParseError, parse_message
from mailservice.mail.triage import TRIAGE_HOLDS

# What the citizen is told when a registered letter is carried out as its command (the answer's text).
COMMAND_ANSWERS = {
    Command.subscribe: "Ваше письмо рассмотрено как просьба о подписке на рассылку департамента: на ваш адрес "
    "направлена ссылка для подтверждения подписки.",
    # Said whether or not the address was subscribed: the confirmation is mailed only when a list was left (F11).
    Command.unsubscribe: "Ваше письмо рассмотрено как просьба об отписке от рассылки департамента: рассылки "
    "департамента на ваш адрес больше не направляются.",
    Command.history: "Ваше письмо рассмотрено как запрос истории ваших обращений: ответ направлен отдельным письмом.",
}


class ActionError(ValueError):
    """An action that cannot be done; the message is Russian and shown to staff as is."""


def hold_reasons_of(request: Request) -> list[str]:
    """Why intake held the request (from its note), for staff."""
    for event in request.events:
        reasons = (event.data or {}).get("held")
        if event.kind == EventKind.note and isinstance(reasons, list):
            return [str(r) for r in reasons]
    return []


def held_summary(reasons: Sequence[str]) -> str:
    """Why a letter waits, in one Russian phrase: advertising, or what triage saw (auto-reply subject, list mail)."""
    if reasons and reasons[0] in TRIAGE_HOLDS:
        return "; ".join(reasons)
    return "похоже на рекламу (" + "; ".join(reasons) + ")"


def held_note(session: Session, request: Request, now: dt.datetime, reasons: Sequence[str]) -> EventLike:
    """The internal note intake writes on a held letter: why it waits unregistered."""
    return internal_note(
        session,
        request.client,
        request,
        now,
        f"Не зарегистрировано: {held_summary(reasons)}. Зарегистрируйте или подтвердите, что обращения в письме нет.",
        held=list(reasons),
    )


def held_requests(session: Session) -> list[Request]:
    """Requests that wait unregistered, oldest first."""
    return list(session.scalars(select(Request).where(held_condition()).order_by(Request.received_at, Request.id)))


# Actions -----------------------------------------------------------------------------------------------------


def register_held(session: Session, settings: Settings, request: Request, *, actor: str, now: dt.datetime) -> None:
    """Register a letter that waited: number, acknowledgement and term from now (lateness recorded)."""
    try:
        service.register_request(session, settings, request, now=now, actor=actor)
    except ValueError as exc:
        raise ActionError(str(exc)) from exc


def confirm_spam(session: Session, request: Request, *, actor: str, now: dt.datetime) -> Event:
    """Staff confirm a held letter is advertising with no request in it: closed without a number, no notice."""
    try:
        return service.close_unregistered(
            session,
            request,
            now=now,
            actor=actor,
            comment="Подтверждено сотрудником: реклама или спам, обращением не является",
            data={"spam": True},
        )
    except ValueError as exc:
        raise ActionError(str(exc)) from exc


def can_convert(request: Request) -> bool:
    """Whether the request is a letter by e-mail not yet dealt with (so it may be carried out as a command)."""
    status = Status(request.status)
    return request.channel == Channel.email and (status is Status.received or Status.answered in TRANSITIONS[status])


def _original(session: Session, settings: Settings, request: Request) -> tuple[IntakeEntry, bytes]:
    first = next((e for e in request.events if e.kind == EventKind.message_in and e.intake_id is not None), None)
    entry = session.get(IntakeEntry, first.intake_id) if first is not None and first.intake_id is not None else None
    if request.channel != Channel.email or entry is None:
        raise ActionError("Преобразовать в команду можно только запрос, поступивший по электронной почте")
    try:
        return entry, BlobStore(settings.blob_dir).get(entry.raw_sha256)
    except (FileNotFoundError, ValueError):
        raise ActionError("Исходное письмо не сохранилось (срок хранения истёк)") from None


def convert_to_command(
    session: Session, settings: Settings, request: Request, command: Command, *, actor: str, now: dt.datetime
) -> str:
    """Carry out a letter as the command it really was (the same handler as a command by e-mail), record it, and
    answer the request with what was done; returns what the command's domain did."""
    from mailservice.intake.pipeline import COMMAND_ROUTES, load_routes_once

    status = Status(request.status)
    if status is not Status.received and Status.answered not in TRANSITIONS[status]:
        raise ActionError("Запрос уже рассмотрен: преобразовать его в команду нельзя")
    entry, raw = _original(session, settings, request)
    try:
        parsed = parse_message(raw, max_attachment_bytes=settings.max_attachment_bytes)
    except ParseError as exc:
        raise ActionError(f"Исходное письмо не читается: {exc.reason}") from None
    load_routes_once()
    handler = COMMAND_ROUTES.get(command)
    outcome = handler(session, parsed, entry, now) if handler is not None else None
    if outcome is None:
        raise ActionError(f"Команду «{COMMAND_NAMES[command]}» по этому письму выполнить нельзя")
    name = COMMAND_NAMES[command]
    internal_note(
        session,
        request.client,
        request,
        now,
        f"Письмо исполнено как команда: {name}",
        actor=actor,
        command=command.value,
        outcome=outcome,
    )
    if status is Status.received:
        service.close_unregistered(
            session, request, now=now, actor=actor, comment=f"Исполнено как {name}", data={"command": command.value}
        )
    else:
        service.change_status(
            session,
            settings,
            request,
            Status.answered,
            now=now,
            actor=actor,
            comment=COMMAND_ANSWERS[command],
        )
    return outcome
