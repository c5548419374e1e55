"""The working group's periodic job for `mailservice worker` (:mod:`mailservice.jobs`)."""

from __future__ import annotations

import datetime as dt

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.workgroup.periodic import tick


def workgroup_tick(settings: Settings, now: dt.datetime) -> int:
    """One idempotent pass: polls closed at their deadline, reminders, missed terms; returns how much was done."""
    with session_scope(settings) as session:
        report = tick(session, settings, now=now)
    return report.reminders + report.missed + report.polls_closed + report.instruction_reminders
