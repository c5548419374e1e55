"""Consent is checked at the moment of sending, per list (RULES.md, mailings: "only to people who explicitly
consented and had not withdrawn at the moment of sending"), on both databases.

A campaign fixes its recipients when it starts; what happens to a subscription between that moment and the copy's
turn decides whether the copy leaves. Leaving the campaign's list while staying on another one adds no suppression
entry, so only the per-list condition stops that copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import campaigns, consent, roster, subscribers
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import Delivery, MailingList, Subscriber, Subscription, Suppression
from mailservice.mailings.sender import send_campaign
from tests.conftest import make_env, reset_caches
from tests.servers import Recorder, Sink
from tests.waiting import run_within

TEMPLATE = "Здравствуйте!\n\nНовости.\n\nОтписаться: {{ unsubscribe_url }}\n"


@pytest.fixture
def two_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Both backends, mail to the sink, no throttle, lists "news" and "tenders"."""
    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        smtp_host="127.0.0.1",
        mailing_rate_per_minute="0",
    )
    with session_scope(settings) as session:
        subscribers.default_list(session)
        subscribers.create_list(session, "tenders", "Торги", "информирование о торгах")
    yield settings
    reset_caches()


def on_lists(settings: Settings, address: str, slugs: list[str]) -> None:
    """Subscribe and confirm (double opt-in, as on the site)."""
    parsed = parse_address(address)
    assert parsed is not None
    with session_scope(settings) as session:
        result = subscribers.subscribe(
            session,
            settings,
            address=parsed,
            lists=subscribers.lists_by_slugs(session, slugs),
            evidence=Evidence(method="web_form", source="https://dizo.test/subscribe"),
            consent_text=consent.current_consent(session, settings),
            now=utcnow(),
        )
        subscriber = session.get(Subscriber, result.subscriber_id)
        assert subscriber is not None
        token = subscribers.confirm_token(settings, subscriber)
    with session_scope(settings) as session:
        subscribers.confirm(session, settings, token, evidence=Evidence(method="link"), consent_text=None, now=utcnow())


def unsubscribe_token(settings: Settings, address: str, slug: str) -> str:
    parsed = parse_address(address)
    assert parsed is not None
    with session_scope(settings) as session:
        row = session.scalar(
            select(Subscription)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscriber.email_hash == parsed.hash, MailingList.slug == slug)
        )
        assert row is not None
        return subscribers.unsubscribe_token(settings, row.id, row.nonce)


def leave(settings: Settings, address: str, slug: str) -> None:
    """The one-click link of that list's mailing."""
    result = subscribers.withdraw_by_link(
        settings, unsubscribe_token(settings, address, slug), evidence=Evidence(method="one_click")
    )
    assert result.changed


def copies(sink: Sink) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _from, rcpts, _raw in sink.messages():
        for rcpt in rcpts:
            counts[rcpt] = counts.get(rcpt, 0) + 1
    return counts


def started_news_campaign(settings: Settings) -> int:
    with session_scope(settings) as session:
        campaign = campaigns.create(session, settings, list_slug="news", subject="Новости", text=TEMPLATE)
        campaigns.start(session, settings, campaign.id, utcnow())
        return campaign.id


def delivery_states(settings: Settings, campaign_id: int) -> dict[str, str]:
    with session_scope(settings) as session:
        return {
            str(email): str(state)
            for email, state in session.execute(
                select(Subscriber.email, Delivery.state)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Delivery.campaign_id == campaign_id)
            ).all()
        }


def test_leaving_the_campaigns_list_while_staying_on_another_stops_the_copy(two_lists: Settings, sink: Sink) -> None:
    settings = two_lists
    on_lists(settings, "stays@example.org", ["news", "tenders"])
    on_lists(settings, "leaves@example.org", ["news", "tenders"])
    on_lists(settings, "only-news@example.org", ["news"])
    sink.clear()  # the confirmation requests
    campaign_id = started_news_campaign(settings)
    assert len(delivery_states(settings, campaign_id)) == 3  # all three were on "news" when it started

    leave(settings, "leaves@example.org", "news")
    with session_scope(settings) as session:  # still on "tenders": no suppression entry, by design
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    sink.clear()  # the withdrawal's own notice, if any

    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert copies(sink) == {"stays@example.org": 1, "only-news@example.org": 1}
    assert summary.totals.skipped == 1 and summary.totals.sent == 2
    assert delivery_states(settings, campaign_id)["leaves@example.org"] == "skipped"


def test_leaving_a_list_that_is_not_the_campaigns_changes_nothing(two_lists: Settings, sink: Sink) -> None:
    settings = two_lists
    on_lists(settings, "both@example.org", ["news", "tenders"])
    sink.clear()
    campaign_id = started_news_campaign(settings)
    leave(settings, "both@example.org", "tenders")
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert copies(sink) == {"both@example.org": 1}


def test_withdrawing_consent_entirely_stops_the_copy(two_lists: Settings, sink: Sink) -> None:
    settings = two_lists
    on_lists(settings, "stays@example.org", ["news"])
    on_lists(settings, "gone@example.org", ["news", "tenders"])
    sink.clear()
    campaign_id = started_news_campaign(settings)
    leave(settings, "gone@example.org", "tenders")
    leave(settings, "gone@example.org", "news")
    with session_scope(settings) as session:  # nothing left: the address is suppressed
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
    sink.clear()
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert copies(sink) == {"stays@example.org": 1}
    assert delivery_states(settings, campaign_id)["gone@example.org"] == "skipped"


def test_resubscribing_in_between_needs_the_new_confirmation_first(two_lists: Settings, sink: Sink) -> None:
    """Left "news" after the start, then asked to come back: an unconfirmed request is no consent (double
    opt-in); once confirmed, consent stands again at the moment of sending and the one copy goes out."""
    settings = two_lists
    on_lists(settings, "pending@example.org", ["news", "tenders"])
    on_lists(settings, "confirmed@example.org", ["news", "tenders"])
    sink.clear()
    campaign_id = started_news_campaign(settings)
    for address in ("pending@example.org", "confirmed@example.org"):
        leave(settings, address, "news")
        with session_scope(settings) as session:
            outcome = subscribers.resubscribe(
                session,
                settings,
                unsubscribe_token(settings, address, "news"),
                evidence=Evidence(method="web_form"),
                consent_text=None,
                now=utcnow(),
            )
            assert outcome is not None and outcome.outcome == "confirmation_sent"
    on_lists(settings, "confirmed@example.org", ["news"])  # follows the new link this time
    sink.clear()
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    assert copies(sink) == {"confirmed@example.org": 1}
    states = delivery_states(settings, campaign_id)
    assert states == {"pending@example.org": "skipped", "confirmed@example.org": "sent"}


def test_leaving_one_list_in_the_middle_of_the_campaign(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, recorder: tuple[Recorder, int]
) -> None:
    """The same while the campaign runs: no copy arrives after the withdrawal from its list commits, though the
    address stays on the other list (so nothing suppresses it)."""
    handler, port = recorder
    handler.delay = 0.004  # a slow relay: withdrawals land in the middle of the campaign
    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(port),
        mailing_rate_per_minute="0",
        mailing_concurrency="3",
        mailing_batch_size="25",
    )
    addresses = [f"user{n:04d}@example.org" for n in range(240)]
    with session_scope(settings) as session:
        subscribers.default_list(session)
        subscribers.create_list(session, "tenders", "Торги", "информирование о торгах")
        version = consent.current_consent(session, settings).version
        rows = [
            (
                line,
                {
                    "email": address,
                    "list": slug,
                    "consent_at": "2026-02-01T09:00:00",
                    "consent_source": "https://dizo.test/subscribe",
                    "consent_text_version": version,
                },
            )
            for line, (address, slug) in enumerate(((a, s) for a in addresses for s in ("news", "tenders")), start=2)
        ]
        report = roster.import_rows(session, settings, rows, source_name="t.csv", now=utcnow())
        assert not report.refused and report.added == 2 * len(addresses)
    campaign_id = started_news_campaign(settings)
    leavers = list(reversed(addresses[5::6]))  # from the end while the campaign goes from the start
    tokens = {a: unsubscribe_token(settings, a, "news") for a in leavers}
    outcome: dict[str, object] = {}
    sender = threading.Thread(
        target=lambda: outcome.update(summary=run_within(send_campaign(settings, campaign_id), 120, "the campaign"))
    )
    sender.start()
    deadline = time.monotonic() + 60
    while len(handler.arrivals) < 20:
        assert time.monotonic() < deadline, "the campaign did not start sending within 60 s"
        time.sleep(0.002)
    withdrawn_at: dict[str, float] = {}
    for address in leavers:
        if not sender.is_alive():
            break
        subscribers.withdraw_by_link(settings, tokens[address], evidence=Evidence(method="one_click"))
        withdrawn_at[address] = time.time()  # committed by now
    sender.join(timeout=120)
    assert not sender.is_alive(), "the campaign did not finish within 120 s"
    assert outcome["summary"].status == "done"  # type: ignore[attr-defined]

    arrivals: dict[str, list[float]] = {}
    for rcpt, at in handler.arrivals:
        arrivals.setdefault(rcpt, []).append(at)
    late = [a for a, at in withdrawn_at.items() if any(t > at for t in arrivals.get(a, []))]
    assert not late, f"copies arrived after the withdrawal from the list committed: {late}"
    for address in addresses:
        assert len(arrivals.get(address, [])) == (0 if address in withdrawn_at and not arrivals.get(address) else 1)
    skipped = [a for a in withdrawn_at if not arrivals.get(a)]
    assert skipped, "no withdrawal landed before its copy's turn: the test proved nothing"
    states = delivery_states(settings, campaign_id)
    assert all(states[a] == "skipped" for a in skipped)
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        still = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(MailingList.slug == "tenders", Subscription.status == "active")
        )
        assert still == len(addresses)
