"""Register first on the held-out labelled mail (issue 13): every letter of the held-out fifth of the packaged sets
e-mailed to the real intake, a quarter with no subject and a fifth as HTML only; SQLite takes them all,
PostgreSQL a sample.

What the law asks (59-FZ art. 8, 8-FZ art. 18): a person's letter is registered and acknowledged whatever the
classifier thinks of it; only advertising may wait, visibly. Commands act only in their strict forms (README,
"Register first"): nothing else subscribes, unsubscribes or exports anyone.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from mailservice.classify.engine import PACKAGED_SETS
from mailservice.classify.evaluate import read_datasets, split
from mailservice.classify.model import Example
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.history.models import HistoryExport
from mailservice.inforequests.models import Request
from mailservice.inforequests.queues import forwarding_date
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_batch
from mailservice.intake.routes import load_routes
from mailservice.mailings.models import Subscription
from mailservice.outbox import OutboxMessage
from tests.mailfactory import citizen_mail, html_mail

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)  # Monday 02.03.2026, 12:00 in Novosibirsk
# Letters a person writes with a request in them: registered whatever else.
REQUEST_TYPES = {"info_request", "appeal"}
COMMAND_TYPES = {"subscription", "history_request"}
POSTGRES_SAMPLE = 80


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def held_out() -> list[Example]:
    return split(read_datasets(PACKAGED_SETS))[1]


def as_mail(i: int, example: Example) -> bytes:
    """Letter ``i`` as it would arrive: every fourth without a subject, every fifth as HTML only."""
    subject = None if i % 4 == 0 else example.subject or None
    sender = f"writer{i}@example.ru"
    body = example.body or example.subject or "."
    if i % 5 == 1:
        paragraphs = [p for p in body.split("\n") if p.strip()] or ["."]
        return html_mail(sender=sender, name="", subject=subject, paragraphs=paragraphs)
    return citizen_mail(sender=sender, name="", subject=subject, body=body)


def test_held_out_mail_is_registered_and_acknowledged(settings: Settings) -> None:
    letters = held_out()
    if settings.effective_database_url.startswith("postgresql"):
        letters = letters[:: max(1, len(letters) // POSTGRES_SAMPLE)]
    raws = [as_mail(i, e) for i, e in enumerate(letters)]
    results = []
    for start in range(0, len(raws), 50):
        batch = [(raw, Source("file")) for raw in raws[start : start + 50]]
        results.extend(process_batch(settings, batch, now=NOW))
    assert len(results) == len(letters)
    assert not [r for r in results if r.outcome is Outcome.quarantined]

    with session_scope(settings) as session:
        acknowledged = {
            recipients
            for recipients in session.scalars(
                select(OutboxMessage.recipients).where(OutboxMessage.kind == "acknowledgement")
            )
        }
        requests = [
            (example, result) for example, result in zip(letters, results, strict=True) if example.type in REQUEST_TYPES
        ]
        registered = [
            (i, example, result)
            for i, (example, result) in enumerate(zip(letters, results, strict=True))
            if example.type in REQUEST_TYPES and result.outcome is Outcome.new_request and result.request_number
        ]
        share = len(registered) / len(requests)
        missed = [(e.subject, e.body[:80], r.outcome) for e, r in requests if r.outcome is not Outcome.new_request]
        assert share >= 0.98, (share, missed)
        for i, _example, _result in registered:
            assert f"writer{i}@example.ru" in acknowledged, i
        # Nothing but a command in its strict form went to the mailings or the history export.
        for example, result in zip(letters, results, strict=True):
            if example.type not in COMMAND_TYPES:
                assert result.outcome is not Outcome.routed, (example.subject, example.body[:80], result.reason)
        routed = [
            (e.type, e.subject, e.body[:60])
            for e, r in zip(letters, results, strict=True)
            if r.outcome is Outcome.routed
        ]
        assert session.scalar(select(func.count(Subscription.id))) <= sum(t == "subscription" for t, *_ in routed)
        assert session.scalar(select(func.count(HistoryExport.id))) <= sum(t == "history_request" for t, *_ in routed)
        # Advertising may wait, never silently: every letter has its journal row and its request row.
        assert session.scalar(select(func.count(IntakeEntry.id))) == len(letters)
        # Letters the classifier puts outside the remit wait "to forward", seven days from registration.
        outside = session.scalars(select(Request).where(Request.topic == "outside", Request.number.is_not(None)))
        dates = {forwarding_date(request, settings.tz) for request in outside}
        assert dates == {dt.date(2026, 3, 9)} or not dates


@pytest.mark.parametrize(
    ("subject", "body", "kind"),
    [
        ("Отписаться от рассылки", "", "unsubscribe"),
        ("", "Прошу предоставить историю моих обращений", "history"),
        ("Подписаться на рассылку", "Спасибо.", "subscribe"),
    ],
)
def test_short_explicit_commands_are_still_routed(settings: Settings, subject: str, body: str, kind: str) -> None:
    raw = citizen_mail(sender="cmd@example.ru", subject=subject or None, body=body or ".")
    result = process_batch(settings, [(raw, Source("file"))], now=NOW)[0]
    assert result.outcome is Outcome.routed, (kind, result.outcome, result.reason)
    assert result.request_number is None


def test_a_roads_letter_is_registered_outside_the_remit_with_its_forwarding_date(settings: Settings) -> None:
    # No classifier stub: the packaged classifier must see that a road is another body's business.
    raw = citizen_mail(
        sender="driver@example.ru",
        subject=None,
        body="Здравствуйте. На участке дороги у дома 15 по ул. Садовой яма по колено, вчера пробил колесо. "
        "Когда отремонтируете?",
    )
    result = process_batch(settings, [(raw, Source("file"))], now=NOW)[0]
    assert result.outcome is Outcome.new_request and result.request_number
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.topic == "outside" and request.number == result.request_number
        # Registered 02.03.2026: forwarded within 7 days of registration, so by 09.03.2026 (README).
        assert forwarding_date(request, settings.tz) == dt.date(2026, 3, 9)
        kinds = list(session.scalars(select(OutboxMessage.kind)))
    assert kinds == ["acknowledgement"]
