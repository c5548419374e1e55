"""The sender's consent re-check where it meets a failing SMTP transaction, staged without timing (both databases).

On PostgreSQL the consent round of a copy starts once MAIL is accepted and runs while RCPT and DATA travel
(``mailservice/mailings/sender.py``, module docstring); on SQLite it runs after the 354. Two races of that early
round are staged here deterministically with the Recorder SMTP server (``tests/servers.py``): a withdrawal that
commits between the claim and the round while the recipient is refused, and a connection lost after the round said
``go`` and before the message could be written. Seed 004 p. 13 and RULES.md: consent is checked at the moment of
sending; README, Mailings: at most once, 4xx and lost connections retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.models import Bounce, IntakeEntry
from mailservice.mailings import campaigns, sender, subscribers
from mailservice.mailings import ledger as ledger_module
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.ledger import Job, Ledger, Outcome, PassResult, new_worker_name
from mailservice.mailings.models import Delivery, DeliveryState, Suppression, WorkerBeat
from mailservice.mailings.sender import send_campaign, send_due
from tests.conftest import make_env, reset_caches
from tests.servers import Recorder, RecorderController, free_port
from tests.test_mailings_sending import (
    new_campaign,
    populate,
    started_with_the_relay_down,
    states,
    suppressed,
    token_for,
)
from tests.waiting import run_within


@pytest.fixture
def one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> Iterator[Settings]:
    """The Recorder as the relay, no throttle, one connection (the copies go out in turn, in claim order)."""
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(recorder[1]),
        mailing_rate_per_minute="0",
        mailing_concurrency="1",
        mailing_processes="1",
    )
    reset_caches()


def early_round(db_url: str) -> bool:
    """Whether the sender starts the consent round at MAIL (PostgreSQL) rather than after the 354 (SQLite)."""
    return not db_url.startswith("sqlite")


def test_copies_withdrawn_after_their_claim_are_counted_as_the_database_records_them(
    one: Settings, recorder: tuple[Recorder, int], db_url: str
) -> None:
    """Four subscribers withdraw after their copies were claimed and before their consent rounds (each at the MAIL
    of its own copy); the server refuses the recipient of the first two. No copy reaches any of them. A copy whose
    recipient was accepted is skipped on both databases. A refused one is skipped on PostgreSQL, whose round
    (started at MAIL) finds consent gone, and failed on SQLite, where no round runs for a copy refused before the
    354. The counts the sender reports (``SendSummary.totals``, what `campaign send` and its helpers add up) are the
    rows' states, copy by copy; a refusal of a recipient does not cost the connection (README, Mailings: each
    connection carries many copies)."""
    handler, _port = recorder
    addresses = populate(one, 5)
    leavers = addresses[:4]  # claimed first (rows are claimed in order): the first four MAILs are theirs
    withdrawn: list[bool] = []

    def withdrawal(address: str) -> Callable[[], None]:
        _sid, token = token_for(one, address)

        def withdraw() -> None:
            result = subscribers.withdraw_by_link(one, token, evidence=Evidence(method="one_click"))
            withdrawn.append(result.changed)

        return withdraw

    handler.on_mail = [withdrawal(a) for a in leavers]
    handler.refuse = {leavers[0]: "550 5.1.1 No such user", leavers[1]: "550 5.7.1 Policy"}
    campaign_id = new_campaign(one)
    before = handler.connections  # the server's own check at its start

    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign")

    assert withdrawn == [True] * 4, "the withdrawals did not run at the first four MAILs"
    assert summary.status == "done"
    assert [handler.count(a) for a in addresses] == [0, 0, 0, 0, 1]
    rows = states(one, campaign_id)
    assert rows == ({"skipped": 4, "sent": 1} if early_round(db_url) else {"failed": 2, "skipped": 2, "sent": 1})
    counted = {"sent": summary.totals.sent, "failed": summary.totals.failed, "skipped": summary.totals.skipped}
    assert {k: v for k, v in counted.items() if v} == rows
    assert summary.totals.ambiguous == summary.totals.deferred == summary.totals.released == 0
    # The two refused copies and the next one share the first connection; a copy skipped after its 354 drops the
    # connection (the unterminated DATA is discarded), so the other skipped copy and the last one need one each.
    assert handler.connections - before == 3


def test_a_pause_seen_by_the_consent_round_stops_the_worker_at_once(
    one: Settings, recorder: tuple[Recorder, int]
) -> None:
    """The campaign is paused after its copies were claimed, at the MAIL of the first. The consent round of that
    copy sees the pause: the copy is not sent, and the worker starts no other SMTP transaction; every copy is back
    in the queue for the resume (README: pause; module docstring of the sender)."""
    handler, _port = recorder
    addresses = populate(one, 4)
    campaign_id = new_campaign(one)

    def pause() -> None:
        with session_scope(one) as session:
            campaigns.pause(session, campaign_id)

    handler.on_mail = [pause]
    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign")
    assert summary.status == "paused"
    assert handler.mails == 1
    assert handler.arrivals == []
    assert states(one, campaign_id) == {"queued": 4}
    assert summary.totals.sent == summary.totals.failed == summary.totals.skipped == 0
    with session_scope(one) as session:
        campaigns.resume(session, campaign_id)
    assert run_within(send_campaign(one, campaign_id), 60, "the resumed campaign").status == "done"
    assert [handler.count(a) for a in addresses] == [1] * 4


def test_a_server_that_hangs_up_at_rcpt(one: Settings, recorder: tuple[Recorder, int], db_url: str) -> None:
    """RFC 5321 3.8: a server may close the connection, after a reply or without one. A recipient refused for good
    (5.1.1) is failed and suppressed, whether or not the RSET that would reuse the connection finds it gone; a
    recipient whose RCPT got no answer was never offered the message: its copy is not marked as being sent, it is
    deferred and goes out once on the next attempt. The pass goes on over a new connection each time. (On
    PostgreSQL the copy was marked at MAIL, its round starting then; on SQLite it never was.)"""
    handler, _port = recorder
    addresses = populate(one, 4)
    handler.refuse = {addresses[1]: "550 5.1.1 No such user"}
    handler.hang_up_after_refusal = {addresses[1]}
    handler.drop_at_rcpt = {addresses[2]}
    campaign_id = new_campaign(one)
    before = handler.connections  # the server's own check at its start
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())
    assert run_within(send_due(one), 60, "the sending pass") == 2
    assert states(one, campaign_id) == {"sent": 2, "failed": 1, "queued": 1}
    assert [handler.count(a) for a in addresses] == [1, 0, 0, 1]
    assert suppressed(one, addresses) == [False, True, False, False]
    assert handler.connections - before == 3
    with session_scope(one) as session:
        deferred = session.scalar(select(Delivery).where(Delivery.state == DeliveryState.queued))
        assert deferred is not None and deferred.attempts == 1 and deferred.next_attempt_at > utcnow()
        if not early_round(db_url):
            assert deferred.sending_at is None  # no 354 came, so no consent round marked it
        session.execute(update(Delivery).where(Delivery.id == deferred.id).values(next_attempt_at=utcnow()))
    assert run_within(send_due(one), 60, "the next pass") == 1
    assert [handler.count(a) for a in addresses] == [1, 0, 1, 1]


def test_a_connection_lost_after_the_consent_verdict_and_before_the_message_is_retried(
    one: Settings, recorder: tuple[Recorder, int], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's 354 comes with a line that is no SMTP reply, so the sender drops the connection before it can
    write the message. On PostgreSQL the 354 is held until the consent round has said ``go`` (the order the early
    round makes possible: the message is then written by the 354's side, which finds the connection gone); on
    SQLite the round follows the 354 and its write finds the connection gone. Nothing was transferred, so the copy
    is neither ambiguous nor lost: it is deferred like any 4xx and the next pass delivers it once (README,
    Mailings: at most once, 4xx retries)."""
    handler, _port = recorder
    addresses = populate(one, 3)
    target = addresses[1]
    handler.garble_after_354 = {target}
    cleared = threading.Event()
    if early_round(db_url):
        handler.hold_354 = cleared
    original_go = sender._Wire.go

    def go(wire: sender._Wire) -> None:
        try:
            original_go(wire)  # on SQLite it writes the message at once, and so meets the lost connection
        finally:
            if target.encode("ascii") in wire.data:
                cleared.set()

    monkeypatch.setattr(sender._Wire, "go", go)
    campaign_id = new_campaign(one)
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())

    assert run_within(send_due(one), 60, "the sending pass") == 2
    assert cleared.is_set(), "the consent round never said go for the copy"
    assert states(one, campaign_id) == {"sent": 2, "queued": 1}
    assert [handler.count(a) for a in addresses] == [1, 0, 1]
    with session_scope(one) as session:
        deferred = session.scalar(select(Delivery).where(Delivery.state == DeliveryState.queued))
        assert deferred is not None and deferred.attempts == 1 and deferred.next_attempt_at > utcnow()
        session.execute(update(Delivery).where(Delivery.id == deferred.id).values(next_attempt_at=utcnow()))
    assert run_within(send_due(one), 60, "the next pass") == 1
    assert states(one, campaign_id) == {"sent": 3}
    assert [handler.count(a) for a in addresses] == [1, 1, 1]


def test_the_counts_of_a_campaign_are_its_rows(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """A copy refused for good at MAIL, at RCPT or after the message is failed, and counted as failed in what the
    sender reports (``SendSummary.totals``), like every copy sent is counted as sent."""
    handler, _port = recorder
    addresses = populate(one, 4)
    handler.refuse_mail = ["550 5.7.1 Sender rejected"]
    handler.refuse = {addresses[1]: "550 5.7.1 Policy"}
    handler.after_message = {addresses[2]: "554 5.6.0 Message rejected"}
    campaign_id = new_campaign(one)
    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert states(one, campaign_id) == {"failed": 3, "sent": 1}
    assert (summary.totals.failed, summary.totals.sent) == (3, 1)
    assert [handler.count(a) for a in addresses] == [0, 0, 0, 1]


def test_a_pass_ends_its_connections_with_quit(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """The connection a pass kept open to the end is closed with QUIT (RFC 5321 4.1.1.10), the orderly end a
    relay expects, not dropped; the copies share it (README, Mailings: each connection carries many copies)."""
    handler, _port = recorder
    addresses = populate(one, 3)
    campaign_id = new_campaign(one)
    connections, quits = handler.connections, handler.quits  # the server's own check at its start
    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert [handler.count(a) for a in addresses] == [1, 1, 1]
    assert handler.connections - connections == 1
    assert handler.quits - quits == 1


def test_a_pass_with_the_relay_down_hands_every_copy_back(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """When the relay cannot be reached, a pass stops and hands every copy it claimed back to the queue, untried,
    and counts them as handed back; the next pass sends each copy once (README, Mailings: at most once). A copy
    handed back untried costs none of its attempts (README, Mailings: 4xx retries with back-off): the back-off
    and the attempt limit count the tries that reached the relay, not the passes that found it down. The copy the
    connection failed on is handed back by the consent round; if that record were lost, it would go back to the
    queue only at the end of the pass, one attempt spent, and the round's other outcomes with it."""
    handler, _port = recorder
    addresses, campaign_id, down = started_with_the_relay_down(one, 3)
    result = run_within(sender._pass(down, campaign_id, new_worker_name()), 60, "the pass")
    assert (result.smtp_down, result.released, result.sent, result.deferred, result.failed) == (True, 3, 0, 0, 0)
    assert states(one, campaign_id) == {"queued": 3}
    with session_scope(one) as session:
        assert list(session.scalars(select(Delivery.attempts).where(Delivery.campaign_id == campaign_id))) == [0] * 3
    assert run_within(send_campaign(one, campaign_id), 60, "the campaign").status == "done"
    assert [handler.count(a) for a in addresses] == [1, 1, 1]


# ----------------------------------------------------------------------------------------------------------------
# The worker's mailing step (``send_due``): which campaigns, how many copies at a time, for how long
# ----------------------------------------------------------------------------------------------------------------


def stop_at_the_next_mail(handler: Recorder) -> asyncio.Event:
    """A stop event (call on the sender's event loop) set from the server's thread at the next MAIL, before the
    server answers it: the sender sees it set before that copy's transaction goes on."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def set_stop() -> None:
        loop.call_soon_threadsafe(stop.set)

    handler.on_mail = [set_stop]
    return stop


def heartbeats(settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        return list(session.scalars(select(WorkerBeat.name)))


def test_one_worker_step_sends_every_running_campaign_and_no_other(
    one: Settings, recorder: tuple[Recorder, int]
) -> None:
    """The worker's step sends what is due in every campaign being sent, and only in those (a draft has no copies
    yet: they are the subscribers of its list when it starts, README, Mailings); it reports the copies of all of
    them. A worker that ends its step leaves no heartbeat behind: the worker loop takes a new worker name each
    step, so a kept one would add a row every few seconds."""
    handler, _port = recorder
    addresses = populate(one, 3)
    first, second, draft = new_campaign(one), new_campaign(one), new_campaign(one)
    with session_scope(one) as session:
        for campaign_id in (first, second):
            campaigns.start(session, one, campaign_id, utcnow())
    assert run_within(send_due(one), 60, "the sending step") == 6
    assert [handler.count(a) for a in addresses] == [2, 2, 2]
    assert states(one, first) == states(one, second) == {"sent": 3}
    assert states(one, draft) == {}
    with session_scope(one) as session:
        assert [campaigns.status(session, c).status for c in (first, second, draft)] == ["done", "done", "draft"]
    assert heartbeats(one) == []


def test_copies_are_claimed_a_batch_at_a_time(
    one: Settings, recorder: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Settings: ``MAILING_BATCH_SIZE`` copies claimed at a time; the pass claims batch after batch until
    every due copy is sent."""
    handler, _port = recorder
    batched = one.model_copy(update={"mailing_batch_size": 2})
    addresses = populate(batched, 7)
    claims: list[int] = []
    original_claim = Ledger.claim

    def claim(ledger: Ledger, limit: int) -> tuple[list[Job], str]:
        jobs, status = original_claim(ledger, limit)
        claims.append(len(jobs))
        return jobs, status

    monkeypatch.setattr(Ledger, "claim", claim)
    campaign_id = new_campaign(batched)
    with session_scope(batched) as session:
        campaigns.start(session, batched, campaign_id, utcnow())
    assert run_within(send_due(batched), 60, "the sending step") == 7
    assert [handler.count(a) for a in addresses] == [1] * 7
    assert sum(claims) == 7 and max(claims) == 2, claims


def test_a_worker_step_stops_when_told(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """The worker stops (SIGTERM, `mailservice worker`) in the middle of a step: the copy in flight is finished,
    the others claimed with it go back to the queue, and a step told to stop before it starts sends nothing."""
    handler, _port = recorder
    addresses = populate(one, 4)
    campaign_id = new_campaign(one)
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())

    async def stopped_at_the_first_mail() -> int:
        return await send_due(one, stop=stop_at_the_next_mail(handler))

    async def stopped_before_it_starts() -> int:
        stop = asyncio.Event()
        stop.set()
        return await send_due(one, stop=stop)

    assert run_within(stopped_at_the_first_mail(), 60, "the sending step") == 1
    assert states(one, campaign_id) == {"sent": 1, "queued": 3}
    assert run_within(stopped_before_it_starts(), 60, "the stopped step") == 0
    assert states(one, campaign_id) == {"sent": 1, "queued": 3}
    assert handler.mails == 1
    assert run_within(send_due(one), 60, "the next step") == 3
    assert [handler.count(a) for a in addresses] == [1] * 4


def test_a_worker_step_keeps_to_its_time_budget(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """The mailing step sends for at most ``max_seconds`` so that the outbox keeps its turn (the worker loop):
    with one copy a second (``MAILING_RATE_PER_MINUTE`` 60) and 1.5 s, the fourth copy's turn, 3 s after the
    first, comes after the step has ended; what it did not send is back in the queue, not lost."""
    handler, _port = recorder
    throttled = one.model_copy(update={"mailing_rate_per_minute": 60})
    addresses = populate(throttled, 5)
    campaign_id = new_campaign(throttled)
    with session_scope(throttled) as session:
        campaigns.start(session, throttled, campaign_id, utcnow())
    sent = run_within(send_due(throttled, max_seconds=1.5), 60, "the sending step")
    assert sent <= 3
    assert states(throttled, campaign_id) == ({"sent": sent, "queued": 5 - sent} if sent else {"queued": 5})
    assert sum(handler.count(a) for a in addresses) == sent


def test_the_progress_callback_gets_the_counts_so_far(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """``send_campaign(..., on_outcome=...)`` is told after each copy, with the counts of the pass so far (the
    ``PassResult`` the summary adds up): with one connection, one more copy sent at each call."""
    handler, _port = recorder
    addresses = populate(one, 3)
    campaign_id = new_campaign(one)
    seen: list[tuple[int, int]] = []
    summary = run_within(
        send_campaign(one, campaign_id, on_outcome=lambda result: seen.append((result.sent, result.failed))),
        60,
        "the campaign",
    )
    assert summary.status == "done"
    assert seen == [(1, 0), (2, 0), (3, 0)]
    assert [handler.count(a) for a in addresses] == [1, 1, 1]


class ProgressBroke(Exception):
    """The caller's own progress callback failing (a closed terminal, say)."""


def test_a_failing_progress_callback_ends_the_campaign_send_with_its_error(
    one: Settings, recorder: tuple[Recorder, int]
) -> None:
    """A progress callback that raises does not hang `send_campaign`: the error is the caller's and reaches the
    caller once the pass has stopped as when it is told to stop (the copy in flight is finished, the others go back
    to the queue). No copy is lost or sent twice (README, Mailings: at most once): the next `campaign send` delivers
    the rest, once each."""
    handler, _port = recorder
    addresses = populate(one, 3)
    campaign_id = new_campaign(one)
    calls: list[int] = []

    def broken(result: PassResult) -> None:
        calls.append(result.sent)
        raise ProgressBroke("the progress display is gone")

    with pytest.raises(ProgressBroke, match="the progress display is gone"):
        run_within(send_campaign(one, campaign_id, on_outcome=broken), 60, "the campaign with a failing callback")
    assert calls == [1]  # told once; not again after it failed
    assert states(one, campaign_id) == {"sent": 1, "queued": 2}
    assert [handler.count(a) for a in addresses] == [1, 0, 0]
    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign sent again")
    assert summary.status == "done"
    assert [handler.count(a) for a in addresses] == [1, 1, 1]


def test_a_campaign_send_stops_when_told(one: Settings, recorder: tuple[Recorder, int]) -> None:
    """`campaign send` (and each helper process, on SIGTERM) stops when told in the middle of the campaign: the
    copy in flight is finished, the others go back to the queue, the campaign is still being sent and the summary
    says so; the sender leaves no heartbeat behind. The next `campaign send` delivers the rest, once each."""
    handler, _port = recorder
    addresses = populate(one, 4)
    campaign_id = new_campaign(one)

    async def stopped_at_the_first_mail() -> sender.SendSummary:
        return await send_campaign(one, campaign_id, stop=stop_at_the_next_mail(handler))

    summary = run_within(stopped_at_the_first_mail(), 60, "the stopped campaign")
    assert summary.status == "sending"
    assert (summary.totals.sent, summary.totals.released) == (1, 3)
    assert states(one, campaign_id) == {"sent": 1, "queued": 3}
    assert heartbeats(one) == []
    assert run_within(send_campaign(one, campaign_id), 60, "the campaign").status == "done"
    assert [handler.count(a) for a in addresses] == [1] * 4


def test_a_recipient_refused_for_good_is_failed_when_the_server_then_falls_silent(
    one: Settings, recorder: tuple[Recorder, int]
) -> None:
    """A 5xx at RCPT is final (RFC 5321 4.2.1): the copy is failed and a dead mailbox (5.1.1, RFC 3463) suppressed,
    also when the server then leaves the RSET that would reuse the connection unanswered until the SMTP timeout
    (``SMTP_TIMEOUT``, here 3 s) ends the connection."""
    handler, _port = recorder
    quick = one.model_copy(update={"smtp_timeout": 3.0})
    addresses = populate(quick, 1)
    handler.refuse = {addresses[0]: "550 5.1.1 No such user"}
    handler.silent_rset = True
    campaign_id = new_campaign(quick)
    summary = run_within(send_campaign(quick, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert states(quick, campaign_id) == {"failed": 1}
    assert suppressed(quick, addresses) == [True]
    assert handler.arrivals == []


def test_a_failed_consent_round_stops_the_pass_at_once(
    one: Settings, recorder: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails while the consent of the first copy is re-checked: that copy is not sent, and the
    worker starts no other SMTP transaction on a database that may be gone; every copy waits in the queue, and the
    next pass sends each once (module docstring of the sender: a crash before the commit loses nothing). The pass
    counts the three copies it handed back untried (the counts `campaign send` reports are the rows')."""
    handler, _port = recorder
    addresses = populate(one, 4)
    campaign_id = new_campaign(one)
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())
    failed: list[bool] = []
    real_commit, real_fast = Ledger.commit_round, sender.Coordinator._fast_round

    def fail_once() -> None:
        if not failed:
            failed.append(True)
            raise OperationalError("UPDATE mailing_deliveries", {}, Exception("the database went away"))

    def commit_round(ledger: Ledger, jobs: list[Job], outcomes: list[tuple[Job, Outcome]]) -> dict[int, str]:
        if jobs:  # the round of the SQLite path, and PostgreSQL's full one
            fail_once()
        return real_commit(ledger, jobs, outcomes)

    async def fast_round(
        coordinator: sender.Coordinator, requests: list[sender._Request], outcomes: list[tuple[Job, Outcome]]
    ) -> dict[int, str] | None:
        fail_once()  # PostgreSQL's usual round
        return await real_fast(coordinator, requests, outcomes)

    monkeypatch.setattr(Ledger, "commit_round", commit_round)
    monkeypatch.setattr(sender.Coordinator, "_fast_round", fast_round)
    result = run_within(sender._pass(one, campaign_id, new_worker_name()), 60, "the pass with a failed round")
    assert (result.sent, result.released, result.deferred, result.failed, result.ambiguous) == (0, 3, 0, 0, 0)
    assert failed, "no consent round ran"
    assert handler.mails == 1
    assert handler.arrivals == []
    assert states(one, campaign_id) == {"queued": 4}
    assert run_within(send_due(one), 60, "the next pass") == 4
    assert [handler.count(a) for a in addresses] == [1] * 4


def test_a_hard_bounce_after_a_withdrawal_is_applied_all_the_same(
    one: Settings, recorder: tuple[Recorder, int]
) -> None:
    """A hard bounce (recorded by intake) that arrives after its address withdrew: the worker step still applies
    it (README, Mailings: hard bounces suppress the address): the suppression entry now says bounce, dated when the
    step applied it, and the copy that bounced is marked so."""
    _handler, _port = recorder
    addresses = populate(one, 2)
    campaign_id = new_campaign(one)
    assert run_within(send_campaign(one, campaign_id), 60, "the campaign").status == "done"
    _sid, token = token_for(one, addresses[0])
    assert subscribers.withdraw_by_link(one, token, evidence=Evidence(method="one_click")).changed
    assert suppressed(one, addresses) == [True, False]
    with session_scope(one) as session:
        entry = IntakeEntry(source="smtp", content_hash="x", raw_sha256="x", size=1, outcome="bounce")
        session.add(entry)
        session.flush()
        session.add(Bounce(intake_id=entry.id, at=utcnow(), address=addresses[0], kind="hard", status="5.1.1"))
    before = utcnow()
    assert run_within(send_due(one), 60, "the worker step") == 0
    with session_scope(one) as session:
        row = session.get(Suppression, parse_address(addresses[0]).hash)  # type: ignore[union-attr]
        assert row is not None and row.reason == "bounce" and row.at >= before
    assert states(one, campaign_id) == {"bounced": 1, "sent": 1}


# ----------------------------------------------------------------------------------------------------------------
# The consent round's own database connection (PostgreSQL)
# ----------------------------------------------------------------------------------------------------------------


def test_the_consent_round_connects_with_the_configured_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """The usual PostgreSQL round runs on its own asyncio connection, opened from ``MAILSERVICE_DATABASE_URL``: it
    must carry the configured password, not SQLAlchemy's masked ``***`` (with password authentication every round
    would fail and nothing would be sent). The test server trusts local connections, so the password is read where
    the connection is opened. SQLite runs the round on the event loop and opens no such connection."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" and url.password is None:
        url = url.set(password="round-secret")  # ignored by a server that trusts local connections
    settings = make_env(
        monkeypatch,
        tmp_path,
        url.render_as_string(hide_password=False),
        smtp_port=str(recorder[1]),
        mailing_rate_per_minute="0",
        mailing_concurrency="1",
        mailing_processes="1",
    )
    reset_caches()
    opened: list[str] = []
    connect = psycopg.AsyncConnection.connect

    async def spy(conninfo: str = "", **kwargs: object) -> psycopg.AsyncConnection[object]:
        opened.append(conninfo)
        return await connect(conninfo, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", spy)
    handler, _port = recorder
    addresses = populate(settings, 3)
    campaign_id = new_campaign(settings)
    try:
        summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    finally:
        reset_caches()
    assert summary.status == "done"
    assert states(settings, campaign_id) == {"sent": 3}
    assert [handler.count(a) for a in addresses] == [1, 1, 1]
    if early_round(db_url):
        assert opened, "the usual PostgreSQL round did not run on its own connection"
        assert {make_url(c).password for c in opened} == {url.password}
    else:
        assert opened == []


def test_a_deferred_copy_is_tried_again_when_due_and_the_campaign_ends(
    one: Settings, recorder: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, Mailings: 4xx retries with back-off. `campaign send` does not end while a deferred copy waits: it
    sleeps until the copy is due (the loop's wait, never taken by a campaign that the first pass finishes), tries it
    again and ends with the campaign done, each copy sent once. The back-off is made half a second (a minute at the
    first retry otherwise)."""
    handler, _port = recorder
    addresses = populate(one, 3)
    handler.refuse = {addresses[1]: "450 4.2.1 Mailbox busy, try again later"}  # once: the retry is accepted
    monkeypatch.setattr(ledger_module, "backoff", lambda attempts: dt.timedelta(seconds=0.5))
    campaign_id = new_campaign(one)
    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign with a deferred copy")
    assert summary.status == "done"
    assert (summary.totals.sent, summary.totals.deferred, summary.totals.failed) == (3, 1, 0)
    assert [handler.count(a) for a in addresses] == [1, 1, 1]
    assert states(one, campaign_id) == {"sent": 3}


def test_a_campaign_started_with_the_relay_down_is_sent_once_it_is_back(
    one: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """README, Mailings: network errors are retried with back-off. `campaign send` started while the relay does not
    answer keeps the copies queued, waits (five seconds between tries while the relay is down), and sends them once
    the relay answers again; it never gives up nor sends one twice."""
    addresses = populate(one, 3)
    campaign_id = new_campaign(one)
    port = free_port()
    down = one.model_copy(update={"smtp_port": port})  # nothing listens there yet
    handler = Recorder()
    relay = RecorderController(handler, hostname="127.0.0.1", port=port)

    async def relay_comes_back() -> sender.SendSummary:
        task = asyncio.create_task(send_campaign(down, campaign_id))
        while "SMTP connection failed" not in caplog.text:
            assert not task.done(), "campaign send ended with the relay down"
            await asyncio.sleep(0.01)
        await asyncio.to_thread(relay.start)
        return await task

    try:
        with caplog.at_level("WARNING", logger="mailservice.mailings.sender"):
            summary = run_within(relay_comes_back(), 60, "the campaign once the relay was back")
    finally:
        relay.stop()
    assert summary.status == "done"
    assert [handler.count(a) for a in addresses] == [1, 1, 1]
    assert states(one, campaign_id) == {"sent": 3}


def test_a_pass_that_cannot_reach_the_relay_tries_it_once(one: Settings) -> None:
    """A relay that drops every connection before its greeting (RFC 5321 3.1 expects a 220; none comes): the pass
    stops at the first failed connection and hands the copies back, rather than opening a connection per copy (a
    relay that hangs would cost a connection timeout each, 30 s by default, for every copy of the batch)."""
    addresses = populate(one, 5)
    campaign_id = new_campaign(one)
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[int] = []
    done = threading.Event()

    def drop_every_connection() -> None:
        while not done.is_set():
            try:
                connection, _peer = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            connection.close()

    thread = threading.Thread(target=drop_every_connection, daemon=True)
    thread.start()
    try:
        dropping = one.model_copy(update={"smtp_port": listener.getsockname()[1]})
        result = run_within(sender._pass(dropping, campaign_id, new_worker_name()), 60, "the pass")
    finally:
        done.set()
        thread.join(timeout=10)
        listener.close()
    assert (result.smtp_down, result.sent, result.released) == (True, 0, len(addresses))
    assert len(accepted) == 1  # one connection (MAILING_CONCURRENCY=1), not one per copy
    assert states(one, campaign_id) == {"queued": len(addresses)}


def test_a_connection_stopped_by_an_unexpected_error_ends_the_send_with_it(
    one: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A server name the resolver cannot encode (settings built in code skip the start-up check) makes the connection
    raise UnicodeError: neither a refusal nor a time-out. The send ends with that error, logged, and every copy is
    handed back for a later pass, rather than `campaign send` waiting for ever on copies no connection reads (it
    did: the feeder kept its queue full for connections that had ended)."""
    addresses = populate(one, 4)
    campaign_id = new_campaign(one)
    broken = one.model_copy(update={"smtp_host": "smtp..dizo.example.ru", "mailing_concurrency": 2})
    with caplog.at_level("ERROR", logger=sender.log.name), pytest.raises(UnicodeError):
        run_within(send_campaign(broken, campaign_id), 60, "campaign send")
    assert states(one, campaign_id) == {"queued": len(addresses)}
    failures = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], UnicodeError)]
    assert len(failures) == 2, caplog.text  # each connection says why it stopped, and that it stopped
    assert all("connection stopped" in r.getMessage() for r in failures), caplog.text
    with session_scope(one) as session:
        assert campaigns.get(session, campaign_id).status == "sending"  # the next pass tries again
