"""Letters by post for clients without an e-mail address to write to (issue 16; 8-FZ art. 19; seed 004 p. 3, 9).

A notice or an answer that would be e-mailed is, for a client with no address (or none proven, README "Security
model") but a postal address, made into an official letter on the department's letterhead (outgoing number and
date, the reference to the request, the address block, the signatory) by :mod:`mailservice.documents`, as DOCX and
PDF, and waits in the console's "to be posted" list until staff mark it sent. The letter enters the history.
Functions take the caller's session and ``now`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.documents import Letter, letter_document, letterhead, render_docx, render_pdf
from mailservice.inforequests.lifecycle import ORAL_CHANNELS, REFUSAL_GROUNDS, STATUS_NAMES, Channel, EventKind, Status
from mailservice.inforequests.models import Event, PostalLetter, Request
from mailservice.templating import greeting, render

TITLES = {
    "acknowledgement": "О регистрации запроса",
    "status_notice": "О рассмотрении запроса",
    "answer": "О предоставлении информации",
    "refusal": "Об отказе в предоставлении информации",
}


class LetterError(ValueError):
    """A letter that cannot be marked or found; the message is Russian for staff."""


def wants_letter(request: Request) -> bool:
    """Whether a notice of this request goes by post: the client has a postal address to write to."""
    return bool(request.client.postal_address.strip())


def wants_acknowledgement(request: Request) -> bool:
    """Whether the registration is told by post: a written request (post, the site, a social network) without an
    e-mail address. An oral one (phone, visit) is told its number and term on the spot."""
    return wants_letter(request) and Channel(request.channel) not in ORAL_CHANNELS


def _signatory(session: Session, settings: Settings, actor: str) -> tuple[str, str]:
    """The position and name of the member of staff who acted, else the settings' signatory."""
    from mailservice.web.staff.models import StaffUser  # the console's accounts; imported only when a letter is made

    user = session.scalar(select(StaffUser).where(StaffUser.email == actor)) if actor else None
    position = (user.position if user else "") or settings.letter_signatory_position
    name = (user.name if user else "") or settings.letter_signatory_name
    return position, name


def _next_number(session: Session, request: Request) -> str:
    """The letter's outgoing number: the request's number and the letter's place among its letters."""
    session.flush()  # the request (and earlier letters of this transaction) get their ids
    count = session.scalar(select(func.count()).select_from(PostalLetter).where(PostalLetter.request_id == request.id))
    return f"{request.number}/{int(count or 0) + 1}"


def queue_letter(
    session: Session,
    settings: Settings,
    request: Request,
    now: dt.datetime,
    *,
    kind: str,
    event: Event | None = None,
    attachments: Sequence[str] = (),
) -> PostalLetter | None:
    """Make the letter of a notice (``kind``: acknowledgement | status_notice) and put it in the list to post."""
    if not wants_letter(request) or not request.number:
        return None
    status = Status(request.status)
    title_key = kind
    if kind == "status_notice" and status is Status.answered:
        title_key = "answer"
    elif kind == "status_notice" and status is Status.refused:
        title_key = "refusal"
    actor = event.actor if event is not None else ""
    position, name = _signatory(session, settings, actor)
    today = now.astimezone(settings.tz).date()
    client = request.client
    person = client.name or client.organisation or request.reply_name
    body = render(
        f"letters/{kind}.txt",
        settings=settings,
        request=request,
        event=event,
        status=status,
        status_names=STATUS_NAMES,
        ground=REFUSAL_GROUNDS.get(event.ground or "") if event is not None else None,
        attachments=list(attachments),
        status_url=_status_url(settings, request),
    ).strip()
    number = _next_number(session, request)
    letter = Letter(
        letterhead=letterhead(settings),
        number=number,
        date=today,
        addressee=(person, *client.postal_address.strip().splitlines()),
        title=TITLES[title_key],
        body=body,
        signatory_position=position,
        signatory_name=name,
        greeting=greeting(client.name, client.organisation, fallback=""),
        reference=f"На № {request.number} от {request.registered_on:%d.%m.%Y}" if request.registered_on else "",
        attachments=tuple(attachments),
    )
    document = letter_document(letter)
    store = BlobStore(settings.blob_dir)
    history = Event(
        client=client,
        request=request,
        at=now,
        kind=EventKind.message_out,
        channel=Channel.post,
        direction="out",
        actor=actor,
        comment=f"{letter.title}\n\n{body}",
        data={"contact": "Письмо клиенту по почте", "letter": number, "to_post": True},
    )
    session.add(history)
    row = PostalLetter(
        request=request,
        client=client,
        event=history,
        kind=kind,
        number=number,
        letter_date=today,
        addressee="\n".join(letter.addressee),
        title=letter.title,
        body=body,
        signatory_position=position,
        signatory_name=name,
        attachments=list(attachments),
        docx_sha256=store.put(render_docx(document)),
        pdf_sha256=store.put(render_pdf(document)),
        created_at=now,
    )
    session.add(row)
    return row


def _status_url(settings: Settings, request: Request) -> str:
    from mailservice.webrequests.status import status_url

    return status_url(settings, request)


def to_post(session: Session) -> list[PostalLetter]:
    """Letters waiting to be posted, oldest first."""
    return list(session.scalars(select(PostalLetter).where(PostalLetter.sent_at.is_(None)).order_by(PostalLetter.id)))


def recently_sent(session: Session, limit: int = 50) -> list[PostalLetter]:
    """Letters marked sent, newest first."""
    query = select(PostalLetter).where(PostalLetter.sent_at.is_not(None)).order_by(PostalLetter.sent_at.desc())
    return list(session.scalars(query.limit(limit)))


def mark_sent(session: Session, letter: PostalLetter, *, actor: str, now: dt.datetime) -> None:
    """Staff posted the letter: it leaves the list; the history records when."""
    if letter.sent_at is not None:
        raise LetterError(f"Письмо Исх. № {letter.number} уже отмечено отправленным")
    letter.sent_at = now
    letter.sent_by = actor
    if letter.event is not None:
        letter.event.data = {**(letter.event.data or {}), "to_post": False, "sent_at": now.isoformat()}
    session.add(
        Event(
            client_id=letter.client_id,
            request_id=letter.request_id,
            at=now,
            kind=EventKind.note,
            channel=Channel.post,
            actor=actor,
            comment=f"Письмо Исх. № {letter.number} от {letter.letter_date:%d.%m.%Y} отправлено почтой.",
        )
    )
