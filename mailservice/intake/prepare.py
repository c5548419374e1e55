"""The database-free half of intake: store the raw message, then parse, triage and classify it.

Parsing and classification are most of intake's CPU time, so a batch of fetched messages is prepared in worker
processes while this process writes the previous batch to the database (the IMAP poller overlaps the two). The
raw bytes and the attachments go to the content-addressed blob store first (idempotent; one filesystem sync per
chunk); the rest is only a description: nothing is decided until :mod:`mailservice.intake.pipeline` takes it. A
crash here therefore loses nothing: the message is still in the mailbox and is prepared again on the next pass.
"""

from __future__ import annotations

import atexit
import collections
import copyreg
import dataclasses
import email
import email.message
import email.policy
import gc
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from mailservice import faults
from mailservice.blobs import BlobStore
from mailservice.config import Settings, get_settings
from mailservice.inforequests.labels import Labels, StoredFile
from mailservice.intake.commands import Command, CommandAddresses, command_note, read_command
from mailservice.intake.forwarded import Finding, examine
from mailservice.intake.spam import asks_something, hold_reasons
from mailservice.intake.thanks import is_only_thanks
from mailservice.mail.addresses import address_key
from mailservice.mail.bounces import BounceInfo, parse_bounce
from mailservice.mail.parse import ParsedMessage, ParseError, parse_message_and_tree
from mailservice.mail.slim import slim
from mailservice.mail.triage import HELD_UNLESS_ASKING, HOLD_OWN_ADDRESS, RELAYED_HOLDS, Triage, Verdict, triage

log = logging.getLogger(__name__)


# ParsedMessage.headers is a read-only view; it crosses to and from the workers as the dict it wraps.
def _read_only(values: dict[str, object]) -> MappingProxyType[str, object]:
    return MappingProxyType(values)


copyreg.pickle(MappingProxyType, lambda proxy: (_read_only, (dict(proxy),)))

# Below this many messages the round trip to the workers costs more than it saves (single SMTP deliveries).
POOL_MIN_BATCH = 8
# A worker takes a pooled batch this many messages at a time (see _Feeder): small enough that the poller rarely
# waits long for the one a worker has started (16 letters are about 50 ms of a worker), large enough that a chunk's
# round trip (well under a millisecond) stays a small part of its cost. The blobs are synced once a batch.
CHUNK_SIZE = 16


@dataclass(frozen=True)
class Limits:
    """The settings preparation depends on (passed to workers explicitly)."""

    max_message_bytes: int
    max_attachment_bytes: int
    blob_dir: Path
    commands: CommandAddresses = field(default_factory=CommandAddresses)
    forwarding_bodies: tuple[str, ...] = ()  # issue 13: see intake/authres.py
    trusted_authserv_id: str = ""
    own_addresses: frozenset[str] = frozenset()  # Settings.own_addresses

    @property
    def ceiling_bytes(self) -> int:
        """Above this a letter is not even split to be read (an absurd size): four times the message limit."""
        return 4 * self.max_message_bytes

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """The limits of ``settings``."""
        return cls(
            settings.max_message_bytes,
            settings.max_attachment_bytes,
            settings.blob_dir,
            CommandAddresses(
                settings.subscribe_address,
                settings.unsubscribe_address,
                settings.history_address,
                (settings.from_address, settings.imap_user, settings.mailing_unsubscribe_address),
            ),
            tuple(settings.forwarding_bodies),
            settings.trusted_authserv_id,
            settings.own_addresses,
        )


@dataclass(frozen=True)
class Prepared:
    """What intake needs to decide about one message; ``error`` set means it is quarantined with that reason.

    ``parsed.attachments`` come without their bytes (already in the blob store as ``attachments``): a 15 MB
    attachment does not travel back from the worker. For a person's message, what its wording is: a ``command``
    in its strict form, ``thanks`` only, or advertising that may wait unregistered (``hold``, the reasons).
    """

    raw_sha256: str
    parsed: ParsedMessage | None
    error: str = ""
    triage: Triage | None = None
    bounce: BounceInfo | None = None
    labels: Labels | None = None
    attachments: tuple[StoredFile, ...] = ()
    command: Command | None = None
    thanks: bool = False
    hold: tuple[str, ...] = ()
    forwarded: Finding | None = None  # a forward of someone else's letter (intake/forwarded.py)


def prepare(
    raw: bytes, envelope_from: str | None, limits: Limits, store: BlobStore, *, sender: str | None = None
) -> Prepared:
    """Store ``raw``, then parse, triage and (for a person's message) classify it; never raises for bad mail.

    Blobs are written with ``durable=False``: the caller makes them durable before handing the results on
    (:func:`_durable`, once a batch).
    ``sender`` is the author's address staff typed for a quarantined letter without one (see parse_message).
    """
    raw_sha = store.put(raw, durable=False)
    dropped: list[str] = []
    notes: list[str] = []  # a signed letter opened to be read (mail/slim.py)
    if len(raw) > limits.max_message_bytes:
        # Over the message limit (a 25 MB scan is 34 MB in base64): still a written appeal, so it is read and
        # registered without the attachments over the limit (said in the acknowledgement); the raw bytes are
        # stored whole. Only an absurd size, or one that stays too large without them, is quarantined.
        if len(raw) > limits.ceiling_bytes:
            return Prepared(raw_sha, None, f"message larger than {limits.ceiling_bytes} bytes")
        try:
            slimmed = slim(raw, max_attachment_bytes=limits.max_attachment_bytes)
        except Exception:
            log.exception("an oversized message could not be split; it will be quarantined")
            slimmed = None
        if slimmed is None or len(slimmed.raw) > limits.max_message_bytes:
            return Prepared(raw_sha, None, f"message larger than {limits.max_message_bytes} bytes")
        raw, dropped, notes = slimmed.raw, slimmed.dropped, slimmed.notes
    try:
        parsed, tree = parse_message_and_tree(raw, max_attachment_bytes=limits.max_attachment_bytes, sender=sender)
    except ParseError as exc:
        return Prepared(raw_sha, None, f"unparseable: {exc.reason}")
    if dropped or notes:
        parsed = dataclasses.replace(
            parsed,
            oversized_attachments=[*parsed.oversized_attachments, *dropped],
            staff_notes=(*notes, *parsed.staff_notes),
        )
    try:
        stored = tuple(
            StoredFile(part.filename, part.content_type, part.size, store.put(part.data, durable=False))
            for part in parsed.attachments
        )
        whole_message = parsed  # with its attachments' bytes: an attached forward is read from them
        parsed = dataclasses.replace(
            parsed, attachments=[dataclasses.replace(part, data=b"") for part in parsed.attachments]
        )
        message_obj = tree if tree is not None else email.message_from_bytes(raw, policy=email.policy.compat32)
        verdict = triage(parsed, message_obj, envelope_from)
        if verdict.verdict is Verdict.bounce:
            return Prepared(raw_sha, parsed, triage=verdict, bounce=parse_bounce(message_obj), attachments=stored)
        if verdict.verdict is Verdict.auto_reply:
            if not (verdict.relayed and asks_something(parsed.subject, parsed.text)):
                return Prepared(raw_sha, parsed, triage=verdict, attachments=stored)
            # A list or a form service relayed a letter that asks something (tryout F3, T3): staff look, never dropped.
            verdict = Triage(Verdict.normal, f"{verdict.reason}; asks something: held for staff", hold=verdict.relayed)
        if verdict.hold in HELD_UNLESS_ASKING and asks_something(parsed.subject, parsed.text):
            # A calendar invitation whose text asks or complains is an appeal like any other.
            verdict = Triage(Verdict.normal, f"{verdict.reason}; asks something: registered")
        from mailservice.inforequests.classification import labels_for

        text = parsed.new_text or parsed.text
        if not (parsed.in_reply_to or parsed.references):
            # A letter that answers nothing is judged with what it quotes or forwards (tryout F5); commands and
            # thanks are read from its own words only.
            whole = parsed.text or text
        else:
            whole = text
        labels = labels_for(parsed.subject, whole)
        # Commands and thanks are a person's own messages: a list's relayed copy never subscribes, exports or
        # closes anything; it waits for staff.
        relayed = verdict.hold in RELAYED_HOLDS
        recipients = [*parsed.to, *parsed.cc]
        command, named = (None, None) if relayed else read_command(parsed.subject, text, recipients, limits.commands)
        if command is None and (meant := limits.commands.commands_for(recipients)):
            parsed = dataclasses.replace(parsed, staff_notes=(*parsed.staff_notes, command_note(meant)))
        thanks = command is None and not relayed and is_only_thanks(parsed.subject, text)
        withdraw = command is None and named is Command.unsubscribe
        hold = (
            () if command or thanks else hold_reasons(parsed.subject, whole, parsed.html, lambda: _headers(message_obj))
        )
        if verdict.hold and command is None:
            hold = (verdict.hold, *hold)  # an automatic-looking subject alone: staff look, nothing is dropped
        forwarded = _forwarded(whole_message, message_obj, limits)
        if parsed.from_addr is not None and address_key(parsed.from_addr) in limits.own_addresses:
            # From one of our own mailboxes: a forged appeal or a mail loop. Answering it would write to ourselves
            # (RFC 3834 2), so it waits in the held queue for staff, whatever it says, and acts as nothing.
            command, thanks, withdraw = None, False, False
            hold = (HOLD_OWN_ADDRESS, *(h for h in hold if h != HOLD_OWN_ADDRESS))
        elif forwarded is not None and forwarded.trusted:
            command, thanks, withdraw, hold = None, False, False, ()  # a proven body's forward is a citizen's appeal
        if withdraw:
            parsed = dataclasses.replace(parsed, withdraw=True)
        return Prepared(
            raw_sha,
            parsed,
            triage=verdict,
            labels=labels,
            attachments=stored,
            command=command,
            thanks=thanks,
            hold=hold,
            forwarded=forwarded,
        )
    except Exception as exc:  # a bug in triage must not lose the message: it is quarantined with the error
        log.exception("intake preparation failed; the message will be quarantined")
        return Prepared(raw_sha, parsed, f"internal error: {type(exc).__name__}: {exc}")


def _forwarded(parsed: ParsedMessage, message_obj: email.message.Message, limits: Limits) -> Finding | None:
    """A forward of someone else's letter in ``parsed``, with the verdict on its sender (issue 13)."""
    ours = (*limits.commands.others, limits.commands.subscribe, limits.commands.unsubscribe, limits.commands.history)
    results = [" ".join(str(value).split()) for value in message_obj.get_all("Authentication-Results") or []]
    return examine(parsed, results, bodies=limits.forwarding_bodies, authserv_id=limits.trusted_authserv_id, ours=ours)


def _headers(message_obj: email.message.Message, limit: int = 200) -> dict[str, str]:
    """Lower-case header names and values (the first ``limit``: a message with thousands says nothing more)."""
    found: dict[str, str] = {}
    for name, value in message_obj.items()[:limit]:
        found.setdefault(str(name).lower(), str(value)[:200])
    return found


def _prepare_in_worker(items: Sequence[tuple[bytes, str | None]], limits: Limits) -> list[Prepared]:
    faults.point("prepare_worker")  # a worker killed mid-batch (tests): the poller must carry on without it
    return _prepare_chunk(items, limits)


def _prepare_chunk(items: Sequence[tuple[bytes, str | None]], limits: Limits) -> list[Prepared]:
    """Prepare consecutive messages of a batch; their blobs are not durable yet (see :func:`_durable`)."""
    store = BlobStore(limits.blob_dir)
    return [prepare(raw, envelope_from, limits, store) for raw, envelope_from in items]


def _durable(prepared: list[Prepared], limits: Limits) -> list[Prepared]:
    """``prepared`` once every blob it names is durable: one sync a batch, after every chunk of it is done, by
    whichever processes prepared them. A sync per chunk in each worker cost a wait for the disk every 16 letters."""
    digests = {digest for item in prepared for digest in (item.raw_sha256, *(f.sha256 for f in item.attachments))}
    BlobStore(limits.blob_dir).make_durable(digests)
    return prepared


# Worker processes -----------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_with(poller: int) -> None:
    # A poller killed with SIGKILL cannot stop its workers. They are children of the forkserver, not of the
    # poller, and each holds the forkserver's liveness pipe open, so neither would ever leave by itself: the
    # worker watches the poller and goes with it (pidfd on Linux, polling elsewhere).
    try:
        fd = os.pidfd_open(poller)
        select.select([fd], [], [])
    except (AttributeError, OSError):
        while _alive(poller):
            time.sleep(0.5)
    os._exit(0)


def _init_worker(environment: dict[str, str], poller: int) -> None:
    """Run in each worker: the poller's MAILSERVICE_* settings, the classifier loaded once."""
    threading.Thread(target=_exit_with, args=(poller,), daemon=True).start()
    for name in [n for n in os.environ if n.startswith("MAILSERVICE_")]:
        del os.environ[name]
    os.environ.update(environment)
    get_settings.cache_clear()
    from mailservice.classify.engine import default_classifier

    default_classifier()
    gc.collect()
    gc.freeze()  # the model stays for the worker's life: keep collections from walking it (pipeline.warm_up)
    from mailservice.intake.pipeline import GC_THRESHOLDS

    # Collections as seldom as in the poller: a letter leaves thousands of short-lived objects, and a young
    # collection every 700 of them took 1% of a worker's time (bench/intake.py).
    gc.set_threshold(*GC_THRESHOLDS)


def _environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith("MAILSERVICE_")}


def _model_stamp() -> int:
    from mailservice.classify.engine import default_model_path

    try:
        return default_model_path().stat().st_mtime_ns
    except OSError:
        return 0


class _Chunk:
    """Consecutive messages of a batch, prepared together: by a worker once handed to the pool, else here."""

    __slots__ = ("future", "items")

    def __init__(self, items: Sequence[tuple[bytes, str | None]]) -> None:
        self.items = items
        self.future: Future[list[Prepared]] | None = None  # set when a worker has it


class _Feeder:
    """Hands chunks to the worker pool just in time, keeping the others where this process can take them back.

    Each worker has one chunk running and one waiting (``depth`` in all); the rest wait here, in order, and each
    finished chunk lets the next one go. When the poller needs a batch's results, it takes back the chunks no
    worker has been given and prepares them itself, from the end (work stealing): it works instead of waiting,
    whichever of the two is faster that day, and the workers go on with the next batch meanwhile. A pool that
    cannot take a chunk (broken, shut down) keeps it here for the poller.
    """

    def __init__(self, pool: ProcessPoolExecutor, limits: Limits, depth: int) -> None:
        self._pool = pool
        self._limits = limits
        self._depth = depth
        # Reentrant: a future that is already done runs its callback in the thread that adds it.
        self._lock = threading.RLock()
        self._waiting: collections.deque[_Chunk] = collections.deque()
        self._given = 0
        self.refused = False  # the pool would not take a chunk: it needs replacing

    def add(self, chunks: Sequence[_Chunk]) -> None:
        """Queue a batch's chunks behind those already queued."""
        with self._lock:
            self._waiting.extend(chunks)
            self._give()

    def take_back(self, chunk: _Chunk) -> bool:
        """Whether ``chunk`` is now this process's to prepare (False: a worker has it)."""
        with self._lock:
            if chunk.future is not None:
                return False
            self._waiting.remove(chunk)
            return True

    def _give(self) -> None:
        while self._given < self._depth and self._waiting and not self.refused:
            chunk = self._waiting[0]
            try:
                future = self._pool.submit(_prepare_in_worker, chunk.items, self._limits)
            except (BrokenProcessPool, RuntimeError):  # a worker died, or the pool or the interpreter shuts down
                self.refused = True
                return
            self._waiting.popleft()
            chunk.future = future
            self._given += 1
            future.add_done_callback(self._finished)

    def _finished(self, _future: Future[list[Prepared]]) -> None:
        # Runs in the pool's management thread (or here, for a future already done).
        with self._lock:
            self._given -= 1
            self._give()


def _result(chunk: _Chunk) -> list[Prepared]:
    assert chunk.future is not None, "a chunk not taken back is a worker's"
    return chunk.future.result()


class Preparer:
    """Prepares batches, in worker processes when there are several messages and workers are configured."""

    def __init__(self, settings: Settings) -> None:
        self.limits = Limits.of(settings)
        count = settings.intake_workers
        # By default one CPU stays with this process: writing to the database is the longer half (bench/intake.py).
        self.workers = max((os.cpu_count() or 1) - 1, 0) if count is None else count
        self._pool: ProcessPoolExecutor | None = None
        self._key: tuple[object, ...] = ()
        self._feeder: _Feeder | None = None

    def submit(self, items: Sequence[tuple[bytes, str | None]]) -> Callable[[], list[Prepared]]:
        """Start preparing ``items`` (raw bytes, envelope sender); the returned call waits for the results, and
        prepares in this process whatever part no worker has started by then."""
        pool = self._executor() if len(items) >= POOL_MIN_BATCH else None
        feeder = self._feeder
        if pool is None or feeder is None:
            done = _durable(_prepare_chunk(items, self.limits), self.limits)
            return lambda: done
        chunks = [_Chunk(items[start : start + CHUNK_SIZE]) for start in range(0, len(items), CHUNK_SIZE)]
        feeder.add(chunks)
        return lambda: self._collect(feeder, chunks, items)

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (bench/intake.py reads their CPU time)."""
        return list(self._pool._processes) if self._pool is not None else []

    @property
    def workers_running(self) -> bool:
        """Whether batches currently go to worker processes."""
        return self._pool is not None

    def start(self) -> None:
        """Start the workers now and wait until they are ready (service start-up, benchmarks)."""
        pool = self._executor()
        if pool is not None:
            try:
                for future in [pool.submit(_prepare_chunk, [], self.limits) for _ in range(self.workers * 2)]:
                    future.result()
            except BrokenProcessPool:
                log.warning("intake workers did not start; preparing in the poller for now", exc_info=True)
                self.close()

    def prepare(self, items: Sequence[tuple[bytes, str | None]]) -> list[Prepared]:
        """Prepare ``items`` and wait for the results."""
        return self.submit(items)()

    def _collect(
        self, feeder: _Feeder, chunks: list[_Chunk], items: Sequence[tuple[bytes, str | None]]
    ) -> list[Prepared]:
        # The chunks are given to workers from the front, so those left are the last ones: take them back from the
        # end until one is a worker's, then wait for the workers' (see _Feeder).
        here: dict[int, list[Prepared]] = {}
        for index in range(len(chunks) - 1, -1, -1):
            if not feeder.take_back(chunks[index]):
                break
            here[index] = _prepare_chunk(chunks[index].items, self.limits)
        if feeder.refused and feeder is self._feeder:  # a worker died between batches: new ones for the next
            log.warning("intake worker pool refused work; %d messages prepared in the poller", len(items))
            self.close()
        try:
            batch = [
                prepared
                for index, chunk in enumerate(chunks)
                for prepared in (here[index] if index in here else _result(chunk))
            ]
        except BrokenProcessPool:
            return self._fallback(items)()
        except CancelledError:  # the pool was replaced (new settings or model) before its workers got to them
            batch = _prepare_chunk(items, self.limits)
        return _durable(batch, self.limits)

    def _fallback(self, items: Sequence[tuple[bytes, str | None]]) -> Callable[[], list[Prepared]]:
        # A worker died (killed, out of memory): prepare here, start a new pool next time.
        log.warning("intake worker pool broke; preparing %d messages in the poller", len(items))
        self.close()
        done = _durable(_prepare_chunk(items, self.limits), self.limits)
        return lambda: done

    def _executor(self) -> ProcessPoolExecutor | None:
        if self.workers == 0:
            return None
        # Settings or a retrained model change what workers compute: start fresh workers then.
        key = (tuple(sorted(_environment().items())), _model_stamp())
        if self._pool is not None and key == self._key:
            return self._pool
        self.close()
        from mailservice.classify.engine import ensure_seed_model

        # Trains and saves the seed model once, here, rather than in every worker; not loaded here: only the
        # workers classify a pooled batch, and a load takes seconds on a busy machine.
        ensure_seed_model()
        key = (key[0], _model_stamp())
        method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        # Not fork: the service runs threads (web, receiver, worker) and forking a threaded process can deadlock.
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_worker,
            initargs=(dict(key[0]), os.getpid()),
        )
        self._key = key
        self._feeder = _Feeder(self._pool, self.limits, 2 * self.workers)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._feeder = None


_preparers: dict[int, Preparer] = {}
_lock = threading.Lock()


def preparer_for(settings: Settings) -> Preparer:
    """The process-wide preparer for this worker count (the pool outlives a poll: workers start once)."""
    workers = settings.intake_workers if settings.intake_workers is not None else -1
    with _lock:
        preparer = _preparers.get(workers)
        if preparer is None:
            preparer = _preparers[workers] = Preparer(settings)
        preparer.limits = Limits.of(settings)
        return preparer


@atexit.register
def _close_all() -> None:
    for preparer in _preparers.values():
        preparer.close()
