"""Every channel and every client (issue 16): terms from arrival, the site's request form, the status page,
contacts on a request, letters for clients without e-mail."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Event, Request
from mailservice.web.staff import actions
from mailservice.web.staff.actions import ContactRequest

NSK = ZoneInfo("Asia/Novosibirsk")  # the department's default time zone (README)


def _local(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=NSK)


# Staff enter a request on ``entered`` that arrived on ``arrived``. RULES.md: an oral request is registered on the
# day of receipt, a written one within 3 days; the answer is due registration + 30 days; the lateness is recorded.
@pytest.mark.parametrize(
    ("channel", "arrived", "entered", "late", "due"),
    [
        (Channel.phone, dt.date(2026, 3, 2), dt.date(2026, 3, 2), False, dt.date(2026, 4, 1)),
        (Channel.phone, dt.date(2026, 3, 2), dt.date(2026, 3, 4), True, dt.date(2026, 4, 1)),
        (Channel.visit, dt.date(2026, 3, 2), dt.date(2026, 3, 3), True, dt.date(2026, 4, 1)),
        (Channel.post, dt.date(2026, 3, 2), dt.date(2026, 3, 4), False, dt.date(2026, 4, 3)),
        (Channel.post, dt.date(2026, 3, 2), dt.date(2026, 3, 9), True, dt.date(2026, 4, 4)),
    ],
)
def test_terms_count_from_arrival_in_the_database(
    settings: Settings, channel: Channel, arrived: dt.date, entered: dt.date, late: bool, due: dt.date
) -> None:
    now = _local(entered, 15).astimezone(dt.UTC)
    data = ContactRequest(
        channel=channel,
        received_at=_local(arrived).astimezone(dt.UTC),
        subject="Сроки",
        text="Прошу сообщить порядок аренды.",
        name="Смирнова Мария",
        postal_address="630099, Новосибирск, ул. Ленина, 1",
    )
    with session_scope(settings) as session:
        request_id = actions.register_contact_request(session, settings, data, actor="op@dizo.test", now=now).id
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        assert request.registered_on == entered  # the registration date itself stays the real one
        assert request.due_date == due
        registered = session.scalars(
            select(Event).where(Event.request_id == request_id, Event.kind == "registered")
        ).one()
        assert bool(registered.data.get("late_registration")) is late
        assert ("с нарушением срока регистрации" in registered.comment) is late
