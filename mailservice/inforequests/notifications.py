"""E-mails to the client about their request, built from templates and queued in the outbox.

Each notice threads with the earlier ones (In-Reply-To and References, RFC 5322 3.6.4) and carries the number
tag ``[№ 2026-000042]`` in the subject, so that a reply finds its request even when a mail client drops the
headers.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.bulk import Row
from mailservice.config import Settings
from mailservice.inforequests import postal
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, STATUS_NAMES, Channel, EventKind, Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.inforequests.notes import EventLike, add_event, event_rows, internal_note
from mailservice.mail.addresses import address_key
from mailservice.mail.compose import TextMessage, build_message, text_message_bytes, wire_address
from mailservice.outbox import OutboxMessage, enqueue_raw, wire_fields
from mailservice.templating import fill, greeting, render_slotted, ru_date, ru_short_date, slot
from mailservice.webrequests.status import status_url

log = logging.getLogger(__name__)


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


def answer_address(request: Request) -> str | None:
    """Where notices and answers of a request go: its own reply address, or the Reply-To it claimed once that
    address is proven for the client (README, "Security model")."""
    claimed = request.reply_to_claimed
    if claimed and request.client.proven_email(claimed):
        return claimed
    return request.reply_email


UNSENT_NOTE = (
    "Ответ не направлен клиенту: нет ни адреса электронной почты, ни почтового адреса. Сообщите ответ иначе "
    "(по телефону, на личном приёме) и запишите контакт в историю."
)


def reachable(request: Request) -> bool:
    """Whether a notice or an answer of the request goes anywhere: by e-mail, or as a letter to post."""
    return answer_address(request) is not None or postal.wants_letter(request)


def addressee(request: Request, address: str) -> str:
    """The name to greet: the client record's only when ``address`` is proven for the client; otherwise the name
    this request itself gave, so a forged From learns nothing of the record it names."""
    if request.client.proven_email(address):
        return request.client.name or request.reply_name
    return request.reply_name


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
    to: str | None = None,
) -> OutboxMessage | Row | None:
    """Queue a templated e-mail about one request to its client, threaded with the earlier ones, and record it in
    the client's history. ``to`` defaults to :func:`answer_address`. The templates see this request and nothing
    else of the client but the greeting's name (:func:`addressee`). ``ref_type``/``ref_id`` say what else a reply
    to it concerns (a survey, say); the request itself is always the row's ``request_id``."""
    to = to or answer_address(request)
    if not to:
        return None
    if refs is None:
        refs = thread_ids(session, request)
    name = addressee(request, to)
    full_subject = f"{subject_tag(request.number)} {subject}".strip()
    context = {
        "request": request,
        "addressee": name,
        "status_names": STATUS_NAMES,
        "channel_name": CHANNEL_NAMES[Channel(request.channel)],
        "status_url": status_url(settings, request),
        **(extra or {}),
    }
    envelope = (wire_address(settings.from_address), [wire_address(to)])
    quick = (
        _quick_acknowledgement(settings, request, to, full_subject, context, auto_submitted, refs)
        if template == "acknowledgement" and not attachments
        else None
    )
    if quick is not None:
        row = enqueue_raw(
            session,
            quick.raw,
            message_id=quick.message_id,
            subject=quick.subject,
            kind=kind,
            ref_type=ref_type,
            ref_id=ref_id,
            envelope=envelope,
            request=request,
        )
        sent_subject = quick.subject
    else:
        message = build_message(
            settings,
            to=to,
            to_name=name,
            subject=full_subject,
            template=template,
            context=context,
            auto_submitted=auto_submitted,
            in_reply_to=refs[-1] if refs else None,
            references=refs,
            attachments=attachments,
        )
        fields = wire_fields(message, envelope)
        row = enqueue_raw(session, **fields, kind=kind, ref_type=ref_type, ref_id=ref_id, request=request)
        sent_subject = str(message["Subject"])
    sent_event(session, row, client=request.client, request=request, now=now, subject=sent_subject)
    if kind in AUTO_REPLY_KINDS:
        _count_auto_reply(session, to)
    return row


class _SlottedRequest:
    """A request as the acknowledgement's template reads it, with :func:`templating.slot` markers for the values
    that differ from letter to letter (its law decides which paragraphs the text has, so it is real)."""

    number = slot("number")
    registered_on = slot("registered_on")
    subject = slot("subject")
    due_date = slot("due_date")
    client = SimpleNamespace(organisation="")  # read only as an argument of the greeting, itself a slot

    def __init__(self, law: str) -> None:
        self.law = law


_ACK_SLOTS = frozenset({"greeting", "number", "registered_on", "subject", "due_date", "status_url"})
# The acknowledgement's text rendered once per kind (settings, law, channel, the advice on appeals by e-mail).
_ack_texts: dict[tuple[object, ...], tuple[Settings, list[str] | None]] = {}


def _quick_acknowledgement(
    settings: Settings,
    request: Request,
    to: str,
    subject: str,
    context: dict[str, object],
    auto_submitted: str,
    refs: list[str],
) -> TextMessage | None:
    """The acknowledgement's bytes without rendering its template or building ``email`` objects per letter: the
    text of its kind with this letter's values put in (the same bytes as build_message; tests/test_intake_batch.py
    compares them). None for the rare kinds it does not cover (a claim link, rejected attachments)."""
    if context["claim_url"] or context["rejected_attachments"]:
        return None
    appeal_by_email = bool(context["appeal_by_email"])
    # The settings object is kept with its texts (an id is unique only while the object lives); the values the
    # text shows are in the key too, so a test that changes them gets a fresh text.
    key = (
        id(settings),
        settings.public_url,
        settings.department_name,
        settings.department_address,
        settings.department_phones,
        request.law,
        context["channel_name"],
        appeal_by_email,
    )
    cached = _ack_texts.get(key)
    if cached is None:
        if len(_ack_texts) >= 64:
            _ack_texts.clear()
        try:
            parts = render_slotted(
                "email/acknowledgement.txt",
                _ACK_SLOTS,
                **{
                    **context,
                    "settings": settings,
                    "request": _SlottedRequest(request.law),
                    "addressee": slot("addressee"),  # only the greeting may show it
                    "greeting": lambda *_args, **_kwargs: slot("greeting"),
                    "status_url": slot("status_url"),
                },
            )
        except Exception:  # the template reads something the stand-in lacks: build these letters normally
            log.exception("the acknowledgement cannot be rendered with slots; building it in full")
            parts = None
        cached = _ack_texts[key] = (settings, parts)
    parts = cached[1]
    if parts is None:
        return None
    text = fill(
        parts,
        {
            "greeting": greeting(str(context["addressee"]), request.client.organisation),
            "number": request.number or "",
            "registered_on": ru_short_date(request.registered_on),
            "subject": request.subject or "без темы",
            "due_date": ru_date(request.due_date),
            "status_url": str(context["status_url"]),
        },
    )
    return text_message_bytes(
        settings,
        to=to,
        to_name=str(context["addressee"]),
        subject=subject,
        text=text,
        auto_submitted=auto_submitted,
        in_reply_to=refs[-1] if refs else None,
        references=refs,
    )


# Automatic answers to a new letter: anyone can put any address in From, so these are limited per address and
# hour (settings.ack_limit_per_hour); the letters themselves are registered all the same.
AUTO_REPLY_KINDS = ("acknowledgement", "appeal_channels")
_AUTO_REPLY_WINDOW = dt.timedelta(hours=1)


def _auto_reply_counts(session: Session) -> dict[str, int]:
    """Automatic replies per address in the last hour as this transaction knows them (read once per address)."""
    transaction = session.get_transaction()
    cached = session.info.get("auto_reply_counts")
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        session.info["auto_reply_counts"] = cached
    counts: dict[str, int] = cached[1]
    return counts


def _mailbox_key(address: str) -> str:
    """The address as the limit counts it: «Victim@» and «vIctim@», «Иван@» and «иван@» reach one mailbox at every
    provider a citizen uses, so forged letters must not multiply the limit by the spellings of one local part
    (defect U9; RFC 5321 2.4 discourages exploiting its case). The key stored as ``Request.reply_email_key``."""
    return address_key(address)


def prefetch_auto_replies(session: Session, addresses: Sequence[str], now: dt.datetime) -> None:
    """Read the automatic replies of the last hour to ``addresses`` in one query (intake's batch)."""
    counts = _auto_reply_counts(session)
    wanted = sorted({_mailbox_key(a) for a in addresses} - counts.keys())
    # Computed in Python and stored (migration 2101), indexed: the same key on both databases.
    reply_key = Request.reply_email_key
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        counts.update(dict.fromkeys(chunk, 0))
        query = (
            select(reply_key, func.count(OutboxMessage.id))
            .join(OutboxMessage, OutboxMessage.request_id == Request.id)
            .where(
                reply_key.in_(chunk),
                OutboxMessage.kind.in_(AUTO_REPLY_KINDS),
                OutboxMessage.created_at > now - _AUTO_REPLY_WINDOW,
            )
            .group_by(reply_key)
        )
        for address, count in session.execute(query):
            if address is not None:
                counts[address] = count


def _count_auto_reply(session: Session, address: str) -> None:
    counts = _auto_reply_counts(session)
    key = _mailbox_key(address)
    if key in counts:
        counts[key] += 1


def auto_reply_allowed(session: Session, settings: Settings, request: Request, now: dt.datetime) -> bool:
    """Whether one more automatic reply may go to the request's reply address this hour; when not, a note for staff
    says so on the request (the request itself is registered all the same)."""
    address = request.reply_email
    if address and address_key(address) in settings.own_addresses:
        # RFC 3834 2: a responder never answers itself; our own mailbox would take the reply in (a mail loop).
        internal_note(
            session,
            request.client,
            request,
            now,
            f"Автоматический ответ на адрес {address} не отправлен: это собственный адрес департамента.",
            auto_reply_suppressed=True,
        )
        return False
    limit = settings.ack_limit_per_hour
    if not address or limit <= 0:
        return True
    counts = _auto_reply_counts(session)
    key = _mailbox_key(address)
    if key not in counts:
        prefetch_auto_replies(session, [address], now)
    if counts[key] < limit:
        return True
    internal_note(
        session,
        request.client,
        request,
        now,
        f"Автоматический ответ на адрес {address} не отправлен: за час на этот адрес уже отправлено "
        f"{counts[key]} (предел {limit}). Письмо зарегистрировано.",
        auto_reply_suppressed=True,
    )
    return False


def rejected_attachments(session: Session, request: Request) -> list[dict[str, str]]:
    """The attachments of the request's first message that were not kept (name, reason), as intake
    recorded them."""
    for kind, data in event_rows(session, request):
        if kind == EventKind.message_in and isinstance(data, dict):
            return list(data.get("rejected_attachments") or [])
    return []


def sent_event(
    session: Session,
    row: OutboxMessage | Row,
    *,
    client: Client,
    now: dt.datetime,
    subject: str,
    request: Request | None = None,
) -> EventLike:
    """Add the client's history line for a letter we queued to them («Сообщение департамента»), with its outbox
    row."""
    return add_event(
        session,
        client=client,
        request=request,
        outbox=row,
        at=now,
        kind=EventKind.message_out,
        channel=Channel.email,
        direction="out",
        comment=subject,
    )


def acknowledgement(
    session: Session,
    settings: Settings,
    request: Request,
    now: dt.datetime,
    *,
    claim_url: str = "",
    forwarded: bool = False,
) -> OutboxMessage | Row | None:
    """The acknowledgement with the number and the due date, to the request's own reply address (the From of its
    e-mail, never a Reply-To: the person named gets it). ``claim_url``: the link by which the owner of a typed
    address joins the request to their history (webrequests/claim.py). ``forwarded``: the appeal reached us from
    another body (59-FZ art. 8 p. 3), so the advice on the channels for appeals by e-mail is not the citizen's.

    ``Auto-Submitted: auto-replied`` (RFC 3834 5.2) when it answers an e-mail; a notice we start ourselves for a
    request that came by another channel is ``auto-generated``.
    """
    if not request.reply_email:
        # No address to write to: a written request is told its number and term by post (issue 16).
        if postal.wants_acknowledgement(request):
            postal.queue_letter(session, settings, request, now, kind="acknowledgement")
        return None
    if not auto_reply_allowed(session, settings, request, now):
        return None
    return send_to_client(
        session,
        settings,
        request,
        now,
        kind="acknowledgement",
        subject="Ваше обращение зарегистрировано",
        template="acknowledgement",
        auto_submitted="auto-replied" if request.channel == Channel.email else "auto-generated",
        extra={
            "appeal_by_email": request.channel == Channel.email and request.type == "appeal" and not forwarded,
            # Attachments over the size limit were not kept: the client learns which and why.
            "rejected_attachments": rejected_attachments(session, request),
            "claim_url": claim_url,
        },
        # Nothing was sent about a request before it was registered: the thread is the client's message alone.
        refs=[request.thread_root] if request.thread_root else [],
        to=request.reply_email,
    )


def status_notice(
    session: Session,
    settings: Settings,
    request: Request,
    event: Event,
    now: dt.datetime,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> OutboxMessage | Row | None:
    """A notice of a status change (seed 004 p. 3: duplicated by e-mail when the client gave an address).

    ``attachments`` (filename, content type, bytes) go with an answer written in the staff console.
    """
    if answer_address(request) is None:
        # A client without an e-mail address gets the notice or the answer as a letter to post (issue 16).
        names = [name for name, _type, _data in attachments]
        letter = postal.queue_letter(
            session, settings, request, now, kind="status_notice", event=event, attachments=names
        )
        if letter is None and event.to_status in (Status.answered, Status.refused):
            # Neither address: the answer went nowhere, and the history says so rather than nothing (defect U5;
            # 59-FZ art. 11 part 1 and 8-FZ art. 20 part 1 p. 2 name the case of a request without an address).
            internal_note(session, request.client, request, now, UNSENT_NOTE, event.actor, answer_unsent=True)
        return None
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


def due_date_notice(
    session: Session, settings: Settings, request: Request, now: dt.datetime, *, previous: dt.date
) -> OutboxMessage | Row | None:
    """A notice that the due date changed without a status change (a reclassification that switched the law)."""
    return send_to_client(
        session,
        settings,
        request,
        now,
        kind="due_date_notice",
        subject="Изменён срок ответа на обращение",
        template="due_date_changed",
        auto_submitted="auto-generated",
        extra={"previous": previous},
    )


def appeal_channels_notice(session: Session, settings: Settings, request: Request, now: dt.datetime) -> None:
    """Tell a citizen whose appeal came by plain e-mail where an electronic appeal is legally accepted."""
    if not request.reply_email or not auto_reply_allowed(session, settings, request, now):
        return
    send_to_client(
        session,
        settings,
        request,
        now,
        kind="appeal_channels",
        subject="О порядке направления обращения",
        template="appeal_channels",
        auto_submitted="auto-replied",
        to=request.reply_email,
    )
