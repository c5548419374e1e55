"""Headless Chromium and a live web app for the browser tests (shared by the console, mailings and site tests).

Debian's Chromium (/usr/bin/chromium) driven by Playwright's Python package; Playwright never downloads a browser
here. The flags keep Chromium from calling Google's hosts, which this machine's network refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from mailservice.config import Settings
from tests.servers import free_port

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread: the test process keeps its own handlers
        pass


@contextmanager
def serve_app(settings: Settings, port: int | None = None) -> Iterator[str]:
    """The real application served by uvicorn on a (free) loopback port; yields its base URL."""
    from mailservice.web.app import create_app
    from mailservice.web.security import server_options

    port = port or free_port()
    server = _ThreadServer(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            **server_options(settings),  # as `mailservice serve` runs it: X-Forwarded-For per TRUSTED_PROXIES
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; a missing browser fails the test (it is installed by `make test`), never skips it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it when run as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()
