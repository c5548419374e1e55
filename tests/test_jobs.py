"""The worker's periodic jobs: intervals and isolation of a failing job."""

from __future__ import annotations

import datetime as dt

from mailservice.config import Settings
from mailservice.jobs import Job, run_due


def test_jobs_run_on_their_interval_and_failures_are_isolated() -> None:
    calls: list[str] = []
    now = [1000.0]

    def ok(settings: Settings, at: dt.datetime) -> int:
        calls.append("ok")
        return 1

    def broken(settings: Settings, at: dt.datetime) -> int:
        calls.append("broken")
        raise RuntimeError("boom")

    jobs = [Job("broken", 60, broken), Job("ok", 60, ok)]
    settings = Settings(environment="development")
    assert run_due(settings, jobs, clock=lambda: now[0]) == {"ok": 1}
    now[0] += 30
    assert run_due(settings, jobs, clock=lambda: now[0]) == {}
    now[0] += 31
    assert run_due(settings, jobs, clock=lambda: now[0]) == {"ok": 1}
    assert calls == ["broken", "ok", "broken", "ok"]
