"""Daily reminders to assignees and unit heads (issue 17 p. 1): the right people, once a working day, recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import reminders
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Event, Request
from mailservice.jobs import default_jobs
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import StaffUser
from mailservice.workdays import default_calendar
from tests.conftest import make_env, reset_caches
from tests.console_support import add_staff, parsed, phone_request, text_of
from tests.servers import Sink

NSK = dt.timezone(dt.timedelta(hours=7))  # Asia/Novosibirsk, the default time zone (no summer time)
# Monday 07.12.2026, a working day, 10:00 in Novosibirsk: after the default reminder hour (9).
MONDAY_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=NSK)
PETROV, ARENDA_HEAD, CHIEF = "petrov@dizo.test", "arenda-head@dizo.test", "chief@dizo.test"


@pytest.fixture
def day(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        unit_heads=f"Отдел аренды={ARENDA_HEAD}; Отдел земли=land@dizo.test",
        head_of_department_email=CHIEF,
    )
    add_staff(settings, PETROV, Role.operator, name="Петров Пётр")
    yield settings
    reset_caches()


def _request(settings: Settings, label: str, **values: object) -> int:
    request_id = phone_request(
        settings, name=f"Заявитель {label}", phone=f"+7 913 000-00-0{label[-1]}", subject=label, text="т"
    )
    with session_scope(settings) as session:
        session.execute(update(Request).where(Request.id == request_id).values(**values))
    return request_id


def test_a_days_reminders_reach_the_right_people_once(day: Settings) -> None:
    today = MONDAY_10.date()
    far = today + dt.timedelta(days=25)
    long_ago = today - dt.timedelta(days=20)  # the 7 days to tell of a deferral are over
    ids = {
        # assigned by address, in a unit with a head, overdue: the assignee and the head
        "A1": _request(day, "A1", assignee=PETROV, unit="Отдел аренды", registered_on=long_ago,
                       due_date=today - dt.timedelta(days=1), control_date=today - dt.timedelta(days=1)),
        # nobody assigned, control date today: the unit head (the unit typed in another case)
        "B2": _request(day, "B2", unit="отдел  АРЕНДЫ", registered_on=long_ago, due_date=today, control_date=today),
        # assigned by the account's name, control date in two working days (Wednesday)
        "C3": _request(day, "C3", assignee="Петров Пётр", registered_on=long_ago,
                       due_date=today + dt.timedelta(days=2), control_date=today + dt.timedelta(days=2)),
        # registered 02.12, term far away: the deferral notice is due by 09.12 (two working days): reminded
        "D4": _request(day, "D4", registered_on=today - dt.timedelta(days=5), due_date=far, control_date=far),
        # nothing to do yet: registered today, term far away
        "E5": _request(day, "E5", assignee=PETROV, registered_on=today, due_date=far, control_date=far),
        # answered: never listed, though its date has passed
        "F6": _request(day, "F6", assignee=PETROV, status=Status.answered, registered_on=long_ago,
                       due_date=today - dt.timedelta(days=3), control_date=today - dt.timedelta(days=3)),
    }  # fmt: skip

    assert reminders.send_due(day, MONDAY_10) == 3  # Петров, the head of the lease unit, the head of department
    with session_scope(day) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_reminder")).all()
        bodies = {row.recipients: text_of(parsed(row.raw)) for row in rows}
        numbers = {label: session.get(Request, rid).number for label, rid in ids.items()}  # type: ignore[union-attr]
        events = {
            label: session.scalars(select(Event).where(Event.request_id == rid, Event.kind == "reminder")).all()
            for label, rid in ids.items()
        }
    assert sorted(bodies) == sorted([PETROV, ARENDA_HEAD, CHIEF])

    def listed(address: str) -> set[str]:
        return {label for label, number in numbers.items() if f"№ {number} " in bodies[address]}

    assert listed(PETROV) == {"A1", "C3"}
    assert listed(ARENDA_HEAD) == {"A1", "B2"}
    assert listed(CHIEF) == {"D4"}  # no unit, no assignee: the head of department
    assert bodies[PETROV].count(f"№ {numbers['A1']} ") == 1
    assert "просрочен" in bodies[PETROV] and "уведомить заявителя до 09.12.2026" in bodies[CHIEF]
    # Each reminded request has one internal event naming whom it reached.
    assert [e.data["recipients"] for e in events["A1"]] == [[PETROV, ARENDA_HEAD]]
    assert all(e.data["internal"] for es in events.values() for e in es)
    assert not events["E5"] and not events["F6"] and len(events["B2"]) == 1

    # Once a day: later the same day nothing more goes out, whichever worker asks.
    assert reminders.send_due(day, MONDAY_10 + dt.timedelta(hours=3)) == 0
    # Not before the hour, not on a day off.
    assert reminders.send_due(day, dt.datetime(2026, 12, 8, 8, 59, tzinfo=NSK)) == 0
    assert reminders.send_due(day, dt.datetime(2026, 12, 12, 12, 0, tzinfo=NSK)) == 0  # Saturday
    # The next working day at the hour, the still overdue request is reminded again.
    assert reminders.send_due(day, dt.datetime(2026, 12, 8, 9, 0, tzinfo=NSK)) >= 2
    with session_scope(day) as session:
        assert (
            len(session.scalars(select(Event).where(Event.request_id == ids["A1"], Event.kind == "reminder")).all())
            == 2
        )


def test_the_worker_runs_the_reminders() -> None:
    assert "reminders" in {job.name for job in default_jobs()}


def test_two_workers_at_once_send_the_days_reminders_once(day: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    today = MONDAY_10.date()
    _request(day, "A1", assignee=PETROV, registered_on=today - dt.timedelta(days=20),
             due_date=today - dt.timedelta(days=1), control_date=today - dt.timedelta(days=1))  # fmt: skip
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _n: reminders.send_due(day, MONDAY_10), range(2)))
    assert sorted(results) == [0, 1]
    with session_scope(day) as session:
        assert len(session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_reminder")).all()) == 1


def test_an_assignee_typed_as_an_outside_address_is_not_mailed(day: Settings) -> None:
    today = MONDAY_10.date()
    _request(day, "G7", assignee="someone@gmail.example", unit="Отдел аренды",
             registered_on=today - dt.timedelta(days=20), due_date=today - dt.timedelta(days=1),
             control_date=today - dt.timedelta(days=1))  # fmt: skip
    assert reminders.send_due(day, MONDAY_10) == 1
    with session_scope(day) as session:
        [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_reminder")).all()
    assert row.recipients == ARENDA_HEAD  # the client's request is told only to the department's own people


def test_without_a_head_of_department_an_unassigned_request_is_reminded_to_the_administrators(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink
) -> None:
    # README "Напоминания": with HEAD_OF_DEPARTMENT_EMAIL empty (the default) a request that names neither an
    # assignee nor a unit goes to the console's active administrators (defect V7: it went to nobody, unsaid).
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port))
    try:
        add_staff(settings, "admin@dizo.test", Role.administrator)
        add_staff(settings, "retired-admin@dizo.test", Role.administrator)
        add_staff(settings, PETROV, Role.operator)
        with session_scope(settings) as session:
            session.execute(update(StaffUser).where(StaffUser.email == "retired-admin@dizo.test").values(active=False))
        overdue = _request(settings, "A1", due_date=dt.date(2026, 11, 30), control_date=dt.date(2026, 11, 30))
        with session_scope(settings) as session:
            reminders.send(session, settings, MONDAY_10.astimezone(dt.UTC), default_calendar(settings))
        with session_scope(settings) as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_reminder")).all()
            events = session.scalars(select(Event).where(Event.request_id == overdue, Event.kind == "reminder")).all()
        assert [row.recipients for row in rows] == ["admin@dizo.test"]
        assert [e.data["recipients"] for e in events] == [["admin@dizo.test"]]
    finally:
        reset_caches()
