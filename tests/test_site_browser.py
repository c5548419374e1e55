"""The built disclosure site in headless Chromium (Debian's, driven by Playwright): offline from file:// with no
request to any other host, Russian search, the version for the visually impaired, axe-core on every page type,
200% zoom without horizontal scrolling, keyboard access, and the subscription form against the running service.

Screenshots go to artifacts/site/. axe-core comes from the npm registry (tests/.node, pinned in its
package-lock.json) and is injected into each page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.publishing.build import build_site, register_consent_text
from mailservice.publishing.stats import MailingRow, SiteData, load_site_data, quarter_statistics
from tests.browser import chromium, serve_app
from tests.mailfactory import body_text, parse
from tests.servers import Sink, free_port
from tests.test_site import BUILT_AT, SITE, row, seed_requests
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / ".node"
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "site"

PAGE_TYPES = {
    "home": "index.html",
    "section": "pravovye-akty/index.html",
    "document": "pravovye-akty/poryadok-vzaimodeystviya-s-klientom.html",
    "requests": "kak-zaprosit-informatsiyu/index.html",
    "statistics": "statistika/index.html",
    "mailings": "statistika/rassylki.html",
    "opendata": "statistika/otkrytye-dannye.html",
    "subscribe": "podpiska/index.html",
    "feedback": "obratnaya-svyaz/index.html",
}


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from the npm registry into tests/.node on first use."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core for the accessibility test (apt-get install npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)], check=True, timeout=300)
    return AXE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as instance:
        yield instance


def sample_data() -> SiteData:
    """Statistics of two quarters and two mailings (no database needed): the generated pages with tables."""
    jan, apr = dt.date(2026, 1, 12), dt.date(2026, 4, 2)
    rows = [
        row(jan, answered_on=dt.date(2026, 2, 1), status="answered"),
        row(jan, channel="post", answered_on=dt.date(2026, 3, 1), status="closed"),
        row(jan, channel="web", refusal_ground="8fz-20-1-4", answered_on=dt.date(2026, 1, 30), status="refused"),
        row(apr, channel="phone", type="appeal", extended=True, status="extended"),
        row(apr, channel="social", forwarded=True, status="forwarded"),
    ]
    mailings = (
        MailingRow(dt.date(2026, 3, 3), "Новые документы на сайте департамента", 120),
        MailingRow(dt.date(2026, 5, 12), "Изменения в порядке приёма <граждан> | май", 118),
    )
    return SiteData(
        generated_at=BUILT_AT,
        quarters=tuple(quarter_statistics(rows)),
        mailings=mailings,
        has_requests=True,
        has_mailings=True,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped site built from sample statistics (no database: data passed in, as `site build` does)."""
    out = tmp_path_factory.mktemp("site") / "built"
    build_site(SITE, out, data=sample_data())
    return out


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def open_page(browser: Browser, url: str, *, width: int = 1280, height: int = 900) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="ru-RU")
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, requests


def foreign(requests: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """Requests to anything but the built folder itself (and the listed local service)."""
    return [u for u in requests if not u.startswith(("file://", "data:", "blob:", "about:", *allowed))]


def switch_to_high_contrast(page: Page) -> None:
    # The eye button in the header (Material's palette toggle: a label for the next scheme's radio).
    page.locator("label[title='Версия для слабовидящих']").click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'high-contrast'")


def test_home_offline_search_and_high_contrast(browser: Browser, built: Path) -> None:
    page, requests = open_page(browser, (built / "index.html").as_uri())
    assert "Департамент имущества и земельных отношений" in page.title()
    assert page.locator("html").get_attribute("lang") == "ru"
    body_size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.md-typeset')).fontSize)")
    shot(page, "home")

    # Full-text search in Russian: an inflected form that occurs in no page finds the document by its stem.
    assert "взаимодействием" not in (built / "search" / "search_index.json").read_text(encoding="utf-8")
    search = page.get_by_role("textbox", name="Поиск")
    search.click()
    search.press_sequentially("взаимодействием")
    # Playwright types Cyrillic as text input without key events; Material reads the query on keyup.
    page.keyboard.press("End")
    result = page.locator(".md-search-result__item a", has_text="Порядок взаимодействия с клиентом")
    result.first.wait_for(timeout=15000)
    shot(page, "search")
    result.first.click()
    page.wait_for_url(re.compile(r"poryadok-vzaimodeystviya-s-klientom\.html"))

    # The version for the visually impaired: white and yellow on black, larger type; remembered across pages.
    page.goto((built / "index.html").as_uri())
    switch_to_high_contrast(page)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(0, 0, 0)"
    big = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.md-typeset')).fontSize)")
    assert big >= body_size * 1.2
    shot(page, "home-high-contrast")
    page.goto((built / "kak-zaprosit-informatsiyu" / "index.html").as_uri())
    assert page.evaluate("document.body.dataset.mdColorScheme") == "high-contrast"
    shot(page, "requests-high-contrast")
    page.locator("label[title='Обычная версия']").click()
    page.wait_for_function("document.body.dataset.mdColorScheme === 'default'")

    # Nothing moves by itself once the page has settled.
    page.wait_for_timeout(500)
    assert page.evaluate("document.getAnimations().filter(a => a.playState === 'running').length") == 0
    assert foreign(requests) == []
    page.context.close()


def _axe(page: Page, source: str) -> list[dict[str, object]]:
    page.add_script_tag(content=source)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    assert isinstance(result, list)
    return result


@pytest.mark.parametrize("scheme", ["default", "high-contrast"])
def test_axe_finds_no_serious_violations(browser: Browser, built: Path, axe_source: str, scheme: str) -> None:
    serious: dict[str, list[dict[str, object]]] = {}
    for kind, path in PAGE_TYPES.items():
        page, requests = open_page(browser, (built / path).as_uri())
        if scheme == "high-contrast":
            switch_to_high_contrast(page)
        violations = _axe(page, axe_source)
        bad = [v for v in violations if v["impact"] in {"serious", "critical"}]
        if bad:
            serious[kind] = bad
        assert foreign(requests) == [], kind
        page.context.close()
    assert serious == {}, json.dumps(serious, ensure_ascii=False, indent=1)


@pytest.mark.parametrize("scheme", ["default", "high-contrast"])
def test_200_percent_zoom_needs_no_horizontal_scroll(browser: Browser, built: Path, scheme: str) -> None:
    # 1280 CSS pixels at 200% zoom leave 640 CSS pixels: the same layout as a 640-pixel-wide window.
    wide: dict[str, int] = {}
    for kind, path in PAGE_TYPES.items():
        page, _requests = open_page(browser, (built / path).as_uri(), width=640, height=800)
        if scheme == "high-contrast":
            switch_to_high_contrast(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            wide[kind] = overflow
        if kind in {"document", "subscribe", "statistics"}:
            shot(page, f"zoom200-{kind}-{scheme}")
        page.context.close()
    assert wide == {}


def test_keyboard_reaches_every_control_of_the_forms(browser: Browser, built: Path) -> None:
    for path, wanted in (
        ("podpiska/index.html", {"ms-email", "ms-list-news", "ms-consent", "submit:Подписаться"}),
        ("obratnaya-svyaz/index.html", {"ms-rating-1", "ms-comment", "ms-feedback-email", "submit:Отправить отзыв"}),
    ):
        page, _requests = open_page(browser, (built / path).as_uri())
        reached: set[str] = set()
        for _ in range(80):
            page.keyboard.press("Tab")
            reached.add(
                page.evaluate(
                    "(() => { const e = document.activeElement; if (!e) return '';"
                    " if (e.type === 'submit') return 'submit:' + e.textContent.trim();"
                    " return e.getAttribute('aria-label') || e.id || e.tagName; })()"
                )
            )
        assert wanted <= reached, (path, wanted - reached)
        assert {"Поиск", "Версия для слабовидящих"} <= reached
        page.context.close()
    # The scheme toggle works from the keyboard: Tab to it, press Enter.
    page, _requests = open_page(browser, (built / "index.html").as_uri())
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Версия для слабовидящих":
            break
    else:
        pytest.fail("the scheme toggle is not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("document.body.dataset.mdColorScheme === 'high-contrast'")
    page.context.close()


# The subscription round trip through the real service --------------------------------------------------------------


@pytest.fixture
def service(browser_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, str]]:
    """The real web app (mailings' /subscribe) on a free port, with outgoing mail to the test sink."""
    from mailservice import config

    # The forms post to PUBLIC_URL, which must be known before the app starts: pick the port first.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MAILSERVICE_PUBLIC_URL", base)
    config.get_settings.cache_clear()
    settings = config.get_settings()
    with serve_app(settings, port=port) as url:
        yield settings, url


def test_subscription_form_round_trip(
    browser: Browser, service: tuple[Settings, str], sink: Sink, tmp_path: Path
) -> None:
    from mailservice.mailings.models import Subscription, SubscriptionStatus
    from mailservice.mailings.subscribers import create_list
    from mailservice.outbox import drain_once

    settings, base = service
    seed_requests(settings)
    with session_scope(settings) as session:  # staff set up the lists the site offers
        create_list(session, "news", "Новости и новые документы департамента")
        create_list(session, "legal_acts", "Нормативные правовые акты и их проекты")
    out = tmp_path / "built"
    register_consent_text(settings)
    build_site(SITE, out, data=load_site_data(settings, now=BUILT_AT))

    page, requests = open_page(browser, (out / "podpiska" / "index.html").as_uri())
    assert page.locator("form#subscribe-form").get_attribute("action") == f"{base}/subscribe"
    page.get_by_label("Адрес электронной почты").fill("podpischik@example.ru")
    page.get_by_label("Нормативные правовые акты и их проекты").check()
    page.locator("#ms-consent").check()
    shot(page, "subscribe-filled")
    with page.expect_navigation():
        page.get_by_role("button", name="Подписаться").click()
    assert page.url.startswith(base)
    assert "устарела" not in page.content()
    shot(page, "subscribe-sent")

    # Playwright's sync API runs an event loop in this thread: drain the outbox in another one.
    drainer = threading.Thread(target=lambda: asyncio.run(drain_once(settings)))
    drainer.start()
    drainer.join(timeout=60)
    assert not drainer.is_alive(), "the outbox was not drained within 60 s"
    wait_until(
        lambda: any(m[1] == ["podpischik@example.ru"] for m in sink.messages()),
        10,
        "no confirmation reached the sink",
        interval=0.1,
    )
    # The seeded requests were acknowledged too; the confirmation is the one mail to the new subscriber.
    [(_from, _rcpts, raw)] = [m for m in sink.messages() if m[1] == ["podpischik@example.ru"]]
    text = body_text(parse(raw))
    link = re.search(rf"{re.escape(base)}/subscribe/confirm/[A-Za-z0-9._-]+", text)
    assert link is not None, text
    page.goto(link.group(0))
    with session_scope(settings) as session:  # a GET (a mail scanner) confirms nothing
        assert {s.status for s in session.scalars(select(Subscription))} == {SubscriptionStatus.pending}
    # The click starts a navigation (a POST); "load" of the current page may already hold, so await the navigation.
    with page.expect_navigation():
        page.get_by_role("button", name="Подтвердить подписку").click()
    shot(page, "subscribe-confirmed")

    def statuses() -> list[str]:
        with session_scope(settings) as session:
            return sorted(s.status for s in session.scalars(select(Subscription)))

    wait_until(
        lambda: statuses() == [SubscriptionStatus.active, SubscriptionStatus.active],
        30,
        "the confirmation did not activate both subscriptions",
    )
    assert foreign(requests, (base,)) == []
    page.context.close()
