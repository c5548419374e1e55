"""Every confirmation letter's link works for the lists it named, within MAILING_CONFIRM_HOURS (README, "Mailings
with consent"), also when a later letter names the same list; never for a list the letter did not name, nor for a
request made after the list was confirmed or withdrawn. On SQLite and PostgreSQL (the fixtures' parametrisation).
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from mailservice import db, tokens
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.mailings import subscribers
from mailservice.mailings.consent import Evidence
from mailservice.mailings.models import ConsentEvent, Subscription
from mailservice.tokens import Purpose
from tests.test_identity import fresh_url  # noqa: F401  (a fixture)
from tests.test_mailings_consent import two_lists  # noqa: F401  (a fixture)
from tests.test_tryout_dec6d import VICTIM_ADDRESS as HER
from tests.test_tryout_dec6d import _ask
from tests.test_tryout_dec6e_more import _statuses as statuses

HER_IP, STRANGER_IP = "198.51.100.7", "203.0.113.66"
CLICK = Evidence(method="link", source="подтверждение по ссылке из письма", ip="198.51.100.8", user_agent="Почта")


def follow(settings: Settings, token: str, at: dt.datetime | None = None) -> list[str]:
    """Her click on the letter's button: the slugs of the lists confirmed."""
    with session_scope(settings) as session:
        confirmed = subscribers.confirm(session, settings, token, evidence=CLICK, consent_text=None, now=at or utcnow())
        return [m.slug for m in confirmed]


def shown(settings: Settings, token: str) -> list[str]:
    """The lists the confirmation page names for the link."""
    with session_scope(settings) as session:
        link = subscribers.load_confirm(session, settings, token)
        return [m.slug for m in subscribers.pending_lists(session, settings, link, utcnow())]


def test_asked_twice_for_the_same_list_the_first_letters_link_subscribes_her(two_lists: Settings) -> None:  # noqa: F811
    settings = two_lists
    now = utcnow()
    first = _ask(settings, "news", HER_IP, now - dt.timedelta(hours=2))
    second = _ask(settings, "news", HER_IP, now - dt.timedelta(hours=1))
    assert first != second
    assert shown(settings, first) == shown(settings, second) == ["news"]
    clicked = now.replace(microsecond=0)
    assert follow(settings, first, clicked) == ["news"]
    assert statuses(settings) == {"news": "active"}
    # The consent is recorded with the time and the source of her click, once.
    with session_scope(settings) as session:
        log = session.execute(select(ConsentEvent.kind, ConsentEvent.at, ConsentEvent.source).order_by(ConsentEvent.id))
        records = [tuple(row) for row in log]
    assert [kind for kind, _at, _source in records] == ["given", "given", "confirmed"]
    assert records[-1][1:] == (clicked, CLICK.source)
    # The second letter's link, followed afterwards, confirms nothing more and is no error.
    assert follow(settings, second) == []
    assert statuses(settings) == {"news": "active"}


def test_a_strangers_later_request_for_the_same_list_leaves_her_link_working(two_lists: Settings) -> None:  # noqa: F811
    settings = two_lists
    now = utcnow()
    hers = _ask(settings, "news", HER_IP, now - dt.timedelta(minutes=30))
    _ask(settings, "news", STRANGER_IP, now, also=["tenders"])  # the stranger's letter names «Торги» too
    assert shown(settings, hers) == ["news"]
    assert follow(settings, hers) == ["news"]  # hers, and not widened to the stranger's «Торги»
    assert statuses(settings) == {"news": "active", "tenders": "pending"}


def test_each_letter_works_within_its_own_hours(two_lists: Settings) -> None:  # noqa: F811
    settings = two_lists
    now = utcnow()
    hours = dt.timedelta(hours=settings.mailing_confirm_hours)
    lapsed = _ask(settings, "news", HER_IP, now - hours - dt.timedelta(hours=1))
    fresh = _ask(settings, "news", HER_IP, now - hours + dt.timedelta(hours=1))
    assert follow(settings, lapsed) == []  # past MAILING_CONFIRM_HOURS from its sending
    assert statuses(settings) == {"news": "pending"}
    assert follow(settings, fresh, now + dt.timedelta(hours=2)) == []  # its own hours are over too
    assert follow(settings, fresh, now) == ["news"]


def test_a_letter_from_before_a_withdrawal_confirms_no_later_request(two_lists: Settings) -> None:  # noqa: F811
    # She subscribed by her letter and withdrew; someone asks for the list again with her address. The old letter
    # was for a request already answered: its link does not confirm the new one, which waits for its own letter.
    settings = two_lists
    now = utcnow()
    old = _ask(settings, "news", HER_IP, now - dt.timedelta(hours=3))
    assert follow(settings, old, now - dt.timedelta(hours=2)) == ["news"]
    with session_scope(settings) as session:
        subscription = session.scalars(select(Subscription)).one()
        assert subscribers.withdraw(session, settings, subscription, evidence=CLICK, now=now - dt.timedelta(hours=1))
    new = _ask(settings, "news", STRANGER_IP, now - dt.timedelta(minutes=30))
    with pytest.raises(subscribers.LinkError):
        follow(settings, old)
    assert statuses(settings) == {"news": "pending"}
    assert follow(settings, new) == ["news"]


def test_the_purge_forgets_the_letters_whose_links_have_lapsed(two_lists: Settings) -> None:  # noqa: F811
    from mailservice.mailings import upkeep
    from mailservice.mailings.models import ConfirmRequest

    settings = two_lists
    now = utcnow()
    _ask(settings, "news", HER_IP, now - dt.timedelta(hours=settings.mailing_confirm_hours + 1))
    fresh = _ask(settings, "news", HER_IP, now - dt.timedelta(hours=1))
    with session_scope(settings) as session:
        upkeep.purge(session, settings, now)
    with session_scope(settings) as session:
        assert session.scalars(select(ConfirmRequest.requested_at)).all() == [now - dt.timedelta(hours=1)]
    assert follow(settings, fresh) == ["news"]


def test_a_link_mailed_before_the_upgrade_keeps_confirming_what_its_letter_named(fresh_url: str) -> None:  # noqa: F811
    # Before migration 2121 a pending subscription kept the nonce of its letter; that letter's link, already in the
    # mailbox, confirms the same lists after the upgrade (within its hours), and a lapsed request stays lapsed.
    settings = Settings(database_url=fresh_url)
    db.upgrade(settings, "2102_subscriber_spellings")
    now = utcnow()
    with db._engine_for(fresh_url).begin() as conn:
        for list_id, slug in ((1, "news"), (2, "tenders"), (3, "events")):
            conn.execute(
                sa.text(
                    "INSERT INTO mailing_lists (id, slug, title, purpose, created_at) VALUES (:id, :s, :s, '', :at)"
                ),
                {"id": list_id, "s": slug, "at": now},
            )
        conn.execute(
            sa.text(
                "INSERT INTO mailing_subscribers (id, email, email_ascii, email_hash, name, created_at, confirm_nonce) "
                "VALUES (1, :a, :a, 'h', '', :at, 'letter2')"
            ),
            {"a": HER, "at": now},
        )
        # news and tenders named by her letter «letter2» an hour ago; events by a letter of ten days ago.
        for sid, list_id, nonce, asked in ((1, 1, "letter2", now - dt.timedelta(hours=1)),
                                           (2, 2, "letter2", now - dt.timedelta(hours=1)),
                                           (3, 3, "letter1", now - dt.timedelta(days=10))):  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO mailing_subscriptions (id, subscriber_id, list_id, status, nonce, created_at, "
                    "requested_at, confirm_nonce, withdrawn_via) VALUES (:id, 1, :list, 'pending', :n, :at, :at, "
                    ":nonce, '')"
                ),
                {"id": sid, "list": list_id, "n": f"u{sid}", "at": asked, "nonce": nonce},
            )
    db.upgrade(settings)
    old_link = tokens.sign_timed(settings, Purpose.subscribe_confirm, [1, "letter2"])
    assert follow(settings, old_link) == ["news", "tenders"]
    lapsed_link = tokens.sign_timed(settings, Purpose.subscribe_confirm, [1, "letter1"])
    assert follow(settings, lapsed_link) == []
    assert statuses(settings) == {"news": "active", "tenders": "active", "events": "pending"}
    db.dispose_engines()
