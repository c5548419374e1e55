"""E-mails to the client about their request, built from templates and queued in the outbox.

Each notice threads with the earlier ones (In-Reply-To and References, RFC 5322 3.6.4) and carries the number
tag ``[№ 2026-000042]`` in the subject, so that a reply finds its request even when a mail client drops the
headers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, STATUS_NAMES, Channel, EventKind, Status
from mailservice.inforequests.models import Event, Request
from mailservice.mail.compose import build_message, wire_address
from mailservice.outbox import OutboxMessage, enqueue


def subject_tag(number: str | None) -> str:
    """The tag intake looks for in a reply's subject."""
    return f"[№ {number}]" if number else ""


def thread_ids(session: Session, request: Request) -> list[str]:
    """Message-IDs of the thread so far: the client's first message, then ours, oldest first."""
    ids = [request.thread_root] if request.thread_root else []
    if request.id is None:
        return ids  # a request not yet written has sent nothing (and "request_id = NULL" would match others' mail)
    ids += list(
        session.scalars(
            select(OutboxMessage.message_id).where(OutboxMessage.request_id == request.id).order_by(OutboxMessage.id)
        )
    )
    return ids


def send_to_client(
    session: Session,
    settings: Settings,
    request: Request,
    now: dt.datetime,
    *,
    kind: str,
    subject: str,
    template: str,
    auto_submitted: str,
    extra: dict[str, object] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),  # console issue: files sent with an answer
    refs: list[str] | None = None,
    ref_type: str = "request",
    ref_id: int | None = None,
) -> OutboxMessage | None:
    """Queue a templated e-mail to the request's client, threaded with the earlier ones, and record it in the
    client's history. ``ref_type``/``ref_id`` say what else a reply to it concerns (a survey, say); the request
    itself is always the row's ``request_id``."""
    if not request.reply_email:
        return None
    if refs is None:
        refs = thread_ids(session, request)
    message = build_message(
        settings,
        to=request.reply_email,
        to_name=request.client.name,
        subject=f"{subject_tag(request.number)} {subject}".strip(),
        template=template,
        context={
            "request": request,
            "client": request.client,
            "status_names": STATUS_NAMES,
            "channel_name": CHANNEL_NAMES[Channel(request.channel)],
            **(extra or {}),
        },
        auto_submitted=auto_submitted,
        in_reply_to=refs[-1] if refs else None,
        references=refs,
        attachments=attachments,
    )
    envelope = (wire_address(settings.from_address), [wire_address(request.reply_email)])
    row = enqueue(session, message, kind=kind, ref_type=ref_type, ref_id=ref_id, envelope=envelope)
    row.request = request  # not request_id: a new request has no id before the flush
    session.add(
        Event(
            client=request.client,
            request=request,
            at=now,
            kind=EventKind.message_out,
            channel=Channel.email,
            direction="out",
            outbox=row,
            comment=str(message["Subject"]),
        )
    )
    return row


def acknowledgement(session: Session, settings: Settings, request: Request, now: dt.datetime) -> OutboxMessage | None:
    """The acknowledgement with the number and the due date.

    ``Auto-Submitted: auto-replied`` (RFC 3834 5.2) when it answers an e-mail; a notice we start ourselves for a
    request that came by another channel is ``auto-generated``.
    """
    return send_to_client(
        session,
        settings,
        request,
        now,
        kind="acknowledgement",
        subject="Ваше обращение зарегистрировано",
        template="acknowledgement",
        auto_submitted="auto-replied" if request.channel == Channel.email else "auto-generated",
        extra={"appeal_by_email": request.channel == Channel.email and request.type == "appeal"},
        # Nothing was sent about a request before it was registered: the thread is the client's message alone.
        refs=[request.thread_root] if request.thread_root else [],
    )


def status_notice(
    session: Session,
    settings: Settings,
    request: Request,
    event: Event,
    now: dt.datetime,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> OutboxMessage | None:
    """A notice of a status change (seed 004 p. 3: duplicated by e-mail when the client gave an address).

    ``attachments`` (filename, content type, bytes) go with an answer written in the staff console.
    """
    ground = REFUSAL_GROUNDS.get(event.ground or "")
    status = Status(request.status)
    return send_to_client(
        session,
        settings,
        request,
        now,
        kind="status_notice",
        subject=f"Статус обращения: {STATUS_NAMES[status]}",
        template="status_changed",
        # The answer is a letter a person wrote (RFC 3834 5: "no"); every other notice is generated.
        auto_submitted="no" if status is Status.answered else "auto-generated",
        extra={"event": event, "ground": ground, "status": status},
        attachments=attachments,
    )


def appeal_channels_notice(session: Session, settings: Settings, request: Request, now: dt.datetime) -> None:
    """Tell a citizen whose appeal came by plain e-mail where an electronic appeal is legally accepted."""
    send_to_client(
        session,
        settings,
        request,
        now,
        kind="appeal_channels",
        subject="О порядке направления обращения",
        template="appeal_channels",
        auto_submitted="auto-replied",
    )
