"""Helpers of the working-group tests (no tests here): a simulated clock for the web pages, mail from the sink,
links in it, replies to it, and a group with its people."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from fastapi.testclient import TestClient

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.outbox import drain_once
from mailservice.web.app import create_app
from mailservice.workdays import default_calendar
from mailservice.workgroup import groups, service
from tests.mailfactory import citizen_mail
from tests.servers import Sink

LINK = re.compile(r"https?://\S+?/wg/(approve|sign|ballot|verify)/([A-Za-z0-9_.\-]+)")


class Clock:
    """A settable clock for the service calls and the web pages of one test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def client(settings: Settings, clock: Callable[[], dt.datetime]) -> TestClient:
    """The whole application with the working group's pages on the test's clock."""
    app = create_app(settings)
    app.state.wg_clock = clock
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def drain(settings: Settings) -> None:
    """Send everything queued to the sink."""
    asyncio.run(drain_once(settings))


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def mail_to(sink: Sink, address: str, subject_part: str = "") -> list[EmailMessage]:
    """Messages the sink received for ``address`` whose subject contains ``subject_part``, oldest first."""
    found = []
    for _from, rcpt, raw in sink.messages():
        if address in rcpt:
            message = parse(raw)
            if subject_part in str(message["Subject"]):
                found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def links(message: EmailMessage, kind: str) -> list[str]:
    """Paths of our signed links of one kind (approve, sign, ballot, verify) in a message, in order."""
    return [f"/wg/{m.group(1)}/{m.group(2)}" for m in LINK.finditer(text_of(message)) if m.group(1) == kind]


def attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """File name -> (content type with parameters, bytes)."""
    found = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found[str(part.get_filename())] = (str(part["Content-Type"]), payload)
    return found


def reply(to: EmailMessage, *, sender: str, name: str, body: str) -> bytes:
    """A member's reply to one of our messages (threads by In-Reply-To and References)."""
    message_id = str(to["Message-ID"]).strip().strip("<>")
    return citizen_mail(
        sender=sender,
        name=name,
        subject=f"Re: {to['Subject']}",
        body=body,
        in_reply_to=message_id,
        references=[message_id],
        to="info@dizo.test",
    )


@dataclass
class People:
    """The group of a test and its people (ids)."""

    group_id: int
    chair: int
    secretary: int
    m1: int
    m2: int
    m3: int
    guest: int


ADDRESSES = {
    "chair": ("Иванов Иван Иванович", "chair@wg.example.ru"),
    "secretary": ("Сидорова Светлана Сергеевна", "secretary@wg.example.ru"),
    "m1": ("Петров Пётр Петрович", "petrov@wg.example.ru"),
    "m2": ("Кузнецова Анна Павловна", "kuznetsova@wg.example.ru"),
    "m3": ("Смирнов Олег Игоревич", "smirnov@wg.example.ru"),
    "guest": ("Орлова Мария Андреевна", "orlova@example.ru"),
}


def make_group(
    settings: Settings, now: dt.datetime, profile: str = "novosibirsk", slug: str = "kc", *, verified: bool = True
) -> People:
    """A group with a chair, a secretary, three members and an invitee (five voting members)."""
    roles = {
        "chair": "chair",
        "secretary": "secretary",
        "m1": "member",
        "m2": "member",
        "m3": "member",
        "guest": "invitee",
    }
    ids: dict[str, int] = {}
    with session_scope(settings) as session:
        group = groups.create_group(
            session,
            slug=slug,
            title="Рабочая группа по клиентоцентричности",
            profile=profile,
            overrides={},
            now=now,
            actor="test",
        )
        for key, role in roles.items():
            name, address = ADDRESSES[key]
            member = groups.add_member(
                session,
                settings,
                group,
                name=name,
                email=address,
                role=role,
                position="должность",
                now=now,
                actor="test",
                verified=verified,
            )
            ids[key] = member.id
        return People(group.id, **ids)


def working_days_ahead(settings: Settings, now: dt.datetime, days: int, hour: int = 10) -> dt.datetime:
    """``days`` working days after today (local), at ``hour`` local time, as UTC."""
    today = service.local_today(settings, now)
    day = default_calendar(settings).add_working_days(today, days)
    return service.local_start(settings, day, dt.time(hour, 0))
