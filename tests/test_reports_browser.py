"""The console's home page charts in headless Chromium (issue 17): drawn, inline, no script, no CSP violation.

The screenshot is kept as artifacts/issue17-charts.png for a person to look at.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.web.staff.auth import Role
from tests.browser import ARTIFACTS, chromium
from tests.console_support import PASSWORD, add_staff, mail_request, phone_request

pytestmark = pytest.mark.browser


def _seed(settings: Settings) -> None:
    """Twelve weeks of requests by three channels, some answered late, ratings over six months."""
    today = utcnow().astimezone(settings.tz).date()
    now = utcnow()
    for n in range(24):
        if n % 3 == 2:
            request_id = phone_request(
                settings, name=f"Звонивший {n}", phone=f"+7 913 000-00-{n:02d}", subject="т", text="т"
            )
        else:
            request_id = mail_request(settings, sender=f"c{n}@example.ru", name=f"Клиент {n}")
        registered = today - dt.timedelta(days=3 * n + (n % 4))
        with session_scope(settings) as session:
            values: dict[str, object] = {"registered_on": registered}
            if n % 5 == 1:
                values["channel"] = "post"
            session.execute(update(Request).where(Request.id == request_id).values(**values))
            request = session.get(Request, request_id)
            assert request is not None
            if n % 2 == 0 and n > 2:
                service.change_status(session, settings, request, Status.answered, now=now, actor="t", comment="Ответ")
                session.flush()
                answered = now - dt.timedelta(days=2 * n)
                due = (answered.astimezone(settings.tz).date()) + dt.timedelta(days=-1 if n % 6 == 0 else 3)
                session.execute(
                    update(Request).where(Request.id == request_id).values(answered_at=answered, due_date=due)
                )
            elif n % 7 == 3:
                service.change_status(
                    session, settings, request, Status.clarification_requested, now=now, actor="t", comment="?"
                )
    with session_scope(settings) as session:
        for month in range(6):
            for rating in (5, 4, 5 - month % 3):
                session.add(
                    FeedbackResponse(
                        created_at=now - dt.timedelta(days=30 * month + 1),
                        source="survey",
                        channel="email",
                        rating=rating,
                    )
                )


def test_home_page_charts_in_chromium(browser_settings: Settings, live_url: str) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    add_staff(browser_settings, "operator@dizo.test", Role.operator, name="Петров Пётр")
    _seed(browser_settings)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="ru-RU")
        page = context.new_page()
        problems: list[str] = []
        # Console errors other than a missing resource (the browser's own favicon request is checked below).
        page.on(
            "console",
            lambda message: (
                problems.append(message.text)
                if message.type == "error" and "Failed to load resource" not in message.text
                else None
            ),
        )
        page.on(
            "response",
            lambda response: (
                problems.append(f"{response.status} {response.url}")
                if response.status >= 400 and not response.url.endswith("/favicon.ico")
                else None
            ),
        )
        page.on("request", lambda request: None if request.url.startswith(live_url) else problems.append(request.url))
        page.goto(f"{live_url}/staff/login")
        page.fill("#email", "operator@dizo.test")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{live_url}/staff/")
        charts = page.locator("figure.chart svg")
        expect(charts).to_have_count(4)
        for index in range(4):
            box = charts.nth(index).bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 150  # drawn, at a readable size
        expect(page.locator("#chart-status")).to_contain_text("на рассмотрении")
        assert page.locator("#chart-weekly rect[fill='#0072B2']").count() > 1  # bars of the e-mail channel
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.locator("section.charts").screenshot(path=str(ARTIFACTS / "issue17-charts.png"))
        page.screenshot(path=str(ARTIFACTS / "issue17-home.png"), full_page=True)
        context.close()
    assert problems == []  # no script error, no CSP violation, nothing fetched from elsewhere
