"""Fixes of tryout round 7's mailing findings: X6 and X7 (a progress callback raising a BaseException that is not
an Exception), X9 (two requests at once after a withdrawal).

Each test failed before its fix. The database tests run on SQLite and PostgreSQL (the ``db_url`` fixture behind
``one`` and ``two_lists``); X9 needs two PostgreSQL connections and is skipped on SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import consent, subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.ledger import PassResult
from mailservice.mailings.models import Subscriber, Subscription
from mailservice.mailings.sender import send_campaign
from tests.servers import Recorder
from tests.test_mailings_confirm_letters import follow
from tests.test_mailings_consent import two_lists  # noqa: F401  (a fixture)
from tests.test_mailings_sender_rules import one  # noqa: F401  (a fixture)
from tests.test_mailings_sending import new_campaign, populate, states
from tests.test_tryout_dec6d import VICTIM_ADDRESS as HER
from tests.test_tryout_dec6d import _ask
from tests.waiting import run_within

# X6, X7 ---------------------------------------------------------------------------------------------------------


def _raising(error: BaseException) -> Any:
    def callback(result: PassResult) -> None:
        raise error

    return callback


class _Stopped(BaseException):
    """A callback's own BaseException (as asyncio.CancelledError is one): not an Exception."""


@pytest.mark.parametrize(
    "error",
    [SystemExit(3), KeyboardInterrupt(), asyncio.CancelledError(), _Stopped()],
    ids=["exit", "interrupt", "cancelled", "own"],
)
def test_a_callback_raising_a_base_exception_leaves_every_copy_recorded_or_handed_back(
    one: Settings,  # noqa: F811
    recorder: tuple[Recorder, int],
    error: BaseException,
) -> None:
    """As for an error (test_mailings_sender_rules): the copy in flight recorded as sent, the others back in the
    queue, then the exception reaches the caller (sender.run's docstring: every claimed copy ends recorded or
    handed back); the pass does not hang (30 s guard)."""
    handler, _port = recorder
    addresses = populate(one, 3)
    campaign_id = new_campaign(one)
    with pytest.raises(type(error)):
        run_within(send_campaign(one, campaign_id, on_outcome=_raising(error)), 30, "a callback's BaseException")
    assert [handler.count(a) for a in addresses] == [1, 0, 0]
    assert states(one, campaign_id) == {"sent": 1, "queued": 2}


# X9 -------------------------------------------------------------------------------------------------------------


def _request_news(session: Session, settings: Settings) -> str:
    """Her request for «Новости» on the site, in ``session``; the confirmation link's token."""
    address = parse_address(HER)
    assert address is not None
    result = subscribers.subscribe(
        session,
        settings,
        address=address,
        lists=subscribers.lists_by_slugs(session, ["news"]),
        evidence=Evidence(method="web_form", source="https://dizo.test/subscribe", ip="198.51.100.7"),
        consent_text=consent.current_consent(session, settings),
        now=utcnow(),
    )
    return subscribers.confirm_token(settings, session.get_one(Subscriber, result.subscriber_id))


def _waiting_on_a_lock(settings: Settings) -> bool:
    with session_scope(settings) as session:
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        return bool(waiting)


@pytest.mark.parametrize("followed", ["first", "second"])
def test_a_double_click_after_a_withdrawal_leaves_both_letters_working(
    two_lists: Settings,  # noqa: F811
    followed: str,
) -> None:
    """README (Mailings with consent): every confirmation letter's link works for the lists it named within
    MAILING_CONFIRM_HOURS; a citizen who asked twice may follow either letter."""
    settings = two_lists
    if settings.effective_database_url.startswith("sqlite"):
        pytest.skip("SQLite's BEGIN IMMEDIATE runs the two requests one after the other: no race")
    follow(settings, _ask(settings, "news", "198.51.100.7", utcnow() - dt.timedelta(hours=2)))
    with session_scope(settings) as session:
        [subscription] = session.scalars(select(Subscription)).all()
        withdrawal = Evidence(method="link", source="ссылка отказа в письме рассылки")
        subscribers.withdraw(session, settings, subscription, evidence=withdrawal, now=utcnow())
    tokens: dict[str, str] = {}
    waited = False
    with session_scope(settings) as first:
        tokens["first"] = _request_news(first, settings)  # flushed: the subscription's row is locked until commit

        def second_click() -> None:
            with session_scope(settings) as second:
                tokens["second"] = _request_news(second, settings)

        thread = threading.Thread(target=second_click)
        thread.start()
        for _ in range(600):  # until the second request waits for the first one's row lock
            if _waiting_on_a_lock(settings):
                waited = True
                break
            if not thread.is_alive():
                break
            time.sleep(0.05)
    thread.join(60)
    assert waited, "the second request did not wait for the first one: no race was tried"
    assert set(tokens) == {"first", "second"}
    assert follow(settings, tokens[followed]) == ["news"]
