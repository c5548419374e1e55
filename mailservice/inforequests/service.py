"""Applying the lifecycle to the database: clients, registration, status changes, client messages.

Every function takes the caller's session and ``now`` and never commits: the caller's transaction decides, so a
status change, its history event and its e-mail notice (in the outbox) are stored together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice import bulk
from mailservice.config import Settings
from mailservice.inforequests import identity, notifications, queues
from mailservice.inforequests.deadlines import (
    Law,
    deadline,
    notice_due,
    registered_late,
    registration_due,
    validate_extension,
)
from mailservice.inforequests.labels import Labels, StoredFile
from mailservice.inforequests.lifecycle import (
    JOINABLE_STATUSES,
    OPEN_STATUSES,
    ORAL_CHANNELS,
    REFUSAL_GROUNDS,
    STAFF_SETTABLE,
    Channel,
    EventKind,
    RefusedAction,
    Status,
    TransitionError,
    check_missing,
    check_transition,
)
from mailservice.inforequests.models import (
    Attachment,
    Client,
    ClientContact,
    Event,
    RegistrationCounter,
    Request,
    get_by_number,
)
from mailservice.inforequests.notes import EventLike, add_event, as_event, internal_note
from mailservice.intake.models import IntakeEntry
from mailservice.mail.addresses import contact_key, same_address
from mailservice.mail.headers import address_lines, one_line
from mailservice.webrequests.status import new_link
from mailservice.workdays import default_calendar


class RequestError(RefusedAction):
    """A request operation that cannot be done."""


@dataclass(frozen=True)
class RejectedFile:
    """An attachment that was not kept, and why (in Russian, as the client and staff read it)."""

    filename: str
    reason: str


def _note_rejected(
    session: Session, request: Request, event: EventLike, now: dt.datetime, files: Sequence[RejectedFile]
) -> None:
    """Record attachments that were not kept: in the message's event (the acknowledgement names them) and as a note
    staff see in the history, so that nothing is dropped without a word."""
    if not files:
        return
    rejected = [{"name": f.filename, "reason": f.reason} for f in files]
    if isinstance(event, bulk.Row):
        event.values["data"] = {**(event.values.get("data") or {}), "rejected_attachments": rejected}
    else:
        event.data = {**(event.data or {}), "rejected_attachments": rejected}
    names = "; ".join(f"«{f.filename}» ({f.reason})" for f in files)
    _event(session, request, now, EventKind.note, comment=f"Не приняты вложения письма: {names}.")


def local_date(settings: Settings, moment: dt.datetime) -> dt.date:
    """The department's calendar date at ``moment`` (the time zone decides what "today" is)."""
    return moment.astimezone(settings.tz).date()


# Clients ------------------------------------------------------------------------------------------------------


def find_client_by_email(session: Session, email: str) -> Client | None:
    """The client who owns this address, following merges."""
    contact = identity.contact_of(session, "email", email)
    return survivor(session, contact.client) if contact else None


def find_or_create_client(
    session: Session,
    *,
    now: dt.datetime,
    name: str = "",
    email: str | None = None,
    phone: str | None = None,
    organisation: str = "",
    postal_address: str = "",
) -> Client:
    """The client of a request staff enter (a call, a visit, a letter) or the site's form gives, or a new one.

    The e-mail address given is only claimed: it becomes the request's reply address (``create_request``) and
    never a contact of anyone here, and it finds nobody (README, "Security model"): when it is client V's, the
    request gets a record of its own, and V joins it by the link of its acknowledgement (``claims``, defect F12).
    A phone that matches client V while an e-mail is given that is not V's does not make the caller V: a new
    record is made and staff are offered to merge the two (the phone takeover of issue 14), and so when a postal
    address is given that V's record does not hold (V's answers by post would go there). A phone alone finds
    its client; it is attached to a client only when nobody has it, and moved to the caller's record from a record
    merged into it (or from one with no live survivor: ``_left_on_merged``).
    """
    by_email = find_client_by_email(session, email) if email else None
    phone_contact = identity.contact_of(session, "phone", phone) if phone else None
    by_phone = survivor(session, phone_contact.client) if phone_contact else None
    # A postal address the phone's record does not hold does not become that record's either: letters with its
    # answers would go where the caller said (the tryout of 7 December). The caller gets a record of his own.
    new_post = by_phone is not None and _other_post(by_phone.postal_address, postal_address)
    client = by_phone if by_phone is not None and (not email or by_email is by_phone) and not new_post else None
    # The phone is attached when nobody live has it, and moved when a record merged into the caller's holds it.
    client = update_or_create_client(
        session,
        client,
        now=now,
        name=name,
        phone=phone if by_phone is None or by_phone is client else None,
        organisation=organisation,
        postal_address=postal_address,
    )
    if by_phone is not None and by_phone is not client:
        given = (
            f"адрес {email}, который этому клиенту не принадлежит"
            if email and by_email is not by_phone
            else f"почтовый адрес «{address_lines(postal_address)}», которого нет в записи этого клиента"
        )
        identity.suggest_merge(
            session,
            client,
            by_phone,
            f"Телефон {phone} записан за клиентом № {by_phone.id}; обратившийся назвал {given}. "
            "Объединяйте записи только после проверки личности.",
            now,
        )
    return client


def _other_post(held: str, given: str) -> bool:
    """Whether a postal address typed (``given``) is one the record does not hold: not empty and not ``held``
    whatever its spacing, line breaks and case."""
    typed = " ".join(address_lines(given).split()).casefold()
    return bool(typed) and typed != " ".join(held.split()).casefold()


def survivor(session: Session, client: Client) -> Client | None:
    """``client`` or the record it was merged into; None when that record is anonymised (retention is done with
    its person: nothing is registered on it again) or when the merges go round a loop (old data: no survivor)."""
    end, _passed = _merge_chain(session, client)
    return end if end is not None and end.anonymised_at is None else None


def _merge_chain(session: Session, client: Client) -> tuple[Client | None, list[int]]:
    """Where ``client``'s merges lead: the last record (None on a loop) and the ids of the records passed."""
    passed: list[int] = []
    current: Client | None = client
    while current is not None and current.merged_into_id is not None:
        if current.id in passed:
            return None, passed
        passed.append(current.id)
        current = session.get(Client, current.merged_into_id)
    return current, passed


def update_or_create_client(
    session: Session,
    client: Client | None,
    *,
    now: dt.datetime,
    name: str = "",
    email: str | None = None,
    phone: str | None = None,
    organisation: str = "",
    postal_address: str = "",
    email_unheld: bool = False,
) -> Client:
    """``client`` (already looked up by the caller) with missing details filled in, or a new client.

    ``email`` is an address the client wrote from (intake's From): it becomes a contact, not yet proven. The name
    and organisation are kept on one line (``one_line``): a line break pasted into a form or the console would
    otherwise break every letter addressed by them. ``email_unheld``: the caller knows that no stored contact row
    holds ``email`` (intake's look-ups of a batch), so none left on a merged record is sought.
    """
    name, organisation = one_line(name), one_line(organisation)
    postal_address = address_lines(postal_address)
    if client is None:
        client = Client(name=name, organisation=organisation, postal_address=postal_address, created_at=now)
        session.add(client)
    else:
        client.name = client.name or name
        client.organisation = client.organisation or organisation
        client.postal_address = client.postal_address or postal_address
    for kind, value in (("email", email), ("phone", phone)):
        if not value or any(c.kind == kind and c.value_key == contact_key(kind, value) for c in client.contacts):
            continue
        left = None if kind == "email" and email_unheld else _left_on_merged(session, client, kind, value)
        if left is not None:
            merged_id = left.client_id
            how = _relation(session, left.client, client)
            move_contacts([left], client, now)
            what = "Адрес" if kind == "email" else "Телефон"
            internal_note(
                session,
                client,
                None,
                now,
                f"{what} {left.value} оставался за записью клиента № {merged_id}, {how}; "
                "перенесён к этой записи неподтверждённым.",
                contacts_moved_from=merged_id,
            )
        else:
            client.contacts.append(ClientContact(kind=kind, value=value, created_at=now))
    client.last_interaction_at = now
    return client


def _left_on_merged(session: Session, client: Client, kind: str, value: str) -> ClientContact | None:
    """The contact ``value`` when a merged record still holds it (old data, an import, an older backup restored)
    and ``client`` is where it goes: the record's survivor, or any client when the record has no live survivor.

    The look-ups find the survivor by it; and a second row of it cannot exist. A record merged into an anonymised
    one, or on a loop of merges, has no survivor to give it to: the look-ups hand over nobody, so a letter or call
    from it makes a new client, who takes the contact as a stranger's (retention is done with the person who had
    it; a loop is old data nobody can act on, and holding the letter back would stop its deadline for nothing).
    """
    # Without an autoflush: the row sought is a stored one, and a flush here, for every letter, would write each of
    # intake's new clients on its own instead of a batch's together (intake/pipeline.py: one flush a batch).
    with session.no_autoflush:
        contact = identity.contact_of(session, kind, value)
    if contact is None or contact.client is client or contact.client.merged_into_id is None:
        return None
    found = survivor(session, contact.client)
    return contact if found is client or found is None else None


def _relation(session: Session, merged: Client, client: Client) -> str:
    """What ``merged`` is to ``client``, which takes its contact (said in the internal note)."""
    end, passed = _merge_chain(session, merged)
    if end is client:
        return "объединённой с этой"
    if end is None:
        return f"входящей в круг объединений записей № {', '.join(map(str, passed))}"
    return "объединённой с обезличенной записью"


def move_contacts(contacts: Iterable[ClientContact], survivor: Client, now: dt.datetime) -> None:
    """Give ``survivor`` these contacts of a record merged into it, *unproven* and marked moved: proof of an
    address was given by whoever held the other record (README, "Security model"), and only an identity check
    proves it again (``identity.prove`` refuses a reply or a link for it)."""
    for contact in list(contacts):
        contact.client = survivor
        contact.proven_at = contact.proof = None
        contact.moved_at = now


# Registration -------------------------------------------------------------------------------------------------


def _counter(session: Session, year: int) -> RegistrationCounter:
    """The year's counter row, locked for the rest of the caller's transaction.

    ``SELECT ... FOR UPDATE`` on PostgreSQL (SQLite's BEGIN IMMEDIATE already excludes other writers), so two
    transactions never issue the same number. The row is created first when the year has none.
    """
    # Cached for this transaction only (holding it keeps its identity): a new transaction takes the lock again.
    transaction = session.get_transaction()
    cached = session.info.get("registration_counter")
    if cached is not None and cached[0] is transaction and cached[1] == year and cached[2] in session:
        return cast(RegistrationCounter, cached[2])
    locked = select(RegistrationCounter).where(RegistrationCounter.year == year).with_for_update()
    locked = locked.execution_options(populate_existing=True)
    counter = session.scalar(locked)
    if counter is None:
        # The dialect's INSERT ... ON CONFLICT, imported here: loading every PostgreSQL dialect module at import
        # time slows each start of the CLI.
        if session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            session.execute(postgresql.insert(RegistrationCounter).values(year=year, last=0).on_conflict_do_nothing())
        else:
            from sqlalchemy.dialects import sqlite

            session.execute(sqlite.insert(RegistrationCounter).values(year=year, last=0).on_conflict_do_nothing())
        counter = session.scalars(locked).one()
    session.info["registration_counter"] = (session.get_transaction(), year, counter)
    return counter


def next_number(session: Session, year: int) -> str:
    """Issue the next registration number of ``year`` in the caller's transaction (gap-free: a rollback returns it).

    The counter is incremented in memory and written by the caller's next flush, so registering a batch of
    requests costs one statement, not one per request. A caller that rolls back a savepoint expires the session
    (see intake.pipeline), which reloads the counter as it was.
    """
    counter = _counter(session, year)
    counter.last += 1
    return f"{year}-{counter.last:06d}"


def recompute_due(settings: Settings, request: Request) -> None:
    """Derive the due date and control date from the registration date and the extension events.

    The term counts from the registration date, never later than the registration term after arrival
    (:func:`deadlines.term_start`). The original term is never overwritten: extensions are events with their legal
    basis (froide#281).
    """
    start = queues.term_start_of(request, settings.tz)
    if start is None:
        request.due_date = request.control_date = None
        return
    extension = sum(e.extension_days or 0 for e in request.events if e.to_status == Status.extended)
    term = deadline(Law(request.law), start, default_calendar(settings), settings.due_shift, extension)
    request.due_date = term.legal_due
    request.control_date = term.control_date


def _event(
    session: Session, request: Request, now: dt.datetime, kind: EventKind, *, actor: str = "", **values: Any
) -> EventLike:
    event = add_event(session, client=request.client, request=request, at=now, kind=kind, actor=actor, **values)
    request.client.last_interaction_at = now
    return event


def attach_files(session: Session, request: Request, event: EventLike, attachments: Sequence[StoredFile]) -> None:
    """Link files already in the blob store to a request's event."""
    for stored in attachments:
        if isinstance(event, bulk.Row):  # intake's fast mode: the event is a queued row (mailservice/bulk.py)
            values = {
                "filename": stored.filename,
                "content_type": stored.content_type,
                "size": stored.size,
                "sha256": stored.sha256,
            }
            bulk.add(session, Attachment, values, request_id=request, event_id=event)
            continue
        session.add(
            Attachment(
                request=request,
                event=event,
                filename=stored.filename,
                content_type=stored.content_type,
                size=stored.size,
                sha256=stored.sha256,
            )
        )


def create_request(
    session: Session,
    settings: Settings,
    *,
    now: dt.datetime,
    client: Client,
    channel: Channel,
    subject: str,
    text: str,
    labels: Labels,
    received_at: dt.datetime | None = None,
    reply_email: str | None = None,
    reply_name: str = "",
    reply_to_claimed: str | None = None,
    intake: IntakeEntry | None = None,
    message_id: str | None = None,
    attachments: Sequence[StoredFile] = (),
    parent: Request | None = None,
    actor: str = "",
    register: bool = True,
    rejected: Sequence[RejectedFile] = (),
) -> Request:
    """Record a request with its first history event and, when ``register``, register it and acknowledge it.

    An anonymous request (no name of a person or organisation and no way to answer) is kept but not considered
    (8-FZ art. 18 part 5 and 59-FZ art. 11 part 1): it stays ``received`` without a number and is closed.
    """
    request = Request(
        client=client,
        parent_id=parent.id if parent else None,
        channel=channel,
        law=labels.law,
        subject=one_line(subject)[:500],
        text=text,
        status=Status.received,
        type=labels.type,
        topic=labels.topic,
        urgency=labels.urgency,
        appeal_kind=labels.appeal_kind,
        needs_review=labels.needs_review,
        classifier_version=labels.version,
        classification=dict(labels.details),
        received_at=received_at or now,
        reply_email=reply_email,
        reply_name=one_line(reply_name)[:300],
        reply_to_claimed=reply_to_claimed,
        thread_root=message_id,
    )
    session.add(request)
    first = _event(
        session,
        request,
        received_at or now,
        EventKind.message_in,
        channel=channel,
        direction="in",
        intake=intake,
        actor=actor,
        comment=subject,
        data={"message_id": message_id} if message_id else {},
    )
    attach_files(session, request, first, attachments)
    _note_rejected(session, request, first, now, rejected)
    anonymous = not (client.name or client.organisation) and not reply_email and channel is not Channel.email
    if anonymous:
        _set_status(session, request, now, Status.closed, comment="Анонимный запрос не рассматривается", actor=actor)
        return request
    if channel is Channel.email and labels.type == "appeal" and settings.appeal_by_email == "redirect_only":
        # A plain e-mail is not an electronic appeal under 59-FZ since 30.03.2025 (547-FZ): tell the legal channels.
        notifications.appeal_channels_notice(session, settings, request, now)
        _set_status(session, request, now, Status.closed, comment="Разъяснён порядок подачи обращения", actor=actor)
        return request
    if register:
        register_request(
            session, settings, request, now=now, actor=actor, claim_url=claim_link(session, settings, request, now)
        )
    return request


def claim_link(session: Session, settings: Settings, request: Request, now: dt.datetime, *, typed: bool = False) -> str:
    """The joining link when a typed reply address is another client's (``claims``), else ''. An e-mail's From is
    its own client's contact by construction (intake), so only the other channels are looked up, unless the
    address is ``typed`` for an e-mail too (the author of a forwarded letter, intake/forwarded_register.py)."""
    if not request.reply_email or (request.channel == Channel.email and not typed):
        return ""
    owner = find_client_by_email(session, request.reply_email)
    if owner is None or owner is request.client or owner.anonymised_at is not None:
        return ""
    from mailservice.inforequests import claims

    session.flush()  # the link names the request and its record by id
    claims.note(session, request, owner, now)
    return claims.url(settings, request)


def is_oral(request: Request) -> bool:
    """Whether the request came orally (phone, visit): registered on the day it came, with date and time."""
    return request.channel in ORAL_CHANNELS


def register_request(
    session: Session,
    settings: Settings,
    request: Request,
    *,
    now: dt.datetime,
    actor: str = "",
    claim_url: str = "",
    forwarded: bool = False,
) -> None:
    """Give a received request its number and legal term, and acknowledge it to the client.

    A written request is registered within 3 days of receipt, an oral one on the day (59-FZ art. 8 p. 2, 8-FZ
    art. 18): one registered later (held as advertising, a call entered days after it came) is registered all the
    same, the lateness recorded, never hidden, and its term counts from arrival (:func:`recompute_due`).
    A letter closed without a number (confirmed as advertising by a slip of the hand) can still be registered:
    the law's duty to register does not end with a click (defect V14).
    """
    closed_unnumbered = request.status == Status.closed and request.number is None
    if request.status != Status.received and not closed_unnumbered:
        raise RequestError("Запрос уже зарегистрирован")
    today = local_date(settings, now)
    received_on = local_date(settings, request.received_at)
    late = registered_late(received_on, today, is_oral(request))
    if closed_unnumbered:  # it goes on as the letter received it was; the closing stays in its history
        request.status = Status.received
        request.closed_at = None
    request.number = next_number(session, today.year)
    request.registered_at = now
    request.registered_on = today
    check_transition(Status(request.status), Status.registered, law=request.law)
    from_status = request.status
    request.status = Status.registered
    _event(
        session,
        request,
        now,
        EventKind.registered,
        from_status=from_status,
        to_status=Status.registered,
        actor=actor,
        comment=f"Зарегистрирован под № {request.number}"
        + (
            f" с нарушением срока регистрации: поступил {received_on:%d.%m.%Y}, зарегистрировать следовало не "
            f"позднее {registration_due(received_on, is_oral(request)):%d.%m.%Y}"
            if late
            else ""
        ),
        data={
            "oral": is_oral(request),
            "time": now.astimezone(settings.tz).isoformat(),
            **({"late_registration": True} if late else {}),
        },
    )
    recompute_due(settings, request)
    notifications.acknowledgement(session, settings, request, now, claim_url=claim_url, forwarded=forwarded)


def close_unregistered(
    session: Session, request: Request, *, now: dt.datetime, actor: str, comment: str, data: dict[str, object]
) -> Event:
    """Close a request that never got a number (advertising confirmed by staff, a command): no notice is sent."""
    if request.status != Status.received:
        raise RequestError("Запрос уже зарегистрирован")
    return as_event(_set_status(session, request, now, Status.closed, comment=comment, actor=actor, data=data))


def _set_status(
    session: Session,
    request: Request,
    now: dt.datetime,
    target: Status,
    *,
    comment: str = "",
    actor: str = "",
    ground: str | None = None,
    extension_days: int | None = None,
    data: dict[str, object] | None = None,
) -> EventLike:
    from_status = request.status
    request.status = target
    if target is Status.answered:
        request.answered_at = now
    if target is Status.refused:
        request.refusal_ground = ground
        request.answered_at = now
    if target is Status.closed:
        request.closed_at = now
    if target is Status.in_progress:
        request.closed_at = None
    return _event(
        session,
        request,
        now,
        EventKind.status_changed,
        from_status=from_status,
        to_status=target,
        ground=ground,
        extension_days=extension_days,
        comment=comment,
        actor=actor,
        data=data or {},
    )


def change_status(
    session: Session,
    settings: Settings,
    request: Request,
    target: Status,
    *,
    now: dt.datetime,
    actor: str,
    comment: str = "",
    ground: str | None = None,
    extension_days: int | None = None,
    forwarded_to: str = "",
    notify: bool = True,
) -> Event:
    """A staff status change: checked against the rules, recorded as an event, told to the client by e-mail."""
    if target not in STAFF_SETTABLE:
        raise TransitionError("Этот статус устанавливается только при регистрации")
    # Two members of staff may act on one request at once (defect U11): the transition is checked against the
    # status as it is now, read under a row lock held to the end of this transaction (PostgreSQL; SQLite's BEGIN
    # IMMEDIATE serialises writers already), not against the status loaded when the page was served. The flush
    # keeps this transaction's own changes of the request.
    session.flush()
    session.refresh(request, ["status"], with_for_update=True)
    current = Status(request.status)
    check_transition(current, target, ground=ground, law=request.law)
    if target is Status.refused and ground:
        check_missing(ground, _present(request))
    # The terms of an extension and of a forwarding count from where the answer term does (recompute_due): a
    # request entered after its registration term gains no days from the delay (tryout T8).
    start = queues.term_start_of(request, settings.tz)
    if start is None:
        raise RequestError("Сначала запрос нужно зарегистрировать")
    today = local_date(settings, now)
    if target is Status.extended:
        previous = sum(1 for e in request.events if e.to_status == Status.extended)
        try:
            validate_extension(Law(request.law), start, today, extension_days or 0, previous)
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        if not comment:
            raise RequestError("При продлении срока нужно указать причину", field="comment")
    elif extension_days:
        raise RequestError("Число дней продления указывается только при продлении")
    if target is Status.forwarded and not forwarded_to:
        raise RequestError("Укажите, куда перенаправлен запрос")
    if target is Status.refused and not comment.strip():
        raise RequestError("Отказ должен быть мотивированным: укажите причину", field="comment")
    # The notice of these statuses is the comment itself: without it the citizen would get an empty answer (8-FZ
    # art. 19, 59-FZ art. 10: an answer on the merits) or a request to clarify nothing.
    if target is Status.answered and not comment.strip():
        raise RequestError("Ответ не может быть пустым: укажите текст ответа по существу", field="comment")
    if target is Status.clarification_requested and not comment.strip():
        raise RequestError("Укажите, что именно нужно уточнить заявителю", field="comment")
    data: dict[str, object] = {"forwarded_to": forwarded_to} if forwarded_to else {}
    if target is Status.forwarded and today > notice_due(start):
        # The law gives 7 days to forward and tell the requester (8-FZ, 59-FZ art. 8); a late forwarding is still
        # better than none, so it is done and the lateness recorded, never hidden.
        data["late_notice"] = True
    event = as_event(
        _set_status(
            session,
            request,
            now,
            target,
            comment=comment,
            actor=actor,
            ground=ground,
            extension_days=extension_days,
            data=data,
        )
    )
    recompute_due(settings, request)
    refusal = REFUSAL_GROUNDS.get(ground or "")
    if notify and (refusal is None or refusal.send_reply):
        notifications.status_notice(session, settings, request, event, now)
    return event


def _present(request: Request) -> frozenset[str]:
    """What of a name and a way to answer the request gives (:func:`lifecycle.check_missing`)."""
    client = request.client
    present = set()
    if (request.reply_name or client.name).strip():
        present.add("name")
    if request.reply_email or client.email or client.postal_address.strip():
        present.update(("address", "contact"))
    if any(c.kind == "phone" for c in client.contacts):
        present.add("contact")
    return frozenset(present)


def add_client_message(
    session: Session,
    settings: Settings,
    request: Request,
    *,
    now: dt.datetime,
    channel: Channel,
    text: str,
    subject: str = "",
    intake: IntakeEntry | None = None,
    message_id: str | None = None,
    attachments: Sequence[StoredFile] = (),
    from_addr: str | None = None,
    rejected: Sequence[RejectedFile] = (),
) -> Event:
    """A further message from the client on an open request; answers a clarification request."""
    event = as_event(
        _event(
            session,
            request,
            now,
            EventKind.message_in,
            channel=channel,
            direction="in",
            intake=intake,
            comment=text,
            data={k: v for k, v in {"message_id": message_id, "subject": subject, "from": from_addr}.items() if v},
        )
    )
    attach_files(session, request, event, attachments)
    _note_rejected(session, request, event, now, rejected)
    if request.status == Status.clarification_requested:
        # The clarification arrived: back to work, and the client is told like of any status change (issue 17).
        changed = as_event(
            _set_status(session, request, now, Status.in_progress, comment="Получено уточнение от заявителя")
        )
        notifications.status_notice(session, settings, request, changed, now)
    return event


def reclassify(
    session: Session,
    settings: Settings,
    request: Request,
    *,
    type_: str,
    topic: str,
    urgency: str,
    appeal_kind: str | None,
    actor: str,
    now: dt.datetime,
) -> Event:
    """Staff correct the classifier's labels; the event records who changed what (before and after), and the
    corrected request becomes training data (``classify train``). A switch between 8-FZ and 59-FZ recomputes the
    term."""
    from mailservice.classify.rules import load_taxonomy

    tax = load_taxonomy()
    for axis, value in (("type", type_), ("topic", topic), ("urgency", urgency)):
        if value not in tax[axis].labels:
            raise RequestError(f"Неизвестное значение «{value}» ({tax[axis].name})")
    if type_ == "appeal":
        if appeal_kind not in tax["appeal_kind"].labels:
            raise RequestError("Для обращения укажите его вид (предложение, заявление, жалоба)")
    else:
        appeal_kind = None
    before = {
        "type": request.type,
        "topic": request.topic,
        "urgency": request.urgency,
        "appeal_kind": request.appeal_kind,
    }
    law = Law.FZ59 if type_ == "appeal" else Law.FZ8
    if law != request.law and any(e.to_status == Status.extended for e in request.events):
        raise RequestError("Срок уже продлевался по другому закону: смена закона невозможна")
    request.type, request.topic, request.urgency, request.appeal_kind = type_, topic, urgency, appeal_kind
    request.law = law
    request.needs_review = False
    due_before = request.due_date
    recompute_due(settings, request)
    if due_before is not None and request.due_date != due_before and Status(request.status) in OPEN_STATUSES:
        # A new law, a new term: the client is told every change of the due date (issue 17).
        notifications.due_date_notice(session, settings, request, now, previous=due_before)
    return as_event(
        _event(
            session,
            request,
            now,
            EventKind.classified,
            actor=actor,
            comment="Классификация уточнена сотрудником",
            data={
                "internal": True,
                "before": before,
                "after": {"type": type_, "topic": topic, "urgency": urgency, "appeal_kind": appeal_kind},
            },
        )
    )


def set_notification_address(
    session: Session, request: Request, address: str, *, actor: str, now: dt.datetime
) -> Event:
    """Staff add or change where a request's notices go, after registration (issue 17): only to an address proven
    for the request's client (README, "Security model"): a typed address proves nothing, so a caller cannot
    redirect someone else's notices to themselves."""
    if not request.client.proven_email(address):
        raise RequestError(
            "Этот адрес не подтверждён для клиента: уведомления можно направлять только на подтверждённый адрес "
            "(ответ на наше письмо, переход по ссылке или проверка личности)"
        )
    before = request.reply_email
    if same_address(before, address):  # another spelling of the same mailbox changes nothing
        raise RequestError("Уведомления уже направляются на этот адрес")
    request.reply_email = address
    request.reply_to_claimed = None
    # The address the notices went to until now keeps no view of the case (defect U1): the next notice brings the
    # new address its own status link (webrequests/status.py).
    new_link(request)
    return as_event(
        _event(
            session,
            request,
            now,
            EventKind.note,
            actor=actor,
            comment=f"Адрес для уведомлений: {address}" + (f" (был {before})" if before else ""),
            data={"internal": True, "notification_address": {"before": before, "after": address}},
        )
    )


def is_joinable(request: Request) -> bool:
    """Whether a reply joins this request (open) or starts a new linked one (answered, refused, closed)."""
    return Status(request.status) in JOINABLE_STATUSES


__all__ = [
    "Labels",
    "RequestError",
    "StoredFile",
    "add_client_message",
    "change_status",
    "create_request",
    "find_or_create_client",
    "get_by_number",
    "is_joinable",
    "move_contacts",
    "next_number",
    "register_request",
    "set_notification_address",
    "update_or_create_client",
]
