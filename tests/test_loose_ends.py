"""Loose ends of 6 December (fixer6a): production link addresses, the monthly report without a head of department,
the console's form tokens purged, migrations frozen, the acknowledgement limit's key, old duplicate subscribers.

Each test failed on the code before its fix. The database tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import select

from mailservice.config import Settings, get_settings
from mailservice.db import session_scope
from mailservice.jobruns import JobRun
from mailservice.jobs import Job, default_jobs
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import StaffUser
from tests.conftest import reset_caches
from tests.console_support import add_staff
from tests.test_tryout_dec6d import _LATIN_WORDS, _cli, _prod_env

REAL_KEY = "Zq3vN8pL2xR7tY5wK1mB9cD4fG6hJ0sA-e_UiOo2Pq7Rs9Tu"
PRODUCTION = {
    "environment": "production",
    "secret_keys": [REAL_KEY],
    "department_address": "630007, г. Новосибирск, ул. Серебренниковская, д. 6",
    "from_address": "info@dizo.example.ru",
}

# 1. A production PUBLIC_URL that leads back to the server, or over plain HTTP -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://127.0.0.1",
        "https://127.3.4.5:8443/",
        "https://localhost",
        "https://LOCALHOST.:8000",
        "https://obr.localhost",
        "https://[::1]:8000",
        "https://0.0.0.0",
        "obr.dizo.example.ru",
        "http://obr.dizo.example.ru",
    ],
)
def test_production_refuses_a_link_address_citizens_cannot_open_safely(url: str) -> None:
    # README "Production checks": PUBLIC_URL must be the https address citizens open; a loopback one would put the
    # server's own address into every letter, a plain http one sends tokens and staff passwords in the clear.
    with pytest.raises(ValidationError, match="MAILSERVICE_PUBLIC_URL"):
        Settings(**PRODUCTION, public_url=url)


@pytest.mark.parametrize("url", ["https://obr.dizo.example.ru", "HTTPS://obr.dizo.example.ru:8443/mail/"])
def test_production_accepts_a_real_https_link_address(url: str) -> None:
    assert Settings(**PRODUCTION, public_url=url).public_url == url


def test_development_keeps_its_local_link_address() -> None:
    assert Settings(environment="development", public_url="http://127.0.0.1:8000").public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://obr.dizo.example.ru"])
def test_a_refused_link_address_is_one_russian_line_naming_the_variable(tmp_path: Path, url: str) -> None:
    result = _cli("db", "upgrade", env=_prod_env(tmp_path, MAILSERVICE_PUBLIC_URL=url))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Ошибка") and "MAILSERVICE_PUBLIC_URL" in line and url in line
    assert not _LATIN_WORDS.search(line), line


# 2. The monthly report without HEAD_OF_DEPARTMENT_EMAIL ---------------------------------------------------------

NSK = dt.timezone(dt.timedelta(hours=7))
REPORT_DAY = dt.datetime(2026, 12, 1, 9, 30, tzinfo=NSK)  # Tuesday, the first working day of December, after 9


def _job(name: str) -> Job:
    return next(j for j in default_jobs() if j.name == name)


def test_the_monthly_report_goes_to_the_administrators_without_a_head(settings: Settings) -> None:
    # README "Напоминания": while HEAD_OF_DEPARTMENT_EMAIL is empty, what would go to the head goes to the console's
    # active administrators; the report was dropped instead (send_due returned 0 with no address).
    add_staff(settings, "admin1@dizo.test", Role.administrator)
    add_staff(settings, "admin2@dizo.test", Role.administrator)
    add_staff(settings, "gone@dizo.test", Role.administrator)
    add_staff(settings, "operator@dizo.test", Role.operator)
    with session_scope(settings) as session:
        session.execute(sa.update(StaffUser).where(StaffUser.email == "gone@dizo.test").values(active=False))
    assert _job("monthly-report").run(settings, REPORT_DAY) == 2
    assert _job("monthly-report").run(settings, REPORT_DAY + dt.timedelta(hours=2)) == 0  # once a month
    with session_scope(settings) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()
        assert sorted(r.recipients for r in rows) == ["admin1@dizo.test", "admin2@dizo.test"]
        message = email.message_from_bytes(rows[0].raw, policy=email.policy.default)
    assert "за ноябрь 2026" in str(message["Subject"])


def test_a_monthly_report_that_reaches_nobody_is_recorded_and_warned(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert _job("monthly-report").run(settings, REPORT_DAY) == 0
    assert "MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL" in caplog.text
    with session_scope(settings) as session:
        [run] = session.scalars(select(JobRun).where(JobRun.job == "monthly-report")).all()
        assert run.period == "2026-11" and run.report["to"] == []
        assert "MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL" in run.report["note"]
        assert not session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()


def test_the_monthly_report_still_goes_to_the_head_alone(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    add_staff(settings, "admin1@dizo.test", Role.administrator)
    monkeypatch.setenv("MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL", "chief@dizo.test")
    reset_caches()
    headed = get_settings()
    assert _job("monthly-report").run(headed, REPORT_DAY) == 1
    with session_scope(headed) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()
        assert [r.recipients for r in rows] == ["chief@dizo.test"]
