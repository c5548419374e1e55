"""What one consent record holds and says (152-FZ art. 9: specific, informed, unambiguous; the operator proves it).

README, "Mailings with consent": the log keeps, for each consent given, the time, source page, IP, user agent,
purpose, data, operator, term, withdrawal method, and the text shown with its version; the text names the operator
in the dative case (`DEPARTMENT_NAME_DATIVE`, by default the name with its first word declined). These tests read
back what `consent.record` and `consent.current_consent` store, on both databases, and check the pure parts
(address keys, the text and its version) against what the consent text itself promises.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.mailings import consent
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import ConsentEvent, ConsentText, MailingList, Subscriber, Subscription
from tests import documented
from tests.conftest import make_env, reset_caches

NAME = "Департамент имущества и земельных отношений Новосибирской области"
AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def plain(**values: str) -> Settings:
    """Settings without a database, for the pure parts."""
    base = {"department_name": NAME, "department_name_dative": "", "from_address": "info@dizo.test"}
    return Settings(**{**base, **values})  # type: ignore[arg-type]


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Settings]:
    """Both backends; a named operator, its address and a separate address for withdrawals."""
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        department_name=NAME,
        department_address="630007, г. Новосибирск, ул. Кирова, 3",
        mailing_unsubscribe_address="unsubscribe@dizo.test",
    )
    reset_caches()


# Pure parts ---------------------------------------------------------------------------------------------------


def test_the_operator_is_named_in_the_dative_case() -> None:
    assert consent.operator_dative(plain()) == "Департаменту имущества и земельных отношений Новосибирской области"
    assert consent.operator_dative(plain(department_name="Министерство строительства")) == (
        "Министерству строительства"
    )
    # A name whose first word is not one the default knows is used as it is, not garbled.
    assert consent.operator_dative(plain(department_name="ГКУ «Фонд имущества»")) == "ГКУ «Фонд имущества»"
    assert consent.operator_dative(plain(department_name="Мэрия")) == "Мэрия"
    given = plain(department_name_dative="  Департаменту по делам молодёжи ")
    assert consent.operator_dative(given) == "Департаменту по делам молодёжи"


def test_withdrawal_is_by_the_link_or_a_letter_to_the_unsubscribe_address() -> None:
    separate = plain(mailing_unsubscribe_address="unsubscribe@dizo.test")
    assert consent.contact_address(separate) == "unsubscribe@dizo.test"
    assert consent.contact_address(plain()) == "info@dizo.test"  # none set: the department's own address
    method = consent.withdrawal_method(separate)
    assert "«Отписаться»" in method and method.endswith("unsubscribe@dizo.test")


def test_the_consent_text_names_operator_address_and_contact() -> None:
    text = consent.render_consent_text(
        plain(department_address="630007, г. Новосибирск, ул. Кирова, 3", mailing_unsubscribe_address="u@dizo.test")
    )
    assert text.startswith(
        "Я даю согласие Департаменту имущества и земельных отношений Новосибирской области "
        "(630007, г. Новосибирск, ул. Кирова, 3) на обработку"
    )
    assert "или написать на адрес u@dizo.test." in text
    assert text == text.strip() and "None" not in text
    without_address = consent.render_consent_text(plain())
    assert "Новосибирской области на обработку" in without_address and "()" not in without_address


def test_a_text_version_is_the_texts_own_digest() -> None:
    text = consent.render_consent_text(plain())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Versions already in the log are "t-" and the first 12 hex digits: the same text must keep its label.
    assert consent.text_version(text) == (f"t-{digest[:12]}", digest)
    assert consent.text_version(text + " ")[0] != consent.text_version(text)[0]


def test_the_suppression_key_of_an_address_does_not_change_between_releases() -> None:
    # Suppression entries and the consent log outlive the addresses (purged after a withdrawal): a changed recipe
    # would let a withdrawn address be mailed again. The recipe: SHA-256 of "mailservice-mailing:" + the address
    # case-folded.
    expected = hashlib.sha256(b"mailservice-mailing:reader@example.org").hexdigest()
    assert consent.email_hash(" Reader@Example.ORG ") == expected
    parsed = parse_address("  Reader@example.org ")
    assert parsed is not None and parsed.normalized == "Reader@example.org" and parsed.hash == expected


# The log, on both databases ------------------------------------------------------------------------------------


def _subscriber_and_list(session: object, *, purpose: str) -> tuple[Subscriber, MailingList]:
    subscriber = Subscriber(email="reader@example.org", email_hash=consent.email_hash("reader@example.org"))
    mailing_list = MailingList(slug="news", title="Новости департамента", purpose=purpose)
    session.add_all([subscriber, mailing_list])  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return subscriber, mailing_list


def test_a_consent_record_holds_every_part_of_the_proof(logged: Settings) -> None:
    long_agent = "Mozilla/5.0 " + "x" * 3000
    with session_scope(logged) as session:
        shown = consent.current_consent(session, logged)
        subscriber, news = _subscriber_and_list(session, purpose="информирование о новостях департамента")
        subscription = Subscription(subscriber_id=subscriber.id, list_id=news.id, nonce="n")
        session.add(subscription)
        session.flush()
        consent.record(
            session,
            logged,
            kind="given",
            subscriber_id=subscriber.id,
            subscription_id=subscription.id,
            address_hash=subscriber.email_hash,
            evidence=Evidence(
                method="web_form",
                source="https://dizo.test/subscribe?" + "p" * 3000,
                ip="2001:db8:85a3:8d3:1319:8a2e:370:7348",
                user_agent=long_agent,
                detail="d" * 3000,
            ),
            mailing_list=news,
            consent=shown,
            at=AT,
        )
        expected_text = consent.render_consent_text(logged)
    with session_scope(logged) as session:
        event = session.scalars(select(ConsentEvent)).one()
        news_id = session.scalar(select(MailingList.id))
        assert (event.at, event.kind, event.subscriber_id, event.list_id) == (AT, "given", subscriber.id, news_id)
        assert event.subscription_id == session.scalar(select(Subscription.id))
        assert event.email_hash == consent.email_hash("reader@example.org")
        assert (event.method, event.ip) == ("web_form", "2001:db8:85a3:8d3:1319:8a2e:370:7348")
        assert event.purpose == "информирование о новостях департамента"
        # What the consent text promises is what the record says.
        assert "адрес электронной почты" in event.data_processed and "имя" in event.data_processed
        assert event.operator == NAME
        assert "до отзыва" in event.term
        assert "«Отписаться»" in event.withdrawal_method and "unsubscribe@dizo.test" in event.withdrawal_method
        stored = session.get(ConsentText, event.consent_version)
        assert stored is not None and stored.text == expected_text
        assert event.consent_sha256 == stored.sha256 == hashlib.sha256(expected_text.encode("utf-8")).hexdigest()
        # Long evidence is cut to the documented lengths, never refused (a consent is not lost for a long header).
        assert event.source == ("https://dizo.test/subscribe?" + "p" * 3000)[: documented.CONSENT_SOURCE_CHARS]
        assert event.user_agent == long_agent[: documented.CONSENT_USER_AGENT_CHARS]
        assert event.detail == "d" * documented.CONSENT_DETAIL_CHARS


def test_a_record_without_list_or_text_says_so_and_cuts_to_the_columns(logged: Settings) -> None:
    with session_scope(logged) as session:
        subscriber, _ = _subscriber_and_list(session, purpose="")
        consent.record(
            session,
            logged,
            kind="withdrawn",
            subscriber_id=subscriber.id,
            address_hash=subscriber.email_hash,
            evidence=Evidence(method="m" * 50, ip="i" * 80),
            at=AT,
        )
    method_chars = ConsentEvent.__table__.c.method.type.length  # type: ignore[attr-defined]
    ip_chars = ConsentEvent.__table__.c.ip.type.length  # type: ignore[attr-defined]
    with session_scope(logged) as session:
        event = session.scalars(select(ConsentEvent)).one()
        assert (event.list_id, event.subscription_id) == (None, None)
        assert (event.purpose, event.consent_version, event.consent_sha256) == ("", "", "")
        assert (event.source, event.user_agent, event.detail) == ("", "", "")
        assert (event.method, event.ip) == ("m" * method_chars, "i" * ip_chars)


def test_a_list_without_a_purpose_is_recorded_by_its_title(logged: Settings) -> None:
    with session_scope(logged) as session:
        subscriber, news = _subscriber_and_list(session, purpose="")
        consent.record(
            session,
            logged,
            kind="given",
            subscriber_id=subscriber.id,
            address_hash=subscriber.email_hash,
            evidence=Evidence(method="import"),
            mailing_list=news,
            at=AT,
        )
    with session_scope(logged) as session:
        assert session.scalars(select(ConsentEvent.purpose)).one() == "Новости департамента"


def test_the_text_in_force_is_stored_once_and_found_by_its_version(logged: Settings) -> None:
    with session_scope(logged) as session:
        first = consent.current_consent(session, logged)
        version = first.version
    with session_scope(logged) as session:
        again = consent.current_consent(session, logged)
        assert again.version == version
        assert session.scalars(select(ConsentText.version)).all() == [version]
        found = consent.known_consent(session, version)
        assert found is not None and found.text == consent.render_consent_text(logged)
        assert consent.known_consent(session, "t-000000000000") is None
        assert consent.known_consent(session, "") is None
