"""Intake: from raw bytes to exactly one journal row, in small named steps.

1. *seen*: a message whose IMAP identity (mailbox, UIDVALIDITY, UID) is journaled already was handled (a crash hit
   between commit and move); nothing is done again.
2. *store*: the raw bytes go to the blob store before anything else, so nothing is lost whatever fails next.
3. *parse*: a message that cannot be parsed is quarantined with its reason.
4. In one transaction: *dedupe* on Message-ID + content hash; *triage* (bounces and automatic replies never
   become requests and never get an answer: no mail loops, RFC 3834); *route* replies to their thread; otherwise
   *register* a new request. The journal row is written in the same transaction.
5. Any unexpected error rolls that transaction back and quarantines the message with the error as reason: the one
   place where exceptions are caught (Zulip-style), so a bad message never stops the poller.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailservice import faults
from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.classification import labels_for
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Event, Request
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.mail.bounces import parse_bounce
from mailservice.mail.parse import ParsedMessage, ParseError, parse_message
from mailservice.mail.triage import Verdict, triage
from mailservice.outbox import OutboxMessage

log = logging.getLogger(__name__)

NUMBER_TAG = re.compile(r"\[\s*(?:№|N|No\.?|#)\s*(\d{4}-\d{6})\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """Where a message came from; IMAP messages carry their identity for idempotency."""

    kind: str  # imap | smtp | lmtp | file
    mailbox: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    envelope_from: str | None = None

    @property
    def has_imap_identity(self) -> bool:
        """Whether (mailbox, UIDVALIDITY, UID) identifies the message."""
        return self.mailbox is not None and self.uidvalidity is not None and self.uid is not None


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one message."""

    entry_id: int
    outcome: Outcome
    reason: str = ""
    request_number: str | None = None
    already_seen: bool = False


# A handler for replies to our own non-request messages (a ballot, an agenda): gets the session, the parsed
# message, the outbox row it answers and the journal entry, and returns a reason when it took the message.
RouteHandler = Callable[[Session, ParsedMessage, OutboxMessage, IntakeEntry], str | None]
ROUTES: dict[str, RouteHandler] = {}


def register_route(ref_type: str, handler: RouteHandler) -> None:
    """Let another domain receive replies to the outbox messages it sent with ``ref_type``."""
    ROUTES[ref_type] = handler


# A handler for new messages of a classified type that another domain serves (``subscription`` -> mailings,
# ``history_request`` -> the history export): gets the session, the parsed message, the labels and the journal
# entry, and returns a reason when it took the message (None: register it as a request after all).
TypeHandler = Callable[[Session, ParsedMessage, service.Labels, IntakeEntry], str | None]
TYPE_ROUTES: dict[str, TypeHandler] = {}


def register_type_route(label: str, handler: TypeHandler) -> None:
    """Let another domain take new messages the classifier labels ``label``."""
    TYPE_ROUTES[label] = handler


def _seen_many(session: Session, sources: Sequence[Source]) -> dict[tuple[object, ...], IntakeEntry]:
    """Journal entries of the IMAP messages among ``sources``, by (mailbox, UIDVALIDITY, UID)."""
    found: dict[tuple[object, ...], IntakeEntry] = {}
    groups: dict[tuple[str, int], list[int]] = {}
    for source in sources:
        if source.has_imap_identity:
            assert source.mailbox is not None and source.uidvalidity is not None and source.uid is not None
            groups.setdefault((source.mailbox, source.uidvalidity), []).append(source.uid)
    for (mailbox, validity), uids in groups.items():
        query = select(IntakeEntry).where(
            IntakeEntry.mailbox == mailbox, IntakeEntry.uidvalidity == validity, IntakeEntry.uid.in_(uids)
        )
        for entry in session.scalars(query):
            found[(entry.mailbox, entry.uidvalidity, entry.uid)] = entry
    return found


def _seen(session: Session, source: Source) -> IntakeEntry | None:
    if not source.has_imap_identity:
        return None
    return session.scalar(
        select(IntakeEntry).where(
            IntakeEntry.mailbox == source.mailbox,
            IntakeEntry.uidvalidity == source.uidvalidity,
            IntakeEntry.uid == source.uid,
        )
    )


def _entry(source: Source, raw_sha: str, size: int, now: dt.datetime, parsed: ParsedMessage | None) -> IntakeEntry:
    return IntakeEntry(
        received_at=now,
        source=source.kind,
        mailbox=source.mailbox,
        uidvalidity=source.uidvalidity,
        uid=source.uid,
        envelope_from=source.envelope_from,
        message_id=(parsed.message_id or None) if parsed else None,
        content_hash=parsed.content_hash if parsed else raw_sha,
        raw_sha256=raw_sha,
        size=size,
        from_addr=parsed.from_addr if parsed else None,
        subject=(parsed.subject[:500] if parsed else ""),
        outcome=Outcome.quarantined,
    )


def _find_thread(session: Session, parsed: ParsedMessage) -> tuple[Request | None, OutboxMessage | None]:
    """The request (or other object) a reply belongs to: our Message-IDs first, then the number tag.

    Matching on our own Message-IDs before addresses (alaveteli#7879): a citizen may answer from another address.
    """
    ids = [i for i in [*parsed.in_reply_to, *reversed(parsed.references)] if i]
    if ids:
        ours = session.scalars(select(OutboxMessage).where(OutboxMessage.message_id.in_(ids))).all()
        by_id = {row.message_id: row for row in ours}
        for message_id in ids:
            row = by_id.get(message_id)
            if row is None:
                continue
            if row.request_id is not None:
                return session.get(Request, row.request_id), row
            return None, row
        # A citizen's follow-up that quotes their own first message (we kept its Message-ID as thread root).
        root = session.scalar(select(Request).where(Request.thread_root.in_(ids)).order_by(Request.id.desc()))
        if root is not None:
            return root, None
    match = NUMBER_TAG.search(parsed.subject)
    if match and parsed.from_addr:
        request = service.get_by_number(session, match.group(1))
        # The tag alone is guessable: accept it only from an address of the same client.
        if request is not None and any(
            c.kind == "email" and c.value == parsed.from_addr for c in request.client.contacts
        ):
            return request, None
    return None, None


def _store_attachments(store: BlobStore, parsed: ParsedMessage) -> list[service.StoredFile]:
    stored = []
    for part in parsed.attachments:
        digest = store.put(part.data)
        stored.append(service.StoredFile(part.filename, part.content_type, part.size, digest))
    return stored


def _decide(
    session: Session,
    settings: Settings,
    store: BlobStore,
    entry: IntakeEntry,
    parsed: ParsedMessage,
    raw: bytes,
    source: Source,
    now: dt.datetime,
) -> None:
    """Fill in the entry's outcome (and create what it implies) inside the caller's transaction."""
    duplicate = session.scalar(
        select(IntakeEntry)
        .where(
            IntakeEntry.content_hash == parsed.content_hash,
            IntakeEntry.message_id == parsed.message_id if parsed.message_id else IntakeEntry.message_id.is_(None),
            IntakeEntry.id != entry.id,
            # A copy of a quarantined message is processed afresh rather than hidden behind the first copy.
            IntakeEntry.outcome.not_in([Outcome.duplicate, Outcome.quarantined]),
        )
        .order_by(IntakeEntry.id)
        .limit(1)
    )
    if duplicate is not None:
        entry.outcome, entry.duplicate_of_id = Outcome.duplicate, duplicate.id
        entry.request_id = duplicate.request_id
        entry.reason = f"same Message-ID and content as journal entry {duplicate.id}"
        return

    message_obj = email.message_from_bytes(raw, policy=email.policy.compat32)
    verdict = triage(parsed, message_obj, source.envelope_from)
    if verdict.verdict is Verdict.bounce:
        info = parse_bounce(message_obj)
        entry.outcome, entry.reason = Outcome.bounce, verdict.reason
        session.add(
            Bounce(
                intake_id=entry.id,
                at=now,
                address=info.recipient,
                kind=info.kind,
                status=info.status,
                diagnostic=info.diagnostic[:4000],
            )
        )
        return
    if verdict.verdict is Verdict.auto_reply:
        entry.outcome, entry.reason = Outcome.ignored_auto_reply, verdict.reason
        return

    assert parsed.from_addr is not None  # parse_message refuses a message without a usable sender
    request, outbox_row = _find_thread(session, parsed)
    if outbox_row is not None and request is None:
        handler = ROUTES.get(outbox_row.ref_type)
        if handler is not None:
            reason = handler(session, parsed, outbox_row, entry)
            if reason is not None:
                entry.outcome, entry.reason = Outcome.routed, reason
                return
    attachments = _store_attachments(store, parsed)
    body = parsed.new_text or parsed.text
    if request is not None and outbox_row is not None:
        # Answering one of our messages from the address it went to proves the address is the client's.
        service.mark_verified(session, request.client, parsed.from_addr, outbox_row.recipients.split(","))
    if request is not None and service.is_joinable(request):
        service.add_client_message(
            session,
            settings,
            request,
            now=now,
            channel=Channel.email,
            text=body,
            subject=parsed.subject,
            intake_id=entry.id,
            message_id=parsed.message_id,
            attachments=attachments,
            from_addr=parsed.from_addr,
        )
        entry.outcome, entry.request_id = Outcome.reply, request.id
        entry.reason = f"reply to {request.number or request.id}"
        return

    labels = labels_for(parsed.subject, body)
    type_handler = TYPE_ROUTES.get(labels.type) if request is None else None
    if type_handler is not None:
        reason = type_handler(session, parsed, labels, entry)
        if reason is not None:
            entry.outcome, entry.reason = Outcome.routed, reason
            return
    client = service.find_or_create_client(session, now=now, name=parsed.from_name, email=parsed.from_addr)
    reply_to = parsed.reply_to or parsed.from_addr
    new = service.create_request(
        session,
        settings,
        now=now,
        client=client,
        channel=Channel.email,
        subject=parsed.subject,
        text=body,
        labels=labels,
        received_at=parsed.date if parsed.date and parsed.date < now else now,
        reply_email=reply_to,
        intake_id=entry.id,
        message_id=parsed.message_id,
        attachments=attachments,
        parent=request,
        # Spam, greetings and mistakes get no number unless staff decide so (classifier issue).
        register=labels.type != "other",
    )
    entry.outcome, entry.request_id = Outcome.new_request, new.id
    if request is not None:
        entry.reason = f"follow-up to {request.number} (status {request.status}): new linked request"
        session.add(
            Event(
                client_id=new.client_id,
                request_id=new.id,
                at=now,
                kind="note",
                comment=f"Связан с ранее рассмотренным запросом № {request.number}",
            )
        )


def _quarantine(
    session: Session,
    source: Source,
    raw_sha: str,
    size: int,
    reason: str,
    now: dt.datetime,
    parsed: ParsedMessage | None = None,
) -> IntakeResult:
    entry = _entry(source, raw_sha, size, now, parsed)
    entry.outcome, entry.reason = Outcome.quarantined, reason[:4000]
    session.add(entry)
    session.flush()
    return IntakeResult(entry.id, Outcome.quarantined, entry.reason)


def _already(entry: IntakeEntry) -> IntakeResult:
    return IntakeResult(entry.id, Outcome(entry.outcome), entry.reason, already_seen=True)


def _process_one(
    session: Session, settings: Settings, store: BlobStore, raw: bytes, source: Source, now: dt.datetime
) -> IntakeResult:
    raw_sha = store.put(raw)
    faults.point("after_store")
    if len(raw) > settings.max_message_bytes:
        reason = f"message larger than {settings.max_message_bytes} bytes"
        return _quarantine(session, source, raw_sha, len(raw), reason, now)
    try:
        parsed = parse_message(raw, max_attachment_bytes=settings.max_attachment_bytes)
    except ParseError as exc:
        return _quarantine(session, source, raw_sha, len(raw), f"unparseable: {exc.reason}", now)

    savepoint = session.begin_nested()
    try:
        entry = _entry(source, raw_sha, len(raw), now, parsed)
        session.add(entry)
        session.flush()
        _decide(session, settings, store, entry, parsed, raw, source, now)
        session.flush()
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        # Another poller journaled the same IMAP message and committed first: it is theirs.
        seen = _seen(session, source)
        if seen is not None:
            return _already(seen)
        log.exception("intake integrity error")
        return _quarantine(session, source, raw_sha, len(raw), "database integrity error", now, parsed)
    except Exception as exc:  # the single catch-all: quarantine, keep the raw message, go on with the next
        savepoint.rollback()
        log.exception("intake failed for a message; quarantined")
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return _quarantine(session, source, raw_sha, len(raw), reason, now, parsed)
    request = session.get(Request, entry.request_id) if entry.request_id else None
    return IntakeResult(entry.id, Outcome(entry.outcome), entry.reason, request.number if request else None)


_routes_loaded = False


def _load_routes_once() -> None:
    # Imported late: the domains' handlers import intake themselves.
    global _routes_loaded
    if not _routes_loaded:
        from mailservice.intake.routes import load_routes

        load_routes()
        _routes_loaded = True


def process_batch(
    settings: Settings, items: Sequence[tuple[bytes, Source]], *, now: dt.datetime | None = None
) -> list[IntakeResult]:
    """Take messages through intake in one transaction, each in its own savepoint; one result per message.

    The batch commits as a whole (the IMAP poller moves the messages only after that), so a crash anywhere
    repeats the batch from scratch and a failing message cannot undo its neighbours. Never raises for a bad
    message; a database failure raises and nothing of the batch is kept.
    """
    _load_routes_once()
    now = now or utcnow()
    store = BlobStore(settings.blob_dir)
    results: list[IntakeResult] = []
    with session_scope(settings) as session:
        seen = _seen_many(session, [source for _raw, source in items])
        for raw, source in items:
            prior = seen.get((source.mailbox, source.uidvalidity, source.uid)) if source.has_imap_identity else None
            results.append(_already(prior) if prior else _process_one(session, settings, store, raw, source, now))
        faults.point("before_commit")
    faults.point("after_commit")
    return results


def process_raw(settings: Settings, raw: bytes, source: Source, *, now: dt.datetime | None = None) -> IntakeResult:
    """Take one message through intake; returns its journal outcome. Never raises for a bad message."""
    return process_batch(settings, [(raw, source)], now=now)[0]
