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


def history_asks(settings: Settings, now: dt.datetime) -> int:
    """Answer the history requests made on the web form (issue 14: the form itself does the same work for all)."""
    from mailservice.history.service import handle_asks

    with session_scope(settings) as session:
        return handle_asks(session, settings, now)


def reminders(settings: Settings, now: dt.datetime) -> int:
    """The day's reminders to assignees and unit heads, once per working day at REMINDER_HOUR (issue 17)."""
    from mailservice.inforequests.reminders import send_due

    return send_due(settings, now)


def retention(settings: Settings, now: dt.datetime) -> int:
    """The daily retention run with its report kept (README "Retention"; issue 17)."""
    from mailservice.retention import scheduled_run

    return scheduled_run(settings, now)


def monthly_report(settings: Settings, now: dt.datetime) -> int:
    """The month's report to the head of department on the first working day of the next (issue 17)."""
    from mailservice.reports.monthly import send_due

    return send_due(settings, now)


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
        Job("history-asks", 5.0, history_asks),  # issue 14: the /history form's requests
        Job("workgroup", 600.0, _workgroup_tick),  # issue 8: polls closing, reminders, missed terms
        Job("subscribers-purge", 3600.0, _subscribers_purge),  # issue 4: once per local day inside
        Job("reminders", 300.0, reminders),  # issue 17: once per working day inside, at REMINDER_HOUR
        Job("retention", 900.0, retention),  # issue 17: once per local day inside, report kept in job_runs
        Job("monthly-report", 900.0, monthly_report),  # issue 17: first working day of a month, to the head
        Job("form-uses-purge", 3600.0, _form_uses_purge),  # once per local day inside, recorded in job_runs
    ]


def _form_uses_purge(settings: Settings, now: dt.datetime) -> int:
    """Delete the console forms' used tokens once they are too old to be accepted anyway (web/staff/once.py)."""
    from mailservice.web.staff.once import purge_due

    return purge_due(settings, now)


def _subscribers_purge(settings: Settings, now: dt.datetime) -> int:
    """Destroy withdrawn subscribers' personal data within 30 days (152-FZ art. 21 part 5)."""
    from mailservice.mailings.upkeep import purge_due

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
