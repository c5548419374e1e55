"""Helpers of the identity attack tests (issue 14): the staff console, the sink, the outbox, as an attacker sees them.

They use only what the service offers from outside (intake, HTTP, the outbox table, the worker's jobs), so the
same tests ran against the code before issue 14 and failed there.
"""

from __future__ import annotations

from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Request
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import IntakeResult, Source, process_raw
from mailservice.jobs import default_jobs, run_due
from mailservice.outbox import OutboxMessage
from mailservice.web.staff.auth import Role
from tests.console_support import add_staff, client_for, drain, login, parsed, text_of
from tests.mailfactory import citizen_mail
from tests.servers import Sink

OPERATOR = "operator@dizo.test"


def staff_console(settings: Settings) -> tuple[TestClient, str]:
    """A logged-in operator's browser and its CSRF token."""
    add_staff(settings, OPERATOR, Role.operator, name="Оператор")
    http = client_for(settings)
    return http, login(http, OPERATOR)


def register_call(http: TestClient, csrf: str, *, name: str, phone: str, email: str, subject: str, text: str) -> int:
    """Staff register a phone call through the console; returns the request's id."""
    response = http.post(
        "/staff/requests/new",
        data={
            "csrf_token": csrf, "channel": "phone", "subject": subject, "text": text,
            "name": name, "phone": phone, "email": email,
        },
    )  # fmt: skip
    assert response.status_code == 303, response.text
    return int(response.headers["location"].split("/")[-1].split("?")[0])


def deliver(settings: Settings, raw: bytes) -> IntakeResult:
    """A message arriving by SMTP."""
    return process_raw(settings, raw, Source("smtp"), now=utcnow())


def run_worker_once(settings: Settings) -> None:
    """What the worker does between passes (its periodic jobs), then the outbox drained to the sink."""
    run_due(settings, default_jobs())
    drain(settings)


def reply_to(sink: Sink, address: str, body: str, subject_has: str = "") -> bytes:
    """The holder of ``address`` answers the last message we sent there (whose subject holds ``subject_has``)."""
    last = [m for m in mail_to(sink, address) if subject_has in str(m["Subject"])][-1]
    return citizen_mail(
        sender=address,
        name="",
        subject=f"Re: {last['Subject']}",
        body=body,
        in_reply_to=str(last["Message-ID"]).strip("<>"),
    )


def mail_to(sink: Sink, address: str) -> list[EmailMessage]:
    """Every message the sink received for ``address``."""
    return [parsed(raw) for _from, rcpts, raw in sink.messages() if address in rcpts]


def texts_to(sink: Sink, address: str) -> str:
    """Subjects, To headers and bodies of everything sent to ``address``, in one text."""
    return "\n".join(f"{m['Subject']}\n{m['To']}\n{text_of(m)}" for m in mail_to(sink, address))


def outbox_count(settings: Settings) -> int:
    """Rows in the outbox."""
    with session_scope(settings) as session:
        return int(session.scalar(select(func.count(OutboxMessage.id))) or 0)


def number_of(settings: Settings, request_id: int) -> str:
    """The registration number of a request."""
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.number
        return request.number


__all__ = ["Outcome"]
