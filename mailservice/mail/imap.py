"""The IMAP poller (imap-tools over imaplib): fetch, hand to intake, move after commit.

Order of work per message, and why it survives a crash anywhere:
``UID FETCH BODY.PEEK[]`` (PEEK: the \\Seen flag is not touched, RFC 3501 6.4.5) -> intake stores the raw bytes and
commits one journal row -> ``UID MOVE`` to the processed folder (RFC 6851; COPY + \\Deleted + EXPUNGE where MOVE is
missing). Killed before the commit: the message is still in the folder and is processed again from scratch.
Killed after the commit but before the move: the journal knows (mailbox, UIDVALIDITY, UID) and intake only moves it.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxCopyError, MailboxMoveError

from mailservice import faults
from mailservice.config import Security, Settings
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_batch, warm_up
from mailservice.intake.prepare import Prepared, preparer_for
from mailservice.mail.smtp import tls_context

log = logging.getLogger(__name__)

_UID = re.compile(rb"UID (\d+)")


@dataclass
class PollResult:
    """Counts of one pass."""

    fetched: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    moved: int = 0

    def count(self, outcome: Outcome) -> None:
        """Add one message with this outcome."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _mailbox(settings: Settings) -> BaseMailBox:
    timeout = 60
    if settings.imap_security is Security.ssl:
        return MailBox(settings.imap_host, settings.imap_port, timeout=timeout, ssl_context=_context(settings))
    if settings.imap_security is Security.starttls:
        return MailBoxStartTls(settings.imap_host, settings.imap_port, timeout=timeout, ssl_context=_context(settings))
    return MailBoxUnencrypted(settings.imap_host, settings.imap_port, timeout=timeout)


def _context(settings: Settings) -> ssl.SSLContext:
    return tls_context(settings.imap_ca_file)


@contextmanager
def connect(settings: Settings) -> Iterator[BaseMailBox]:
    """A logged-in mailbox with the intake folder selected and the processed folder present."""
    if not settings.imap_host:
        raise RuntimeError("MAILSERVICE_IMAP_HOST is not set")
    mailbox = _mailbox(settings).login(settings.imap_user, settings.imap_password, initial_folder=None)
    _refresh_capabilities(mailbox)
    try:
        if not mailbox.folder.exists(settings.imap_processed_folder):
            mailbox.folder.create(settings.imap_processed_folder)
        mailbox.folder.set(settings.imap_folder)
        yield mailbox
    finally:
        try:
            mailbox.logout()
        except Exception:
            log.debug("logout failed", exc_info=True)


def _refresh_capabilities(mailbox: BaseMailBox) -> None:
    """Ask CAPABILITY again after login: servers announce MOVE (RFC 6851) and more only to an authenticated
    client, and imaplib keeps the pre-login list. Without this the move falls back to COPY + EXPUNGE, which a crash
    between the two leaves half done (a second copy in the processed folder)."""
    typ, data = mailbox.client.capability()
    if typ == "OK" and data and data[-1]:
        mailbox.client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())


def uidvalidity(mailbox: BaseMailBox, folder: str) -> int:
    """UIDVALIDITY of the folder (RFC 3501 2.3.1.1): UIDs are meaningful only together with it."""
    return int(mailbox.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"])


def fetch_raw(mailbox: BaseMailBox, uids: list[str]) -> Iterator[tuple[int, bytes]]:
    """(UID, raw bytes) for each UID, fetched in one command without setting \\Seen."""
    typ, data = mailbox.client.uid("FETCH", ",".join(uids), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise RuntimeError(f"UID FETCH failed: {data!r}")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _UID.search(item[0])
            if match:
                yield int(match.group(1)), item[1]


def move(mailbox: BaseMailBox, uids: list[str], folder: str) -> None:
    """Move handled messages out of the intake folder, creating ``folder`` once if the server asks for it.

    ``connect`` makes the folder, but the poller keeps its connection for hours: a person or a mail client may
    delete the folder meanwhile. The server then refuses with ``[TRYCREATE]``, which means "create the mailbox
    and try again" (RFC 3501 7.1; MOVE keeps COPY's rules, RFC 6851 3.3); nothing was moved, so the retry
    cannot move a message twice.
    """
    if not uids:
        return
    try:
        mailbox.move(uids, folder, chunks=500)
    except (MailboxMoveError, MailboxCopyError) as exc:
        if b"[TRYCREATE]" not in _response_text(exc.command_result):
            raise
        log.warning("IMAP folder %s is gone; creating it again", folder)
        mailbox.folder.create(folder)
        mailbox.move(uids, folder, chunks=500)


def _response_text(command_result: tuple[object, ...]) -> bytes:
    """The server's text of a failed command, upper-cased (response codes are case-insensitive, RFC 3501 9)."""
    data = command_result[1] if len(command_result) > 1 else b""
    items = data if isinstance(data, list) else [data]
    return b" ".join(i if isinstance(i, bytes) else str(i).encode() for i in items).upper()


def poll_once(settings: Settings, mailbox: BaseMailBox | None = None) -> PollResult:
    """One pass over the intake folder: every message ends with one journal row and is moved after its commit.

    Batches overlap: while batch N is written to the database here, batch N+1 is fetched and parsed and
    classified in the worker processes (:mod:`mailservice.intake.prepare`).
    """
    if mailbox is None:
        with connect(settings) as box:
            return poll_once(settings, box)
    result = PollResult()
    validity = uidvalidity(mailbox, settings.imap_folder)
    uids = mailbox.uids("ALL")
    preparer = preparer_for(settings)
    pending: tuple[list[tuple[bytes, Source]], Callable[[], list[Prepared]]] | None = None
    for start in range(0, len(uids), settings.imap_batch_size):
        chunk = uids[start : start + settings.imap_batch_size]
        fetched = [(raw, Source("imap", settings.imap_folder, validity, uid)) for uid, raw in fetch_raw(mailbox, chunk)]
        following = (fetched, preparer.submit([(raw, None) for raw, _source in fetched]))
        if pending is not None:
            _finish(settings, mailbox, result, *pending)
        pending = following
    if pending is not None:
        _finish(settings, mailbox, result, *pending)
    return result


def _finish(
    settings: Settings,
    mailbox: BaseMailBox,
    result: PollResult,
    fetched: list[tuple[bytes, Source]],
    prepared: Callable[[], list[Prepared]],
) -> None:
    for outcome in process_batch(settings, fetched, prepared=prepared()):
        result.fetched += 1
        result.count(outcome.outcome)
    handled = [str(source.uid) for _raw, source in fetched]
    # Moved per batch, after the batch was committed.
    move(mailbox, handled, settings.imap_processed_folder)
    faults.point("after_move")
    result.moved += len(handled)


def run_poller(settings: Settings, stop: threading.Event) -> None:
    """Poll until ``stop`` is set: IDLE (RFC 2177) when the server offers it, interval polling otherwise.

    A broken connection is logged and retried after the interval; nothing is lost because nothing is moved
    before it is committed.
    """
    warm_up(settings)
    while not stop.is_set():
        try:
            with connect(settings) as mailbox:
                idle = "IDLE" in mailbox.client.capabilities
                log.info("IMAP connected to %s (%s)", settings.imap_host, "IDLE" if idle else "polling")
                while not stop.is_set():
                    result = poll_once(settings, mailbox)
                    if result.fetched:
                        log.info("IMAP pass: %s", result.outcomes)
                    if idle:
                        # Wake on new mail, and at least every imap_idle_timeout seconds to notice `stop`.
                        mailbox.idle.wait(timeout=min(settings.imap_idle_timeout, 30.0))
                    else:
                        stop.wait(settings.imap_poll_interval)
        except Exception:
            log.exception("IMAP poller error; retrying in %s s", settings.imap_poll_interval)
            stop.wait(min(settings.imap_poll_interval, 30.0))
            time.sleep(0)
