"""Retention: five years after the last interaction a client is anonymised, unless under a legal hold."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from mailservice import cli
from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Attachment, Client, ClientContact, Event, Request
from mailservice.intake.models import IntakeEntry
from mailservice.outbox import OutboxMessage
from mailservice.retention import retention_cutoff
from tests.console_support import mail_request
from tests.test_history import mail_with_attachment

LONG_AGO = dt.timedelta(days=5 * 366 + 10)


def age(settings: Settings, request_id: int, *, status: Status = Status.closed) -> int:
    """Make a request and everything of its client six years old; returns the client id."""
    old = utcnow() - LONG_AGO
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        request.status = status
        client_id = request.client_id
        session.execute(update(Event).where(Event.client_id == client_id).values(at=old))
        session.execute(update(Client).where(Client.id == client_id).values(last_interaction_at=old))
        session.execute(update(OutboxMessage).where(OutboxMessage.request_id == request_id).values(status="sent"))
    return client_id


def test_cutoff_handles_leap_day() -> None:
    assert retention_cutoff(dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC), 5) == dt.datetime(
        2023, 2, 28, 12, tzinfo=dt.UTC
    )
    assert retention_cutoff(dt.datetime(2026, 11, 25, tzinfo=dt.UTC), 5) == dt.datetime(2021, 11, 25, tzinfo=dt.UTC)


def test_retention_anonymises_old_keeps_recent_and_held(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    shared = b"%PDF-shared-form"
    old_raw = mail_with_attachment(
        "old@example.ru", "Старов Олег", "Запрос о земельных участках",
        "Прошу предоставить сведения о земельных участках, предоставленных в аренду.", "form.pdf", shared,
    )  # fmt: skip
    old_request = mail_request(settings, raw=old_raw, sender="old@example.ru")
    recent_raw = mail_with_attachment(
        "new@example.ru", "Новикова Нина", "Запрос о земельных участках",
        "Прошу предоставить сведения о земельных участках в аренде за 2026 год.", "form.pdf", shared,
    )  # fmt: skip
    recent_request = mail_request(settings, raw=recent_raw, sender="new@example.ru")
    held_request = mail_request(settings, sender="held@example.ru", name="Холдов Илья")
    open_request = mail_request(settings, sender="open@example.ru", name="Открытов Пётр")
    old_client = age(settings, old_request)
    held_client = age(settings, held_request)
    open_client = age(settings, open_request, status=Status.in_progress)
    store = BlobStore(settings.blob_dir)
    with session_scope(settings) as session:
        session.execute(update(Client).where(Client.id == held_client).values(legal_hold=True))
        old_entry = session.scalars(select(IntakeEntry).where(IntakeEntry.request_id == old_request)).one()
        old_raw_sha = old_entry.raw_sha256
        session.add(
            FeedbackResponse(
                source="survey",
                request_id=old_request,
                channel="email",
                rating=5,
                comment="Спасибо, Олег",
                email="old@example.ru",
            )
        )
    assert store.exists(old_raw_sha)

    # Dry run: the report, and nothing changed.
    assert cli.main(["retention", "run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Пробный запуск" in out and f"Клиентов обезличено: 1 (№ {old_client})" in out
    assert f"удержание): клиенты № {held_client}" in out and f"запросы): клиенты № {open_client}" in out
    with session_scope(settings) as session:
        assert session.get(Client, old_client).name == "Старов Олег"  # type: ignore[union-attr]
    assert store.exists(old_raw_sha)

    assert cli.main(["retention", "run"]) == 0
    out = capsys.readouterr().out
    assert "Выполнено" in out and f"Клиентов обезличено: 1 (№ {old_client})" in out
    with session_scope(settings) as session:
        old = session.get(Client, old_client)
        assert old is not None and old.anonymised_at is not None and old.name == ""
        assert session.scalars(select(ClientContact).where(ClientContact.client_id == old_client)).all() == []
        request = session.get(Request, old_request)
        assert request is not None and request.number and request.text == "" and request.subject == ""
        assert request.reply_email is None and request.status == Status.closed  # the register keeps its row
        assert all(e.comment == "" for e in session.scalars(select(Event).where(Event.client_id == old_client)))
        assert session.scalars(select(Attachment).where(Attachment.request_id == old_request)).all() == []
        entry = session.scalars(select(IntakeEntry).where(IntakeEntry.request_id == old_request)).one()
        assert entry.from_addr is None and entry.subject == "" and entry.raw_sha256 == ""
        outbox = session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == old_request)).all()
        assert outbox and all(row.raw == b"" and row.recipients == "" for row in outbox)
        feedback = session.scalars(select(FeedbackResponse)).one()
        assert feedback.rating == 5 and feedback.comment == "" and feedback.email is None
        # Kept: the recent client, the client under a legal hold, the client with an open request.
        for kept in (held_client, open_client):
            assert session.get(Client, kept).anonymised_at is None  # type: ignore[union-attr]
        recent = session.get(Request, recent_request)
        assert recent is not None and "2026" in recent.text
        [recent_att] = session.scalars(select(Attachment).where(Attachment.request_id == recent_request)).all()
    assert not store.exists(old_raw_sha)  # the old original message is gone
    assert store.exists(recent_att.sha256) and store.get(recent_att.sha256) == shared  # still used by the recent client

    # A second run finds nothing more.
    assert cli.main(["retention", "run"]) == 0
    assert "Клиентов обезличено: 0" in capsys.readouterr().out


def test_the_worker_runs_retention_daily_and_keeps_its_report(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailservice import jobs
    from mailservice.jobruns import JobRun

    old_client = age(settings, mail_request(settings, sender="old@example.ru", name="Старов Олег"))
    retention_job = next(job for job in jobs.default_jobs() if job.name == "retention")
    # 03:00 in Novosibirsk, after the default hour (2): the day's run; then nothing more that day.
    at = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert retention_job.run(settings, at) == 1
    assert retention_job.run(settings, at + dt.timedelta(hours=5)) == 0
    with session_scope(settings) as session:
        assert session.get(Client, old_client).anonymised_at is not None  # type: ignore[union-attr]
        [run] = session.scalars(select(JobRun).where(JobRun.job == "retention")).all()
        assert run.period == "2026-12-07" and run.finished_at is not None
        assert run.report["clients"] == 1 and f"Клиентов обезличено: 1 (№ {old_client})" in run.report["lines"]
    assert cli.main(["retention", "reports"]) == 0
    assert f"Клиентов обезличено: 1 (№ {old_client})" in capsys.readouterr().out
    # Before the hour of the next day nothing runs.
    assert retention_job.run(settings, at.replace(day=8, hour=1)) == 0
