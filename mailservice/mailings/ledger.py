"""The database side of the campaign sender: claiming copies, the per-message consent round, recording outcomes
and settling the copies of dead workers (see :mod:`mailservice.mailings.sender` for the at-most-once design)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import String, bindparam, delete, select, text, update
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from mailservice import faults
from mailservice.config import Settings
from mailservice.db import UTCDateTime, get_engine, session_scope, utcnow
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
from mailservice.mailings.subscribers import suppress
from mailservice.outbox import backoff

# The sender's log, as operators know it (the ambiguous copies are reported here).
log = logging.getLogger("mailservice.mailings.sender")

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
# A claimed copy handed back to the queue before it was marked ``sending``: nothing of it went on the wire, so its
# claim does not count as an attempt toward OUTBOX_MAX_ATTEMPTS (release, settle_own, the round's own release).
_HANDED_BACK = {
    Delivery.state: DeliveryState.queued,
    Delivery.claimed_by: "",
    Delivery.claim_token: "",
    Delivery.attempts: Delivery.attempts - 1,
}
_RELEASE = update(Delivery).where(*_CLAIMED_BY_ME).values(_HANDED_BACK)
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
PG_ROUND_SQL = str(_PG_ROUND.compile(dialect=psycopg_dialect.dialect()))


# SQLite: the usual round as two plain statements on the driver's connection, in one BEGIN IMMEDIATE transaction
# (SQLAlchemy's work per statement costs more than SQLite's own). "{}" is a list of placeholders.
_SQLITE_SENT = (
    "UPDATE mailing_deliveries SET state = 'sent', sent_at = ?, claimed_by = '', last_error = ''"
    " WHERE id IN ({}) AND claimed_by = ? AND state IN ('sending', 'ambiguous')"
)
_SQLITE_GO = (
    "UPDATE mailing_deliveries SET state = 'sending', sending_at = ?"
    " WHERE id IN ({}) AND claimed_by = ? AND state = 'claimed' AND EXISTS ("
    " SELECT 1 FROM mailing_subscriptions AS s JOIN mailing_subscribers AS p ON p.id = s.subscriber_id"
    " WHERE s.id = mailing_deliveries.subscription_id AND s.status = 'active' AND p.purged_at IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM mailing_suppressions AS x WHERE x.email_hash = p.email_hash))"
    " RETURNING id"
)


def _marks(count: int) -> str:
    return ", ".join("?" * count)


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
        self._time_param: Callable[[Any], Any] | None = None

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
                .values(_HANDED_BACK)
            )

    def settle_own(self) -> None:
        """After a pass: anything of ours still claimed goes back to the queue, anything still ``sending`` (its
        outcome could not be recorded) becomes ``ambiguous``. Normally there is nothing.

        A copy still claimed was never marked ``sending``, so nothing of it went on the wire: its claim is not an
        attempt (as :meth:`release` has it), and a pass stopped by an error does not bring it nearer to
        ``OUTBOX_MAX_ATTEMPTS``."""
        with session_scope(self.settings) as session:
            session.execute(
                update(Delivery)
                .where(Delivery.claimed_by == self.worker, Delivery.state == DeliveryState.claimed)
                .values(_HANDED_BACK)
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
            elif (params := self.fast_round_params(jobs, outcomes)) is not None:
                verdicts = self._round_sqlite(conn, params)
                rest = [j for j in jobs if j.delivery_id not in verdicts]
                if rest:  # consent gone (or the row no longer ours): the full path says which, and marks it
                    with conn.begin():
                        verdicts.update(self._round(conn, rest, [], now))
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

    def _round_sqlite(self, conn: Connection, params: dict[str, Any]) -> dict[int, str]:
        """SQLite, the usual round: earlier copies ``sent``, consenting ones ``sending``; the verdicts of those."""
        driver = conn.connection.dbapi_connection
        assert driver is not None
        if self._time_param is None:  # the form SQLAlchemy stores a UTCDateTime in on SQLite
            processor = UTCDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
            assert processor is not None
            self._time_param = processor
        now = self._time_param(params["now_"])
        ids, sent, worker = params["ids"], params["sent"], params["worker"]
        cursor = driver.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            if sent:
                cursor.execute(_SQLITE_SENT.format(_marks(len(sent))), [now, *sent, worker])
            marked = cursor.execute(_SQLITE_GO.format(_marks(len(ids))), [now, *ids, worker]).fetchall()
            cursor.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        return {row[0]: "go" for row in marked}

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
