"""Issue 14, the HTTP surface: headers and CSP on every page, the API schema and /dev/mail in development only,
Russian error pages that never echo the input, ids and dates out of range, X-Forwarded-For only from
configured proxies.

Each test reproduces a finding of the review (it failed on the code before the fix).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.web.app import create_app
from mailservice.web.security import forwarded_client
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from tests.conftest import make_env, reset_caches
from tests.console_support import PASSWORD, add_staff, client_for, csrf_of, login, mail_request
from tests.servers import free_port

ADMIN = "admin@dizo.test"
BIG = str(2**63)  # one more than the largest BIGINT
PRODUCTION_KEY = "pK3v9Qz_Lm2Xw8Rt5Yb7Nc1Hd4Jf6Gs0Ua-Ve3Oi9Ty2Er5Wq8"


def production(settings: Settings) -> Settings:
    """The same settings as production would have them (a real key, a postal address)."""
    return settings.model_copy(
        update={"environment": "production", "secret_keys": [PRODUCTION_KEY], "department_address": "630000, а/я 1"}
    )


# Headers ---------------------------------------------------------------------------------------------------------

PUBLIC_PAGES = [
    "/",
    "/history",
    "/feedback",
    "/subscribe",
    "/unsubscribe/forged",
    "/request",
    "/status/forged",
    "/no-such-page",
    "/staff/login",
]


def test_every_page_has_csp_and_the_other_security_headers(settings: Settings) -> None:
    http = client_for(settings)
    for path in PUBLIC_PAGES:
        response = http.get(path, headers={"accept": "text/html"})
        assert response.status_code < 500, path
        csp = response.headers.get("content-security-policy", "")
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        scripts = re.search(r"script-src ([^;]*)", csp)
        # No inline script but by hash; no script from elsewhere.
        assert scripts is None or all(s.startswith("'sha256-") or s == "'none'" for s in scripts.group(1).split()), csp
        assert "unsafe-inline" not in (scripts.group(1) if scripts else "")
        assert response.headers.get("x-frame-options") == "DENY", path
        assert response.headers.get("x-content-type-options") == "nosniff", path
        # README, "Every page": `Referrer-Policy: no-referrer` (the console: `same-origin`).
        expected = "same-origin" if path.startswith("/staff/") else "no-referrer"
        assert response.headers.get("referrer-policy") == expected, path


def test_every_inline_script_of_a_public_page_is_allowed_by_its_hash(settings: Settings) -> None:
    """A script the page needs (the high-contrast switch) must not be blocked by the page's own policy."""
    import base64
    import hashlib

    http = client_for(settings)
    answers = [http.get(path, headers={"accept": "text/html"}) for path in ("/", "/history", "/feedback", "/request")]
    answers.append(http.post("/history", data={"email": "nobody@example.ru"}))
    answers.append(http.post("/feedback", data={"rating": "5"}))
    checked = 0
    for response in answers:
        csp = response.headers.get("content-security-policy", "")
        for body in re.findall(r"<script(?:\s[^>]*)?>(.*?)</script>", response.text, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
            assert f"'sha256-{digest}'" in csp, (response.url, csp)
            checked += 1
    assert checked >= len(answers)  # every public page carries the switch


def test_staff_pages_have_the_headers_too(settings: Settings) -> None:
    add_staff(settings, ADMIN, Role.administrator)
    http = client_for(settings)
    login(http, ADMIN)
    for path in ["/staff/", "/staff/queue", "/staff/audit", "/staff/wg", f"/staff/requests/{BIG}"]:
        response = http.get(path)
        assert response.headers.get("x-frame-options") == "DENY", path
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), path
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert response.headers.get("referrer-policy"), path


# Development-only surfaces ---------------------------------------------------------------------------------------


def test_api_schema_and_docs_only_in_development(settings: Settings) -> None:
    prod = TestClient(create_app(production(settings)))
    assert prod.get("/openapi.json").status_code == 404
    assert prod.get("/docs").status_code == 404
    dev = TestClient(create_app(settings))
    assert dev.get("/openapi.json").status_code == 200
    assert dev.get("/docs").status_code == 200


def test_dev_mail_only_in_development_and_only_from_this_machine(settings: Settings) -> None:
    sink = settings.data_dir / "sink"
    sink.mkdir(parents=True, exist_ok=True)
    (sink / "1.eml").write_bytes(
        b"From: a@b.c\r\nTo: victim@example.ru\r\nSubject: confirm\r\n\r\nhttps://x/history/confirm/SECRET\r\n"
    )
    local = TestClient(create_app(settings), client=("127.0.0.1", 50000))
    assert local.get("/dev/mail").status_code == 200 and "victim@example.ru" in local.get("/dev/mail").text
    assert local.get("/dev/mail/1.eml").status_code == 200
    remote = TestClient(create_app(settings), client=("203.0.113.9", 50000))
    assert remote.get("/dev/mail").status_code == 404
    assert remote.get("/dev/mail/1.eml").status_code == 404
    # A local proxy passing on a remote visitor's request (its header says so) is not this machine.
    proxied = local.get("/dev/mail", headers={"x-forwarded-for": "203.0.113.9"})
    assert proxied.status_code == 404
    prod = TestClient(create_app(production(settings)), client=("127.0.0.1", 50000))
    assert prod.get("/dev/mail").status_code == 404


# Error pages -----------------------------------------------------------------------------------------------------


def test_bad_form_input_gets_a_russian_page_and_is_never_echoed(settings: Settings) -> None:
    http = client_for(settings)
    marker = "<script>alert('x')</script>" + "a" * 400  # over the form's 320 characters
    page = http.post("/history", data={"email": marker}, headers={"accept": "text/html"})
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "Неверные данные" in page.text
    assert "alert" not in page.text and "aaaa" not in page.text
    program = http.post("/history", data={"email": marker}, headers={"accept": "application/json"})
    assert program.status_code == 422
    assert "alert" not in program.text and "aaaa" not in program.text


def test_unknown_page_is_a_russian_page_for_a_browser(settings: Settings) -> None:
    response = client_for(settings).get("/no-such-page", headers={"accept": "text/html"})
    assert response.status_code == 404 and "Страница не найдена" in response.text


def test_ids_beyond_bigint_are_not_found_and_form_ids_are_refused(settings: Settings) -> None:
    add_staff(settings, ADMIN, Role.administrator)
    request_id = mail_request(settings)
    http = client_for(settings)
    csrf = login(http, ADMIN)
    for path in [
        f"/staff/requests/{BIG}",
        f"/staff/clients/{BIG}",
        f"/staff/attachments/{BIG}",
        f"/staff/events/{BIG}/message.eml",
        f"/staff/wg/meetings/{BIG}",
        f"/staff/wg/minutes/{BIG}.docx",
    ]:
        assert http.get(path).status_code == 404, path
    for path in [f"/staff/requests/{BIG}/assign", f"/staff/wg/replies/{BIG}", f"/staff/wg/meetings/{BIG}/vote"]:
        assert http.post(path, data={"csrf_token": csrf}).status_code == 404, path
    merge = http.post("/staff/clients/1/merge", data={"csrf_token": csrf, "other_id": BIG})
    assert merge.status_code == 400 and "Укажите номер записи клиента" in merge.text
    extension = http.post(
        f"/staff/requests/{request_id}/status", data={"csrf_token": csrf, "target": "extended", "days": BIG}
    )
    assert extension.status_code == 400


def test_a_date_in_year_one_is_a_form_error(settings: Settings) -> None:
    add_staff(settings, ADMIN, Role.administrator)
    http = client_for(settings)
    csrf = login(http, ADMIN)
    response = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf,
            "channel": "phone",
            "received": "0001-01-01T00:00",
            "name": "Петров Пётр",
            "phone": "+7 913 000-00-00",
            "subject": "Вопрос",
            "text": "Звонок",
        },
    )
    assert response.status_code == 400 and "Неверные дата и время поступления" in response.text


# X-Forwarded-For -------------------------------------------------------------------------------------------------


def test_forwarded_client_reads_only_trusted_proxies() -> None:
    # No proxy configured: the header is the client's own claim and counts for nothing.
    assert forwarded_client("127.0.0.1", ["1.2.3.4"], []) == "127.0.0.1"
    # A trusted proxy: the right-most address it did not add itself; the client's own additions are ignored.
    assert forwarded_client("10.0.0.2", ["6.6.6.6, 198.51.100.4"], ["10.0.0.0/8"]) == "198.51.100.4"
    assert forwarded_client("10.0.0.2", ["198.51.100.4, 10.0.0.9"], ["10.0.0.0/8"]) == "198.51.100.4"
    # An untrusted peer's header is ignored even when proxies are configured.
    assert forwarded_client("203.0.113.1", ["1.2.3.4"], ["10.0.0.0/8"]) == "203.0.113.1"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[tuple[str, Settings]]:
    """`mailservice serve` as the service runs it, in its own process, on a free loopback port."""
    settings = make_env(monkeypatch, tmp_path, db_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "mailservice", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            assert time.monotonic() < deadline, "mailservice serve did not start within 60 s"
            time.sleep(0.1)
        yield url, settings
    finally:
        process.terminate()
        process.wait(timeout=30)
        reset_caches()


def test_served_app_ignores_x_forwarded_for_without_trusted_proxies(served: tuple[str, Settings]) -> None:
    url, settings = served
    add_staff(settings, ADMIN, Role.administrator)
    with httpx.Client(base_url=url, follow_redirects=False) as http:
        for n in range(3):
            token = csrf_of(http.get("/staff/login").text)
            response = http.post(
                "/staff/login",
                data={"email": ADMIN, "password": "wrong password!", "csrf_token": token},
                headers={"x-forwarded-for": f"198.51.100.{n}"},
            )
            assert response.status_code == 401
        token = csrf_of(http.get("/staff/login").text)
        ok = http.post("/staff/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token})
        assert ok.status_code == 303
    with session_scope(settings) as session:
        addresses = set(session.scalars(select(AuditEntry.ip)))
    # Every attempt is recorded with the connection's real address, none with the forged ones.
    assert addresses == {"127.0.0.1"}


def test_x_forwarded_for_of_a_configured_proxy_is_the_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    settings = make_env(monkeypatch, tmp_path, db_url, trusted_proxies="127.0.0.1")
    try:
        add_staff(settings, ADMIN, Role.administrator)
        http = TestClient(create_app(settings), client=("127.0.0.1", 50000), follow_redirects=False)
        token = csrf_of(http.get("/staff/login").text)
        http.post(
            "/staff/login",
            data={"email": ADMIN, "password": PASSWORD, "csrf_token": token},
            headers={"x-forwarded-for": "6.6.6.6, 198.51.100.20"},
        )
        with session_scope(settings) as session:
            assert list(session.scalars(select(AuditEntry.ip))) == ["198.51.100.20"]
    finally:
        reset_caches()


def test_the_access_log_holds_no_token_of_a_signed_link(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Tryout of 7 December (a new administrator): status links, which never expire by themselves, were written to
    the web log whole. The record is made as uvicorn makes it (uvicorn/protocols/http/h11_impl.py)."""
    from mailservice.tokens import Purpose, sign_timed
    from mailservice.webrequests.status import status_token

    create_app(settings)
    status = status_token(settings, "2026-000001", "k" * 16)
    timed = sign_timed(settings, Purpose.history_download, {"x": 1, "n": "abc"})
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        for path in (f"/status/{status}", f"/history/download/{timed}/archive.zip", "/static/app.css?v=1.2.3"):
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert lines == [
        '127.0.0.1:5000 - "GET /status/… HTTP/1.1" 200',
        '127.0.0.1:5000 - "GET /history/download/…/archive.zip HTTP/1.1" 200',
        '127.0.0.1:5000 - "GET /static/app.css?v=1.2.3 HTTP/1.1" 200',
    ]
    assert status not in "".join(lines) and timed not in "".join(lines)
