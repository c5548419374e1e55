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
import datetime as dt
import logging
import os
import queue
import re
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from sqlalchemy import String, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from mailservice import faults
from mailservice.config import Settings
from mailservice.db import UTCDateTime, get_engine, session_scope, utcnow
from mailservice.mail import smtp
from mailservice.mailings import campaigns
from mailservice.mailings.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryState,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    WorkerBeat,
)
from mailservice.mailings.render import CampaignRenderer, Recipient, signer_from_settings
from mailservice.mailings.subscribers import UnsubscribeLinks, apply_bounces, suppress
from mailservice.outbox import backoff

log = logging.getLogger(__name__)

# RFC 3463 "bad destination mailbox address" / "bad destination system": the address itself is dead.
_DEAD_ADDRESS = re.compile(r"^\s*5\.1\.(1|2|3|10)\b")
_HEARTBEAT_EVERY = 5.0


# The statements of the per-message round, built once (building a statement costs more than running it).
_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_WORKER = bindparam("worker", type_=String())
_NOW = bindparam("now_", type_=UTCDateTime())
_CLAIMED_BY_ME = (Delivery.id.in_(_IDS), Delivery.claimed_by == _WORKER, Delivery.state == DeliveryState.claimed)
_CONSENTING = (
    select(Subscription.id)
    .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
    .outerjoin(Suppression, Suppression.email_hash == Subscriber.email_hash)
    .where(
        Subscription.id.in_(bindparam("sids", expanding=True)),
        Subscription.status == SubscriptionStatus.active,
        Subscriber.purged_at.is_(None),
        Suppression.email_hash.is_(None),
    )
    # Withdrawal takes FOR UPDATE on the same row: one of the two waits for the other (PostgreSQL).
    .with_for_update(read=True, of=Subscription)
)
_MARK_SENDING = (
    update(Delivery).where(*_CLAIMED_BY_ME).values(state=DeliveryState.sending, sending_at=_NOW).returning(Delivery.id)
)
_MARK_SKIPPED = (
    update(Delivery)
    .where(*_CLAIMED_BY_ME)
    .values(state=DeliveryState.skipped, claimed_by="", last_error="согласие отозвано до отправки")
    .returning(Delivery.id)
)
_RELEASE = (
    update(Delivery)
    .where(*_CLAIMED_BY_ME)
    .values(state=DeliveryState.queued, claimed_by="", claim_token="", attempts=Delivery.attempts - 1)
)
_MARK_SENT = (
    update(Delivery)
    .where(
        Delivery.id.in_(_IDS),
        Delivery.claimed_by == _WORKER,
        Delivery.state.in_([DeliveryState.sending, DeliveryState.ambiguous]),
    )
    .values(state=DeliveryState.sent, sent_at=_NOW, claimed_by="", last_error="")
)
_BEAT = update(WorkerBeat).where(WorkerBeat.name == _WORKER).values(heartbeat_at=_NOW)

# PostgreSQL: the whole round as one statement (data-modifying CTEs run whether or not they are referenced).
_PG_ROUND = text(
    """
    WITH consenting AS (
        SELECT s.id FROM mailing_subscriptions AS s
        JOIN mailing_subscribers AS p ON p.id = s.subscriber_id
        WHERE s.id = ANY(:sids) AND s.status = 'active' AND p.purged_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM mailing_suppressions AS x WHERE x.email_hash = p.email_hash)
        FOR SHARE OF s
    ), sent AS (
        UPDATE mailing_deliveries SET state = 'sent', sent_at = :now_, claimed_by = '', last_error = ''
        WHERE id = ANY(:sent) AND claimed_by = :worker AND state IN ('sending', 'ambiguous')
        RETURNING id
    )
    UPDATE mailing_deliveries SET state = 'sending', sending_at = :now_
    WHERE id = ANY(:ids) AND claimed_by = :worker AND state = 'claimed'
      AND subscription_id IN (SELECT id FROM consenting)
    RETURNING id
    """
).bindparams(bindparam("now_", type_=UTCDateTime()))
# The same statement for psycopg's own asyncio connection (pyformat placeholders).
_PG_ROUND_SQL = str(_PG_ROUND.compile(dialect=psycopg_dialect.dialect()))


def new_worker_name() -> str:
    """Host, process id and a random part (a recycled pid never inherits a dead worker's claims)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _pid_dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A zombie (killed, not yet reaped by its parent) sends nothing any more.
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def worker_is_dead(owner: str, beat: WorkerBeat | None, now: dt.datetime, timeout_s: float) -> bool:
    """Whether the worker that claimed rows is gone: silent too long, or (same host) its process has exited."""
    if beat is None or beat.heartbeat_at < now - dt.timedelta(seconds=timeout_s):
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return _pid_dead(int(pid_text))
    return False


@dataclass
class Job:
    """One claimed copy."""

    delivery_id: int
    subscription_id: int
    address: str
    name: str
    nonce: str
    attempts: int
    slot: dt.datetime | None = None  # not before (campaign throttle)


@dataclass(frozen=True)
class Outcome:
    """What happened to a job on the wire."""

    state: str  # sent | defer | failed | ambiguous | release
    error: str = ""
    dead_address: bool = False


@dataclass
class PassResult:
    """Counts of one pass over a campaign."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    ambiguous: int = 0
    released: int = 0
    paused: bool = False
    smtp_down: bool = False

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        if outcome.state == "sent":
            self.sent += 1
        elif outcome.state == "failed":
            self.failed += 1
        elif outcome.state == "defer":
            self.deferred += 1
        elif outcome.state == "ambiguous":
            self.ambiguous += 1
        elif outcome.state == "release":
            self.released += 1


class Ledger:
    """The database side of one worker on one campaign (synchronous; the sender runs it in a thread)."""

    def __init__(self, settings: Settings, campaign_id: int, worker: str) -> None:
        self.settings = settings
        self.campaign_id = campaign_id
        self.worker = worker
        self._last_beat = 0.0
        self._status_read_at = 0.0
        self._sending = True
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()

    # -- liveness --------------------------------------------------------------------------------------------

    def _beat(self, session: Session, now: dt.datetime, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < _HEARTBEAT_EVERY:
            return
        self._last_beat = time.monotonic()
        row = session.get(WorkerBeat, self.worker)
        if row is None:
            host, _, rest = self.worker.partition(":")
            session.add(
                WorkerBeat(
                    name=self.worker, host=host, pid=int(rest.partition(":")[0]), started_at=now, heartbeat_at=now
                )
            )
        else:
            row.heartbeat_at = now

    def heartbeat(self) -> None:
        """Tell other workers this one is alive."""
        with session_scope(self.settings) as session:
            self._beat(session, utcnow(), force=True)

    def forget(self) -> None:
        """Remove this worker's heartbeat (clean exit)."""
        with session_scope(self.settings) as session:
            session.execute(delete(WorkerBeat).where(WorkerBeat.name == self.worker))

    # -- claiming --------------------------------------------------------------------------------------------

    def claim(self, limit: int) -> tuple[list[Job], str]:
        """Claim up to ``limit`` due copies; returns them and the campaign status (``sending`` to go on)."""
        settings = self.settings
        now = utcnow()
        with session_scope(settings) as session:
            rate = settings.mailing_rate_per_minute
            # The throttle is shared through the campaign row: lock it only when there is a rate to share.
            campaign = campaigns.get(session, self.campaign_id, lock=rate > 0)
            if campaign.status != CampaignStatus.sending:
                return [], campaign.status
            start = now
            if rate > 0:
                start = max(now, campaign.next_send_at or now)
                if start > now + dt.timedelta(seconds=30):
                    return [], campaign.status  # other workers hold the next half-minute of slots
                limit = max(1, min(limit, rate // 2 or 1))
            query = (
                select(Delivery.id)
                .where(
                    Delivery.campaign_id == self.campaign_id,
                    Delivery.state == DeliveryState.queued,
                    Delivery.next_attempt_at <= now,
                )
                .order_by(Delivery.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                return [], campaign.status
            self._beat(session, now, force=True)
            token = secrets.token_hex(8)
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(
                    state=DeliveryState.claimed,
                    claimed_by=self.worker,
                    claim_token=token,
                    claimed_at=now,
                    attempts=Delivery.attempts + 1,
                )
            )
            rows = session.execute(
                select(
                    Delivery.id,
                    Delivery.subscription_id,
                    Delivery.attempts,
                    Subscriber.email_ascii,
                    Subscriber.name,
                    Subscription.nonce,
                )
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Delivery.id.in_(ids))
                .order_by(Delivery.id)
            ).all()
            jobs, gone = [], []
            for row in rows:
                if not row.email_ascii:  # purged meanwhile: consent was withdrawn long ago
                    gone.append(row.id)
                    continue
                jobs.append(Job(row.id, row.subscription_id, row.email_ascii, row.name, row.nonce, row.attempts))
            if gone:
                session.execute(
                    update(Delivery).where(Delivery.id.in_(gone)).values(state=DeliveryState.skipped, claimed_by="")
                )
            if rate > 0:
                interval = dt.timedelta(seconds=60.0 / rate)
                for k, job in enumerate(jobs):
                    job.slot = start + k * interval
                campaign.next_send_at = start + len(jobs) * interval
        faults.point("mailing_after_claim")
        return jobs, CampaignStatus.sending

    def release(self, jobs: list[Job]) -> None:
        """Hand claimed copies back to the queue (pause, stop, SMTP down before they were tried)."""
        if not jobs:
            return
        with session_scope(self.settings) as session:
            session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_([j.delivery_id for j in jobs]),
                    Delivery.claimed_by == self.worker,
                    Delivery.state == DeliveryState.claimed,
                )
                .values(state=DeliveryState.queued, claimed_by="", claim_token="", attempts=Delivery.attempts - 1)
            )

    def settle_own(self) -> None:
        """After a pass: anything of ours still claimed goes back to the queue, anything still ``sending`` (its
        outcome could not be recorded) becomes ``ambiguous``. Normally there is nothing."""
        with session_scope(self.settings) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.claimed_by == self.worker, Delivery.state == DeliveryState.claimed)
                .values(state=DeliveryState.queued, claimed_by="", claim_token="")
            )
            lost = list(
                session.scalars(
                    update(Delivery)
                    .where(Delivery.claimed_by == self.worker, Delivery.state == DeliveryState.sending)
                    .values(state=DeliveryState.ambiguous, claimed_by="", last_error="outcome not recorded")
                    .returning(Delivery.id)
                )
            )
            for delivery_id in lost:
                log.warning("mailing delivery %s is ambiguous (outcome not recorded); not re-sent", delivery_id)

    # -- the attempt round -----------------------------------------------------------------------------------

    def _connection(self) -> Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            conn = get_engine(self.settings).connect()
            if conn.dialect.name == "postgresql":
                # Each round is one statement: in autocommit it is its own transaction, so a round costs one
                # round trip and one WAL flush.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            return conn

    def close(self) -> None:
        """Return the round connections (end of a pass)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def commit_round(self, jobs: list[Job], outcomes: list[tuple[Job, Outcome]]) -> dict[int, str]:
        """Record finished copies and, for copies about to be sent, re-check consent and mark them ``sending``.

        Returns a verdict per job: ``go``, ``skip`` (consent gone), ``lost`` (no longer ours) or ``paused``. This
        runs once per message and connection, so it uses prepared statements on connections kept for the pass
        (no ORM unit of work, no pool check-out per round): its cost bounds the throughput.
        """
        now = utcnow()
        conn = self._connection()
        try:
            if conn.dialect.name == "postgresql":
                verdicts = self._round_pg(conn, jobs, outcomes, now)
            else:
                with conn.begin():
                    verdicts = self._round(conn, jobs, outcomes, now)
        except BaseException:
            conn.close()  # never reuse a connection in an unknown state
            raise
        self._idle.put(conn)
        return verdicts

    def _common(self, conn: Connection, jobs: list[Job], now: dt.datetime) -> dict[int, str] | None:
        """Heartbeat and pause check; the verdicts when the round ends here."""
        if time.monotonic() - self._last_beat > _HEARTBEAT_EVERY:
            self._last_beat = time.monotonic()
            conn.execute(_BEAT, {"worker": self.worker, "now_": now})
        if not jobs:
            return {}
        if not self._still_sending(conn):
            ids = [j.delivery_id for j in jobs]
            conn.execute(_RELEASE, {"ids": ids, "worker": self.worker})
            return {i: "paused" for i in ids}
        return None

    def _round(
        self, conn: Connection, jobs: list[Job], outcomes: list[tuple[Job, Outcome]], now: dt.datetime
    ) -> dict[int, str]:
        """SQLite: the statements in one (BEGIN IMMEDIATE) transaction."""
        self._apply(conn, outcomes, now)
        done = self._common(conn, jobs, now)
        if done is not None:
            return done
        return self._check_and_mark(conn, jobs, now)

    def _check_and_mark(self, conn: Connection, jobs: list[Job], now: dt.datetime) -> dict[int, str]:
        ids = [j.delivery_id for j in jobs]
        consenting = set(conn.scalars(_CONSENTING, {"sids": [j.subscription_id for j in jobs]}))
        go = [j.delivery_id for j in jobs if j.subscription_id in consenting]
        skip = [j.delivery_id for j in jobs if j.subscription_id not in consenting]
        marked = set(conn.scalars(_MARK_SENDING, {"ids": go, "worker": self.worker, "now_": now})) if go else set()
        skipped = set(conn.scalars(_MARK_SKIPPED, {"ids": skip, "worker": self.worker})) if skip else set()
        return {i: "go" if i in marked else "skip" if i in skipped else "lost" for i in ids}

    def fast_round_params(self, jobs: list[Job], outcomes: list[tuple[Job, Outcome]]) -> dict[str, object] | None:
        """Parameters of the one-statement PostgreSQL round, or None when this round needs the full path."""
        if (
            not jobs
            or any(o.state != "sent" for _j, o in outcomes)
            or time.monotonic() - self._last_beat > _HEARTBEAT_EVERY
            or time.monotonic() - self._status_read_at > 0.5
            or not self._sending
        ):
            return None
        return {
            "ids": [j.delivery_id for j in jobs],
            "sids": [j.subscription_id for j in jobs],
            "sent": [j.delivery_id for j, o in outcomes],
            "worker": self.worker,
            "now_": utcnow(),
        }

    def _round_pg(
        self, conn: Connection, jobs: list[Job], outcomes: list[tuple[Job, Outcome]], now: dt.datetime
    ) -> dict[int, str]:
        """PostgreSQL (autocommit): the consent check (FOR SHARE), the ``sending`` marks and the ``sent`` marks
        of earlier copies in one statement; the rare leftovers (consent gone, other outcomes) separately."""
        self._apply(conn, [(j, o) for j, o in outcomes if o.state != "sent"], now)
        sent = [j.delivery_id for j, o in outcomes if o.state == "sent"]
        done = self._common(conn, jobs, now)
        if done is not None:
            if sent:
                conn.execute(_MARK_SENT, {"ids": sent, "worker": self.worker, "now_": now})
            return done
        params = {
            "ids": [j.delivery_id for j in jobs],
            "sids": [j.subscription_id for j in jobs],
            "sent": sent,
            "worker": self.worker,
            "now_": now,
        }
        marked = set(conn.scalars(_PG_ROUND, params))
        rest = [j for j in jobs if j.delivery_id not in marked]
        verdicts = {i: "go" for i in marked}
        if rest:
            verdicts.update(self._check_and_mark(conn, rest, now))
        return verdicts

    def _still_sending(self, conn: Connection) -> bool:
        """Whether the campaign still runs; read at most twice a second (a pause takes effect that fast)."""
        if time.monotonic() - self._status_read_at > 0.5:
            status = conn.scalar(select(Campaign.status).where(Campaign.id == self.campaign_id))
            self._sending = status == CampaignStatus.sending
            self._status_read_at = time.monotonic()
        return self._sending

    def _apply(self, conn: Connection, outcomes: list[tuple[Job, Outcome]], now: dt.datetime) -> None:
        sent = [j.delivery_id for j, o in outcomes if o.state == "sent"]
        if sent:
            conn.execute(_MARK_SENT, {"ids": sent, "worker": self.worker, "now_": now})
        mine = Delivery.claimed_by == self.worker
        for job, outcome in outcomes:
            if outcome.state == "sent":
                continue
            values: dict[str, object] = {"last_error": outcome.error[:2000], "claimed_by": ""}
            if outcome.state == "defer" and job.attempts < self.settings.outbox_max_attempts:
                values.update(state=DeliveryState.queued, next_attempt_at=now + backoff(job.attempts), claim_token="")
            elif outcome.state == "release":
                values.update(state=DeliveryState.queued, claim_token="", attempts=Delivery.attempts - 1)
            elif outcome.state == "ambiguous":
                values.update(state=DeliveryState.ambiguous)
                log.warning(
                    "mailing delivery %s (campaign %s) is ambiguous, not re-sent: %s",
                    job.delivery_id,
                    self.campaign_id,
                    outcome.error,
                )
            else:
                values.update(state=DeliveryState.failed)
            conn.execute(
                update(Delivery)
                .where(
                    Delivery.id == job.delivery_id,
                    mine,
                    Delivery.state.in_([DeliveryState.claimed, DeliveryState.sending]),
                )
                .values(**values)
            )
            if outcome.dead_address:
                with Session(bind=conn) as session:
                    address_hash = session.scalar(
                        select(Subscriber.email_hash)
                        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                        .where(Subscription.id == job.subscription_id)
                    )
                    if address_hash:
                        suppress(session, address_hash, "bounce", now, outcome.error)
                    session.flush()

    # -- reconciling -----------------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Settle copies left by dead workers: ``claimed`` back to the queue, ``sending`` to ``ambiguous``."""
        now = utcnow()
        settled = 0
        with session_scope(self.settings) as session:
            owners = set(
                session.scalars(
                    select(Delivery.claimed_by)
                    .where(Delivery.state.in_([DeliveryState.claimed, DeliveryState.sending]))
                    .distinct()
                )
            )
            owners.discard(self.worker)
            if not owners:
                return 0
            beats = {b.name: b for b in session.scalars(select(WorkerBeat).where(WorkerBeat.name.in_(owners)))}
            for owner in sorted(owners):
                if not worker_is_dead(owner, beats.get(owner), now, self.settings.mailing_worker_timeout):
                    continue
                requeued = session.execute(
                    update(Delivery)
                    .where(Delivery.claimed_by == owner, Delivery.state == DeliveryState.claimed)
                    .values(state=DeliveryState.queued, claimed_by="", claim_token="")
                )
                lost = list(
                    session.scalars(
                        update(Delivery)
                        .where(Delivery.claimed_by == owner, Delivery.state == DeliveryState.sending)
                        .values(
                            state=DeliveryState.ambiguous,
                            claimed_by="",
                            last_error="the worker stopped between DATA and the server's answer; not re-sent",
                        )
                        .returning(Delivery.id)
                    )
                )
                for delivery_id in lost:
                    log.warning(
                        "mailing delivery %s is ambiguous (worker %s died mid-DATA); not re-sent", delivery_id, owner
                    )
                session.execute(delete(WorkerBeat).where(WorkerBeat.name == owner))
                settled += int(requeued.rowcount or 0) + len(lost)  # type: ignore[attr-defined]
        return settled


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
                    except (aiosmtplib.SMTPException, OSError):
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
        cursor = await self._aconn.execute(_PG_ROUND_SQL, params)
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
        self._halt = False  # paused, SMTP down or stopped: no more claims, release what is queued
        self._renderer: CampaignRenderer | None = None
        self._links = UnsubscribeLinks(settings)
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
        if self.on_outcome is not None:
            self.on_outcome(self.result)

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

    async def _connect(self) -> aiosmtplib.SMTP | None:
        client = smtp.client(self.settings)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mailing: SMTP connection failed: %s", exc)
            self._halt = True
            self.result.smtp_down = True
            return None
        return client

    async def _connection(self, queue: asyncio.Queue[Job | None], coordinator: Coordinator) -> None:
        client: aiosmtplib.SMTP | None = None
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
        finally:
            if client is not None:
                await self._close(client, polite=True)

    @staticmethod
    async def _close(client: aiosmtplib.SMTP, *, polite: bool) -> None:
        if polite and client.is_connected:
            try:
                await client.quit()
                return
            except (aiosmtplib.SMTPException, OSError):
                pass
        client.close()

    async def _send_one(
        self, client: aiosmtplib.SMTP, job: Job, coordinator: Coordinator
    ) -> tuple[Outcome | None, bool]:
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
        timeout = self.settings.smtp_timeout
        wire = _Wire(client, data)
        early: asyncio.Future[str] | None = None
        failure: tuple[Outcome, bool] | None = None
        try:
            await client.mail(self.settings.from_address, timeout=timeout)
            if self.early_round:
                early = asyncio.ensure_future(coordinator.before_data(job, wire.go))
            await client.rcpt(job.address, timeout=timeout)
            reply = await client.execute_command(b"DATA", timeout=timeout)
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except aiosmtplib.SMTPResponseException as exc:
            # Refused before any content: safe to retry on 4xx; 5xx is final (RFC 5321 4.2.1).
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.rset(timeout=timeout)
            permanent = 500 <= exc.code < 600
            dead = (
                permanent
                and isinstance(exc, aiosmtplib.SMTPRecipientRefused)
                and bool(_DEAD_ADDRESS.match(exc.message))
            )
            outcome = Outcome("failed" if permanent else "defer", f"{exc.code} {exc.message}", dead_address=dead)
            failure = (outcome, client.is_connected)
        except (aiosmtplib.SMTPException, OSError) as exc:
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
        assert client.protocol is not None
        try:
            reply = await client.protocol.read_response(timeout=timeout)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            # The final dot may have reached the server: at most once means not sending it again.
            return Outcome("ambiguous", f"no answer after the message was sent: {type(exc).__name__}: {exc}"), False
        faults.point("mailing_after_250")
        if reply.code == 250:
            return Outcome("sent"), True
        permanent = 500 <= reply.code < 600
        return Outcome("failed" if permanent else "defer", f"{reply.code} {reply.message}"), True


class _Wire:
    """Writes a message as soon as both the ``go`` verdict and the server's 354 are in (whichever comes last)."""

    def __init__(self, client: aiosmtplib.SMTP, data: bytes) -> None:
        self.client = client
        self.data = data
        self.cleared = False  # the verdict was "go"
        self.invited = False  # the server said 354
        self.written = False

    def _write(self) -> None:
        protocol = self.client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        faults.point("mailing_before_dot")
        # aiosmtplib (pinned) drops bytes that arrive while no reply is expected; the 250 may arrive before the
        # sending coroutine runs again, so say a reply is expected before writing, as its own DATA code does.
        protocol._response_pending = True
        protocol.write(self.data)
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
            except (aiosmtplib.SMTPException, OSError):
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


async def send_campaign(
    settings: Settings,
    campaign_id: int,
    *,
    stop: asyncio.Event | None = None,
    on_outcome: ProgressCallback | None = None,
) -> SendSummary:
    """Start the campaign if it is a draft and send until every copy is final (any number of processes may do
    this at once on PostgreSQL). Returns early when the campaign is paused or ``stop`` is set."""
    stop = stop or asyncio.Event()
    with session_scope(settings) as session:
        campaigns.start(session, settings, campaign_id, utcnow())
    worker = new_worker_name()
    ledger = Ledger(settings, campaign_id, worker)
    summary = SendSummary(status="")
    try:
        while not stop.is_set():
            result = await _pass(settings, campaign_id, worker, stop=stop, on_outcome=on_outcome)
            for name in ("sent", "failed", "deferred", "skipped", "ambiguous", "released"):
                setattr(summary.totals, name, getattr(summary.totals, name) + getattr(result, name))
            status, due, busy = await asyncio.to_thread(_remaining, settings, campaign_id)
            summary.status = status
            if status != CampaignStatus.sending:
                break
            # Copies deferred (4xx), held by other workers, or SMTP down: wait, then try again.
            wait = 1.0 if busy or result.smtp_down else 0.2
            if due is not None:
                wait = max(0.05, min(wait if busy else 30.0, (due - utcnow()).total_seconds()))
                if result.smtp_down:
                    wait = max(wait, 5.0)
            await asyncio.to_thread(ledger.heartbeat)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
    finally:
        await asyncio.to_thread(ledger.forget)
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
