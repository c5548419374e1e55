"""The campaign sender: at most one copy per recipient, consent re-checked at the moment of sending.

Each copy is a delivery row that goes ``queued`` -> ``claimed`` -> ``sending`` -> ``sent`` (or ``failed``,
``skipped``, ``bounced``, ``ambiguous``):

1. *claim*: a worker takes a batch of queued rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of
   workers share a campaign; SQLite serialises writers with BEGIN IMMEDIATE) and renders their copies.
2. On one of its SMTP connections (reused for many copies) it sends ``MAIL``, ``RCPT`` and ``DATA`` and waits for
   the server's 354, which transfers nothing yet.
3. *commit the attempt*: one transaction locks the subscription (``FOR SHARE``), re-checks that consent stands
   and the address is not suppressed, and moves the row from ``claimed`` to ``sending`` only if this worker
   still owns it. Withdrawal locks the same row and waits for ``sending`` rows, so a copy never leaves after a
   withdrawal commits (phpList re-checks per recipient; listmonk only per batch of 1,000). If consent is gone,
   the connection is dropped, which aborts the unterminated DATA (RFC 5321 4.1.1.4): nothing is delivered.
   The attempts of all connections of a worker are grouped (one transaction per round). On SQLite the round
   runs after the 354; on PostgreSQL, whose commit waits for a disk flush, it starts once MAIL is accepted and
   runs while RCPT and DATA travel.
4. The message and its final dot go out the moment both the commit and the 354 are in; after the 250 the row
   becomes ``sent`` (folded into the next round).

A crash before step 3 commits leaves ``claimed`` rows, which the reconciler hands back to the queue (never sent).
A crash after it leaves a ``sending`` row, which may or may not have reached the server: the one ambiguous case.
It is resolved towards *at most once*: the row becomes ``ambiguous``, is logged, counted in ``campaign status``,
and is never re-sent. Almost always the copy did arrive (the worker died waiting for, or just after, the 250);
it is lost only if the worker died in the instant between the commit and the final write. The same applies when
a connection drops after the final dot and before the 250. Progress is the rows themselves, so no checkpoint can
run ahead of an unhandled recipient.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from sqlalchemy import func, select

from mailservice import faults
from mailservice.config import Settings, get_settings
from mailservice.db import get_engine, session_scope, utcnow
from mailservice.mailings import campaigns
from mailservice.mailings.ledger import PG_ROUND_SQL, Job, Ledger, Outcome, PassResult, new_worker_name
from mailservice.mailings.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryState,
)
from mailservice.mailings.render import CampaignRenderer, Recipient, signer_from_settings
from mailservice.mailings.subscribers import UnsubscribeLinks
from mailservice.mailings.upkeep import apply_bounces
from mailservice.mailings.wire import CONNECT_ERRORS, Lane, LaneClosed

log = logging.getLogger(__name__)

# RFC 3463 "bad destination mailbox address" / "bad destination system": the address itself is dead.
_DEAD_ADDRESS = re.compile(r"^\s*5\.1\.(1|2|3|10)\b")


@dataclass
class _Request:
    job: Job
    future: asyncio.Future[str]
    send: Callable[[], None]  # writes the message and its final dot


class Coordinator:
    """Groups the attempt commits of a worker's connections into rounds (one transaction each).

    SQLite commits in WAL mode without waiting for the disk, so a round runs right on the event loop (a thread
    would only add lock ping-pong). A PostgreSQL commit waits for its WAL flush (milliseconds), so the usual round
    is one statement on psycopg's asyncio connection while the connections keep talking SMTP, and the rare ones
    (housekeeping, failures, a pause) run in a thread. One round at a time: measured, fewer and fuller rounds beat
    several small ones in parallel, the Python work per round being the scarcer resource.
    """

    def __init__(self, ledger: Ledger, *, background: bool) -> None:
        self.ledger = ledger
        self.background = background  # PostgreSQL: rounds run while the event loop goes on
        self._requests: list[_Request] = []
        self._outcomes: list[tuple[Job, Outcome]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._rounds: set[asyncio.Task[None]] = set()
        # Its own thread: in the default pool (CPUs + 4) a round could wait behind claims.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailing-round")
        self._aconn: Any = None

    def start(self) -> None:
        """Run the commit loop."""
        self._task = asyncio.create_task(self._run())

    async def before_data(self, job: Job, send: Callable[[], None]) -> str:
        """Re-check consent, mark the job ``sending`` and, if that committed, call ``send`` at once.

        The verdict is ``go`` (sent off), ``unsent`` (``send`` failed: nothing left), ``skip``, ``lost`` or
        ``paused``. Writing the message right where the commit returns, rather than after the waiting coroutine
        is scheduled again, keeps the crash window between the two as short as the event loop allows.
        """
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._requests.append(_Request(job, future, send))
        self._wake.set()
        return await future

    def record(self, job: Job, outcome: Outcome) -> None:
        """Buffer an outcome; it is committed with the next round (at the latest 50 ms later)."""
        self._outcomes.append((job, outcome))

    async def close(self) -> None:
        """Commit what is buffered and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._pool.shutdown(wait=True)
        if self._aconn is not None:
            await self._aconn.close()

    def _settle(self, requests: list[_Request], verdicts: dict[int, str] | BaseException) -> None:
        if not isinstance(verdicts, BaseException):
            for request in requests:
                if verdicts.get(request.job.delivery_id) == "go":
                    try:
                        request.send()
                    except OSError:  # LaneClosed included
                        verdicts[request.job.delivery_id] = "unsent"  # the connection was gone: nothing written
        for request in requests:
            if isinstance(verdicts, BaseException):
                request.future.set_exception(verdicts)
            else:
                request.future.set_result(verdicts.get(request.job.delivery_id, "lost"))

    async def _fast_round(self, requests: list[_Request], outcomes: list[tuple[Job, Outcome]]) -> dict[int, str] | None:
        """PostgreSQL, the usual round: one statement on an asyncio connection (no thread hop between the commit
        and the write). None when this round needs the full path (housekeeping due, other outcomes, a pause)."""
        jobs = [r.job for r in requests]
        params = self.ledger.fast_round_params(jobs, outcomes)
        if params is None:
            return None
        if self._aconn is None or self._aconn.closed:
            import psycopg

            url = get_engine(self.ledger.settings).url.set(drivername="postgresql")
            self._aconn = await psycopg.AsyncConnection.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
        cursor = await self._aconn.execute(PG_ROUND_SQL, params)
        verdicts = {row[0]: "go" for row in await cursor.fetchall()}
        rest = [j for j in jobs if j.delivery_id not in verdicts]
        if rest:  # consent gone (or the row no longer ours): the full path says which, and marks it
            verdicts.update(
                await asyncio.get_running_loop().run_in_executor(self._pool, self.ledger.commit_round, rest, [])
            )
        return verdicts

    async def _background_round(self, requests: list[_Request], outcomes: list[tuple[Job, Outcome]]) -> None:
        try:
            verdicts = await self._fast_round(requests, outcomes)
            if verdicts is None:
                verdicts = await asyncio.get_running_loop().run_in_executor(
                    self._pool, self.ledger.commit_round, [r.job for r in requests], outcomes
                )
        except Exception as exc:
            # Outcomes not recorded stay "sending" and are settled as ambiguous: never sent twice.
            log.exception("mailing: could not record a round")
            self._settle(requests, exc)
        else:
            self._settle(requests, verdicts)

    async def _run(self) -> None:
        while True:
            if not self._requests:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=0.05)
            self._wake.clear()
            if self._rounds:  # one round at a time; the requests meanwhile make the next one
                await asyncio.wait(self._rounds, return_when=asyncio.FIRST_COMPLETED)
                continue
            requests, self._requests = self._requests, []
            outcomes, self._outcomes = self._outcomes, []
            if requests or outcomes:
                if self.background:
                    task = asyncio.create_task(self._background_round(requests, outcomes))
                    self._rounds.add(task)
                    task.add_done_callback(self._rounds.discard)
                    continue
                try:
                    verdicts = self.ledger.commit_round([r.job for r in requests], outcomes)
                except Exception as exc:
                    log.exception("mailing: could not record a round")
                    self._settle(requests, exc)
                else:
                    self._settle(requests, verdicts)
            elif self._closing:
                if self._rounds:
                    await asyncio.wait(self._rounds)
                    continue
                return


ProgressCallback = Callable[[PassResult], None]


class CampaignPass:
    """One worker's pass over one campaign: claim, send over reused connections, record; stop when told."""

    def __init__(
        self,
        settings: Settings,
        campaign_id: int,
        *,
        worker: str,
        deadline: float | None = None,
        stop: asyncio.Event | None = None,
        on_outcome: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.campaign_id = campaign_id
        self.ledger = Ledger(settings, campaign_id, worker)
        self.deadline = deadline
        self.stop = stop or asyncio.Event()
        self.on_outcome = on_outcome
        self.result = PassResult()
        self.error: BaseException | None = None  # the first error of on_outcome or of a connection, raised by run()
        self._halt = False  # paused, SMTP down or stopped: no more claims, release what is queued
        self._renderer: CampaignRenderer | None = None
        self._links = UnsubscribeLinks(settings)
        self._mail_from = b"FROM:<" + settings.from_address.encode("ascii") + b">"
        self.early_round = False  # PostgreSQL: start the round while RCPT and DATA travel (set in run())

    def _should_halt(self) -> bool:
        return self._halt or self.stop.is_set() or (self.deadline is not None and time.monotonic() > self.deadline)

    def _recipient(self, job: Job) -> Recipient:
        url, mailto = self._links(job.subscription_id, job.nonce)
        return Recipient(
            subscription_id=job.subscription_id,
            address=job.address,
            name=job.name,
            unsubscribe_url=url,
            unsubscribe_mailto=mailto,
        )

    def _count(self, outcome: Outcome) -> None:
        self.result.add(outcome)
        if self.on_outcome is not None and self.error is None:
            try:
                self.on_outcome(self.result)
            except BaseException as exc:
                # The callback is the caller's code, so its error is the caller's to see (swallowed, a broken
                # progress display would go unnoticed, and a callback could not abort a send): the pass stops as
                # when told to and run() raises it. Raised here, it would end this connection's task and leave the
                # feeder waiting for a queue no one reads. BaseException too: SystemExit or KeyboardInterrupt would
                # escape the event loop with copies still claimed or 'sending', a CancelledError or a library's own
                # would end the task silently (the same hang); run() re-raises them once every copy is settled.
                self.error = exc
                self._halt = True

    async def run(self) -> PassResult:
        """Send until nothing is claimable (or halted); every claimed copy ends recorded or handed back."""
        settings = self.settings
        with session_scope(settings) as session:
            campaign = campaigns.get(session, self.campaign_id)
            if campaign.status != CampaignStatus.sending:
                self.result.paused = campaign.status == CampaignStatus.paused
                return self.result
            source = campaigns.source_of(session, campaign)
            uid = campaign.uid
        self._renderer = CampaignRenderer(
            settings, source, campaign_id=self.campaign_id, uid=uid, signer=signer_from_settings(settings)
        )
        await asyncio.to_thread(self.ledger.reconcile)
        background = get_engine(settings).dialect.name != "sqlite"
        self.early_round = background
        coordinator = Coordinator(self.ledger, background=background)
        coordinator.start()
        concurrency = max(1, settings.mailing_concurrency)
        queue: asyncio.Queue[Job | None] = asyncio.Queue()
        connections = [asyncio.create_task(self._connection(queue, coordinator)) for _ in range(concurrency)]
        try:
            await self._feed(queue, concurrency)
        finally:
            for _ in connections:
                queue.put_nowait(None)
            await asyncio.gather(*connections, return_exceptions=True)
            await coordinator.close()
            leftovers = []
            while not queue.empty():
                item = queue.get_nowait()
                if item is not None:
                    leftovers.append(item)
            await asyncio.to_thread(self.ledger.release, leftovers)
            await asyncio.to_thread(self.ledger.settle_own)
            self.ledger.close()
            with session_scope(settings) as session:
                campaigns.finish_if_complete(session, self.campaign_id, utcnow())
        if self.error is not None:
            raise self.error
        return self.result

    async def _feed(self, queue: asyncio.Queue[Job | None], concurrency: int) -> None:
        batch = max(concurrency, self.settings.mailing_batch_size)
        while not self._should_halt():
            if queue.qsize() > concurrency:
                await asyncio.sleep(0.005)
                continue
            jobs, status = await asyncio.to_thread(self.ledger.claim, batch)
            if status != CampaignStatus.sending:
                self.result.paused = status == CampaignStatus.paused
                return
            if not jobs:
                # Nothing claimable now: wait for the copies in flight, then let the caller decide.
                while queue.qsize() and not self._should_halt():
                    await asyncio.sleep(0.01)
                return
            for job in jobs:
                queue.put_nowait(job)

    async def _connect(self) -> Lane | None:
        try:
            return await Lane.open(self.settings)
        except CONNECT_ERRORS as exc:
            log.warning("mailing: SMTP connection failed: %s", exc)
            self._halt = True
            self.result.smtp_down = True
            return None

    async def _connection(self, queue: asyncio.Queue[Job | None], coordinator: Coordinator) -> None:
        client: Lane | None = None
        used = 0
        try:
            while True:
                job = await queue.get()
                if job is None:
                    return
                if self._should_halt():
                    coordinator.record(job, Outcome("release"))
                    self._count(Outcome("release"))
                    continue
                if job.slot is not None:
                    delay = (job.slot - utcnow()).total_seconds()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if client is None or not client.is_connected:
                    client = await self._connect()
                    used = 0
                    if client is None:
                        coordinator.record(job, Outcome("release"))
                        self._count(Outcome("release"))
                        continue
                try:
                    result, keep = await self._send_one(client, job, coordinator)
                except Exception:
                    # A failed round (database trouble): the row stays ours and is settled at the end of the pass
                    # (back to the queue if it was only claimed, ambiguous if it was marked sending).
                    log.exception("mailing: delivery %s not handled", job.delivery_id)
                    self._halt = True
                    result, keep = None, False
                if result is not None:
                    coordinator.record(job, result)
                    self._count(result)
                used += 1
                if not keep or used >= 500:
                    await self._close(client, polite=keep)
                    client = None
        except Exception as exc:
            # Not a refusal, a time-out nor a failed round: a bug, or an error nobody foresaw (a server name the
            # resolver cannot encode raised UnicodeError). Ended with it, the task went unseen (run() gathers its
            # connections only at the end) and, once every connection had ended so, the feeder waited for ever on a
            # queue no one read. The pass stops as when told to, the copy in hand is settled with the rest (still
            # claimed: handed back; marked sending: ambiguous), and run() raises the error.
            log.exception("mailing: a connection stopped on an unexpected error")
            if self.error is None:
                self.error = exc
            self._halt = True
        finally:
            if client is not None:
                await self._close(client, polite=True)

    @staticmethod
    async def _close(client: Lane, *, polite: bool) -> None:
        if polite:
            await client.quit()
        client.close()

    async def _send_one(self, client: Lane, job: Job, coordinator: Coordinator) -> tuple[Outcome | None, bool]:
        """One copy on an open connection; returns its outcome (None when already recorded) and keep-alive.

        The consent re-check and the ``sending`` mark must commit before the content goes out, and the content
        must follow as soon as both that commit and the server's 354 are in: a crash in between loses the copy
        (marked, not sent). With SQLite the commit is fast and runs after the 354. A PostgreSQL commit waits for
        its WAL flush (milliseconds, longer than the RCPT and DATA exchanges), so it starts when MAIL is accepted
        and runs while RCPT and DATA travel; the content is written the moment the later of the two arrives.
        """
        assert self._renderer is not None
        raw = self._renderer.message(self._recipient(job))
        data = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw)) + b".\r\n"
        wire = _Wire(client, data)
        early: asyncio.Future[str] | None = None
        failure: tuple[Outcome, bool] | None = None
        stage = "MAIL"
        try:
            reply = await client.command(b"MAIL", self._mail_from)
            if reply.code == 250:
                if self.early_round:
                    early = asyncio.ensure_future(coordinator.before_data(job, wire.go))
                stage = "RCPT"
                reply = await client.command(b"RCPT", b"TO:<" + job.address.encode("ascii") + b">")
                if reply.code in (250, 251):
                    stage = "DATA"
                    reply = await client.command(b"DATA")
            if reply.code != 354:
                # Refused before any content: safe to retry on 4xx; 5xx is final (RFC 5321 4.2.1).
                with contextlib.suppress(LaneClosed, TimeoutError, OSError):
                    await client.command(b"RSET")
                permanent = 500 <= reply.code < 600
                dead = permanent and stage == "RCPT" and bool(_DEAD_ADDRESS.match(reply.message))
                outcome = Outcome("failed" if permanent else "defer", str(reply), dead_address=dead)
                failure = (outcome, client.is_connected)
        except (LaneClosed, TimeoutError, OSError, UnicodeError, ValueError) as exc:
            client.close()
            failure = (Outcome("defer", f"{type(exc).__name__}: {exc}"), False)
        if failure is not None:
            # Nothing was transferred; an early verdict only says whether the row is still ours to record.
            if early is not None and await early == "skip":
                self.result.skipped += 1
                return None, failure[1]
            return failure

        if early is not None:
            verdict = await wire.ready(early)
        else:
            wire.invited = True  # the 354 is in: the coordinator writes right where its commit returns
            verdict = await coordinator.before_data(job, wire.go)
        if verdict == "unsent":
            client.close()
            return Outcome("defer", "connection lost before the message was sent"), False
        if verdict != "go":
            # Drop the connection: an unterminated DATA is discarded by the server, nothing is delivered.
            client.close()
            if verdict == "skip":
                self.result.skipped += 1
            elif verdict == "paused":
                self._halt = True
                self.result.paused = True
            return None, False
        try:
            reply = await client.reply()
        except (LaneClosed, TimeoutError, OSError) as exc:
            # The final dot may have reached the server: at most once means not sending it again.
            client.close()
            return Outcome("ambiguous", f"no answer after the message was sent: {type(exc).__name__}: {exc}"), False
        faults.point("mailing_after_250")
        if reply.code == 250:
            return Outcome("sent"), True
        permanent = 500 <= reply.code < 600
        return Outcome("failed" if permanent else "defer", str(reply)), True


class _Wire:
    """Writes a message as soon as both the ``go`` verdict and the server's 354 are in (whichever comes last)."""

    def __init__(self, client: Lane, data: bytes) -> None:
        self.client = client
        self.data = data
        self.cleared = False  # the verdict was "go"
        self.invited = False  # the server said 354
        self.written = False

    def _write(self) -> None:
        faults.point("mailing_before_dot")
        self.client.write(self.data)
        self.written = True

    def go(self) -> None:
        """Called by the coordinator right where the ``sending`` mark committed."""
        self.cleared = True
        if self.invited:
            self._write()

    async def ready(self, verdict: asyncio.Future[str]) -> str:
        """The 354 is in: write now if the verdict came first, else let :meth:`go` write when it comes."""
        self.invited = True
        if self.cleared and not self.written:
            try:
                self._write()
            except (LaneClosed, OSError):
                await verdict
                return "unsent"
        return await verdict


async def _pass(
    settings: Settings,
    campaign_id: int,
    worker: str,
    *,
    deadline: float | None = None,
    stop: asyncio.Event | None = None,
    on_outcome: ProgressCallback | None = None,
) -> PassResult:
    return await CampaignPass(
        settings, campaign_id, worker=worker, deadline=deadline, stop=stop, on_outcome=on_outcome
    ).run()


def _remaining(settings: Settings, campaign_id: int) -> tuple[str, dt.datetime | None, bool]:
    """Campaign status, the earliest due time of a queued copy, and whether copies are in other hands."""
    with session_scope(settings) as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""
        due = session.scalar(
            select(Delivery.next_attempt_at)
            .where(Delivery.campaign_id == campaign_id, Delivery.state == DeliveryState.queued)
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        )
        busy = (
            session.scalar(
                select(Delivery.id)
                .where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.state.in_([DeliveryState.claimed, DeliveryState.sending]),
                )
                .limit(1)
            )
            is not None
        )
        if status == CampaignStatus.sending and due is None and not busy:
            campaigns.finish_if_complete(session, campaign_id, utcnow())
            status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""
        return status, due, busy


@dataclass
class SendSummary:
    """What ``campaign send`` did in this process, and how the campaign ended."""

    status: str
    totals: PassResult = field(default_factory=PassResult)


def _queued(settings: Settings, campaign_id: int) -> int:
    with session_scope(settings) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.campaign_id == campaign_id, Delivery.state == DeliveryState.queued)
            )
            or 0
        )


_HELPER_CODE = "from mailservice.mailings.sender import helper_main; helper_main()"


class _Helpers:
    """Sender processes beside this one on the same campaign: separate workers to the database (their own claims,
    consent rounds and heartbeats), started with this process's environment and stopped with it."""

    def __init__(self, processes: list[subprocess.Popen[str]]) -> None:
        self.processes = processes

    @classmethod
    def start(cls, campaign_id: int, count: int) -> _Helpers:
        env = dict(os.environ, MAILSERVICE_MAILING_PROCESSES="1")  # a helper starts no helpers of its own
        command = [sys.executable, "-c", _HELPER_CODE, str(campaign_id), str(os.getpid())]
        return cls(
            [
                subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
                for _ in range(count)
            ]
        )

    def stop(self) -> None:
        """Ask every helper to stop (it finishes the copies in flight and hands back the rest)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def collect(self, timeout: float) -> list[PassResult]:
        """Wait for the helpers and return their counts; a helper that does not end in time is killed."""
        results = []
        for process in self.processes:
            try:
                out, _err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _err = process.communicate()
            lines = (out or "").strip().splitlines()
            try:
                counts = json.loads(lines[-1]) if lines else {}
            except ValueError:
                counts = {}
            result = PassResult()
            for name in _COUNTS:
                setattr(result, name, int(counts.get(name, 0)))
            results.append(result)
        return results


_COUNTS = ("sent", "failed", "deferred", "skipped", "ambiguous", "released")


def _add(totals: PassResult, result: PassResult) -> None:
    for name in _COUNTS:
        setattr(totals, name, getattr(totals, name) + getattr(result, name))


def _die_with_parent(parent: int) -> None:
    """Linux: SIGTERM (a graceful stop) when the parent dies, even by SIGKILL; exit now if it is gone already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.exit(0)


def helper_main() -> None:
    """A helper process (``python -c``, arguments: campaign id, parent pid): send, then print the counts as JSON."""
    campaign_id, parent = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    settings = get_settings()

    async def run() -> SendSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await send_campaign(settings, campaign_id, stop=stop)

    summary = asyncio.run(run())
    print(json.dumps({name: getattr(summary.totals, name) for name in _COUNTS}), flush=True)


async def _start_helpers(settings: Settings, campaign_id: int) -> _Helpers | None:
    """Helpers when the settings allow more than one process and the campaign has more than one batch left."""
    # By default half the CPUs: measured on two cores with the database and an SMTP sink beside it, a second
    # process cost more than it gave (its start-up, smaller consent rounds, more lock traffic).
    wanted = (settings.mailing_processes or max(1, (os.cpu_count() or 1) // 2)) - 1
    if wanted < 1 or settings != get_settings():  # settings built in code are not the helpers' environment
        return None
    queued = await asyncio.to_thread(_queued, settings, campaign_id)
    count = min(wanted, -(-queued // max(1, settings.mailing_batch_size)) - 1)
    return _Helpers.start(campaign_id, count) if count > 0 else None


async def send_campaign(
    settings: Settings,
    campaign_id: int,
    *,
    stop: asyncio.Event | None = None,
    on_outcome: ProgressCallback | None = None,
) -> SendSummary:
    """Start the campaign if it is a draft and send until every copy is final, with helper processes per
    ``MAILING_PROCESSES`` (any number of processes may do this at once). Returns early when the campaign is paused
    or ``stop`` is set (the helpers are stopped too); the counts include the helpers'."""
    stop = stop or asyncio.Event()
    with session_scope(settings) as session:
        campaigns.start(session, settings, campaign_id, utcnow())
    worker = new_worker_name()
    ledger = Ledger(settings, campaign_id, worker)
    summary = SendSummary(status="")
    helpers = await _start_helpers(settings, campaign_id)
    try:
        while not stop.is_set():
            result = await _pass(settings, campaign_id, worker, stop=stop, on_outcome=on_outcome)
            _add(summary.totals, result)
            status, due, busy = await asyncio.to_thread(_remaining, settings, campaign_id)
            summary.status = status
            if status != CampaignStatus.sending:
                break
            # Copies deferred (4xx), held by other workers, or SMTP down: wait, then try again.
            wait = 5.0 if result.smtp_down else 0.1 if busy else 0.2
            if due is not None:
                wait = max(0.05, min(wait if busy else 30.0, (due - utcnow()).total_seconds()))
                if result.smtp_down:
                    wait = max(wait, 5.0)
            await asyncio.to_thread(ledger.heartbeat)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        if helpers is not None:
            if stop.is_set() or summary.status != CampaignStatus.done:
                helpers.stop()
            for result in await asyncio.to_thread(helpers.collect, settings.smtp_timeout + 60):
                _add(summary.totals, result)
        await asyncio.to_thread(ledger.forget)
    if helpers is not None and summary.status == CampaignStatus.sending:
        summary.status = await asyncio.to_thread(lambda: _remaining(settings, campaign_id)[0])
    return summary


async def send_due(settings: Settings, *, max_seconds: float = 20.0, stop: asyncio.Event | None = None) -> int:
    """One worker-loop step: apply new hard bounces, then send what is due in every running campaign for at most
    ``max_seconds`` (so the outbox keeps its turn). Returns the number of copies sent."""
    with session_scope(settings) as session:
        apply_bounces(session, utcnow())
        running = list(
            session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.sending).order_by(Campaign.id))
        )
    deadline = time.monotonic() + max_seconds
    worker = new_worker_name()
    sent = 0
    try:
        for campaign_id in running:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                break
            result = await _pass(settings, campaign_id, worker, deadline=deadline, stop=stop)
            sent += result.sent
    finally:
        if running:
            await asyncio.to_thread(Ledger(settings, 0, worker).forget)
    return sent
