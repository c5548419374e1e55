"""A citizen's letter another body forwarded to us (issue 13): registered under the citizen, not the body.

59-FZ art. 8 p. 3: a body that receives an appeal outside its remit forwards it to the competent one within seven
days *and tells the citizen*; the answer goes to the citizen (art. 10). So when a body forwards a letter
(intake/forwarded.py reads its author):

* **Proven body** (its domain in ``FORWARDING_BODIES`` and our server's Authentication-Results proving it,
  intake/authres.py): the appeal is registered with the forwarded author as the client, on a record of its own
  (never joined to an existing client by the address: the address is the body's word, as an address typed in the
  site's form is the typist's, inforequests/claims.py), channel e-mail, with an internal note naming the body; the
  body's letter is the request's source (its first message). The acknowledgement, with the joining link when the
  address is already a client's, goes to the citizen. The body gets nothing automatic: it has told the citizen
  itself (art. 8 p. 3), and a letter about the case to an address we cannot prove would tell it to whoever forged
  the body's From. The legal clock runs from our registration.
* **Otherwise** (the default): the letter is registered under its sender, as any letter (we answer who wrote to
  us), with a note for staff naming the forwarded author. Staff may re-register it on the author in one action
  (:func:`reregister`: the console's button, ``mailservice requests reregister-forwarded``): the request moves to a
  record of its own for the author, who gets an acknowledgement with the joining link; the sender gets one short
  letter that the appeal is now registered under its author, with no details of it.

Functions take the caller's session and ``now`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests import claims, notifications, service
from mailservice.inforequests.lifecycle import Channel, EventKind, Status
from mailservice.inforequests.models import Client, Request
from mailservice.inforequests.notes import internal_note
from mailservice.intake.forwarded import Finding, strip_forward_prefix
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.mail.compose import build_message, wire_address
from mailservice.mail.parse import ParsedMessage
from mailservice.outbox import enqueue
from mailservice.webrequests.status import new_link

# A request may be re-registered on its forwarded author while it is being considered (not after an answer, a
# refusal or its own forwarding to another body).
REREGISTERABLE = frozenset({Status.registered, Status.in_progress, Status.clarification_requested, Status.extended})


class ForwardError(ValueError):
    """A re-registration that cannot be done; the message is Russian and shown to staff as is."""


def _who(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else f"<{address}>"


def register_for_author(
    session: Session,
    settings: Settings,
    entry: IntakeEntry,
    parsed: ParsedMessage,
    finding: Finding,
    *,
    labels: service.Labels,
    received_at: dt.datetime,
    attachments: Sequence[service.StoredFile],
    rejected: Sequence[service.RejectedFile],
    now: dt.datetime,
) -> Request:
    """Register a proven body's forward under the forwarded author (see the module docstring)."""
    author = finding.author
    assert parsed.from_addr is not None
    client = service.update_or_create_client(session, None, now=now, name=author.name)
    # The citizen's channel to us is the body's forwarding (59-FZ art. 8 p. 3), not a plain e-mail of theirs: the
    # rule on appeals by e-mail (APPEAL_BY_EMAIL=redirect_only) is not theirs to be told.
    request = service.create_request(
        session,
        settings.model_copy(update={"appeal_by_email": "register"}),
        now=now,
        client=client,
        channel=Channel.email,
        subject=author.subject or strip_forward_prefix(parsed.subject),
        text=author.text or parsed.text,
        labels=labels,
        received_at=received_at,
        reply_email=author.address,
        reply_name=author.name,
        intake=entry,
        # The body's Message-ID is no root of the citizen's thread: a later letter of the body stays the body's.
        message_id=None,
        attachments=attachments,
        register=False,
        rejected=rejected,
    )
    body = parsed.from_name or parsed.from_addr.rpartition("@")[2]
    internal_note(
        session,
        client,
        request,
        now,
        f"Поступило в порядке переадресации от {body} ({parsed.from_addr}), письмо органа сохранено (исходное письмо "
        f"этого запроса). Автор пересланного письма: {_who(author.name, author.address)}; адрес указан органом и не "
        "подтверждён.",
        forwarded_by={"name": parsed.from_name, "address": parsed.from_addr},
    )
    claim_url = service.claim_link(session, settings, request, now, typed=True)
    service.register_request(session, settings, request, now=now, claim_url=claim_url, forwarded=True)
    entry.outcome = Outcome.new_request
    entry.request = request
    entry.reason = f"forwarded by {parsed.from_addr} ({finding.reason}): registered under {author.address}"
    return request


def note_forward(session: Session, request: Request, finding: Finding, now: dt.datetime) -> None:
    """The note on a letter registered under its sender that forwards someone else's: who the author is, and the
    one action that re-registers it (staff decide)."""
    author = finding.author
    internal_note(
        session,
        request.client,
        request,
        now,
        f"Письмо содержит пересланное обращение: {_who(author.name, author.address)}. Запрос зарегистрирован на "
        "отправителя письма: он не подтверждён как орган, пересылающий обращения. Если это обращение гражданина, "
        "переданное по компетенции, перерегистрируйте его на автора пересланного письма.",
        forwarded_author={
            "name": author.name,
            "address": author.address,
            "date": author.date,
            "subject": author.subject,
        },
    )


def pending_author(request: Request) -> dict[str, str] | None:
    """The forwarded author staff may re-register ``request`` on, or None (none, done already, or too late)."""
    if request.number is None or request.status not in REREGISTERABLE:
        return None
    found: dict[str, str] | None = None
    for event in request.events:
        data: dict[str, Any] = event.data or {}
        if event.kind != EventKind.note:
            continue
        if data.get("forward_reregistered"):
            return None
        author = data.get("forwarded_author")
        if isinstance(author, dict) and isinstance(author.get("address"), str):
            found = {key: str(value) for key, value in author.items()}
    return found


def reregister(session: Session, settings: Settings, request: Request, *, actor: str, now: dt.datetime) -> Client:
    """Re-register a request on the author of the letter its sender forwarded (see the module docstring); returns
    the author's new record. The number, the registration date and the term stay: the clock ran from our
    registration."""
    author = pending_author(request)
    if author is None:
        if request.status not in REREGISTERABLE:
            raise ForwardError("Перерегистрировать можно только запрос, который рассматривается")
        raise ForwardError("В письме нет пересланного обращения или запрос уже перерегистрирован")
    sender, sender_address = request.client, request.reply_email
    record = service.update_or_create_client(session, None, now=now, name=author.get("name", ""))
    claims.move_request(session, request, record)
    request.reply_email, request.reply_name, request.reply_to_claimed = author["address"], author.get("name", ""), None
    # The status link of the sender's acknowledgement shows nothing from now on (defect U1): the sender is not proven
    # to be the body (README "Identity"), and the case is the author's; the author's acknowledgement has a new link.
    new_link(request)
    who = _who(author.get("name", ""), author["address"])
    internal_note(
        session,
        record,
        request,
        now,
        f"Перерегистрирован на автора пересланного письма: {who} (запись клиента № {record.id}; прежде за "
        f"отправителем письма, клиент № {sender.id}). Адрес указан в письме и не подтверждён.",
        actor,
        forward_reregistered={"from_client": sender.id, "to_client": record.id},
    )
    internal_note(
        session,
        sender,
        None,
        now,
        f"Запрос № {request.number} перерегистрирован на автора пересланного письма (клиент № {record.id}).",
        actor,
    )
    claim_url = service.claim_link(session, settings, request, now, typed=True)
    notifications.acknowledgement(session, settings, request, now, claim_url=claim_url, forwarded=True)
    if sender_address:
        _tell_sender(session, settings, request, sender, sender_address, now)
    return record


def _tell_sender(
    session: Session, settings: Settings, request: Request, sender: Client, address: str, now: dt.datetime
) -> None:
    """One short letter to the sender: the appeal it forwarded is registered under its author. Nothing of the case
    (no number, no name, no term): the sender's address is not proven to be the body it says."""
    first = next((e for e in request.events if e.kind == EventKind.message_in), None)
    root = request.thread_root
    sent_on = (first.at if first is not None else request.received_at).astimezone(settings.tz).date()
    message = build_message(
        settings,
        to=address,
        subject="Пересланное обращение зарегистрировано на имя его автора",
        template="forward_reregistered",
        context={"sent_on": sent_on},
        auto_submitted="auto-generated",
        in_reply_to=root,
        references=[root] if root else [],
    )
    row = enqueue(session, message, kind="forward_notice", envelope=(wire_address(settings.from_address), [address]))
    notifications.sent_event(session, row, client=sender, now=now, subject=str(message["Subject"]))
