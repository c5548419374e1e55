"""Issue 14: five wrong passwords locked a known staff account out for 15 minutes, whoever typed them. Now failures
slow down the address they come from, more with each one, and the owner logging in from elsewhere is not held up.

The values are the README's ("Security model"); the test reads them there too, so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.web.app import create_app
from mailservice.web.staff import auth
from mailservice.web.staff.auth import Role
from tests.console_support import PASSWORD, add_staff, csrf_of

README = Path(__file__).resolve().parents[2] / "README.md"
OWNER = "owner@dizo.test"
# README: "5 failed logins to one account from one address are free; after them that address waits 1, 2, 4, 8
# minutes, then 15 minutes after its last failure", "20 failures from one address in 15 minutes".
FREE = 5
WAITS_MIN = [1, 2, 4, 8, 15, 15]
PER_ADDRESS = 20
WINDOW_MIN = 15


def test_readme_states_these_values() -> None:
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"{FREE} failed logins to one account from one address are free" in text
    waits = ", ".join(str(m) for m in WAITS_MIN[:-2])
    assert f"waits {waits} minutes, then {WAITS_MIN[-1]} minutes after its last failure" in text
    assert f"{PER_ADDRESS} failures from one address in {WINDOW_MIN} minutes" in text


def login_from(settings: Settings, ip: str, password: str) -> int:
    http = TestClient(create_app(settings), client=(ip, 40000), follow_redirects=False)
    token = csrf_of(http.get("/staff/login").text)
    return http.post("/staff/login", data={"email": OWNER, "password": password, "csrf_token": token}).status_code


def test_the_owner_is_not_locked_out_by_someone_elses_failures(settings: Settings) -> None:
    add_staff(settings, OWNER, Role.operator)
    for _ in range(FREE + 3):
        assert login_from(settings, "203.0.113.66", "wrong password!") in (401, 429)
    assert login_from(settings, "203.0.113.66", PASSWORD) == 429  # the guessing address waits, even with the password
    assert login_from(settings, "198.51.100.10", PASSWORD) == 303  # the owner at their desk logs in


def attempt(settings: Settings, ip: str, password: str, now: dt.datetime) -> auth.LoginResult:
    with session_scope(settings) as session:
        return auth.authenticate(session, email=OWNER, password=password, ip=ip, now=now)


def test_each_further_failure_doubles_the_wait_up_to_the_cap(settings: Settings) -> None:
    add_staff(settings, OWNER, Role.operator)
    ip, now = "203.0.113.7", utcnow()
    for _ in range(FREE):
        assert not attempt(settings, ip, "wrong password!", now).blocked
    for minutes in WAITS_MIN:
        early = attempt(settings, ip, PASSWORD, now + dt.timedelta(minutes=minutes) - dt.timedelta(seconds=5))
        assert early.blocked and early.user is None, minutes  # not even the right password, before the wait ends
        assert dt.timedelta(seconds=1) <= early.retry_after <= dt.timedelta(seconds=5)
        now += dt.timedelta(minutes=minutes, seconds=1)
        assert not attempt(settings, ip, "wrong password!", now).blocked  # after the wait: one more try
    # After waiting out the cap, the right password works, and the count starts again.
    now += dt.timedelta(minutes=WAITS_MIN[-1], seconds=1)
    assert attempt(settings, ip, PASSWORD, now).user is not None
    for _ in range(FREE):
        assert not attempt(settings, ip, "wrong password!", now).blocked


def test_an_address_with_many_failures_is_refused_for_the_window(settings: Settings) -> None:
    add_staff(settings, OWNER, Role.operator)
    ip, now = "203.0.113.9", utcnow()
    with session_scope(settings) as session:
        for n in range(PER_ADDRESS):  # other accounts, so that the per-account wait does not come into it
            auth.authenticate(session, email=f"nobody{n}@dizo.test", password="x" * 12, ip=ip, now=now)
    refused = attempt(settings, ip, PASSWORD, now + dt.timedelta(minutes=WINDOW_MIN - 1))
    assert refused.blocked and refused.user is None
    assert attempt(settings, "203.0.113.10", PASSWORD, now).user is not None  # another address is not affected
    assert attempt(settings, ip, PASSWORD, now + dt.timedelta(minutes=WINDOW_MIN, seconds=1)).user is not None
