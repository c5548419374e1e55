"""What staff do in the console, as functions over the database (no HTTP here).

Status changes go through :func:`mailservice.inforequests.service.change_status`, which owns the lifecycle
rules, records the event and queues the e-mail; this module adds what the console needs around it (assignment,
reclassification, answers with files, requests from other channels, merging clients). Each function takes the
caller's session and ``now`` and never commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.feedback.models import FeedbackSurvey
from mailservice.history.models import HistoryExport
from mailservice.inforequests import identity, notifications, service
from mailservice.inforequests.classification import labels_for
from mailservice.inforequests.lifecycle import Channel, EventKind, Status
from mailservice.inforequests.models import (
    Client,
    ClientContact,
    Event,
    IdentityCheck,
    MergeSuggestion,
    Request,
)
from mailservice.inforequests.notes import as_event, internal_note
from mailservice.mail.addresses import address_key
from mailservice.templating import render

# Channels staff register by hand (e-mail and the web form arrive by themselves).
MANUAL_CHANNELS = (Channel.phone, Channel.visit, Channel.post, Channel.social)

# Answer templates under templates/web/staff/answers/: key -> title shown to staff.
ANSWER_TEMPLATES = {
    "provided": "Информация предоставляется",
    "published": "Информация опубликована (ст. 6, 19 8-ФЗ: указать, где)",
    "appeal": "Ответ на обращение (59-ФЗ)",
    "blank": "Пустой бланк",
}


class ConsoleError(ValueError):
    """An action the console refuses; the message is Russian and shown to staff."""


@dataclass(frozen=True)
class UploadedFile:
    """A file staff attach to an answer."""

    filename: str
    content_type: str
    data: bytes


def _note(session: Session, request: Request, now: dt.datetime, actor: str, comment: str, **data: object) -> Event:
    """An internal note: part of the record, left out of the history the client receives."""
    return as_event(internal_note(session, request.client, request, now, comment, actor, **data))


def assign(session: Session, request: Request, *, assignee: str, unit: str, actor: str, now: dt.datetime) -> Event:
    """Set who answers the request and in which unit."""
    assignee, unit = assignee.strip()[:200], unit.strip()[:200]
    if not assignee and not unit:
        raise ConsoleError("Укажите исполнителя или подразделение")
    before = {"assignee": request.assignee, "unit": request.unit}
    request.assignee, request.unit = assignee, unit
    return _note(
        session,
        request,
        now,
        actor,
        f"Исполнитель: {assignee or '—'}; подразделение: {unit or '—'}",
        before=before,
    )


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
    """Correct the classifier's labels (the rules live in :func:`service.reclassify`)."""
    try:
        return service.reclassify(
            session,
            settings,
            request,
            type_=type_,
            topic=topic,
            urgency=urgency,
            appeal_kind=appeal_kind,
            actor=actor,
            now=now,
        )
    except service.RequestError as exc:
        raise ConsoleError(str(exc)) from exc


# What an answer template leaves for staff to fill: a whole line in square brackets («[Запрашиваемая информация]»),
# and the signature's position and name when the staff account has none (templates/web/staff/answers/).
SIGNATURE_BLANKS = {"position": "Должность", "name": "ФИО"}
_BRACKETED_LINE = re.compile(r"^\s*\[[^\[\]\n]+\]\s*$", re.MULTILINE)


def answer_text(
    settings: Settings, template: str, request: Request, user_name: str, position: str, today: dt.date
) -> str:
    """The text of an answer template for this request, to be edited by staff before sending."""
    if template not in ANSWER_TEMPLATES:
        raise ConsoleError("Неизвестный шаблон ответа")
    return render(
        f"web/staff/answers/{template}.txt",
        settings=settings,
        request=request,
        client=request.client,
        signatory_name=user_name or SIGNATURE_BLANKS["name"],
        signatory_position=position or SIGNATURE_BLANKS["position"],
        today=today,
    )


def unfilled_blanks(text: str) -> list[str]:
    """The places of an answer template still unfilled in ``text``, in order (empty: none)."""
    found = [match.group().strip() for match in _BRACKETED_LINE.finditer(text)]
    lines = {line.strip() for line in text.splitlines()}
    return found + [blank for blank in SIGNATURE_BLANKS.values() if blank in lines]


def answer(
    session: Session,
    settings: Settings,
    request: Request,
    *,
    text: str,
    files: Sequence[UploadedFile],
    actor: str,
    now: dt.datetime,
    answerer: str = "",
) -> Event:
    """Answer the request: status ``answered``, the text and the files e-mailed to the client and kept in the
    history, then the one feedback survey (seed 004 p. 11). A request nobody was assigned to gets the one who
    answered it (``answerer``, the account's name, else ``actor``) as its executor, for the register."""
    from mailservice.feedback.service import queue_survey

    if not text.strip():
        raise ConsoleError("Текст ответа пуст")
    # The answer is the department's final word (8-FZ art. 18, 59-FZ art. 10 p. 1 item 4): a template sent as
    # it is would close the request with no answer in it (tryout of 7 December).
    blanks = unfilled_blanks(text)
    if blanks:
        raise ConsoleError(
            f"В ответе остались незаполненные места шаблона: {', '.join(blanks)}. Заполните их или удалите."
        )
    total = sum(len(f.data) for f in files)
    if total > settings.max_attachment_bytes:
        raise ConsoleError(f"Вложения больше {settings.max_attachment_bytes // (1024 * 1024)} МБ")
    try:
        event = service.change_status(
            session,
            settings,
            request,
            Status.answered,
            now=now,
            actor=actor,
            comment=text.strip(),
            notify=False,
        )
    except ValueError as exc:  # TransitionError, RequestError: readable Russian messages
        raise ConsoleError(str(exc)) from exc
    if not request.assignee:
        request.assignee = (answerer or actor).strip()[:200]
    store = BlobStore(settings.blob_dir)
    # Linked through the event object, not its id: the event is not flushed yet, and a file without its answer
    # event would be missing from the status page, which lists the answer's files.
    stored = [service.StoredFile(f.filename, f.content_type, len(f.data), store.put(f.data)) for f in files]
    service.attach_files(session, request, event, stored)
    notifications.status_notice(
        session,
        settings,
        request,
        event,
        now,
        attachments=[(f.filename, f.content_type, f.data) for f in files],
    )
    queue_survey(session, settings, request, now)
    return event


def change_status(
    session: Session,
    settings: Settings,
    request: Request,
    target: Status,
    *,
    actor: str,
    now: dt.datetime,
    comment: str = "",
    ground: str | None = None,
    extension_days: int | None = None,
    forwarded_to: str = "",
) -> Event:
    """The lifecycle's status change with its errors turned into :class:`ConsoleError`."""
    try:
        return service.change_status(
            session,
            settings,
            request,
            target,
            now=now,
            actor=actor,
            comment=comment.strip(),
            ground=ground or None,
            extension_days=extension_days,
            forwarded_to=forwarded_to.strip(),
        )
    except ValueError as exc:
        raise ConsoleError(str(exc)) from exc


def register(session: Session, settings: Settings, request: Request, *, actor: str, now: dt.datetime) -> None:
    """Give a request kept without a number (held as advertising) its number and term."""
    try:
        service.register_request(session, settings, request, now=now, actor=actor)
    except ValueError as exc:
        raise ConsoleError(str(exc)) from exc


@dataclass(frozen=True)
class ContactRequest:
    """A request taken by phone, at a visit, by post or from a social network, as staff enter it."""

    channel: Channel
    received_at: dt.datetime
    subject: str
    text: str
    name: str = ""
    organisation: str = ""
    email: str | None = None
    phone: str | None = None
    social: str = ""
    postal_address: str = ""
    files: tuple[service.StoredFile, ...] = ()  # scans of a letter, papers brought to a visit


def register_contact_request(
    session: Session, settings: Settings, data: ContactRequest, *, actor: str, now: dt.datetime
) -> Request:
    """Record (and normally register) a request from a channel other than e-mail.

    An oral request is registered the same day with date and time (8-FZ art. 18); the e-mail address, if the
    client gave one, receives this request's notices (seed 004 p. 3) but is not proven by being typed: it joins no
    client record and opens no history (README, "Security model").
    """
    if data.channel not in MANUAL_CHANNELS:
        raise ConsoleError("Этот канал регистрируется автоматически")
    if not data.subject.strip() or not data.text.strip():
        raise ConsoleError("Укажите тему и содержание запроса")
    if data.received_at > now:
        raise ConsoleError("Время поступления в будущем")
    client = service.find_or_create_client(
        session,
        now=now,
        name=data.name.strip(),
        email=data.email,
        phone=data.phone,
        organisation=data.organisation.strip(),
        postal_address=data.postal_address.strip(),
    )
    social = data.social.strip()[:320]
    if social and not session.scalar(
        select(ClientContact).where(ClientContact.kind == "social", ClientContact.value == social)
    ):
        client.contacts.append(ClientContact(kind="social", value=social, created_at=now))
    return service.create_request(
        session,
        settings,
        now=now,
        client=client,
        channel=data.channel,
        subject=data.subject.strip(),
        text=data.text.strip(),
        labels=labels_for(data.subject, data.text),
        received_at=data.received_at,
        reply_email=data.email,
        reply_name=data.name.strip() or data.organisation.strip(),
        actor=actor,
        attachments=data.files,
    )


def merge_clients(
    session: Session,
    survivor: Client,
    duplicate: Client,
    *,
    actor: str,
    now: dt.datetime,
    document: str = "",
    email: str | None = None,
    phone: str | None = None,
) -> IdentityCheck:
    """Merge two records of the same person after an identity check: everything of ``duplicate`` moves to
    ``survivor``.

    A merge gives the survivor the duplicate's history and addresses, so it is done only when staff saw the
    person's identity document (``document``, a key of :data:`identity.DOCUMENTS`): the check is recorded on the
    survivor (type, who, when). The duplicate's addresses and phones come over *unproven* (README, "Security
    model"): only those the person gives at this check (``email``, ``phone``) are proven, in person, and a
    reply or a link never proves the others (``moved_at``). Its postal address does not come over (the note
    names it). The duplicate stays as an empty record pointing at the survivor, so old links and numbers still
    resolve; a history link made for it works only while its address is proven for the survivor.
    """
    if survivor.id == duplicate.id:
        raise ConsoleError("Нельзя объединить клиента с самим собой")
    if survivor.merged_into_id is not None or duplicate.merged_into_id is not None:
        raise ConsoleError("Одна из записей уже объединена с другой")
    if survivor.anonymised_at is not None or duplicate.anonymised_at is not None:
        raise ConsoleError("Обезличенные записи не объединяются")
    if document not in identity.DOCUMENTS:
        raise ConsoleError(
            "Объединить записи можно только после проверки личности: выберите документ, который предъявил человек"
        )
    unproven = [c.value for c in duplicate.contacts if c.proven and c.value not in (email, phone)]
    service.move_contacts(duplicate.contacts, survivor, now)
    for model in (Request, Event, HistoryExport, FeedbackSurvey, IdentityCheck):
        session.execute(
            update(model).where(model.client_id == duplicate.id).values(client_id=survivor.id),
            execution_options={"synchronize_session": False},
        )
    survivor.name = survivor.name or duplicate.name
    survivor.organisation = survivor.organisation or duplicate.organisation
    # The postal address is not carried over either: answers by post would go where whoever held the other
    # record said (the tryout of 7 December). Staff see it in the note and enter it if the person confirms it.
    other_post = duplicate.postal_address if duplicate.postal_address != survivor.postal_address else ""
    survivor.legal_hold = survivor.legal_hold or duplicate.legal_hold
    survivor.last_interaction_at = max(survivor.last_interaction_at, duplicate.last_interaction_at)
    survivor.created_at = min(survivor.created_at, duplicate.created_at)
    duplicate.merged_into_id = survivor.id
    _carry_suggestions(session, survivor, duplicate, actor=actor, now=now)
    comment = f"Объединён с записью клиента № {duplicate.id}"
    if unproven:
        comment += f"; её контакты перенесены неподтверждёнными: {', '.join(unproven)}"
    if other_post:
        comment += (
            f"; её почтовый адрес не перенесён (укажите его, если клиент подтвердит): {' '.join(other_post.split())}"
        )
    session.add(
        Event(
            client_id=survivor.id,
            at=now,
            kind=EventKind.note,
            actor=actor,
            comment=comment,
            data={"internal": True, "merged": duplicate.id},
        )
    )
    session.flush()
    session.expire_all()
    try:
        check = identity.record_check(
            session,
            survivor,
            document=document,
            checked_by=actor,
            now=now,
            email=email,
            phone=phone,
            note=f"При объединении с записью № {duplicate.id}",
        )
    except identity.IdentityError as exc:
        raise ConsoleError(str(exc)) from exc
    session.flush()
    return check


def _carry_suggestions(session: Session, survivor: Client, duplicate: Client, *, actor: str, now: dt.datetime) -> None:
    """Suggestions between the two are settled by their merge; the duplicate's others now concern the survivor
    (or are closed when the survivor already has the same one)."""
    involved = or_(MergeSuggestion.client_id == duplicate.id, MergeSuggestion.other_id == duplicate.id)
    for suggestion in list(session.scalars(select(MergeSuggestion).where(MergeSuggestion.status == "open", involved))):
        pair = {suggestion.client_id, suggestion.other_id}
        third = (pair - {duplicate.id}).pop()
        if third == survivor.id:
            suggestion.status, suggestion.decided_by, suggestion.decided_at = "accepted", actor, now
            continue
        same = select(MergeSuggestion.id).where(
            or_(
                (MergeSuggestion.client_id == survivor.id) & (MergeSuggestion.other_id == third),
                (MergeSuggestion.client_id == third) & (MergeSuggestion.other_id == survivor.id),
            )
        )
        if session.scalar(same.limit(1)) is not None:
            suggestion.status, suggestion.decided_by, suggestion.decided_at = "rejected", actor, now
            continue
        if suggestion.client_id == duplicate.id:
            suggestion.client_id = survivor.id
        else:
            suggestion.other_id = survivor.id
        suggestion.reason += f" (запись № {duplicate.id} объединена с № {survivor.id})"


def decide_suggestion(
    session: Session,
    suggestion: MergeSuggestion,
    *,
    accept: bool,
    actor: str,
    now: dt.datetime,
    document: str = "",
    email: str | None = None,
    phone: str | None = None,
) -> None:
    """Accept a suggested merge (the newer record goes into the other) or reject it; both are recorded.

    Accepting is a merge and needs the same identity check (:func:`merge_clients`): the suggestion alone is never
    enough.
    """
    if suggestion.status != "open":
        raise ConsoleError("Предложение уже рассмотрено")
    if accept:
        survivor, duplicate = session.get(Client, suggestion.other_id), session.get(Client, suggestion.client_id)
        if survivor is None or duplicate is None:
            raise ConsoleError("Запись клиента не найдена")
        merge_clients(session, survivor, duplicate, actor=actor, now=now, document=document, email=email, phone=phone)
        suggestion = session.get(MergeSuggestion, suggestion.id) or suggestion  # expired by the merge
        suggestion.status = "accepted"
    else:
        suggestion.status = "rejected"
        for client_id in (suggestion.client_id, suggestion.other_id):
            session.add(
                Event(
                    client_id=client_id,
                    at=now,
                    kind=EventKind.note,
                    actor=actor,
                    comment=f"Отклонено предложение объединить записи № {suggestion.client_id} и "
                    f"№ {suggestion.other_id}",
                    data={"internal": True, "suggestion": suggestion.id},
                )
            )
    suggestion.decided_by, suggestion.decided_at = actor, now


def record_identity_check(
    session: Session,
    client: Client,
    *,
    document: str,
    email: str | None,
    phone: str | None,
    note: str,
    actor: str,
    now: dt.datetime,
) -> IdentityCheck:
    """An identity check in person, recorded from the console (rules in :func:`identity.record_check`)."""
    try:
        return identity.record_check(
            session, client, document=document, checked_by=actor, now=now, email=email, phone=phone, note=note
        )
    except identity.IdentityError as exc:
        raise ConsoleError(str(exc)) from exc


T = TypeVar("T")
TIMELINE_PAGE = 200  # events per page of a client's timeline
LIST_PAGE = 50  # rows per page of the client's requests and of the clients found


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a list that can grow without bound."""

    items: list[T]
    page: int
    pages: int
    total: int


def _clamp_page(page: int, total: int, size: int) -> tuple[int, int]:
    pages = max(1, -(-total // size))
    return max(1, min(page, pages)), pages


def client_timeline(session: Session, client_id: int, page: int = 1, size: int = TIMELINE_PAGE) -> Paged[Event]:
    """The client's events across requests and channels, a page at a time: page 1 holds the newest, each page in
    the order things happened."""
    total = int(session.scalar(select(func.count()).where(Event.client_id == client_id)) or 0)
    page, pages = _clamp_page(page, total, size)
    newest_first = session.scalars(
        select(Event)
        .where(Event.client_id == client_id)
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return Paged(list(reversed(newest_first)), page, pages, total)


def client_requests(session: Session, client_id: int, page: int = 1, size: int = LIST_PAGE) -> Paged[Request]:
    """The client's requests, newest first, a page at a time."""
    total = int(session.scalar(select(func.count()).where(Request.client_id == client_id)) or 0)
    page, pages = _clamp_page(page, total, size)
    rows = session.scalars(
        select(Request)
        .where(Request.client_id == client_id)
        .order_by(Request.id.desc())
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return Paged(list(rows), page, pages, total)


def find_clients(session: Session, text: str, limit: int = LIST_PAGE, page: int = 1) -> list[Client]:
    """Clients whose name, organisation or contact contains ``text`` (for the merge form and lookups)."""
    return find_clients_page(session, text, page=page, size=limit).items


def find_clients_page(session: Session, text: str, *, page: int = 1, size: int = LIST_PAGE) -> Paged[Client]:
    """One page of the clients whose name, organisation or contact contains ``text``, oldest record first."""
    like = f"%{text.strip().replace('%', '').replace('_', '')}%"
    if len(like) < 4:
        return Paged([], 1, 1, 0)
    # An address's key is lower-cased in Python (SQLite's ILIKE folds ASCII only): a Cyrillic mailbox is found too.
    key_like = f"%{address_key(text.strip().replace('%', '').replace('_', ''))}%"
    contact_ids = select(ClientContact.client_id).where(
        or_(ClientContact.value.ilike(like), ClientContact.value_key.like(key_like))
    )
    condition = (Client.merged_into_id.is_(None)) & or_(
        Client.name.ilike(like), Client.organisation.ilike(like), Client.id.in_(contact_ids)
    )
    total = int(session.scalar(select(func.count()).select_from(Client).where(condition)) or 0)
    page, pages = _clamp_page(page, total, size)
    rows = session.scalars(
        select(Client).where(condition).order_by(Client.id).limit(size).offset((page - 1) * size)
    ).all()
    return Paged(list(rows), page, pages, total)
