"""Tryout F18: the per-address limits (request form 5/h, subscriptions, anonymous feedback 10/h, login failures)
counted each IPv6 address apart, and any IPv6 line holds a whole /64. They now count an IPv6 client by its /64
network, an IPv4 client by its address."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.ipkeys import limit_key
from mailservice.web.app import create_app
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import LoginAttempt
from tests.console_support import PASSWORD, add_staff, csrf_of

FEEDBACK_LIMIT_PER_HOUR = 10  # README: anonymous feedback, 10 per address and hour


def test_limit_keys() -> None:
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.7") == "203.0.113.7" != limit_key("203.0.113.8")
    assert limit_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert limit_key("testclient") == "testclient"


def _from(settings: Settings, ip: str) -> TestClient:
    return TestClient(create_app(settings), client=(ip, 40000), follow_redirects=False)


def test_one_ipv6_network_shares_one_feedback_quota(settings: Settings) -> None:
    for n in range(FEEDBACK_LIMIT_PER_HOUR):
        assert _from(settings, f"2001:db8:77:1::{n + 1:x}").post("/feedback", data={"rating": "1"}).status_code == 200
    refused = _from(settings, "2001:db8:77:1:dead:beef:0:1").post("/feedback", data={"rating": "1"})
    assert refused.status_code == 429
    # The neighbouring /64 is someone else.
    assert _from(settings, "2001:db8:77:2::1").post("/feedback", data={"rating": "4"}).status_code == 200


def test_login_failures_count_by_the_ipv6_network(settings: Settings) -> None:
    add_staff(settings, "admin@dizo.test", Role.administrator)
    http = _from(settings, "2001:db8:88:1::5")
    token = csrf_of(http.get("/staff/login").text)
    http.post("/staff/login", data={"email": "admin@dizo.test", "password": PASSWORD + "x", "csrf_token": token})
    with session_scope(settings) as session:
        assert list(session.scalars(select(LoginAttempt.ip))) == ["2001:db8:88:1::/64"]
