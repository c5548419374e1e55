"""``campaign send`` with helper processes (MAILING_PROCESSES): they share the campaign as separate workers, their
counts add up, and when the sending process is SIGKILLed the helpers stop gracefully; never a copy twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import campaigns, sender
from mailservice.mailings.models import CampaignStatus, Delivery, DeliveryState, WorkerBeat
from mailservice.mailings.sender import send_campaign
from tests.cli_support import dies_with_test
from tests.conftest import make_env, reset_caches
from tests.servers import Recorder
from tests.test_mailings_sending import ROOT, new_campaign, populate, stop_all
from tests.waiting import run_within


@pytest.fixture
def two_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> Iterator[Settings]:
    yield on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="2", mailing_batch_size="20", mailing_processes="2"
    )
    reset_caches()


def on_the_recorder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int], **extra: str
) -> Settings:
    """Settings with the Recorder as the relay and no throttle, and ``extra`` (as ``make_env``)."""
    return make_env(monkeypatch, tmp_path, db_url, smtp_port=str(recorder[1]), mailing_rate_per_minute="0", **extra)


def beats(settings: Settings) -> dict[str, int]:
    with session_scope(settings) as session:
        return {b.name: b.pid for b in session.scalars(select(WorkerBeat))}


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_helpers_share_the_campaign_and_their_counts_add_up(
    two_processes: Settings, recorder: tuple[Recorder, int]
) -> None:
    handler, _port = recorder
    addresses = populate(two_processes, 300)
    campaign_id = new_campaign(two_processes)
    summary = run_within(send_campaign(two_processes, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert summary.totals.sent == 300  # this process's copies and the helper's
    assert sorted({handler.count(a) for a in addresses}) == [1]
    assert beats(two_processes) == {}  # every worker, helpers included, left cleanly


def test_a_campaign_of_one_batch_starts_no_helper(two_processes: Settings, recorder: tuple[Recorder, int]) -> None:
    handler, _port = recorder
    addresses = populate(two_processes, 20)  # one batch (MAILING_BATCH_SIZE=20)
    campaign_id = new_campaign(two_processes)
    seen: set[str] = set()
    summary = run_within(
        send_campaign(two_processes, campaign_id, on_outcome=lambda _r: seen.update(beats(two_processes))),
        60,
        "the campaign",
    )
    assert summary.status == "done" and summary.totals.sent == 20
    assert len(seen) == 1, seen
    assert sorted({handler.count(a) for a in addresses}) == [1]


@pytest.mark.slow
def test_sender_killed_its_helper_stops_and_nothing_is_sent_twice(
    two_processes: Settings, recorder: tuple[Recorder, int], request: pytest.FixtureRequest
) -> None:
    handler, _port = recorder
    handler.delay = 0.01  # a slow relay: the helper has time to start and claim its part
    addresses = populate(two_processes, 1000)
    campaign_id = new_campaign(two_processes)
    env = dict(os.environ)
    env.pop("MAILSERVICE_FAULT", None)
    sender = subprocess.Popen(
        dies_with_test([sys.executable, "-m", "mailservice", "campaign", "send", str(campaign_id)]),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    request.addfinalizer(lambda: stop_all([sender]))  # never left running when the test fails
    deadline = time.monotonic() + 120
    while len(set(beats(two_processes).values())) < 2:  # the helper has claimed copies too
        assert sender.poll() is None, sender.stderr.read() if sender.stderr else b""
        assert time.monotonic() < deadline, "no helper process claimed anything within 120 s"
        time.sleep(0.05)
    helpers = {pid for pid in beats(two_processes).values() if pid != sender.pid}
    sender.send_signal(signal.SIGKILL)
    assert sender.wait(timeout=60) == -signal.SIGKILL
    deadline = time.monotonic() + 120
    while not all(gone(pid) for pid in helpers):
        assert time.monotonic() < deadline, "the helper did not stop within 120 s of its parent's death"
        time.sleep(0.05)
    # It stopped gracefully (told by SIGTERM): it removed its own heartbeat; the killed one's is left behind.
    assert set(beats(two_processes).values()) == {sender.pid}

    assert run_within(send_campaign(two_processes, campaign_id), 60, "the campaign").status == "done"
    with session_scope(two_processes) as session:
        report = campaigns.status(session, campaign_id)
    counts = {a: handler.count(a) for a in addresses}
    assert max(counts.values()) == 1  # never twice
    missing = [a for a, n in counts.items() if n == 0]
    # Only the killed process's copies between the consent check and the final dot can be missing: ambiguous,
    # at most one per connection of it.
    assert report.queued == 0 and report.sent + report.ambiguous == 1000
    assert len(missing) <= report.ambiguous <= two_processes.mailing_concurrency, (missing, report)


# PR_SET_PDEATHSIG of <linux/prctl.h> (prctl(2)): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class FakeLibc:
    """Stands for ``ctypes.CDLL(None)``: records the prctl calls, so no test sets a death signal on pytest itself."""

    def __init__(self, calls: list[tuple[int, int]], name: str | None, use_errno: bool = False) -> None:
        self.calls = calls

    def prctl(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return 0


def test_a_helper_sends_its_share_and_prints_its_counts(
    two_processes: Settings,
    recorder: tuple[Recorder, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The helper's own code, run here as ``campaign send`` runs it in a process of its own (arguments: campaign id,
    parent pid): it asks to get SIGTERM when its parent dies, sends, and prints its counts as one line of JSON, which
    the parent adds up (the subprocess tests above cannot see inside it)."""
    handler, _port = recorder
    addresses = populate(two_processes, 20)  # one batch: it starts no helper of its own
    campaign_id = new_campaign(two_processes)
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(sender.ctypes, "CDLL", lambda name, use_errno=False: FakeLibc(calls, name, use_errno))
    monkeypatch.setattr(sys, "argv", ["-c", str(campaign_id), str(os.getppid())])
    sender.helper_main()
    assert calls == [(PR_SET_PDEATHSIG, signal.SIGTERM)]
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == {
        "sent": 20,
        "failed": 0,
        "deferred": 0,
        "skipped": 0,
        "ambiguous": 0,
        "released": 0,
    }
    assert sorted({handler.count(a) for a in addresses}) == [1]


def test_a_helper_runs_where_no_death_signal_can_be_asked_and_ends_when_its_parent_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No C library to load (OSError) or no prctl in it (not Linux): the helper runs all the same. A parent gone
    before the helper asked: it ends at once, normally (exit status 0)."""

    def no_library(name: str | None, use_errno: bool = False) -> object:
        raise OSError("no C library")

    for cdll in [no_library, lambda name, use_errno=False: object()]:
        monkeypatch.setattr(sender.ctypes, "CDLL", cdll)
        assert sender._die_with_parent(os.getppid()) is None
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(sender.ctypes, "CDLL", lambda name, use_errno=False: FakeLibc(calls, name, use_errno))
    with pytest.raises(SystemExit) as ended:
        sender._die_with_parent(os.getppid() + 1 if os.getppid() > 1 else 2)
    assert ended.value.code in (0, None)


def test_a_campaign_stopped_stops_its_helpers(two_processes: Settings, recorder: tuple[Recorder, int]) -> None:
    """``stop`` set (SIGTERM or SIGINT to ``campaign send``): the helpers are told too (SIGTERM), finish the copies in
    flight, hand back the rest and end; the campaign keeps its unsent copies for the next run, none sent twice."""
    handler, _port = recorder
    # A slow relay: the main process alone would need 150 s for the 300 copies, so the helper (a new process, slow to
    # start on a loaded machine) claims its share long before they are all sent; then the pass is stopped.
    handler.delay = 1.0
    addresses = populate(two_processes, 300)
    campaign_id = new_campaign(two_processes)
    stop = asyncio.Event()

    def stop_once_both_sent(_result: object) -> None:
        if len(set(beats(two_processes).values())) >= 2:  # the helper has claimed copies too
            stop.set()

    summary = run_within(
        send_campaign(two_processes, campaign_id, stop=stop, on_outcome=stop_once_both_sent), 120, "the campaign"
    )
    assert stop.is_set() and summary.status == CampaignStatus.sending
    assert beats(two_processes) == {}  # every worker, the helper included, left cleanly
    with session_scope(two_processes) as session:
        report = campaigns.status(session, campaign_id)
    counts = [handler.count(a) for a in addresses]
    assert max(counts) == 1 and report.queued == counts.count(0) > 0, report
    assert summary.totals.sent == sum(counts)


class _StartedHelper:
    """Stands in for a helper process (``subprocess.Popen``): it records its command and environment and ends at
    once, before sending anything and without printing its counts (as a helper killed at its start), so the sending
    process sends the whole campaign and the test counts the helpers it would have started."""

    output = ""

    def __init__(self, command: list[str], **kwargs: object) -> None:
        self.command = command
        self.env = kwargs.get("env")
        self.piped = kwargs.get("stdout") == subprocess.PIPE  # what it prints reaches the sender only through a pipe

    def poll(self) -> int:
        return 0

    def communicate(self, timeout: float | None = None) -> tuple[str | None, None]:
        return (self.output if self.piped else None), None

    def send_signal(self, _signal: int) -> None:
        pass

    def kill(self) -> None:
        pass


class _HungHelper(_StartedHelper):
    """A helper that never ends by itself: its wait runs out (a wait without a time limit would never return), and
    it ends only when killed, its counts cut off in the middle of the line."""

    killed = False

    def communicate(self, timeout: float | None = None) -> tuple[str | None, None]:
        if self.killed:
            return '{"sent": 1', None
        if timeout is None:
            raise AssertionError("waited for a hung helper without a time limit")
        raise subprocess.TimeoutExpired(self.command, timeout)

    def kill(self) -> None:
        self.killed = True


def started_helpers(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, helper: type[_StartedHelper] = _StartedHelper
) -> list[_StartedHelper]:
    """Count the helper processes ``campaign send`` starts on a machine of ``cpus`` processors."""
    started: list[_StartedHelper] = []

    def popen(command: list[str], **kwargs: object) -> _StartedHelper:
        started.append(helper(command, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    return started


@pytest.mark.parametrize(
    ("cpus", "processes", "batch", "copies", "helpers"),
    [
        (4, None, 2, 10, 1),  # unset: one process per two CPUs, the sending one and one helper
        (8, None, 2, 10, 3),
        (5, None, 2, 10, 1),  # two whole pairs of CPUs
        (1, None, 2, 10, 0),  # never fewer than the sending process itself
        (None, None, 2, 10, 0),  # the number of CPUs unknown: the sending process alone
        (8, 2, 2, 10, 1),  # MAILING_PROCESSES set: that many processes, whatever the CPUs
        (1, 3, 2, 10, 2),
        (1, 3, 1, 2, 1),  # two batches: one helper, none with nothing to claim
        (1, 3, 1, 1, 0),  # one batch: no helper
    ],
)
def test_the_number_of_processes_is_mailing_processes_or_one_per_two_cpus(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
    recorder: tuple[Recorder, int],
    cpus: int | None,
    processes: int | None,
    batch: int,
    copies: int,
    helpers: int,
) -> None:
    """README, Mailings: ``campaign send`` starts helper processes (``MAILING_PROCESSES``, default one per two
    CPUs; the setting counts the sending process too) for a campaign of more than one batch, no more helpers than
    batches beyond the first. A helper that ends without printing its counts (killed) adds nothing to the totals."""
    extra = {"mailing_processes": str(processes)} if processes is not None else {}
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size=str(batch), **extra
    )
    addresses = populate(settings, copies)
    campaign_id = new_campaign(settings)
    started = started_helpers(monkeypatch, cpus)
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    reset_caches()
    assert len(started) == helpers
    for helper in started:  # each a sender of this campaign, tied to this process, starting no helper of its own
        assert helper.command[-2:] == [str(campaign_id), str(os.getpid())]
        assert isinstance(helper.env, dict) and helper.env["MAILSERVICE_MAILING_PROCESSES"] == "1"
        assert helper.env["MAILSERVICE_DATABASE_URL"] == os.environ["MAILSERVICE_DATABASE_URL"]  # this campaign's
    assert summary.status == "done" and summary.totals.sent == copies
    totals = summary.totals
    assert (totals.failed, totals.deferred, totals.skipped, totals.ambiguous, totals.released) == (0, 0, 0, 0, 0)
    assert [recorder[0].count(a) for a in addresses] == [1] * copies


def test_settings_made_in_code_start_no_helper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """A helper is a new process that reads its settings from the environment; settings a caller made in code (a
    copy with other values) are not what a helper would read, so ``campaign send`` then sends alone."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="2", mailing_processes="3"
    )
    made = settings.model_copy(update={"mailing_concurrency": 2})
    addresses = populate(made, 10)
    campaign_id = new_campaign(made)
    started = started_helpers(monkeypatch, 4)
    summary = run_within(send_campaign(made, campaign_id), 60, "the campaign")
    reset_caches()
    assert started == []
    assert summary.status == "done" and summary.totals.sent == 10
    assert [recorder[0].count(a) for a in addresses] == [1] * 10


def test_a_helper_that_does_not_end_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """``campaign send`` waits for its helpers a limited time, then kills one that has not ended, and returns: a
    hung helper never keeps it from ending, and what it printed before it was killed is no count."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="2", mailing_processes="2"
    )
    addresses = populate(settings, 4)
    campaign_id = new_campaign(settings)
    started = started_helpers(monkeypatch, 4, _HungHelper)
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    reset_caches()
    assert [isinstance(h, _HungHelper) and h.killed for h in started] == [True]
    assert summary.status == "done" and summary.totals.sent == 4
    assert [recorder[0].count(a) for a in addresses] == [1] * 4


class _CountingHelper(_StartedHelper):
    """A helper that prints two lines of its own, then its counts on the last line, as ``helper_main`` does."""

    output = (
        'a line\nanother line\n{"sent": 5, "failed": 1, "deferred": 2, "skipped": 3, "ambiguous": 1, "released": 4}\n'
    )


def test_the_helpers_counts_are_added_to_the_totals(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """The summary of ``campaign send`` counts the copies of its helpers too: each helper's counts are the last
    line it prints."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="2", mailing_processes="3"
    )
    populate(settings, 6)
    campaign_id = new_campaign(settings)
    started = started_helpers(monkeypatch, 4, _CountingHelper)
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    reset_caches()
    assert len(started) == 2
    totals = summary.totals
    assert (totals.sent, totals.failed, totals.deferred, totals.skipped, totals.ambiguous, totals.released) == (
        6 + 2 * 5,
        2 * 1,
        2 * 2,
        2 * 3,
        2 * 1,
        2 * 4,
    )


class _RunningHelper(_StartedHelper):
    """A helper still sending until it is told to stop: it ends at its first signal, which it records."""

    def __init__(self, command: list[str], **kwargs: object) -> None:
        super().__init__(command, **kwargs)
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return 0 if self.signals else None

    def send_signal(self, signal_number: int) -> None:
        self.signals.append(signal_number)


def test_a_stopped_campaign_send_stops_its_helpers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """README, Mailings: the helpers stop when ``campaign send`` stops; each is told as the worker is (SIGTERM: it
    finishes the copies in flight and hands back the rest)."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="2", mailing_processes="3"
    )
    populate(settings, 6)
    campaign_id = new_campaign(settings)
    started = started_helpers(monkeypatch, 4, _RunningHelper)

    async def stopped() -> object:
        stop = asyncio.Event()
        stop.set()
        return await send_campaign(settings, campaign_id, stop=stop)

    run_within(stopped(), 60, "the stopped campaign")
    reset_caches()
    assert [h.signals for h in started if isinstance(h, _RunningHelper)] == [[signal.SIGTERM]] * 2


def test_a_paused_campaign_stops_the_helpers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """README, Mailings: the helpers stop when the campaign stops; ``campaign send`` of a paused campaign returns
    and tells each helper it started to stop."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="2", mailing_processes="3"
    )
    populate(settings, 6)
    campaign_id = new_campaign(settings)
    with session_scope(settings) as session:
        campaigns.start(session, settings, campaign_id, utcnow())
        campaigns.pause(session, campaign_id)
    started = started_helpers(monkeypatch, 4, _RunningHelper)
    summary = run_within(send_campaign(settings, campaign_id), 60, "the paused campaign")
    reset_caches()
    assert summary.status == "paused" and summary.totals.sent == 0
    assert [h.signals for h in started if isinstance(h, _RunningHelper)] == [[signal.SIGTERM]] * 2


def test_the_batches_left_are_this_campaigns_queued_copies(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """The batches that decide the number of helpers are the copies of this campaign still queued: not a copy
    already final, nor the queued copies of another campaign. Two of three copies queued, one copy a batch: one
    helper, though three processes are allowed."""
    settings = on_the_recorder(
        monkeypatch, tmp_path, db_url, recorder, mailing_concurrency="1", mailing_batch_size="1", mailing_processes="3"
    )
    populate(settings, 3)
    campaign_id, other = new_campaign(settings), new_campaign(settings)
    with session_scope(settings) as session:
        for started in (campaign_id, other):
            campaigns.start(session, settings, started, utcnow())
        first = session.scalar(select(Delivery.id).where(Delivery.campaign_id == campaign_id).limit(1))
        session.execute(update(Delivery).where(Delivery.id == first).values(state=DeliveryState.failed))
    started = started_helpers(monkeypatch, 4)
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    reset_caches()
    assert len(started) == 1
    assert summary.status == "done" and summary.totals.sent == 2
