"""Legal terms of 8-FZ requests and 59-FZ appeals on the production calendar."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.engine import get_engine
from mailservice.inforequests import reminders, service
from mailservice.inforequests.deadlines import (
    Deadline,
    DeadlineError,
    Law,
    Shift,
    answer_due,
    control_date,
    deadline,
    forwarding_due,
    is_due_soon,
    is_overdue,
    latest_extended_deadline,
    max_extension_days,
    max_extensions,
    notice_due,
    registered_late,
    registration_due,
    term_start,
    validate_extension,
)
from mailservice.inforequests.lifecycle import Channel, Status
from mailservice.inforequests.listing import list_requests
from mailservice.inforequests.models import Request
from mailservice.inforequests.queues import OUTSIDE_TOPIC, forwarding_date
from mailservice.web.staff.queue import QueueFilters
from mailservice.web.staff.queue import fetch as queue_fetch
from mailservice.workdays import SHIPPED_OVERRIDE_FILE, Calendar, default_calendar

D = dt.date
CAL = Calendar.from_files([SHIPPED_OVERRIDE_FILE])


@pytest.mark.parametrize("law", list(Law))
@pytest.mark.parametrize(
    ("registered", "due"),
    [
        (D(2026, 3, 1), D(2026, 3, 31)),  # RULES.md: counting starts the next day (Civil Code art. 191)
        (D(2026, 2, 1), D(2026, 3, 3)),  # February has 28 days
        (D(2028, 2, 1), D(2028, 3, 2)),  # leap year
        (D(2025, 12, 20), D(2026, 1, 19)),
        (D(2026, 12, 28), D(2027, 1, 27)),
    ],
)
def test_answer_due_is_thirty_calendar_days(law: Law, registered: dt.date, due: dt.date) -> None:
    assert answer_due(law, registered) == due


def test_limits_per_law() -> None:
    assert max_extension_days(Law.FZ8) == 15
    assert max_extension_days(Law.FZ59) == 30
    assert max_extensions(Law.FZ8) == 1 and max_extensions(Law.FZ59) == 1
    assert Law("8-fz") is Law.FZ8 and Law("59-fz") is Law.FZ59
    assert answer_due(Law.FZ8, D(2026, 3, 1), 15) == D(2026, 4, 15)  # registration + 45 at most
    assert answer_due(Law.FZ59, D(2026, 3, 1), 30) == D(2026, 4, 30)
    with pytest.raises(DeadlineError):
        answer_due(Law.FZ8, D(2026, 3, 1), 16)
    with pytest.raises(DeadlineError):
        answer_due(Law.FZ59, D(2026, 3, 1), -1)


def test_notice_and_registration_terms() -> None:
    assert notice_due(D(2026, 3, 1)) == D(2026, 3, 8)
    assert notice_due(D(2026, 12, 28)) == D(2027, 1, 4)
    assert registration_due(D(2026, 3, 1)) == D(2026, 3, 4)
    assert registration_due(D(2026, 12, 30)) == D(2027, 1, 2)


@pytest.mark.parametrize(
    ("registered", "forward_by"),
    [
        # RULES.md: "forwarded within 7 days of registration", counted like every term from the next day.
        (D(2026, 3, 2), D(2026, 3, 9)),
        # Calendar days: the New Year holidays do not stretch it (both laws count calendar days).
        (D(2026, 12, 28), D(2027, 1, 4)),
        (D(2026, 2, 25), D(2026, 3, 4)),  # across the end of February
    ],
)
def test_forwarding_date_of_a_letter_outside_the_remit(registered: dt.date, forward_by: dt.date) -> None:
    assert forwarding_due(registered) == forward_by


@pytest.mark.parametrize(
    ("registered", "legal_due", "previous", "following"),
    [
        # An ordinary working day: nothing moves.
        (D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 31), D(2026, 3, 31)),
        # Around New Year: due Monday 19.01.2026, a working day.
        (D(2025, 12, 20), D(2026, 1, 19), D(2026, 1, 19), D(2026, 1, 19)),
        # Due on the transferred day off 09.01.2026: back over the whole holiday block and 31.12.2025.
        (D(2025, 12, 10), D(2026, 1, 9), D(2025, 12, 30), D(2026, 1, 12)),
        # Due on the transferred day off 31.12.2026.
        (D(2026, 12, 1), D(2026, 12, 31), D(2026, 12, 30), D(2027, 1, 11)),
        # Due inside the New Year holidays 2027.
        (D(2026, 12, 7), D(2027, 1, 6), D(2026, 12, 30), D(2027, 1, 11)),
        # May holidays 2026: due on the observed Monday 11.05, back over the weekend to Friday 08.05.
        (D(2026, 4, 11), D(2026, 5, 11), D(2026, 5, 8), D(2026, 5, 12)),
        # May holidays 2025: Sunday 11.05, back over Sat, Victory Day and the transferred 08.05.
        (D(2025, 4, 11), D(2025, 5, 11), D(2025, 5, 7), D(2025, 5, 12)),
        # A weekend plus the observed 09.03.2026.
        (D(2026, 2, 7), D(2026, 3, 9), D(2026, 3, 6), D(2026, 3, 10)),
        # The working Saturday 01.11.2025 is itself a control date ...
        (D(2025, 10, 2), D(2025, 11, 1), D(2025, 11, 1), D(2025, 11, 1)),
        # ... and the day off moved to Monday 03.11 shifts back onto it.
        (D(2025, 10, 4), D(2025, 11, 3), D(2025, 11, 1), D(2025, 11, 5)),
    ],
)
@pytest.mark.parametrize("law", list(Law))
def test_control_date_shifts(
    law: Law, registered: dt.date, legal_due: dt.date, previous: dt.date, following: dt.date
) -> None:
    assert deadline(law, registered, CAL) == Deadline(legal_due, previous)  # "previous" is the default
    assert deadline(law, registered, CAL, "next") == Deadline(legal_due, following)
    assert deadline(law, registered, CAL, "none") == Deadline(legal_due, legal_due)


def test_control_date_rejects_unknown_shift() -> None:
    with pytest.raises(ValueError, match="due_shift"):
        control_date(D(2026, 3, 31), CAL, "sideways")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("law", "registered", "expected"),
    [
        (Law.FZ8, D(2026, 3, 1), Deadline(D(2026, 4, 15), D(2026, 4, 15))),
        (Law.FZ59, D(2026, 3, 1), Deadline(D(2026, 4, 30), D(2026, 4, 30))),
        (Law.FZ8, D(2026, 12, 28), Deadline(D(2027, 2, 11), D(2027, 2, 11))),
        (Law.FZ59, D(2026, 12, 28), Deadline(D(2027, 2, 26), D(2027, 2, 26))),
        # 8-FZ: 17.11.2026 + 45 = 01.01.2027, a holiday: back to 30.12.2026.
        (Law.FZ8, D(2026, 11, 17), Deadline(D(2027, 1, 1), D(2026, 12, 30))),
    ],
)
def test_latest_extended_deadline(law: Law, registered: dt.date, expected: Deadline) -> None:
    assert latest_extended_deadline(law, registered, CAL, "previous") == expected


def test_extension_days_move_the_deadline() -> None:
    assert deadline(Law.FZ8, D(2026, 3, 1), CAL, extension_days=10) == Deadline(D(2026, 4, 10), D(2026, 4, 10))
    # 59-FZ: 30 + 20 days from 01.03.2026 is Monday 20.04.
    assert deadline(Law.FZ59, D(2026, 3, 1), CAL, extension_days=20).legal_due == D(2026, 4, 20)


@pytest.mark.parametrize(
    ("law", "today", "days", "previous"),
    [
        (Law.FZ8, D(2026, 3, 1), 15, 0),
        (Law.FZ8, D(2026, 3, 8), 1, 0),  # the seventh day after registration is still in time
        (Law.FZ59, D(2026, 3, 31), 30, 0),  # on the original due date
        (Law.FZ59, D(2026, 3, 10), 5, 0),
    ],
)
def test_valid_extension(law: Law, today: dt.date, days: int, previous: int) -> None:
    validate_extension(law, D(2026, 3, 1), today, days, previous)


@pytest.mark.parametrize(
    ("law", "today", "days", "previous", "fragment"),
    [
        (Law.FZ8, D(2026, 3, 2), 0, 0, "положительным"),
        (Law.FZ59, D(2026, 3, 2), -3, 0, "положительным"),
        (Law.FZ8, D(2026, 3, 2), 16, 0, "15"),
        (Law.FZ59, D(2026, 3, 2), 31, 0, "30"),
        (Law.FZ8, D(2026, 3, 2), 5, 1, "одно продление"),
        (Law.FZ59, D(2026, 3, 2), 5, 1, "одно продление"),
        (Law.FZ8, D(2026, 3, 9), 5, 0, "08.03.2026"),  # 8-FZ notice term of 7 days has run out
        (Law.FZ59, D(2026, 4, 1), 5, 0, "31.03.2026"),  # 59-FZ term already expired
    ],
)
def test_invalid_extension(law: Law, today: dt.date, days: int, previous: int, fragment: str) -> None:
    with pytest.raises(DeadlineError) as info:
        validate_extension(law, D(2026, 3, 1), today, days, previous)
    assert fragment in str(info.value)


def test_a_refused_extension_says_why_in_a_sentence() -> None:
    """What staff read when they type no days (the console and the CLI show the message as it is)."""
    with pytest.raises(DeadlineError) as info:
        validate_extension(Law.FZ8, D(2026, 3, 1), D(2026, 3, 2), 0, 0)
    assert str(info.value) == "Срок продления должен быть положительным числом дней."


def test_overdue_and_due_soon() -> None:
    due = deadline(Law.FZ8, D(2026, 12, 1), CAL)  # legal 31.12.2026 (a day off), control 30.12.2026
    assert due == Deadline(D(2026, 12, 31), D(2026, 12, 30))
    assert not is_overdue(due, D(2026, 12, 31))
    assert is_overdue(due, D(2027, 1, 1))
    # From Friday 25.12 the control date is three working days ahead (28, 29, 30).
    assert is_due_soon(due, D(2026, 12, 25), CAL, 3)
    assert not is_due_soon(due, D(2026, 12, 25), CAL, 2)
    assert not is_due_soon(due, D(2026, 12, 10), CAL, 3)
    assert is_due_soon(due, D(2026, 12, 30), CAL, 0)  # on the control date itself
    assert is_due_soon(due, D(2026, 12, 31), CAL, 3)  # past the control date, not yet overdue
    assert not is_due_soon(due, D(2027, 1, 1), CAL, 3)  # overdue is reported as overdue instead


shifts: list[Shift] = ["previous", "next", "none"]


@given(
    registered=st.dates(min_value=D(2024, 6, 1), max_value=D(2027, 10, 31)),
    law=st.sampled_from(list(Law)),
    shift=st.sampled_from(shifts),
)
def test_control_date_property(registered: dt.date, law: Law, shift: Shift) -> None:
    result = deadline(law, registered, CAL, shift)
    assert result.legal_due == registered + dt.timedelta(days=30)
    if shift == "none":
        assert result.control_date == result.legal_due
        return
    assert CAL.is_working_day(result.control_date)
    if shift == "previous":
        assert result.control_date <= result.legal_due
        assert CAL.working_days_between(result.control_date, result.legal_due) == 0
    else:
        assert result.control_date >= result.legal_due
        assert CAL.working_days_between(result.legal_due, result.control_date) <= 1


# Terms from arrival (RULES.md: a written or electronic request is registered within 3 days of receipt, an oral one
# on the day of receipt; the answer is due registration + 30 days). A request registered after its registration term
# gains nothing from the delay: its 30 days count from the last lawful day of registration.
@pytest.mark.parametrize(
    ("oral", "arrived", "registered", "register_by", "late", "due"),
    [
        (True, D(2026, 3, 1), D(2026, 3, 1), D(2026, 3, 1), False, D(2026, 3, 31)),  # a call entered the same day
        (True, D(2026, 3, 1), D(2026, 3, 3), D(2026, 3, 1), True, D(2026, 3, 31)),  # entered 2 days late: no extra days
        (True, D(2026, 3, 1), D(2026, 3, 2), D(2026, 3, 1), True, D(2026, 3, 31)),  # a visit entered the next day
        (False, D(2026, 3, 1), D(2026, 3, 3), D(2026, 3, 4), False, D(2026, 4, 2)),  # a letter within its 3 days
        (False, D(2026, 3, 1), D(2026, 3, 4), D(2026, 3, 4), False, D(2026, 4, 3)),  # on the last day
        (False, D(2026, 3, 1), D(2026, 3, 6), D(2026, 3, 4), True, D(2026, 4, 3)),  # 2 days late: from 04.03
        (False, D(2026, 12, 30), D(2027, 1, 4), D(2027, 1, 2), True, D(2027, 2, 1)),  # across the new year
    ],
)
def test_terms_count_from_arrival(
    oral: bool, arrived: dt.date, registered: dt.date, register_by: dt.date, late: bool, due: dt.date
) -> None:
    assert registration_due(arrived, oral) == register_by
    assert registered_late(arrived, registered, oral) is late
    for law in Law:
        assert answer_due(law, term_start(arrived, registered, oral)) == due


def test_a_request_is_written_unless_said_to_be_oral() -> None:
    """The defaults are the written case (README: a written letter is registered within three days of receipt)."""
    assert not registered_late(D(2026, 3, 2), D(2026, 3, 5))
    assert registered_late(D(2026, 3, 2), D(2026, 3, 6))
    assert term_start(D(2026, 3, 2), D(2026, 3, 5)) == D(2026, 3, 5)


# A request entered after its registration term (tryout T8): every term counts from where the answer term does,
# the last lawful day of registration (RULES.md: registered within 3 days of receipt; deferral notice and forwarding
# within 7 days of registration; 59-FZ art. 12 p. 2: an appeal's term extended while it runs). On both databases.

ARRIVED = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk: a posted letter
# Registered within 3 days of receipt: by 05.03.2026; a letter entered later counts from 05.03.
LAWFUL_REGISTRATION = D(2026, 3, 5)


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(5, 0), dt.UTC)  # 12:00 in Novosibirsk


def _posted(
    session: Session,
    settings: Settings,
    entered: dt.date,
    rtype: str,
    topic: str = "other",
    email: str = "b@example.ru",
    arrived: dt.datetime = ARRIVED,
) -> Request:
    """A posted letter that arrived on 02.03.2026 (or ``arrived``) and was entered (registered) on ``entered``."""
    now = _at(entered)
    client = service.update_or_create_client(session, None, now=now, name="Белова Анна Сергеевна", email=email)
    request = service.create_request(
        session, settings, now=now, client=client, channel=Channel.post, subject="Обращение",
        text="Прошу разобраться с отказом в предоставлении участка.", labels=service.Labels(type=rtype, topic=topic),
        received_at=arrived,
    )  # fmt: skip
    session.flush()
    assert request.registered_on == entered and request.number  # precondition: entered late, registered that day
    return request


def _extend(session: Session, settings: Settings, request: Request, day: dt.date, days: int) -> None:
    service.change_status(
        session, settings, request, Status.extended, now=_at(day), actor="t", extension_days=days, comment="Проверка"
    )


def test_an_appeal_entered_late_is_not_extended_after_its_term_ran_out(settings: Settings) -> None:
    with session_scope(settings) as session:
        request = _posted(session, settings, D(2026, 4, 20), "appeal")
        assert request.due_date == D(2026, 4, 4)  # 05.03 + 30 days: already run out on 20.04
        with pytest.raises(service.RequestError, match=r"истёк 04\.04\.2026"):
            _extend(session, settings, request, D(2026, 4, 20), 30)
        assert request.due_date == D(2026, 4, 4) and request.status == Status.registered


def test_an_appeal_entered_late_is_extended_while_its_term_runs(settings: Settings) -> None:
    with session_scope(settings) as session:
        request = _posted(session, settings, D(2026, 4, 3), "appeal")
        _extend(session, settings, request, D(2026, 4, 4), 30)  # the last day of the term counted from 05.03
        assert request.due_date == D(2026, 5, 4)  # 05.03 + 30 + 30


def test_the_deferral_notice_of_a_request_entered_late_counts_from_the_lawful_registration_day(
    settings: Settings,
) -> None:
    with session_scope(settings) as session:
        late = _posted(session, settings, D(2026, 3, 10), "info_request")
        # 8-FZ: the deferral is told within 7 days of registration: 05.03 + 7 = 12.03, not 10.03 + 7 = 17.03.
        calendar = default_calendar(settings)
        codes = [r.code for r in reminders.reasons(late, D(2026, 3, 13), calendar, 3, settings.tz)]
        assert "extension_notice" not in codes
        with pytest.raises(service.RequestError, match=r"не позднее 12\.03\.2026"):
            _extend(session, settings, late, D(2026, 3, 13), 15)
        in_time = _posted(session, settings, D(2026, 3, 10), "info_request", email="c@example.ru")
        codes = [r.code for r in reminders.reasons(in_time, D(2026, 3, 12), calendar, 3, settings.tz)]
        assert "extension_notice" in codes
        _extend(session, settings, in_time, D(2026, 3, 12), 15)
        assert in_time.due_date == D(2026, 4, 19)  # 05.03 + 30 + 15 (RULES.md: ≤ registration + 45)


def test_the_to_forward_queue_puts_a_letter_entered_late_by_its_forwarding_date(settings: Settings) -> None:
    with session_scope(settings) as session:
        fresh = _posted(session, settings, D(2026, 3, 9), "appeal", OUTSIDE_TOPIC, "c@example.ru", _at(D(2026, 3, 9)))
        late = _posted(session, settings, D(2026, 3, 10), "appeal", OUTSIDE_TOPIC)
        filters = QueueFilters.parse({"to_forward": "1"})
        rows, total = queue_fetch(session, filters, D(2026, 3, 11), settings.tz)
    # 59-FZ art. 8 p. 3, RULES.md: 7 days from the term's start; the letter entered on 10.03 counts from its
    # lawful registration day 05.03 (due 12.03), so it comes before the one registered on 09.03 (due 16.03).
    assert total == 2
    assert [(r.id, forwarding_date(r, settings.tz)) for r in rows] == [
        (late.id, D(2026, 3, 12)),
        (fresh.id, D(2026, 3, 16)),
    ]


def test_requests_list_to_forward_puts_a_letter_entered_late_first(settings: Settings) -> None:
    # The CLI's twin of the console queue above (`requests list --to-forward`), even when the limit cuts the list.
    # The late one is entered first, so the newest-first order of `requests list` would put it last.
    with session_scope(settings) as session:
        late = _posted(session, settings, D(2026, 3, 10), "appeal", OUTSIDE_TOPIC)
        fresh = _posted(session, settings, D(2026, 3, 9), "appeal", OUTSIDE_TOPIC, "c@example.ru", _at(D(2026, 3, 9)))
        ids = (late.id, fresh.id)
    engine = get_engine(settings)
    assert [r.id for r in list_requests(engine, limit=10, to_forward=True, tz=settings.tz)] == list(ids)
    assert [r.id for r in list_requests(engine, limit=1, to_forward=True, tz=settings.tz)] == [late.id]


def test_the_forwarding_of_a_letter_entered_late_counts_from_the_lawful_registration_day(settings: Settings) -> None:
    with session_scope(settings) as session:
        request = _posted(session, settings, D(2026, 3, 10), "info_request", topic=OUTSIDE_TOPIC)
        assert forwarding_date(request, settings.tz) == D(2026, 3, 12)  # 05.03 + 7 days, not 10.03 + 7
        event = service.change_status(
            session, settings, request, Status.forwarded, now=_at(D(2026, 3, 13)), actor="t",
            forwarded_to="Росреестр",
        )  # fmt: skip
        assert event.data.get("late_notice") is True
