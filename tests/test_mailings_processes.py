"""``campaign send`` with helper processes (MAILING_PROCESSES): they share the campaign as separate workers, their
counts add up, and when the sending process is SIGKILLed the helpers stop gracefully; never a copy twice."""

from __future__ import annotations

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
from mailservice.mailings import campaigns
from mailservice.mailings.models import WorkerBeat
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
