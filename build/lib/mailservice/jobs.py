"""Periodic jobs the worker runs between outbox passes; each is idempotent, so several workers may run them."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow

log = logging.getLogger(__name__)


def feedback_surveys(settings: Settings, now: dt.datetime) -> int:
    """Queue the one survey e-mail of requests answered outside the console (seed 004 p. 11)."""
    from mailservice.feedback.service import sweep

    with session_scope(settings) as session:
        return sweep(session, settings, now)


def _workgroup_tick(settings: Settings, now: dt.datetime) -> int:
    from mailservice.workgroup.jobs import workgroup_tick

    return workgroup_tick(settings, now)


@dataclass
class Job:
    """A function run at most every ``every`` seconds."""

    name: str
    every: float
    run: Callable[[Settings, dt.datetime], int]
    last: float = field(default=0.0)


def default_jobs() -> list[Job]:
    """The jobs of `mailservice worker` (mount: domains add theirs here)."""
    return [
        Job("feedback-surveys", 300.0, feedback_surveys),
        Job("workgroup", 600.0, _workgroup_tick),  # issue 8: polls closing, reminders, missed terms
        Job("subscribers-purge", 3600.0, _subscribers_purge),  # issue 4: once per local day inside
    ]


def _subscribers_purge(settings: Settings, now: dt.datetime) -> int:
    """Destroy withdrawn subscribers' personal data within 30 days (152-FZ art. 21 part 5)."""
    from mailservice.mailings.subscribers import purge_due

    return purge_due(settings, now)


def run_due(settings: Settings, jobs: list[Job], clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Run the jobs whose interval has passed; a failing job is logged and retried at its next turn."""
    done: dict[str, int] = {}
    for job in jobs:
        if job.last and clock() - job.last < job.every:
            continue
        job.last = clock()
        try:
            done[job.name] = job.run(settings, utcnow())
        except Exception:  # one broken job must not stop the outbox
            log.exception("periodic job %s failed", job.name)
    return done
