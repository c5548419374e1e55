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
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.mailings import campaigns, sender
from mailservice.mailings.models import CampaignStatus, WorkerBeat
from mailservice.mailings.sender import send_campaign
from tests.conftest import make_env, reset_caches
from tests.servers import Recorder
from tests.test_mailings_sending import ROOT, new_campaign, populate, stop_all
from tests.waiting import run_within


@pytest.fixture
def two_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> Iterator[Settings]:
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(recorder[1]),
        mailing_rate_per_minute="0",
        mailing_concurrency="2",
        mailing_batch_size="20",
        mailing_processes="2",
    )
    reset_caches()


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
        [sys.executable, "-m", "mailservice", "campaign", "send", str(campaign_id)],
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
