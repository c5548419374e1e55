"""The console in headless Chromium: log in, filter the queue, open a request, answer it; the client gets it.

Screenshots are kept under artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.web.staff.auth import Role
from tests.browser import ARTIFACTS, chromium
from tests.console_support import PASSWORD, add_staff, drain, mail_request, parsed, phone_request, text_of
from tests.servers import Sink

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page() -> Iterator[object]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
        yield context.new_page()
        context.close()


def test_log_in_filter_open_and_answer(
    browser_settings: Settings, sink: Sink, live_url: str, browser_page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    page: Page = browser_page  # type: ignore[assignment]
    ARTIFACTS.mkdir(exist_ok=True)
    add_staff(browser_settings, "operator@dizo.test", Role.operator, name="Петров Пётр", position="Главный специалист")
    request_id = mail_request(browser_settings)
    phone_request(
        browser_settings,
        name="Кузнецов Олег",
        phone="+7 913 000-00-00",
        subject="Вакансии",
        text="Какие есть вакансии?",
    )
    with session_scope(browser_settings) as session:
        number = session.get(Request, request_id).number  # type: ignore[union-attr]
    drain(browser_settings)
    sink.clear()

    page.goto(f"{live_url}/staff/queue")
    expect(page).to_have_url(f"{live_url}/staff/login?next=/staff/queue")
    page.fill("#email", "operator@dizo.test")
    page.fill("#password", PASSWORD)
    page.screenshot(path=str(ARTIFACTS / "console-1-login.png"))
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_url}/staff/queue")
    expect(page.locator("table")).to_contain_text("Вакансии")
    page.select_option("select[name=channel]", "email")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(f"{live_url}/staff/queue?q=&type=&topic=&urgency=&status=&channel=email")
    expect(page.locator("table")).not_to_contain_text("Вакансии")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no horizontal scrolling at 1366x768
    page.screenshot(path=str(ARTIFACTS / "console-2-queue.png"), full_page=True)

    page.click(f"text={number}")
    expect(page.locator("h1")).to_contain_text(f"Запрос № {number}")
    page.select_option("#template", "provided")
    page.click("text=Подставить шаблон")
    textarea = page.locator("#answer-text")
    expect(textarea).to_contain_text(f"На ваш запрос № {number}")
    textarea.fill(f"На ваш запрос № {number} сообщаем: предоставлено 120 участков.\n\nГлавный специалист\nПетров Пётр")
    attachment = tmp_path / "справка.txt"
    attachment.write_text("Справка о предоставленных участках", encoding="utf-8")
    page.set_input_files("#answer-files", str(attachment))
    page.screenshot(path=str(ARTIFACTS / "console-3-request.png"), full_page=True)
    page.click("text=Отправить ответ")
    expect(page.locator(".done")).to_contain_text("Ответ отправлен клиенту")
    expect(page.locator("#status")).to_have_text("дан ответ")
    page.screenshot(path=str(ARTIFACTS / "console-4-answered.png"), full_page=True)

    drain(browser_settings)
    answers = [parsed(raw) for _f, rcpts, raw in sink.messages() if "дан ответ" in parsed(raw)["Subject"]]
    assert len(answers) == 1
    assert str(answers[0]["To"]).endswith("<ivanov@example.ru>")
    assert "предоставлено 120 участков" in text_of(answers[0])
    [file_part] = list(answers[0].iter_attachments())
    assert file_part.get_filename() == "справка.txt"
    with session_scope(browser_settings) as session:
        assert session.get(Request, request_id).status == Status.answered  # type: ignore[union-attr]
