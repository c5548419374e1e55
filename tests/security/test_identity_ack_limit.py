"""Issue 14, low: ten forged letters in a sender's name gave that address ten acknowledgements.

Acknowledgements to one address are limited per hour (``ACK_LIMIT_PER_HOUR``); every letter is still
registered, and staff see a note on each request whose acknowledgement was held back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Event, Request
from mailservice.intake.pipeline import Source, process_batch
from tests.conftest import make_env
from tests.console_support import drain
from tests.mailfactory import citizen_mail
from tests.security.identity_support import deliver, mail_to
from tests.servers import Sink

VICTIM = "victim@example.ru"
LIMIT = 3


def _letters(count: int) -> list[bytes]:
    return [
        citizen_mail(
            sender=VICTIM,
            name="Петрова Анна",
            subject=f"Запрос № {i} о договорах аренды",
            body=f"Прошу сообщить сведения о договоре аренды участка № {i} за 2025 год.",
        )
        for i in range(count)
    ]


def _check(settings: Settings, sink: Sink) -> None:
    drain(settings)
    acks = [m for m in mail_to(sink, VICTIM) if "зарегистрировано" in str(m["Subject"])]
    assert len(acks) == LIMIT
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Request.id)).where(Request.number.is_not(None))) == 10
        notes = session.scalars(select(Event).where(Event.kind == "note")).all()
        held = [n for n in notes if "не отправлен" in n.comment]
        assert len(held) == 10 - LIMIT and all(n.data.get("internal") for n in held)


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings, sink: Sink) -> Settings:
    """The test's settings with the limit set (both databases)."""
    return make_env(
        monkeypatch, tmp_path, settings.effective_database_url,
        smtp_port=str(sink.port), smtp_host="127.0.0.1", ack_limit_per_hour=str(LIMIT),
    )  # fmt: skip


def test_ten_forged_letters_one_at_a_time(limited: Settings, sink: Sink) -> None:
    for raw in _letters(10):
        deliver(limited, raw)
    _check(limited, sink)


def test_ten_forged_letters_in_one_batch(limited: Settings, sink: Sink) -> None:
    """The batch's fast mode writes the ten without a flush between them: the count must still hold."""
    process_batch(limited, [(raw, Source("smtp")) for raw in _letters(10)], now=utcnow())
    _check(limited, sink)
