"""Runs of the worker's scheduled jobs that happen once per period (a day, a month): the claim that keeps two
workers from doing the same day's work, and the report each run leaves (issue 17).

A run is claimed by inserting its (job, period) row in the transaction that does the work: a second worker's insert
waits for the first transaction and then fails on the unique key, so the day's reminders go out once; a run that
fails rolls back with its claim and is tried again at the worker's next turn.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from mailservice.db import Base, utcnow


class JobRun(Base):
    """One run of a scheduled job for one period (``2026-12-07`` for a daily job, ``2026-12`` for a monthly one)."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def already_ran(session: Session, job: str, period: str) -> bool:
    """Whether the job has a run for this period."""
    return session.scalar(select(JobRun.id).where(JobRun.job == job, JobRun.period == period)) is not None


def claim(session: Session, job: str, period: str, now: dt.datetime) -> JobRun | None:
    """Insert the run of ``job`` for ``period`` in the caller's transaction; None when another has it."""
    if already_ran(session, job, period):
        return None
    run = JobRun(job=job, period=period, started_at=now, report={})
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None
    return run


def finish(run: JobRun, now: dt.datetime, report: dict[str, Any]) -> None:
    """Record the run's report (what it did, in plain values) and its end."""
    run.report = report
    run.finished_at = now


def latest(session: Session, job: str, limit: int = 10) -> list[JobRun]:
    """The job's latest runs, newest first."""
    return list(session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(limit)))
