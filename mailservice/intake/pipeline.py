"""Intake: from raw bytes to exactly one journal row, in small named steps.

1. *store*: the raw bytes go to the blob store before anything is decided, so nothing is lost whatever fails next.
2. *prepare* (:mod:`mailservice.intake.prepare`, pure, in worker processes for a batch): parse, triage,
   classify. A message that cannot be parsed is quarantined with its reason.
3. *seen*: a message whose IMAP identity (mailbox, UIDVALIDITY, UID) is journaled already was handled (a crash hit
   between commit and move); nothing is done again.
4. In one transaction per batch: *dedupe* on Message-ID + content hash; *triage* (bounces and automatic replies
   never become requests and never get an answer: no mail loops, RFC 3834); *route* replies to their thread;
   *thanks* that only thank join the answered request as feedback; *commands* in their strict form go to their
   domain; everything else a person wrote is *registered* at once, whatever the classifier says (59-FZ art. 8
   p. 2, 8-FZ art. 18), except advertising with strong signals, which is *held* unregistered in the staff queue.
   The journal rows are written in the same transaction.
5. Any unexpected error rolls the message's work back and quarantines it with the error as reason: the one place
   where exceptions are caught (Zulip-style), so a bad message never stops the poller.

Writing a batch has two modes. The *fast* one writes all the batch's plain messages (new requests, duplicates,
bounces, automatic replies) with one flush at the end, answering its look-ups (duplicates, clients, threads) from
queries made once per batch plus what the batch itself created. Replies to a thread and messages other domains
take (ballots, subscriptions) are written each in its own savepoint after a flush, because their handlers query
the database. If anything in the fast mode fails, the whole batch is rolled back and written again in the
*careful* mode: every message in its own savepoint, so one bad message is quarantined and its neighbours kept.

In the fast mode the history events, outbox rows and attachments of the plain messages are not ORM objects but
rows inserted with one executemany per table at each flush (mailservice/bulk.py), in the order of the messages:
the same rows, with ids in the same order, as the careful mode writes (tests/test_intake_bulk.py). The search
index's terms of each letter come with it from the worker that prepared it.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from mailservice import bulk, db, faults
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.service import record_email_thanks
from mailservice.inforequests import identity, notifications, service
from mailservice.inforequests.deadlines import REGISTRATION_DAYS
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, ClientContact, Request
from mailservice.inforequests.notes import add_event, internal_note
from mailservice.intake import forwarded_register, mentions
from mailservice.intake.actions import held_note
from mailservice.intake.commands import Command
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.intake.prepare import Prepared, preparer_for
from mailservice.intake.wording import own_subject
from mailservice.mail.addresses import address_key, same_address
from mailservice.mail.parse import ParsedMessage
from mailservice.mail.triage import TRIAGE_HOLDS, UNANSWERABLE_HOLDS, Verdict
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


# The Date header is the sender's word: it stands for the arrival only when it is plausible (not in the future and
# not older than the registration term), since the legal term counts from arrival (deadlines.term_start).
_ARRIVAL_WINDOW = dt.timedelta(days=REGISTRATION_DAYS)


def arrival(date_header: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When a letter arrived, for its terms: its Date when plausible, otherwise the moment intake took it."""
    if date_header is not None and now - _ARRIVAL_WINDOW <= date_header <= now:
        return date_header
    return now


def register_route(ref_type: str, handler: RouteHandler) -> None:
    """Let another domain receive replies to the outbox messages it sent with ``ref_type``."""
    ROUTES[ref_type] = handler


# A handler for a command by e-mail that another domain serves (subscribe/unsubscribe -> mailings, history -> the
# history export), keyed by the command recognised in its strict form (intake/commands.py), never by a classifier
# label: gets the session, the parsed message, its journal entry and the moment, and returns a reason when it took
# the message (None: register it as a request after all). Staff converting a registered letter call it too.
CommandHandler = Callable[[Session, ParsedMessage, IntakeEntry, dt.datetime], str | None]
COMMAND_ROUTES: dict[Command, CommandHandler] = {}


def register_command_route(command: Command, handler: CommandHandler) -> None:
    """Let another domain carry out a command by e-mail."""
    COMMAND_ROUTES[command] = handler


# Who carries out the withdrawal a letter's subject or first sentence asks for when the letter is registered for
# asking something besides (ParsedMessage.withdraw, intake/commands.named): consent ends on the demand (152-FZ art. 9
# p. 2). Gets the session, the parsed message and the moment; returns the internal note for the request.
WithdrawalHandler = Callable[[Session, ParsedMessage, dt.datetime], str]
WITHDRAWAL: list[WithdrawalHandler] = []


def register_withdrawal(handler: WithdrawalHandler) -> None:
    """Let the mailings carry out the withdrawal a registered letter asks for (one handler)."""
    WITHDRAWAL[:] = [handler]


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


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


def _thread_ids(parsed: ParsedMessage) -> list[str]:
    return [i for i in [*parsed.in_reply_to, *reversed(parsed.references)] if i]


def _find_thread(session: Session, parsed: ParsedMessage) -> tuple[Request | None, OutboxMessage | None]:
    """The request (or other object) a reply belongs to: our Message-IDs first, then the number tag.

    Matching on our own Message-IDs before addresses (alaveteli#7879): a citizen may answer from another address.
    """
    ids = _thread_ids(parsed)
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
        # A citizen's follow-up that quotes their own first message (we kept its Message-ID as thread root). That
        # Message-ID is no secret of ours: everyone she copied or who got her letter on knows it, so only a letter
        # from one of her addresses follows it; a reply-all of a copied neighbour is his own letter, not her
        # clarification (tryout W8).
        root = session.scalar(select(Request).where(Request.thread_root.in_(ids)).order_by(Request.id.desc()))
        if root is not None and _from_client(root, parsed.from_addr):
            return root, None
    match = NUMBER_TAG.search(parsed.subject)
    if match and parsed.from_addr:
        request = service.get_by_number(session, match.group(1))
        # The tag alone is guessable and From is forgeable: accept it only from an address proven for the client.
        if request is not None and request.client.proven_email(parsed.from_addr):
            return request, None
    return None, None


def _from_client(request: Request, address: str | None) -> bool:
    """Whether ``address`` is the request's reply address or one of its client's, in any spelling."""
    if not address:
        return False
    key = address_key(address)
    addresses = [c.value for c in request.client.contacts if c.kind == "email"]
    return any(address_key(known) == key for known in [*addresses, request.reply_email] if known)


_NOT_ORIGINALS = [Outcome.duplicate, Outcome.quarantined]
# The same letter sent again by its author (a second press of «Отправить», a resend when no acknowledgement came
# yet) gets a new Message-ID: within this time it is a copy of the request already registered, not a second one
# with its own number and term (tryout W3).
RESEND_WINDOW = dt.timedelta(hours=24)


def _resend_key(address: str | None, subject: str) -> tuple[str, str]:
    return address_key(address or ""), subject[:500]


def _letter_files(request: Request, entry_id: int) -> list[tuple[str, str]]:
    """The files the letter of journal entry ``entry_id`` brought to ``request``."""
    files = [a for a in request.attachments if a.event is not None and a.event.intake_id == entry_id]
    return sorted((a.filename, a.sha256) for a in files)


class Lookups:
    """What deciding a message asks the database, one query per question (the careful mode)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def duplicate_of(self, entry: IntakeEntry, parsed: ParsedMessage) -> IntakeEntry | None:
        """An earlier journal entry (already flushed) with the same Message-ID and content."""
        duplicate = self.session.scalar(
            select(IntakeEntry)
            .where(
                IntakeEntry.content_hash == parsed.content_hash,
                IntakeEntry.message_id == parsed.message_id if parsed.message_id else IntakeEntry.message_id.is_(None),
                IntakeEntry.id != entry.id,
                # A copy of a quarantined message is processed afresh rather than hidden behind the first copy.
                IntakeEntry.outcome.not_in(_NOT_ORIGINALS),
            )
            .order_by(IntakeEntry.id)
            .limit(1)
        )
        return duplicate

    def thread(self, parsed: ParsedMessage) -> tuple[Request | None, OutboxMessage | None]:
        """The request or outbox message ``parsed`` answers."""
        return _find_thread(self.session, parsed)

    def sent_before(
        self, parsed: ParsedMessage, text: str, files: Sequence[service.StoredFile], now: dt.datetime
    ) -> IntakeEntry | None:
        """The registered letter this one repeats (same sender, subject, text and files, within RESEND_WINDOW)."""
        key = _resend_key(parsed.from_addr, parsed.subject)
        earlier = self.session.scalars(
            select(IntakeEntry)
            .where(
                IntakeEntry.outcome == Outcome.new_request,
                IntakeEntry.received_at >= now - RESEND_WINDOW,
                IntakeEntry.subject == key[1],
                IntakeEntry.request_id.is_not(None),
            )
            .order_by(IntakeEntry.id.desc())
        )
        mine = sorted((f.filename, f.sha256) for f in files)
        for entry in earlier:
            if _resend_key(entry.from_addr, entry.subject) != key or entry.request is None:
                continue
            if entry.request.text == text and _letter_files(entry.request, entry.id) == mine:
                return entry
        return None

    def client(self, address: str) -> Client | None:
        """The client who owns ``address``."""
        return service.find_client_by_email(self.session, address)

    def unheld(self, address: str) -> bool:
        """Whether no stored contact row holds ``address`` for sure (False: not known, the database is asked)."""
        return False

    def remember(self, entry: IntakeEntry, request: Request | None) -> None:
        """Note what a message created (the database answers the next questions itself here)."""


class BatchLookups(Lookups):
    """The same questions answered from a few queries per batch plus what the batch created (the fast mode).

    It can only say "no thread" for sure: a message that may belong to a thread or that another domain takes is
    not :meth:`plain` and goes to its own savepoint, where :class:`Lookups` answers after a flush.
    """

    def __init__(self, session: Session, messages: Sequence[ParsedMessage], now: dt.datetime) -> None:
        super().__init__(session)
        self._originals: dict[tuple[str, str | None], IntakeEntry] = {}
        self._clients: dict[str, Client | None] = {}
        self._unheld: set[str] = set()  # keys no stored contact row holds (not even one left on a merged record)
        self._thread_ids: set[str] = set()
        self._load_originals(sorted({parsed.content_hash for parsed in messages}))
        self._load_clients(sorted({address_key(parsed.from_addr) for parsed in messages if parsed.from_addr}))
        self._load_thread_ids(sorted({message_id for parsed in messages for message_id in _thread_ids(parsed)}))
        self._recent: set[tuple[str, str]] = set()
        self._load_recent(messages, now - RESEND_WINDOW)

    def _load_originals(self, hashes: Sequence[str]) -> None:
        for chunk in _chunks(hashes):
            query = (
                select(IntakeEntry)
                .where(IntakeEntry.content_hash.in_(chunk), IntakeEntry.outcome.not_in(_NOT_ORIGINALS))
                .order_by(IntakeEntry.id)
            )
            for entry in self.session.scalars(query):
                self._originals.setdefault((entry.content_hash, entry.message_id), entry)

    def _load_clients(self, keys: Sequence[str]) -> None:
        """The clients of these addresses, by their keys (mail.addresses: any case of one mailbox is one)."""
        self._clients.update(dict.fromkeys(keys))
        self._unheld.update(keys)
        for chunk in _chunks(keys):
            contacts = (
                select(ClientContact)
                .where(ClientContact.kind == "email", ClientContact.value_key.in_(chunk))
                # The client and its contacts in two more queries, not two per client (find_or_create reads them).
                .options(joinedload(ClientContact.client).selectinload(Client.contacts))
            )
            for contact in self.session.scalars(contacts):
                self._unheld.discard(contact.value_key)
                client = contact.client
                # A merged record points at its survivor: the rare case gets the careful lookup.
                self._clients[contact.value_key] = (
                    client if client.merged_into_id is None else super().client(contact.value)
                )

    def _load_thread_ids(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids):
            ours = select(OutboxMessage.message_id).where(OutboxMessage.message_id.in_(chunk))
            self._thread_ids.update(self.session.scalars(ours))
            roots = select(Request.thread_root).where(Request.thread_root.in_(chunk))
            self._thread_ids.update(root for root in self.session.scalars(roots) if root)

    def _load_recent(self, messages: Sequence[ParsedMessage], since: dt.datetime) -> None:
        """Senders and subjects of the letters registered since ``since`` that the batch's letters share."""
        subjects = sorted({parsed.subject[:500] for parsed in messages})
        for chunk in _chunks(subjects):
            recent = select(IntakeEntry.from_addr, IntakeEntry.subject).where(
                IntakeEntry.outcome == Outcome.new_request,
                IntakeEntry.received_at >= since,
                IntakeEntry.subject.in_(chunk),
            )
            self._recent.update(_resend_key(address, subject) for address, subject in self.session.execute(recent))

    def sent_before(
        self, parsed: ParsedMessage, text: str, files: Sequence[service.StoredFile], now: dt.datetime
    ) -> IntakeEntry | None:
        assert not self._may_resend(parsed), "a letter that may repeat an earlier one is decided in its own savepoint"
        return None

    def _may_resend(self, parsed: ParsedMessage) -> bool:
        return _resend_key(parsed.from_addr, parsed.subject) in self._recent

    def duplicate_of(self, entry: IntakeEntry, parsed: ParsedMessage) -> IntakeEntry | None:
        original = self._originals.get((parsed.content_hash, parsed.message_id or None))
        assert original is None or original.id is not None, "a copy of an unflushed message goes to a savepoint"
        return original

    def thread(self, parsed: ParsedMessage) -> tuple[Request | None, OutboxMessage | None]:
        assert not self._may_thread(parsed), "a message that may be a reply is decided in its own savepoint"
        return None, None

    def client(self, address: str) -> Client | None:
        key = address_key(address)
        if key not in self._clients:
            self._clients[key] = super().client(address)
        return self._clients[key]

    def unheld(self, address: str) -> bool:
        return address_key(address) in self._unheld

    def remember(self, entry: IntakeEntry, request: Request | None) -> None:
        key = (entry.content_hash, entry.message_id)
        if entry.outcome not in _NOT_ORIGINALS and key not in self._originals:
            self._originals[key] = entry
        if request is not None:
            if entry.outcome == Outcome.new_request:
                self._recent.add(_resend_key(entry.from_addr, entry.subject))
            if request.thread_root:
                self._thread_ids.add(request.thread_root)
            if entry.from_addr:
                self._clients[address_key(entry.from_addr)] = request.client

    def forget_client(self, address: str | None) -> None:
        """Ask the database again about ``address`` (a handler in a savepoint may have created its client)."""
        if address:
            self._clients.pop(address_key(address), None)
            self._unheld.discard(address_key(address))

    def _may_thread(self, parsed: ParsedMessage) -> bool:
        if any(message_id in self._thread_ids for message_id in _thread_ids(parsed)):
            return True
        return bool(parsed.from_addr and NUMBER_TAG.search(parsed.subject))

    def plain(self, prepared: Prepared) -> bool:
        """Whether the fast mode can write this message: nothing in it depends on queries it cannot answer."""
        parsed = prepared.parsed
        if parsed is None or prepared.error or prepared.labels is None:
            return True  # quarantined, bounce or automatic reply
        original = self._originals.get((parsed.content_hash, parsed.message_id or None))
        if original is not None:
            # A copy of a message earlier in this batch needs that message's id: a flush first, in a savepoint.
            return original.id is not None
        trusted_forward = prepared.forwarded is not None and prepared.forwarded.trusted  # looks up the author
        return (
            not self._may_thread(parsed)
            and not self._may_resend(parsed)
            and prepared.command is None
            and not prepared.thanks
            and not trusted_forward
        )


def _link(entry: IntakeEntry, request: Request) -> None:
    entry.request = request  # not request_id: a request created in this batch has no id before the flush


def _decide(
    session: Session,
    settings: Settings,
    entry: IntakeEntry,
    prepared: Prepared,
    now: dt.datetime,
    lookups: Lookups,
) -> Request | None:
    """Fill in the entry's outcome (and create what it implies) inside the caller's transaction; returns the
    request the message went to, if any."""
    parsed = prepared.parsed
    assert parsed is not None and prepared.triage is not None
    original = lookups.duplicate_of(entry, parsed)
    if original is not None:
        entry.outcome, entry.duplicate_of_id = Outcome.duplicate, original.id
        entry.request_id = original.request_id
        entry.reason = f"same Message-ID and content as journal entry {original.id}"
        return None

    if prepared.triage.verdict is Verdict.bounce:
        info = prepared.bounce
        assert info is not None
        entry.outcome, entry.reason = Outcome.bounce, prepared.triage.reason
        session.add(
            Bounce(
                intake=entry,
                at=now,
                address=info.recipient,
                kind=info.kind,
                status=info.status,
                diagnostic=info.diagnostic[:4000],
            )
        )
        return None
    if prepared.triage.verdict is Verdict.auto_reply:
        entry.outcome, entry.reason = Outcome.ignored_auto_reply, prepared.triage.reason
        return None

    assert parsed.from_addr is not None  # parse_message refuses a message without a usable sender
    labels = prepared.labels
    assert labels is not None
    request, outbox_row = lookups.thread(parsed)
    # A letter with a null return path that asks, or one From our own address, waits for staff even in reply to one
    # of our messages: joining a request may send a notice, and nothing answers a null reverse-path (RFC 5321
    # 4.5.5) or ourselves (RFC 3834 2) automatically.
    unanswerable = not UNANSWERABLE_HOLDS.isdisjoint(prepared.hold)
    if outbox_row is not None and request is None and not unanswerable:
        handler = ROUTES.get(outbox_row.ref_type)
        if handler is not None:
            reason = handler(session, parsed, outbox_row, entry)
            if reason is not None:
                entry.outcome, entry.reason = Outcome.routed, reason
                return None
    attachments = list(prepared.attachments)
    limit_mb = max(1, settings.max_attachment_bytes // (1024 * 1024))
    rejected = [
        service.RejectedFile(name, f"файл больше {limit_mb} МБ, предельного размера вложения")
        for name in parsed.oversized_attachments
    ]
    body = parsed.new_text or parsed.text
    if request is not None and outbox_row is not None:
        # Answering one of our messages from the address it went to proves the address is the client's.
        identity.prove_by_reply(session, request.client, parsed.from_addr, outbox_row.recipients.split(","), now)
    if request is not None and service.is_joinable(request) and not unanswerable:
        service.add_client_message(
            session,
            settings,
            request,
            now=now,
            channel=Channel.email,
            text=body,
            subject=parsed.subject,
            intake=entry,
            message_id=parsed.message_id,
            attachments=attachments,
            from_addr=parsed.from_addr,
            rejected=rejected,
        )
        entry.outcome = Outcome.reply
        _link(entry, request)
        entry.reason = f"reply to {request.number or request.id}"
        _staff_notes(session, request, parsed, now)
        return request

    if prepared.thanks:
        # Only thanks, to our answer (the request is finished) or to nothing of ours: feedback, not a request.
        return _thanks(session, entry, parsed, request, lookups, now, body)
    command_handler = COMMAND_ROUTES.get(prepared.command) if prepared.command is not None else None
    if command_handler is not None:
        reason = command_handler(session, parsed, entry, now)
        if reason is not None:
            entry.outcome, entry.reason = Outcome.routed, reason
            return None
    forward = prepared.forwarded if request is None and outbox_row is None else None
    # A proven body's forward is the citizen's appeal (issue 13); one From our own address is held all the same.
    if forward is not None and forward.trusted and not unanswerable:
        return forwarded_register.register_for_author(
            session,
            settings,
            entry,
            parsed,
            forward,
            labels=labels,
            received_at=arrival(parsed.date, now),
            attachments=attachments,
            rejected=rejected,
            now=now,
        )
    if request is None and outbox_row is None:
        # A first letter keeps what it quotes or forwards: «Прошу разобраться» above a quoted refusal is the
        # appeal itself (tryout F5). A reply loses its quote: of our message, or of the citizen's own earlier letter
        # (a follow-up found by its Message-ID or number tag), which the request it follows already holds.
        body = parsed.text or body
        earlier = lookups.sent_before(parsed, body, attachments, now)
        if earlier is not None and earlier.request is not None:
            _sent_again(session, entry, earlier, earlier.request, now)
            return None
    client = _sender_client(session, lookups, parsed, now)
    # Only a new letter that answers nothing of ours may wait unregistered (advertising: intake/spam.py).
    hold = prepared.hold if (request is None and outbox_row is None) or unanswerable else ()
    # The acknowledgement goes to the person named in From; a different Reply-To is recorded, for answers once
    # it is proven for the client (README, "Security model").
    # A Reply-To that is From in another case is From: one mailbox (mail.addresses), nothing claimed.
    reply_to = parsed.reply_to if parsed.reply_to and not same_address(parsed.reply_to, parsed.from_addr) else None
    subject = parsed.subject
    if request is not None or outbox_row is not None:
        # A new question in reply to our message: its topic is neither our number nor our notice's subject (G9).
        subject = own_subject(subject, _our_subjects(session, request, outbox_row), body)
    new = service.create_request(
        session,
        settings,
        now=now,
        client=client,
        channel=Channel.email,
        subject=subject,
        text=body,
        labels=labels,
        received_at=arrival(parsed.date, now),
        reply_email=parsed.from_addr,
        reply_name=parsed.from_name,
        reply_to_claimed=reply_to,
        intake=entry,
        message_id=parsed.message_id,
        attachments=attachments,
        parent=request,
        # Register first: every letter a person wrote gets its number now, whatever its type (59-FZ art. 8 p. 2).
        register=not hold,
        rejected=rejected,
    )
    entry.outcome = Outcome.new_request
    _link(entry, new)
    _staff_notes(session, new, parsed, now)
    if forward is not None:
        forwarded_register.note_forward(session, new, forward, now)
    if request is None and outbox_row is None:
        # A new letter that names its author's earlier request: notes on both, never a merge (intake/mentions.py).
        numbers = mentions.mentioned_numbers(subject, body)
        mentions.note_mentions(session, new, client, parsed.from_addr, numbers, now)
    if hold:
        entry.outcome = Outcome.held
        entry.reason = "held unregistered for staff: " + TRIAGE_HOLDS.get(hold[0], "looks like advertising")
        held_note(session, new, now, hold)
        return new
    if request is not None:
        entry.reason = f"follow-up to {request.number} (status {request.status}): new linked request"
        add_event(
            session,
            client=new.client,
            request=new,
            at=now,
            kind="note",
            comment=f"Связан с ранее рассмотренным запросом № {request.number}",
        )
    return new


def _our_subjects(session: Session, request: Request | None, outbox_row: OutboxMessage | None) -> list[str]:
    """The subjects of what we sent about ``request`` and of the message a reply answers."""
    subjects = [outbox_row.subject] if outbox_row is not None else []
    if request is not None and request.id is not None:
        subjects += session.scalars(select(OutboxMessage.subject).where(OutboxMessage.request_id == request.id))
    return [subject for subject in subjects if subject]


def _thanks(
    session: Session,
    entry: IntakeEntry,
    parsed: ParsedMessage,
    request: Request | None,
    lookups: Lookups,
    now: dt.datetime,
    text: str,
) -> Request | None:
    """Record a thank-you as feedback of the client (and of the request it thanks for): no new request, no clock,
    no acknowledgement (an answer to a thank-you would invite another)."""
    assert parsed.from_addr is not None
    if request is not None:
        client = request.client
    else:
        client = _sender_client(session, lookups, parsed, now)
    record_email_thanks(
        session, client=client, request=request, text=text, now=now, intake=entry, message_id=parsed.message_id
    )
    entry.outcome = Outcome.feedback
    if request is not None:
        _link(entry, request)
        entry.reason = f"thanks for {request.number or request.id}: feedback, no new request"
    else:
        entry.reason = "thanks to nothing of ours: feedback of the client, no request"
    return request


def _sent_again(session: Session, entry: IntakeEntry, earlier: IntakeEntry, request: Request, now: dt.datetime) -> None:
    """The letter repeats one registered within RESEND_WINDOW: a copy of it, noted for staff on its request (the
    raw message stays in the journal); no second number, term or acknowledgement."""
    entry.outcome, entry.duplicate_of_id = Outcome.duplicate, earlier.id
    _link(entry, request)
    entry.reason = f"sent again: same sender, subject, text and files as journal entry {earlier.id}"
    internal_note(
        session,
        request.client,
        request,
        now,
        "Автор прислал это же письмо ещё раз (та же тема, текст и файлы, другой Message-ID): "
        "отдельно не зарегистрировано, строка журнала приёма почты № " + str(earlier.id) + ".",
    )


def _staff_notes(session: Session, request: Request, parsed: ParsedMessage, now: dt.datetime) -> None:
    """What staff should know about how the sender was read (a long name cut, several authors) and what intake did
    besides registering (a withdrawal): internal notes."""
    done = [handler(session, parsed, now) for handler in WITHDRAWAL] if parsed.withdraw else []
    for text in (*parsed.staff_notes, *done):
        add_event(
            session, client=request.client, request=request, at=now, kind="note", comment=text, data={"internal": True}
        )


def _sender_client(session: Session, lookups: Lookups, parsed: ParsedMessage, now: dt.datetime) -> Client:
    """The client who wrote from the From address (new if none). From is forgeable: a name in it completes the
    record only of a new client or from a proven address."""
    assert parsed.from_addr is not None
    known = lookups.client(parsed.from_addr)
    name = parsed.from_name if known is None or known.proven_email(parsed.from_addr) else ""
    # A new client of an address nobody holds: no contact left on a merged record to look for (one query a letter).
    unheld = known is None and lookups.unheld(parsed.from_addr)
    return service.update_or_create_client(
        session, known, now=now, name=name, email=parsed.from_addr, email_unheld=unheld
    )


@dataclass
class _Written:
    """A message written in the current transaction; its result is read after the flush (ids, numbers)."""

    entry: IntakeEntry
    request: Request | None = None
    already_seen: bool = False

    def result(self, session: Session) -> IntakeResult:
        entry, request = self.entry, self.request
        if request is None and entry.request_id is not None and not self.already_seen:
            request = session.get(Request, entry.request_id)
        number = request.number if request is not None and not self.already_seen else None
        return IntakeResult(entry.id, Outcome(entry.outcome), entry.reason, number, self.already_seen)


def _quarantine(
    session: Session,
    source: Source,
    raw_sha: str,
    size: int,
    reason: str,
    now: dt.datetime,
    parsed: ParsedMessage | None = None,
) -> _Written:
    entry = _entry(source, raw_sha, size, now, parsed)
    entry.outcome, entry.reason = Outcome.quarantined, reason[:4000]
    session.add(entry)
    return _Written(entry)


# A message on its way through a batch: raw bytes, where it came from, what preparing it found.
_Item = tuple[bytes, Source, Prepared]


class SchemaMismatch(RuntimeError):
    """The database does not carry the code's migrations: every letter would fail alike, so none is taken now."""


def _refuse_if_schema_differs(session: Session, settings: Settings, error: Exception) -> None:
    """Raise :class:`SchemaMismatch` when the failure comes from a schema behind or ahead of the code.

    New code started before ``db upgrade`` ends, or old code still running after it, fails on every letter. Such
    a failure is not the letter's: quarantining it would fill the quarantine with every letter of the window and
    leave each to be released by hand while its registration term runs (59-FZ art. 8). Raised out of the batch
    instead, nothing is written: the receiver answers 451 and the sending server retries (RFC 5321 4.2.5), the
    poller leaves the messages in the mailbox for its next round. Checked only after a failure: it reads the
    migration scripts.
    """
    try:
        pending = db.pending_migrations(settings, session.connection())
    except Exception:  # the database cannot say: the failure is handled as the letter's own
        log.warning("could not compare the database's migrations with the code's", exc_info=True)
        return
    if pending:
        raise SchemaMismatch(
            f"the database's migrations are not the code's (heads not reached: {', '.join(sorted(pending))}); "
            "run `mailservice db upgrade` with the code that is running"
        ) from error


def _careful_one(session: Session, settings: Settings, item: _Item, now: dt.datetime) -> _Written:
    """One message in its own savepoint: an error quarantines it and keeps what the batch wrote before it."""
    raw, source, prepared = item
    raw_sha = prepared.raw_sha256
    if prepared.parsed is None or prepared.error:
        return _quarantine(session, source, raw_sha, len(raw), prepared.error, now, prepared.parsed)
    savepoint = session.begin_nested()
    try:
        entry = _entry(source, raw_sha, len(raw), now, prepared.parsed)
        session.add(entry)
        session.flush()  # the entry's id: handlers of other domains refer to it
        request = _decide(session, settings, entry, prepared, now, Lookups(session))
        session.flush()
        savepoint.commit()
        return _Written(entry, request)
    except IntegrityError as exc:
        savepoint.rollback()
        session.expire_all()  # objects changed in the savepoint (the number counter) reload as they were
        # Another poller journaled the same IMAP message and committed first: it is theirs.
        seen = _seen(session, source)
        if seen is not None:
            return _Written(seen, already_seen=True)
        _refuse_if_schema_differs(session, settings, exc)
        log.exception("intake integrity error")
        return _quarantine(session, source, raw_sha, len(raw), "database integrity error", now, prepared.parsed)
    except Exception as exc:  # the single catch-all: quarantine, keep the raw message, go on with the next
        savepoint.rollback()
        session.expire_all()
        _refuse_if_schema_differs(session, settings, exc)
        log.exception("intake failed for a message; quarantined")
        reason = f"internal error: {type(exc).__name__}: {exc}"
        return _quarantine(session, source, raw_sha, len(raw), reason, now, prepared.parsed)


def _write(
    session: Session, settings: Settings, items: Sequence[_Item], now: dt.datetime, *, fast: bool
) -> list[IntakeResult]:
    """Write one batch in the caller's transaction (see the module docstring for the two modes)."""
    seen = _seen_many(session, [source for _raw, source, _prepared in items])
    fresh = [item for item in items if (item[1].mailbox, item[1].uidvalidity, item[1].uid) not in seen]
    batch = BatchLookups(session, [p.parsed for *_rest, p in fresh if p.parsed is not None], now) if fast else None
    if batch is not None:  # the acknowledgements already sent to the batch's senders, in one query
        notifications.prefetch_auto_replies(
            session, [p.parsed.from_addr for *_r, p in fresh if p.parsed and p.parsed.from_addr], now
        )
    written: list[_Written] = []
    for item in items:
        raw, source, prepared = item
        raw_sha = prepared.raw_sha256
        prior = seen.get((source.mailbox, source.uidvalidity, source.uid)) if source.has_imap_identity else None
        if prior is not None:
            written.append(_Written(prior, already_seen=True))
        elif batch is None or not batch.plain(prepared):
            # The handlers of other domains write ORM objects: what is queued in bulk is written first, in order.
            bulk.stop(session)
            done = _careful_one(session, settings, item, now)  # its savepoint flushes what came before
            if batch is not None and not done.already_seen:
                batch.remember(done.entry, done.request)
                batch.forget_client(done.entry.from_addr)
            written.append(done)
        elif prepared.parsed is None or prepared.error:
            written.append(_quarantine(session, source, raw_sha, len(raw), prepared.error, now, prepared.parsed))
        else:
            entry = _entry(source, raw_sha, len(raw), now, prepared.parsed)
            session.add(entry)
            # History events and outbox rows as plain rows, inserted with executemany at the next flush.
            bulk.start(session)
            # The batch's look-ups answer for what is not flushed yet; an autoflush per query would undo the gain.
            with session.no_autoflush:
                request = _decide(session, settings, entry, prepared, now, batch)
            batch.remember(entry, request)
            written.append(_Written(entry, request))
    bulk.stop(session)
    session.flush()
    return [item.result(session) for item in written]


_routes_loaded = False


def load_routes_once() -> None:
    """Register the domains' routes the first time intake runs in this process."""
    # Imported late: the domains' handlers import intake themselves.
    global _routes_loaded
    if not _routes_loaded:
        from mailservice.intake.routes import load_routes

        load_routes()
        _routes_loaded = True


def warm_up(settings: Settings) -> None:
    """Get a long-running intake ready: the classifier and the domains' routes loaded, the workers started, and
    everything loaded so far moved out of the garbage collector's sight.

    The last step matters: intake creates many short-lived objects, and each full collection otherwise walks
    every module and the classifier's model again, a fifth of intake's time in bench/intake.py (gc.freeze,
    https://docs.python.org/3/library/gc.html#gc.freeze). The collector also runs less often (GC_THRESHOLDS): a
    batch makes tens of thousands of objects (eight rows a message and their history), and the default of a
    young collection every 700 of them cost a tenth of the poller's time; the garbage between two collections is
    a batch or two at most (peak memory in bench/intake.py).
    """
    load_routes_once()
    from mailservice.classify.engine import default_classifier

    default_classifier()
    preparer_for(settings).start()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


# The garbage collector's thresholds in a warmed-up intake process (young, middle, old generation).
GC_THRESHOLDS = (50_000, 20, 100)


def process_batch(
    settings: Settings,
    items: Sequence[tuple[bytes, Source]],
    *,
    now: dt.datetime | None = None,
    prepared: Sequence[Prepared] | None = None,
) -> list[IntakeResult]:
    """Take messages through intake in one transaction; one result per message.

    The batch commits as a whole (the IMAP poller moves the messages only after that), so a crash anywhere
    repeats the batch from scratch and a failing message cannot undo its neighbours. ``prepared`` are the
    messages already prepared (:mod:`mailservice.intake.prepare`), in order. Never raises for a bad message; a
    database failure raises and nothing of the batch is kept.
    """
    load_routes_once()
    now = now or utcnow()
    if prepared is None:
        prepared = preparer_for(settings).prepare([(raw, source.envelope_from) for raw, source in items])
    batch = [(raw, source, prep) for (raw, source), prep in zip(items, prepared, strict=True)]
    for _item in batch:
        faults.point("after_store")  # the raw messages are in the blob store, nothing is in the database yet
    try:
        with session_scope(settings) as session:
            results = _write(session, settings, batch, now, fast=True)
            faults.point("before_commit")
    except Exception:
        # Rolled back as a whole; written again with a savepoint per message, so a bad one is quarantined alone.
        log.warning(
            "intake batch of %d failed in the fast mode; writing it message by message", len(batch), exc_info=True
        )
        with session_scope(settings) as session:
            results = _write(session, settings, batch, now, fast=False)
            faults.point("before_commit")
    faults.point("after_commit")
    return results


def process_raw(settings: Settings, raw: bytes, source: Source, *, now: dt.datetime | None = None) -> IntakeResult:
    """Take one message through intake; returns its journal outcome. Never raises for a bad message."""
    return process_batch(settings, [(raw, source)], now=now)[0]
