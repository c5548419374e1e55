"""Helpers of the console, history, feedback and retention tests (issue 6)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, Request
from mailservice.intake.pipeline import Source, process_raw
from mailservice.outbox import drain_once
from mailservice.web.app import create_app
from mailservice.web.staff import auth
from tests.mailfactory import citizen_mail

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(settings: Settings, email: str, role: auth.Role, *, name: str = "", position: str = "") -> None:
    """Create a staff account with the shared test password."""
    with session_scope(settings) as session:
        auth.create_user(session, email=email, role=role, password=PASSWORD, now=utcnow(), name=name, position=position)


def client_for(settings: Settings) -> TestClient:
    """A test client of the whole application (base URL matches PUBLIC_URL's scheme: http)."""
    return TestClient(create_app(settings), base_url="http://testserver", follow_redirects=False)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(http: TestClient, email: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token (read from the start page)."""
    form = http.get("/staff/login")
    assert form.status_code == 200
    response = http.post("/staff/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303, response.text
    home = http.get("/staff/")
    assert home.status_code == 200
    return csrf_of(home.text)


def mail_request(
    settings: Settings,
    *,
    sender: str = "ivanov@example.ru",
    name: str = "Иванов Иван Иванович",
    subject: str = "Запрос информации о предоставлении земельных участков",
    body: str = "Прошу предоставить сведения о количестве земельных участков, предоставленных в аренду в 2025 году.",
    now: dt.datetime | None = None,
    raw: bytes | None = None,
) -> int:
    """A citizen's e-mail taken through intake; returns the new request's id."""
    message = raw or citizen_mail(sender=sender, name=name, subject=subject, body=body)
    result = process_raw(settings, message, Source("smtp", envelope_from=sender), now=now or utcnow())
    with session_scope(settings) as session:
        request = session.scalar(select(Request).where(Request.number == result.request_number))
        assert request is not None, result
        return request.id


def phone_request(settings: Settings, *, name: str, phone: str, subject: str, text: str) -> int:
    """A request taken by phone (no e-mail), registered now."""
    return staff_request(settings, name=name, phone=phone, subject=subject, text=text)[0]


def staff_request(
    settings: Settings,
    *,
    subject: str,
    text: str = "",
    name: str = "Иванов Иван",  # a request without a name and an address is anonymous: closed without a number
    phone: str | None = None,
    email: str | None = None,
    organisation: str = "",
    address: str = "",
    client_id: int | None = None,
) -> tuple[int, int]:
    """A request staff register by phone for a new client (or the client ``client_id``), registered now; returns
    the request's and the client's ids. ``email`` is only the reply address typed (it proves nothing)."""
    with session_scope(settings) as session:
        client = session.get_one(Client, client_id) if client_id else None
        request = phone_request_in(
            session,
            settings,
            subject=subject,
            text=text,
            name=name,
            phone=phone,
            email=email,
            organisation=organisation,
            address=address,
            client=client,
        )
        return request.id, request.client_id


def phone_request_in(
    session: Session,
    settings: Settings,
    *,
    subject: str,
    text: str = "",
    name: str = "Иванов Иван",
    phone: str | None = None,
    email: str | None = None,
    organisation: str = "",
    address: str = "",
    client: Client | None = None,
) -> Request:
    """:func:`staff_request` in the caller's session (flushed, not committed)."""
    now = utcnow()
    if client is None:
        client = service.find_or_create_client(
            session, now=now, name=name, phone=phone, organisation=organisation, postal_address=address
        )
    request = service.create_request(
        session,
        settings,
        now=now,
        client=client,
        channel=Channel.phone,
        subject=subject,
        text=text,
        labels=service.Labels(),
        reply_email=email,
    )
    session.flush()
    return request


def drain(settings: Settings) -> None:
    """Send everything in the outbox to the test's SMTP sink (in a thread of its own: Playwright's sync API
    keeps an event loop running in the test's thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, drain_once(settings)).result()


def parsed(raw: bytes) -> EmailMessage:
    """Raw bytes to a message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    """The plain-text body (quoted-printable decoded)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: EmailMessage, path: str) -> str:
    """The path of the first link to ``path`` in the message's text (without scheme and host)."""
    match = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"[^\s]+)", text_of(message))
    assert match, f"no {path} link in: {text_of(message)}"
    return match.group(1)
