"""The unsubscribe and confirmation pages in headless Chromium, with scripts on and off.

With scripts on, opening the personal link is enough: the page withdraws by a POST it submits itself. With
scripts off, the page shows a button and nothing happens until it is pressed. Screenshots go to artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import consent, subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import ConsentEvent, Subscription, SubscriptionStatus
from tests.browser import ARTIFACTS, chromium
from tests.servers import Sink

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # One Chromium for the module (as the site's and the channels' browser tests): each test opens its own context,
    # with no cookies or storage of another.
    with chromium() as instance:
        yield instance


def subscriber(settings: Settings, address: str) -> tuple[int, str]:
    """An active subscription and its unsubscribe token."""
    parsed = parse_address(address)
    assert parsed is not None
    now = utcnow()
    with session_scope(settings) as session:
        result = subscribers.subscribe(
            session,
            settings,
            address=parsed,
            lists=[subscribers.default_list(session)],
            evidence=Evidence(method="web_form"),
            consent_text=consent.current_consent(session, settings),
            now=now,
        )
        row = session.get(Subscription, result.subscription_ids[0])
        assert row is not None
        row.status = SubscriptionStatus.active
        return row.id, subscribers.unsubscribe_token(settings, row.id, row.nonce)


def status(settings: Settings, subscription_id: int) -> str:
    with session_scope(settings) as session:
        row = session.get(Subscription, subscription_id)
        assert row is not None
        return row.status


def test_opening_the_link_withdraws_with_scripts_on(
    browser_settings: Settings, sink: Sink, live_url: str, browser: object
) -> None:
    from playwright.sync_api import Browser, expect

    subscription_id, token = subscriber(browser_settings, "reader@example.org")
    context = browser.new_context(locale="ru-RU")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{live_url}/unsubscribe/{token}")
    expect(page.get_by_role("heading", name="Вы отписаны")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mailings-unsubscribed.png"), full_page=True)
    assert status(browser_settings, subscription_id) == SubscriptionStatus.withdrawn
    assert not context.cookies()  # nothing was needed to withdraw, nothing was left behind
    with session_scope(browser_settings) as session:
        methods = [e.method for e in session.query(ConsentEvent).filter(ConsentEvent.kind == "withdrawn")]
        assert methods == ["link"]
    # Reloading the final page (a repeated POST) changes nothing and still says so.
    page.reload()
    expect(page.get_by_role("heading", name="Вы отписаны")).to_be_visible()
    context.close()
    assert isinstance(browser, Browser)


def test_scripts_off_show_a_button_and_a_fetch_changes_nothing(
    browser_settings: Settings, sink: Sink, live_url: str, browser: object
) -> None:
    from playwright.sync_api import expect

    subscription_id, token = subscriber(browser_settings, "careful@example.org")
    context = browser.new_context(locale="ru-RU", java_script_enabled=False)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{live_url}/unsubscribe/{token}")
    button = page.get_by_role("button", name="Отписаться")
    expect(button).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mailings-unsubscribe-noscript.png"), full_page=True)
    assert status(browser_settings, subscription_id) == SubscriptionStatus.active  # like a mail scanner's fetch
    button.click()
    expect(page.get_by_role("heading", name="Вы отписаны")).to_be_visible()
    assert status(browser_settings, subscription_id) == SubscriptionStatus.withdrawn
    context.close()


def test_confirmation_needs_the_button(browser_settings: Settings, sink: Sink, live_url: str, browser: object) -> None:
    from playwright.sync_api import expect

    parsed = parse_address("newcomer@example.org")
    assert parsed is not None
    with session_scope(browser_settings) as session:
        result = subscribers.subscribe(
            session,
            browser_settings,
            address=parsed,
            lists=[subscribers.default_list(session)],
            evidence=Evidence(method="web_form"),
            consent_text=None,
            now=utcnow(),
        )
        row = session.get(subscribers.Subscriber, result.subscriber_id)
        assert row is not None
        url = subscribers.confirm_url(browser_settings, row).replace(browser_settings.public_url, live_url)
    context = browser.new_context(locale="ru-RU")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_role("button", name="Подтвердить подписку")).to_be_visible()
    assert status(browser_settings, result.subscription_ids[0]) == SubscriptionStatus.pending
    page.get_by_role("button", name="Подтвердить подписку").click()
    expect(page.get_by_role("heading", name="Подписка подтверждена")).to_be_visible()
    assert status(browser_settings, result.subscription_ids[0]) == SubscriptionStatus.active
    context.close()
