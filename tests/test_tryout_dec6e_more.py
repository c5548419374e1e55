"""Tryout of 6 December, round 6: the passing versions of W12 and W13 (their strict expected failures are in
tests/test_tryout_dec6e.py). The database tests run on SQLite and PostgreSQL (the fixtures' parametrisation)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import subscribers
from mailservice.mailings.consent import Evidence
from mailservice.mailings.models import MailingList, Subscription, SubscriptionStatus
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, login
from tests.test_mailings_consent import two_lists  # noqa: F401  (a fixture)
from tests.test_tryout_dec6d import _LATIN_WORDS, _ask

# W12 ------------------------------------------------------------------------------------------------------------

# Months the report cannot be of: the last one the page used to accept (its following month is year 10000), a
# month not begun (far ahead), one before the register's dates (2000), no month at all.
BAD_MONTHS = ["9999-12", "2999-01", "1999-12", "2026-13", "ноябрь"]


@pytest.mark.parametrize("month", BAD_MONTHS)
@pytest.mark.parametrize("path", ["/staff/reports/monthly", "/staff/reports/monthly.pdf"])
def test_the_monthly_report_of_a_month_it_cannot_be_of_is_a_page_in_russian(
    settings: Settings, path: str, month: str
) -> None:
    # README "Every page": bad input gets a page in Russian, never a 500 (nor the input sent back).
    add_staff(settings, "operator@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "operator@dizo.test")
    answer = http.get(path, params={"month": month})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "Неверный месяц отчёта" in answer.text and "ГГГГ-ММ" in answer.text
    assert month not in answer.text


def test_the_monthly_report_of_last_month_is_still_shown(settings: Settings) -> None:
    # The bound is not too tight: the default (no month) and the month before this one are a report.
    add_staff(settings, "operator@dizo.test", Role.operator)
    http = client_for(settings)
    login(http, "operator@dizo.test")
    today = utcnow().astimezone(settings.tz).date()
    last = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    for query in ({}, {"month": last}, {"month": today.strftime("%Y-%m")}):
        assert http.get("/staff/reports/monthly", params=query).status_code == 200, query
    assert http.get("/staff/reports/monthly.pdf", params={"month": "2000-01"}).content.startswith(b"%PDF")


@pytest.mark.parametrize("month", BAD_MONTHS)
def test_the_command_line_report_of_a_month_it_cannot_be_of_is_one_russian_line(
    settings: Settings, month: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # README: "A wrong argument prints one line in Russian"; before, 9999-12 printed «year 10000 is out of range».
    from mailservice.cli import main

    target = tmp_path / "r.html"
    assert main(["requests", "report", "--month", month, "--output", str(target)]) == 2
    assert not target.exists()
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "ГГГГ-ММ" in line and "--month" in line, line
    assert not _LATIN_WORDS.search(line) and not re.search(r"\b(?:year|range|out)\b", line), line


# W13 ------------------------------------------------------------------------------------------------------------


def _confirm(settings: Settings, token: str) -> list[str]:
    with session_scope(settings) as session:
        confirmed = subscribers.confirm(
            session, settings, token, evidence=Evidence(method="link"), consent_text=None, now=utcnow()
        )
        return [m.slug for m in confirmed]


def _statuses(settings: Settings) -> dict[str, str]:
    with session_scope(settings) as session:
        rows = session.execute(
            select(MailingList.slug, Subscription.status).join(Subscription, Subscription.list_id == MailingList.id)
        ).all()
        return {slug: SubscriptionStatus(status).value for slug, status in rows}


def test_each_of_two_confirmation_letters_confirms_the_list_it_named(two_lists: Settings) -> None:  # noqa: F811
    # She asks for «Новости», then, before opening her mail, for «Торги»: each letter's link confirms its own list
    # (the Procedure p. 12-14: she consented on the site and by the link), the first no longer refused.
    settings = two_lists
    with session_scope(settings) as session:
        news = subscribers.default_list(session).slug
    now = utcnow()
    first = _ask(settings, news, "198.51.100.7", now - dt.timedelta(minutes=10))
    second = _ask(settings, "tenders", "198.51.100.7", now)
    assert _confirm(settings, first) == [news]
    assert _statuses(settings) == {news: "active", "tenders": "pending"}
    assert _confirm(settings, second) == ["tenders"]
    assert _statuses(settings) == {news: "active", "tenders": "active"}
    # Followed again (a second click, a mail scanner's POST): nothing more, and no error.
    assert _confirm(settings, first) == []


def test_a_strangers_later_request_leaves_her_earlier_link_working_and_unwidened(
    two_lists: Settings,  # noqa: F811
) -> None:
    # She asks for «Новости»; a stranger types her address for «Торги» before she opens her mail. Her letter's link
    # still confirms «Новости», and only «Новости»: the stranger's «Торги» stays unconfirmed (152-FZ art. 9 p. 1).
    settings = two_lists
    with session_scope(settings) as session:
        news = subscribers.default_list(session).slug
    now = utcnow()
    hers = _ask(settings, news, "198.51.100.7", now - dt.timedelta(minutes=5))
    _ask(settings, "tenders", "203.0.113.66", now)
    with session_scope(settings) as session:
        link = subscribers.load_confirm(session, settings, hers)
        assert [m.slug for m in subscribers.pending_lists(session, settings, link, utcnow())] == [news]
    assert _confirm(settings, hers) == [news]
    assert _statuses(settings) == {news: "active", "tenders": "pending"}


def test_a_letter_past_the_confirmation_window_confirms_nothing(two_lists: Settings) -> None:  # noqa: F811
    # Within MAILING_CONFIRM_HOURS only: a request older than that is lapsed even if its link were still followed.
    settings = two_lists
    with session_scope(settings) as session:
        news = subscribers.default_list(session).slug
    token = _ask(settings, news, "198.51.100.7", utcnow() - dt.timedelta(hours=settings.mailing_confirm_hours + 1))
    assert _confirm(settings, token) == []
    assert _statuses(settings) == {news: "pending"}


def test_a_link_of_no_letter_of_hers_is_refused(two_lists: Settings) -> None:  # noqa: F811
    # A token signed with our key for her id but a nonce no letter carried (or another subscriber's nonce).
    from mailservice import tokens
    from mailservice.tokens import Purpose

    settings = two_lists
    with session_scope(settings) as session:
        news = subscribers.default_list(session).slug
    token = _ask(settings, news, "198.51.100.7", utcnow())
    with session_scope(settings) as session:
        link = subscribers.load_confirm(session, settings, token)
        forged = tokens.sign_timed(settings, Purpose.subscribe_confirm, [link.subscriber.id, "0" * 16])
    with pytest.raises(subscribers.LinkError):
        _confirm(settings, forged)
