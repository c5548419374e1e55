"""The sender's consent re-check where it meets a failing SMTP transaction, staged without timing (both databases).

On PostgreSQL the consent round of a copy starts once MAIL is accepted and runs while RCPT and DATA travel
(``mailservice/mailings/sender.py``, module docstring); on SQLite it runs after the 354. Two races of that early
round are staged here deterministically with the Recorder SMTP server (``tests/servers.py``): a withdrawal that
commits between the claim and the round while the recipient is refused, and a connection lost after the round said
``go`` and before the message could be written. Seed 004 p. 13 and RULES.md: consent is checked at the moment of
sending; README, Mailings: at most once, 4xx and lost connections retry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import campaigns, sender, subscribers
from mailservice.mailings.consent import Evidence
from mailservice.mailings.models import Delivery, DeliveryState
from mailservice.mailings.sender import send_campaign, send_due
from tests.conftest import make_env, reset_caches
from tests.servers import Recorder
from tests.test_mailings_sending import new_campaign, populate, states, token_for
from tests.waiting import run_within


@pytest.fixture
def one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> Iterator[Settings]:
    """The Recorder as the relay, no throttle, one connection (the copies go out in turn, in claim order)."""
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(recorder[1]),
        mailing_rate_per_minute="0",
        mailing_concurrency="1",
        mailing_processes="1",
    )
    reset_caches()


def early_round(db_url: str) -> bool:
    """Whether the sender starts the consent round at MAIL (PostgreSQL) rather than after the 354 (SQLite)."""
    return not db_url.startswith("sqlite")


def test_a_copy_withdrawn_while_its_recipient_is_refused_is_counted_as_the_database_records_it(
    one: Settings, recorder: tuple[Recorder, int], db_url: str
) -> None:
    """The subscriber withdraws after the copy was claimed and before its consent round; the server then refuses
    the recipient. No copy arrives on either database. On PostgreSQL the round (started at MAIL) finds consent gone
    and marks the copy skipped; on SQLite no round runs for a copy refused before the 354, so it is failed. Either
    way the counts the sender reports (``SendSummary.totals``, what `campaign send` and its helpers add up) are the
    rows' states: a skipped copy is not also counted as failed."""
    handler, _port = recorder
    addresses = populate(one, 2)
    leaver = addresses[0]  # the first copy claimed (rows are claimed in order), so the first MAIL is its
    _sid, token = token_for(one, leaver)
    withdrawn: list[bool] = []

    def withdraw() -> None:
        result = subscribers.withdraw_by_link(one, token, evidence=Evidence(method="one_click"))
        withdrawn.append(result.changed)

    handler.on_mail = [withdraw]
    handler.refuse = {leaver: "550 5.1.1 No such user"}
    campaign_id = new_campaign(one)

    summary = run_within(send_campaign(one, campaign_id), 60, "the campaign")

    assert withdrawn == [True], "the withdrawal did not run at the first MAIL"
    assert summary.status == "done"
    assert [handler.count(a) for a in addresses] == [0, 1]
    rows = states(one, campaign_id)
    assert rows == ({"skipped": 1, "sent": 1} if early_round(db_url) else {"failed": 1, "sent": 1})
    counted = {"sent": summary.totals.sent, "failed": summary.totals.failed, "skipped": summary.totals.skipped}
    assert {k: v for k, v in counted.items() if v} == rows
    assert summary.totals.ambiguous == summary.totals.deferred == 0


def test_a_connection_lost_after_the_consent_verdict_and_before_the_message_is_retried(
    one: Settings, recorder: tuple[Recorder, int], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's 354 comes with a line that is no SMTP reply, so the sender drops the connection before it can
    write the message. On PostgreSQL the 354 is held until the consent round has said ``go`` (the order the early
    round makes possible: the message is then written by the 354's side, which finds the connection gone); on
    SQLite the round follows the 354 and its write finds the connection gone. Nothing was transferred, so the copy
    is neither ambiguous nor lost: it is deferred like any 4xx and the next pass delivers it once (README,
    Mailings: at most once, 4xx retries)."""
    handler, _port = recorder
    addresses = populate(one, 3)
    target = addresses[1]
    handler.garble_after_354 = {target}
    cleared = threading.Event()
    if early_round(db_url):
        handler.hold_354 = cleared
    original_go = sender._Wire.go

    def go(wire: sender._Wire) -> None:
        try:
            original_go(wire)  # on SQLite it writes the message at once, and so meets the lost connection
        finally:
            if target.encode("ascii") in wire.data:
                cleared.set()

    monkeypatch.setattr(sender._Wire, "go", go)
    campaign_id = new_campaign(one)
    with session_scope(one) as session:
        campaigns.start(session, one, campaign_id, utcnow())

    assert run_within(send_due(one), 60, "the sending pass") == 2
    assert cleared.is_set(), "the consent round never said go for the copy"
    assert states(one, campaign_id) == {"sent": 2, "queued": 1}
    assert [handler.count(a) for a in addresses] == [1, 0, 1]
    with session_scope(one) as session:
        deferred = session.scalar(select(Delivery).where(Delivery.state == DeliveryState.queued))
        assert deferred is not None and deferred.attempts == 1 and deferred.next_attempt_at > utcnow()
        session.execute(update(Delivery).where(Delivery.id == deferred.id).values(next_attempt_at=utcnow()))
    assert run_within(send_due(one), 60, "the next pass") == 1
    assert states(one, campaign_id) == {"sent": 3}
    assert [handler.count(a) for a in addresses] == [1, 1, 1]
