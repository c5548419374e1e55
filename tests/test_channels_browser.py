"""Every channel in headless Chromium (issue 16): a request sent through the site's form reaches the console with
its number and its acknowledgement the sink; the status page; a postal answer as DOCX and PDF; a contact recorded on
a request in the history archive; axe-core on every public page in both colour schemes. Screenshots: artifacts/."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.models import Request
from mailservice.web.staff.auth import Role
from tests.browser import ARTIFACTS, chromium, serve_app
from tests.conftest import make_env, reset_caches
from tests.console_support import PASSWORD, add_staff, drain, link_in, parsed
from tests.servers import Sink
from tests.test_site_browser import axe_source  # noqa: F401  (the fixture that installs axe-core)

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def form_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, sink: Sink) -> Iterator[Settings]:
    """No minimum fill time: Playwright fills a form faster than a person can."""
    yield make_env(
        monkeypatch, tmp_path, sqlite_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", request_min_fill_seconds="0"
    )
    reset_caches()


@pytest.fixture
def url(form_settings: Settings) -> Iterator[str]:
    with serve_app(form_settings) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as instance:
        yield instance


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"channels-{name}.png"), full_page=True)


def _send_form(page: Page, url: str, tmp_path: Path, **fields: str) -> str:
    """Fill the form by keyboard where a person would; returns the registration number shown."""
    page.goto(f"{url}/request")
    for name, value in fields.items():
        page.locator(f"#{name}").fill(value)
    scan = tmp_path / "скан.pdf"
    scan.write_bytes(PDF)
    page.set_input_files("#files", str(scan))
    _shot(page, "form")
    page.locator("#text").focus()
    page.keyboard.press("Tab")  # to the file input, then the submit button: the form works from the keyboard
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    # The first request loads the classifier: allow for it on a busy machine.
    expect(page.get_by_role("heading", name="Запрос зарегистрирован")).to_be_visible(timeout=60_000)
    _shot(page, "done")
    number = page.locator("#number").inner_text()
    assert re.fullmatch(r"\d{4}-\d{6}", number)
    return number


def _login(page: Page, url: str, next_path: str) -> None:
    page.goto(f"{url}/staff/login?next={next_path}")
    page.fill("#email", "op@dizo.test")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{url}{next_path}")


def test_a_request_from_the_form_reaches_the_console_and_the_status_page(
    form_settings: Settings, sink: Sink, url: str, browser: Browser, tmp_path: Path
) -> None:
    add_staff(form_settings, "op@dizo.test", Role.operator, name="Петров Пётр", position="Главный специалист")
    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    number = _send_form(
        page,
        url,
        tmp_path,
        name="Кузнецова Анна Петровна",
        email="kuznetsova@example.ru",
        subject="Аренда участков",
        text="Прошу сообщить, сколько земельных участков предоставлено в аренду в 2025 году.",
    )
    expect(page.locator("#due")).to_contain_text("не позднее")
    drain(form_settings)
    acks = [parsed(raw) for _f, _to, raw in sink.messages()]
    assert len(acks) == 1 and number in str(acks[0]["Subject"])
    status_path = link_in(acks[0], "/status/")
    page.goto(f"{url}{status_path}")
    expect(page.locator("h1")).to_have_text(f"Запрос № {number}")
    expect(page.locator("#status")).to_have_text("зарегистрирован")
    _shot(page, "status")
    _login(page, url, "/staff/queue")
    expect(page.locator("table")).to_contain_text(number)
    page.click(f"text={number}")
    expect(page.locator("h1")).to_contain_text(f"Запрос № {number}")
    expect(page.locator("body")).to_contain_text("официальный сайт")
    expect(page.locator("body")).to_contain_text("скан.pdf")
    context.close()


def test_a_postal_answer_and_a_recorded_contact(
    form_settings: Settings, url: str, browser: Browser, tmp_path: Path
) -> None:
    add_staff(form_settings, "op@dizo.test", Role.operator, name="Петров Пётр Петрович", position="Начальник отдела")
    context = browser.new_context(locale="ru-RU", accept_downloads=True)
    page = context.new_page()
    number = _send_form(
        page,
        url,
        tmp_path,
        name="Белова Нина Ивановна",
        postal_address="630091, г. Новосибирск, ул. Мичурина, д. 12, кв. 4",
        text="Прошу сообщить график личного приёма граждан.",
    )
    with session_scope(form_settings) as session:
        request_id = session.scalars(select(Request.id).where(Request.number == number)).one()
    _login(page, url, f"/staff/requests/{request_id}")
    # A call from the client about this request, recorded with its text.
    page.click("text=Записать контакт (звонок, визит, письмо)")
    page.select_option("#contact-channel", "phone")
    page.fill("#contact-text", "Звонила заявительница: просит прислать ответ также на бумаге по почте.")
    page.click("text=Записать в историю")
    expect(page.locator("[role=status]")).to_contain_text("Контакт записан")
    expect(page.locator("body")).to_contain_text("Звонок клиента")
    # The answer: the client has no e-mail address, so it becomes a letter to post.
    page.fill("#answer-text", "Личный приём граждан ведётся по вторникам с 10:00 до 13:00.")
    page.click("text=Отправить ответ")
    page.goto(f"{url}/staff/letters")
    expect(page.locator("body")).to_contain_text(f"{number}/2")
    _shot(page, "letters")
    files = {}
    for ext in ("pdf", "docx"):
        with page.expect_download() as download:
            page.locator(f"a[href$='.{ext}']").nth(1).click()
        files[ext] = Path(download.value.path()).read_bytes()
    assert files["pdf"].startswith(b"%PDF") and b"word/document.xml" in files["docx"]
    docx_text = zipfile.ZipFile(io.BytesIO(files["docx"])).read("word/document.xml").decode()
    assert "по вторникам с 10:00 до 13:00" in docx_text and f"{number}/2" in docx_text
    # The history archive, printed for the client after an identity check in person, holds the call's text.
    page.goto(f"{url}/staff/requests/{request_id}")
    page.click("text=Белова Нина Ивановна")
    page.select_option("#document", index=1)
    page.click("text=Записать проверку")
    with page.expect_download() as download:
        page.click("text=Скачать историю для печати")
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    summary = archive.read("index.html").decode()
    assert "Звонок клиента" in summary and "просит прислать ответ также на бумаге по почте" in summary
    context.close()


def _axe(page: Page, source: str) -> list[dict[str, object]]:
    page.add_script_tag(content=source)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    assert isinstance(result, list)
    return result


def test_every_public_page_passes_axe_and_has_one_look(
    form_settings: Settings,
    url: str,
    browser: Browser,
    axe_source: str,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    from mailservice.webrequests.status import status_token

    context = browser.new_context(locale="ru-RU")
    page = context.new_page()
    number = _send_form(page, url, tmp_path, name="Иванов Иван", postal_address="630000, Новосибирск", text="Вопрос")
    pages = {
        "request": "/request",
        "status": f"/status/{status_token(form_settings, number)}",
        "subscribe": "/subscribe",
        "unsubscribe": "/unsubscribe/broken-token",
        "history": "/history",
        "feedback": "/feedback",
    }
    # axe-core is injected as a script: the pages' CSP would refuse it, so this context bypasses CSP.
    checking = browser.new_context(locale="ru-RU", bypass_csp=True)
    look = checking.new_page()
    serious: dict[str, object] = {}
    for scheme in ("default", "high-contrast"):
        for kind, path in pages.items():
            look.goto(f"{url}{path}")
            header = look.locator("header.site")
            expect(header).to_contain_text(form_settings.department_name)
            expect(header.get_by_role("link", name="На сайт департамента")).to_be_visible()
            toggle = look.get_by_role("button", name="Версия для слабовидящих")
            pressed = toggle.get_attribute("aria-pressed") == "true"
            if (scheme == "high-contrast") != pressed:
                toggle.click()
            expect(toggle).to_have_attribute("aria-pressed", "true" if scheme == "high-contrast" else "false")
            assert "версия t-" not in look.content() and "(версия" not in look.content()
            # 200% zoom of a 1280-pixel window: 640 CSS pixels without horizontal scrolling.
            look.set_viewport_size({"width": 640, "height": 800})
            assert look.evaluate("document.documentElement.scrollWidth") <= 640, (kind, scheme)
            bad = [v for v in _axe(look, axe_source) if v["impact"] in {"serious", "critical"}]
            if bad:
                serious[f"{kind}/{scheme}"] = bad
            look.screenshot(path=str(ARTIFACTS / f"channels-look-{kind}-{scheme}.png"), full_page=True)
    assert serious == {}, json.dumps(serious, ensure_ascii=False, indent=1)
    # The consent text names the operator in the dative case.
    look.goto(f"{url}/subscribe")
    assert "согласие Департаменту имущества" in look.content()
    checking.close()
    context.close()
