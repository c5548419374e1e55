"""Mailings end to end: subscribe over HTTP, confirm from the sunk e-mail, send a campaign to a real SMTP sink,
check every copy (personal working link, list headers, DKIM verified with dkimpy), withdraw with one click.

Also: scanners' GETs change nothing, bad tokens get 400 and change nothing, the form answers alike for every
address, header injection, IDN and malformed addresses, e-mailed requests, bounces, purge, import and export.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import re
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.models import Bounce, IntakeEntry
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.mailings import campaigns, consent, roster, subscribers, upkeep
from mailservice.mailings.consent import Evidence, parse_address
from mailservice.mailings.models import (
    Campaign,
    ConsentEvent,
    Delivery,
    DeliveryState,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
)
from mailservice.mailings.render import CampaignRenderer, CampaignSource, Recipient, TemplateRefused, validate
from mailservice.mailings.sender import send_campaign, send_due
from mailservice.outbox import OutboxMessage, drain_once
from mailservice.tokens import Purpose
from mailservice.web.app import create_app
from tests import documented
from tests.conftest import make_env, reset_caches
from tests.mailfactory import citizen_mail
from tests.servers import Sink
from tests.waiting import run_within

TEMPLATE = """{% if name %}Уважаемый(ая) {{ name }}!{% else %}Здравствуйте!{% endif %}

Новые документы на сайте департамента.

Отписаться: {{ unsubscribe_url }}
"""
LINK = re.compile(r"https?://[^\s<>\"']+")


# ----------------------------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A throwaway RSA key and its DNS TXT record."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


@pytest.fixture
def mail_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink, dkim_key: tuple[Path, bytes]
) -> Iterator[Settings]:
    """Both backends; outgoing mail to the sink; DKIM on; no throttle."""
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        public_url="https://dizo.test",
        dkim_private_key_file=str(dkim_key[0]),
        dkim_selector="mail",
        mailing_rate_per_minute="0",
    )
    reset_caches()


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def messages_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [parse(raw) for _from, rcpts, raw in sink.messages() if address in rcpts]


def drain(settings: Settings) -> None:
    asyncio.run(drain_once(settings))


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


def subscribe_over_http(client: TestClient, address: str, **extra: str) -> None:
    response = client.post("/subscribe", data={"email": address, "consent": "1", **extra})
    assert response.status_code == 200, response.text


def confirm_link(settings: Settings, sink: Sink, address: str) -> str:
    drain(settings)
    mails = [m for m in messages_to(sink, address) if "Подтвердите" in str(m["Subject"])]
    assert mails, f"no confirmation e-mail to {address}"
    links = [u for u in LINK.findall(text_of(mails[-1])) if "/subscribe/confirm/" in u]
    assert len(links) == 1
    return links[0]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def subscription_of(settings: Settings, address: str) -> Subscription:
    parsed = parse_address(address)
    assert parsed is not None
    with session_scope(settings) as session:
        row = session.scalar(select(Subscription).join(Subscriber).where(Subscriber.email_hash == parsed.hash))
        assert row is not None
        return row


def import_active(settings: Settings, addresses: list[str], names: dict[str, str] | None = None) -> None:
    with session_scope(settings) as session:
        version = consent.current_consent(session, settings).version
        rows = [
            (
                n + 2,
                {
                    "email": a,
                    "name": (names or {}).get(a, ""),
                    "list": "",
                    "consent_at": "2026-01-10T10:00:00",
                    "consent_source": "https://old.dizo.test/form",
                    "consent_text_version": version,
                },
            )
            for n, a in enumerate(addresses)
        ]
        report = roster.import_rows(session, settings, rows, source_name="t.csv", now=utcnow())
        assert not report.refused, report.refused


def new_campaign(settings: Settings, template: str = TEMPLATE, subject: str = "Новости департамента") -> int:
    with session_scope(settings) as session:
        return campaigns.create(session, settings, list_slug="news", subject=subject, text=template).id


def status_of(settings: Settings, campaign_id: int) -> campaigns.CampaignStatusReport:
    with session_scope(settings) as session:
        return campaigns.status(session, campaign_id)


# ----------------------------------------------------------------------------------------------------------------
# End to end
# ----------------------------------------------------------------------------------------------------------------


def test_subscribe_confirm_send_and_withdraw_end_to_end(
    mail_settings: Settings, sink: Sink, dkim_key: tuple[Path, bytes]
) -> None:
    settings = mail_settings
    client = client_for(settings)
    confirmed = ["anna@example.org", "boris@пример.рф", "vera@example.net"]
    for address in [*confirmed, "unconfirmed@example.org", "leaver@example.org"]:
        subscribe_over_http(client, address, source="https://dizo.test/news")
    for address in [*confirmed, "leaver@example.org"]:
        link = confirm_link(settings, sink, address.replace("пример.рф", "xn--e1afmkfd.xn--p1ai"))
        # A scanner fetching the link creates no consent.
        page = client.get(path_of(link))
        assert page.status_code == 200 and "Подтвердить подписку" in page.text
        assert subscription_of(settings, address).status == SubscriptionStatus.pending
        done = client.post(path_of(link), data={})
        assert done.status_code == 200 and "Подписка подтверждена" in done.text
        assert subscription_of(settings, address).status == SubscriptionStatus.active
    # One person withdraws before the campaign.
    leaver = subscription_of(settings, "leaver@example.org")
    token = subscribers.unsubscribe_token(settings, leaver.id, leaver.nonce)
    assert client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    sink.clear()

    campaign_id = new_campaign(settings)
    with session_scope(settings) as session:
        uid = session.get(Campaign, campaign_id).uid  # type: ignore[union-attr]
    started = utcnow()
    summary = run_within(send_campaign(settings, campaign_id), 60, "the campaign")
    assert summary.status == "done"
    report = status_of(settings, campaign_id)
    assert (report.total, report.sent, report.queued, report.ambiguous) == (3, 3, 0, 0)
    # When it ended, as the disclosure site's statistics of mailings date it (publishing/stats.py).
    with session_scope(settings) as session:
        finished = session.get(Campaign, campaign_id).finished_at  # type: ignore[union-attr]
    assert finished is not None and started <= finished <= utcnow()

    received = {rcpt for _f, rcpts, _raw in sink.messages() for rcpt in rcpts}
    assert received == {"anna@example.org", "boris@xn--e1afmkfd.xn--p1ai", "vera@example.net"}
    message_ids = set()
    for _mail_from, rcpts, raw in sink.messages():
        assert len(rcpts) == 1
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only (policy.SMTP)
        assert dkim.verify(
            raw, dnsfunc=lambda name, timeout=5: dkim_key[1] if name == b"mail._domainkey.dizo.test." else None
        )
        signature = parse(raw)["DKIM-Signature"]
        header_list = re.search(r"h=([^;]+)", str(signature).replace("\r\n", ""))
        assert header_list is not None
        signed = {h.strip().lower() for h in header_list.group(1).split(":")}
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to", "subject", "message-id"} <= signed
        message = parse(raw)
        assert str(message["Precedence"]) == "bulk"
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert str(message["List-Id"]).endswith("<news.lists.dizo.test>")
        https, mailto = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
        assert https.startswith("https://dizo.test/unsubscribe/") and mailto.startswith("mailto:info@dizo.test?")
        assert https in text_of(message)  # the link is visible in the body too
        html = message.get_body(preferencelist=("html",))
        assert html is not None and https in html.get_content()
        message_ids.add(str(message["Message-ID"]))
        # README: a Message-ID stable per (campaign, recipient), made of the campaign's number, the recipient's
        # subscription and the campaign's random uid: ids alone repeat in another database, which RFC 5322 3.6.4
        # (a Message-ID unique worldwide) does not allow.
        subscription = subscription_of(settings, rcpts[0].replace("xn--e1afmkfd.xn--p1ai", "пример.рф"))
        assert str(message["Message-ID"]) == f"<mailing.{campaign_id}.{subscription.id}.{uid}@dizo.test>"
        # The personal link withdraws exactly this person (RFC 8058 one-click, multipart this time).
        response = client.post(path_of(https), files={"List-Unsubscribe": (None, "One-Click")})
        assert response.status_code == 200 and "Вы отписаны" in response.text
        assert (
            subscription_of(settings, rcpts[0].replace("xn--e1afmkfd.xn--p1ai", "пример.рф")).status
            == SubscriptionStatus.withdrawn
        )
    assert len(message_ids) == 3
    assert not messages_to(sink, "unconfirmed@example.org") and not messages_to(sink, "leaver@example.org")


def test_message_id_is_stable_per_campaign_and_recipient(lite_settings: Settings) -> None:
    source = CampaignSource("Тема", TEMPLATE, None, "Новости", "news")
    first = CampaignRenderer(lite_settings, source, campaign_id=7, uid="abc")
    again = CampaignRenderer(lite_settings, source, campaign_id=7, uid="abc")
    recipient = Recipient(42, "a@example.org", "", "https://x.test/unsubscribe/t", "mailto:u@x.test")
    ids = {str(parse(r.message(recipient))["Message-ID"]) for r in (first, again)}
    assert ids == {"<mailing.7.42.abc@dizo.test>"}


# ----------------------------------------------------------------------------------------------------------------
# Links: scanners, bad tokens, idempotency, undo
# ----------------------------------------------------------------------------------------------------------------


def test_unsubscribe_get_changes_nothing_and_post_is_idempotent(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["reader@example.org"])
    row = subscription_of(mail_settings, "reader@example.org")
    token = subscribers.unsubscribe_token(mail_settings, row.id, row.nonce)
    client = client_for(mail_settings)
    for _ in range(3):  # Safe Links, Proofpoint, Mimecast...
        page = client.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
        assert 'method="post"' in page.text and "<button" in page.text and ".submit()" in page.text
    assert subscription_of(mail_settings, "reader@example.org").status == SubscriptionStatus.active
    first = client.post(
        f"/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    second = client.post(f"/unsubscribe/{token}", data={"via": "page"})
    assert first.status_code == second.status_code == 200
    assert "location" not in first.headers and "set-cookie" not in first.headers
    with session_scope(mail_settings) as session:
        kinds = [e.kind for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))]
        methods = [e.method for e in session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "withdrawn"))]
        assert kinds == ["imported", "withdrawn"] and methods == ["one_click"]
        assert session.get(Suppression, parse_address("reader@example.org").hash) is not None  # type: ignore[union-attr]


def _tampered_tokens(settings: Settings, good: str, subscription_id: int) -> dict[str, str]:
    payload, _, signature = good.rpartition(".")
    # Not the last character: its low bits are base64 padding and may decode to the same bytes.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {
        "tampered signature": f"{payload}.{flipped}",
        "tampered payload": base64.urlsafe_b64encode(f'[{subscription_id + 1},"x"]'.encode()).decode().rstrip("=")
        + "."
        + signature,
        "truncated": good[: len(good) // 2],
        "other purpose": URLSafeSerializer(settings.signing_keys()[0], salt=Purpose.subscribe_confirm.value).dumps(
            [subscription_id, "x"]
        ),
        "retired key": URLSafeSerializer(
            "an-old-key-nobody-has-any-more-" + "z" * 20, salt=Purpose.unsubscribe.value
        ).dumps([subscription_id, "x"]),
        "unknown id": subscribers.unsubscribe_token(settings, 999999, "0" * 16),
        "wrong nonce": subscribers.unsubscribe_token(settings, subscription_id, "f" * 16),
        "garbage": "not-a-token",
    }


def test_bad_unsubscribe_tokens_get_400_and_change_nothing(mail_settings: Settings) -> None:
    import_active(mail_settings, ["reader@example.org"])
    row = subscription_of(mail_settings, "reader@example.org")
    good = subscribers.unsubscribe_token(mail_settings, row.id, row.nonce)
    client = client_for(mail_settings)
    for label, token in _tampered_tokens(mail_settings, good, row.id).items():
        for response in (
            client.get(f"/unsubscribe/{token}"),
            client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}),
            client.post(f"/unsubscribe/{token}/undo", data={"consent": "1"}),
        ):
            assert response.status_code == 400, label
            assert "Ссылка недействительна" in response.text and "reader@" not in response.text, label
    assert subscription_of(mail_settings, "reader@example.org").status == SubscriptionStatus.active
    with session_scope(mail_settings) as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 1


def test_key_rotation_old_links_keep_working(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink
) -> None:
    old = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), secret_keys="old-key-" + "o" * 40)
    import_active(old, ["reader@example.org"])
    row = subscription_of(old, "reader@example.org")
    token = subscribers.unsubscribe_token(old, row.id, row.nonce)
    rotated = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        secret_keys="new-key-" + "n" * 40 + ",old-key-" + "o" * 40,
    )
    assert subscribers.unsubscribe_token(rotated, row.id, row.nonce) != token  # new links: the new key
    assert client_for(rotated).post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert subscription_of(rotated, "reader@example.org").status == SubscriptionStatus.withdrawn
    reset_caches()


def test_confirm_links_expire_and_an_earlier_letter_is_not_superseded(mail_settings: Settings, sink: Sink) -> None:
    """Asked twice for the same list: each letter's link confirms it (README: a later request leaves an earlier
    letter's link working), for MAILING_CONFIRM_HOURS (168 by default) after the letter was sent."""
    client = client_for(mail_settings)
    subscribe_over_http(client, "late@example.org")
    first = confirm_link(mail_settings, sink, "late@example.org")
    subscribe_over_http(client, "late@example.org")
    second = confirm_link(mail_settings, sink, "late@example.org")
    assert first != second
    # Eight days later both links have expired.
    later = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=8)).timestamp())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itsdangerous.timed.TimestampSigner.get_timestamp", lambda self: later)
        for link in (first, second):
            response = client.post(path_of(link))
            assert response.status_code == 400 and "истёк" in response.text
    assert subscription_of(mail_settings, "late@example.org").status == SubscriptionStatus.pending
    assert client.post(path_of(first)).status_code == 200  # the earlier letter's link
    assert subscription_of(mail_settings, "late@example.org").status == SubscriptionStatus.active
    assert client.post(path_of(second)).status_code == 200  # the later one: nothing more to do, no error
    assert subscription_of(mail_settings, "late@example.org").status == SubscriptionStatus.active


def test_undo_after_withdrawal_needs_a_fresh_confirmation(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["regret@example.org"])
    row = subscription_of(mail_settings, "regret@example.org")
    token = subscribers.unsubscribe_token(mail_settings, row.id, row.nonce)
    client = client_for(mail_settings)
    page = client.post(f"/unsubscribe/{token}", data={"via": "page"})
    assert "Подписаться снова" in page.text
    assert client.post(f"/unsubscribe/{token}/undo", data={}).status_code == 400  # consent not ticked
    assert client.post(f"/unsubscribe/{token}/undo", data={"consent": "1"}).status_code == 200
    assert subscription_of(mail_settings, "regret@example.org").status == SubscriptionStatus.pending
    link = confirm_link(mail_settings, sink, "regret@example.org")
    assert client.post(path_of(link)).status_code == 200
    assert subscription_of(mail_settings, "regret@example.org").status == SubscriptionStatus.active
    with session_scope(mail_settings) as session:
        # A fresh confirmed consent lifts the suppression the withdrawal created.
        assert session.get(Suppression, parse_address("regret@example.org").hash) is None  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------------------------
# The subscribe form
# ----------------------------------------------------------------------------------------------------------------


def test_form_answers_alike_for_new_existing_and_suppressed(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["existing@example.org", "gone@example.org"])
    gone = subscription_of(mail_settings, "gone@example.org")
    client = client_for(mail_settings)
    client.post(
        f"/unsubscribe/{subscribers.unsubscribe_token(mail_settings, gone.id, gone.nonce)}", data={"via": "page"}
    )
    answers = set()
    json_answers = set()
    for address in ("new@example.org", "existing@example.org", "gone@example.org"):
        response = client.post("/subscribe", data={"email": address, "consent": "1"})
        answers.add((response.status_code, response.text))
        as_json = client.post("/subscribe", json={"email": address, "consent": "1", "list": ["news"]})
        json_answers.add((as_json.status_code, as_json.text))
    assert len(answers) == 1 and next(iter(answers))[0] == 200
    assert len(json_answers) == 1 and '"ok":true' in next(iter(json_answers))[1]


def test_form_refusals(mail_settings: Settings) -> None:
    client = client_for(mail_settings)
    assert client.post("/subscribe", data={"email": "a@example.org"}).status_code == 400  # no consent
    for bad in ("not-an-address", "a@b", "иван@почта.рф", "a@example.org\r\nBcc: x@y.z", "x" * 400 + "@example.org"):
        response = client.post("/subscribe", data={"email": bad, "consent": "1"})
        assert response.status_code == 400, bad
    assert client.post("/subscribe", data={"email": "a@example.org", "consent": "1", "list": "nope"}).status_code == 400
    assert (
        client.post("/subscribe", data={"email": "a@example.org", "consent": "1", "consent_version": "t-0"}).status_code
        == 400
    )
    assert client.post("/subscribe", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    with session_scope(mail_settings) as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_form_shows_consent_text_and_records_evidence(mail_settings: Settings, sink: Sink) -> None:
    client = client_for(mail_settings)
    form = client.get("/subscribe")
    assert form.status_code == 200 and "152-ФЗ" in form.text
    version = re.search(r'name="consent_version" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    client.post(
        "/subscribe",
        data={
            "email": "proof@example.org",
            "consent": "1",
            "consent_version": version,
            "source": "https://dizo.test/p",
        },
        headers={"User-Agent": "TestBrowser/1.0 (X11)"},
    )
    with session_scope(mail_settings) as session:
        event = session.scalar(select(ConsentEvent))
        assert event is not None
        assert (event.kind, event.method, event.source, event.user_agent) == (
            "given",
            "web_form",
            "https://dizo.test/p",
            "TestBrowser/1.0 (X11)",
        )
        assert event.ip and event.consent_version == version and len(event.consent_sha256) == 64
        assert event.operator == mail_settings.department_name and event.term and event.withdrawal_method
        assert "proof@" not in " ".join(str(v) for v in vars(event).values())  # only a hash of the address


def test_rate_limits_per_address_and_ip(mail_settings: Settings, sink: Sink) -> None:
    client = client_for(mail_settings)
    for _ in range(5):  # the address limit is 3 an hour: the answer stays the same, the mail stops
        assert client.post("/subscribe", data={"email": "spam-victim@example.org", "consent": "1"}).status_code == 200
    drain(mail_settings)
    assert len(messages_to(sink, "spam-victim@example.org")) == documented.SUBSCRIBE_LIMIT_PER_ADDRESS_HOUR
    statuses = [
        client.post("/subscribe", data={"email": f"x{n}@example.org", "consent": "1"}).status_code for n in range(40)
    ]
    assert 429 in statuses and statuses.index(429) == documented.SUBSCRIBE_LIMIT_PER_IP_HOUR - 5


def test_consent_log_is_append_only(mail_settings: Settings) -> None:
    import_active(mail_settings, ["a@example.org"])
    for statement in ("UPDATE mailing_consent_log SET ip = 'x'", "DELETE FROM mailing_consent_log"):
        with pytest.raises(DatabaseError), session_scope(mail_settings) as session:
            session.execute(text(statement))


# ----------------------------------------------------------------------------------------------------------------
# Templates and headers
# ----------------------------------------------------------------------------------------------------------------


def test_template_without_unsubscribe_link_is_refused(lite_settings: Settings) -> None:
    for template in (
        "Здравствуйте!",
        "{# {{ unsubscribe_url }} #}Без ссылки",
        "{% if name %}{{ unsubscribe_url }}{% endif %}",  # missing for people without a name
        "{{ unknown_variable }} {{ unsubscribe_url }}",
        "{% if %}",
    ):
        with pytest.raises(TemplateRefused):
            validate(lite_settings, CampaignSource("Тема", template, None, "Новости", "news"))
    with pytest.raises(TemplateRefused):
        validate(lite_settings, CampaignSource("Тема", TEMPLATE, "<p>нет ссылки</p>", "Новости", "news"))
    with session_scope(lite_settings) as session, pytest.raises(TemplateRefused):
        campaigns.create(session, lite_settings, list_slug="news", subject="Тема", text="Без ссылки")


def test_header_injection_through_subject_and_names(mail_settings: Settings, sink: Sink) -> None:
    for subject in ("Новости\r\nBcc: victim@example.org", "Новости =?UTF-8?Q?=0A?=Bcc: x@y.z", "a\x00b"):
        with pytest.raises(TemplateRefused):
            validate(mail_settings, CampaignSource(subject, TEMPLATE, None, "Новости", "news"))
    # A name that came in before validation existed is dropped from the header, the copy still goes out.
    import_active(mail_settings, ["named@example.org", "plain@example.org"], {"plain@example.org": "Пётр Ильич"})
    with session_scope(mail_settings) as session:
        row = session.scalar(select(Subscriber).where(Subscriber.email == "named@example.org"))
        assert row is not None
        row.name = "Иван\r\nBcc: victim@example.org"
    campaign_id = new_campaign(mail_settings)
    summary = run_within(
        send_campaign(mail_settings, campaign_id), 120, "a copy with a bad recipient name was retried without end"
    )
    assert summary.status == "done"
    assert not messages_to(sink, "victim@example.org")
    # Both copies went out, one each: a copy skipped or sent twice fails here, not only a wrong header.
    assert sorted(rcpts for _f, rcpts, _raw in sink.messages()) == [["named@example.org"], ["plain@example.org"]]
    for _f, rcpts, raw in sink.messages():
        message = parse(raw)
        assert "Bcc" not in message and "victim" not in str(message["To"])
        if rcpts == ["plain@example.org"]:
            assert "Пётр Ильич" in str(message["To"]) and "Уважаемый(ая) Пётр Ильич!" in text_of(message)
        else:
            assert "Здравствуйте!" in text_of(message)


def test_lines_starting_with_a_dot_arrive_as_written(mail_settings: Settings, sink: Sink) -> None:
    """A line holding a lone dot ends an SMTP message, so every line that starts with a dot is doubled on the wire
    (RFC 5321 4.5.2) and the recipient reads the text as written."""
    import_active(mail_settings, ["dots@example.org"])
    template = "Здравствуйте!\n\n.\n..\n.точка в начале строки\n\nОтписаться: {{ unsubscribe_url }}\n"
    campaign_id = new_campaign(mail_settings, template)
    assert run_within(send_campaign(mail_settings, campaign_id), 120, "the campaign").status == "done"
    [message] = messages_to(sink, "dots@example.org")
    assert "\n.\n..\n.точка в начале строки\n" in text_of(message).replace("\r\n", "\n")


def test_fast_render_matches_full_render_or_falls_back(lite_settings: Settings) -> None:
    recipient = Recipient(3, "a@example.org", "Анна <&>", "https://x.test/unsubscribe/t.k", "mailto:u@x.test")
    fast = CampaignRenderer(lite_settings, CampaignSource("Т", TEMPLATE, None, "Н", "news"), campaign_id=1, uid="u")
    assert fast.fast
    filtered = "{{ name | upper }} {{ unsubscribe_url }}"
    slow = CampaignRenderer(lite_settings, CampaignSource("Т", filtered, None, "Н", "news"), campaign_id=1, uid="u")
    assert not slow.fast
    assert text_of(parse(slow.message(recipient))).startswith("АННА <&> https://x.test/unsubscribe/t.k")
    html = parse(fast.message(recipient)).get_body(preferencelist=("html",))
    assert html is not None and "Анна &lt;&amp;&gt;" in html.get_content()


def test_addresses_idn_and_malformed() -> None:
    idn = parse_address("Boris@Пример.РФ")
    assert idn is not None and idn.ascii == "Boris@xn--e1afmkfd.xn--p1ai" and idn.normalized == "Boris@пример.рф"
    for bad in ("", "no-at-sign", "a@b", "a b@example.org", "иван@почта.рф", "a@exa\nmple.org", "a@-x.org"):
        assert parse_address(bad) is None, bad
    assert consent.email_hash("A@Example.org") == consent.email_hash("a@example.org")


# ----------------------------------------------------------------------------------------------------------------
# Requests by e-mail, bounces, purge
# ----------------------------------------------------------------------------------------------------------------


def test_subscription_requests_by_email(mail_settings: Settings, sink: Sink) -> None:
    load_routes()
    import_active(mail_settings, ["reader@example.org", "quitter@example.org"])
    row = subscription_of(mail_settings, "reader@example.org")
    token = subscribers.unsubscribe_token(mail_settings, row.id, row.nonce)
    # The List-Unsubscribe mailto: puts the token in the subject.
    by_token = process_raw(
        mail_settings,
        citizen_mail(sender="someone-else@example.org", subject=f"unsubscribe {token}", body=""),
        Source("smtp"),
    )
    assert by_token.reason.startswith("mailing: consent withdrawn"), by_token
    assert subscription_of(mail_settings, "reader@example.org").status == SubscriptionStatus.withdrawn
    by_words = process_raw(
        mail_settings,
        citizen_mail(sender="quitter@example.org", subject="Рассылка", body="Прошу отписать меня от рассылки."),
        Source("smtp"),
    )
    assert by_words.reason.startswith("mailing: withdrawal requested"), by_words
    assert subscription_of(mail_settings, "quitter@example.org").status == SubscriptionStatus.withdrawn
    joining = process_raw(
        mail_settings,
        citizen_mail(sender="joiner@example.org", subject="Подписка", body="Хочу подписаться на рассылку новостей."),
        Source("smtp"),
    )
    assert joining.reason.startswith("mailing: subscription requested"), joining
    assert subscription_of(mail_settings, "joiner@example.org").status == SubscriptionStatus.pending
    link = confirm_link(mail_settings, sink, "joiner@example.org")
    assert client_for(mail_settings).post(path_of(link)).status_code == 200
    assert subscription_of(mail_settings, "joiner@example.org").status == SubscriptionStatus.active
    notices = messages_to(sink, "quitter@example.org")
    assert len(notices) == 1 and "Вы отписаны" in str(notices[0]["Subject"])
    with session_scope(mail_settings) as session:
        assert session.scalar(select(func.count()).select_from(IntakeEntry).where(IntakeEntry.outcome == "routed")) == 3


def test_an_unsubscribe_from_an_address_never_subscribed_mails_nobody(mail_settings: Settings) -> None:
    # Tester's F11: «Отписаться» with a forged From made us mail that stranger «Вы отписаны...». With nothing to
    # withdraw nothing is sent; the journal keeps the command. A subscriber who withdraws is still told.
    load_routes()
    import_active(mail_settings, ["reader@example.org"])
    stranger = process_raw(
        mail_settings, citizen_mail(sender="never@example.org", subject="Отписаться", body=""), Source("smtp")
    )
    reader = process_raw(
        mail_settings, citizen_mail(sender="reader@example.org", subject="Отписаться", body=""), Source("smtp")
    )
    with session_scope(mail_settings) as session:
        entry = session.get(IntakeEntry, stranger.entry_id)
        assert entry is not None and entry.outcome == "routed" and "withdrawal requested" in entry.reason
        notices = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "mailing_withdrawn")).all()
        assert [str(parse(n.raw)["To"]) for n in notices] == ["reader@example.org"]
    assert reader.reason.startswith("mailing: withdrawal requested")
    assert subscription_of(mail_settings, "reader@example.org").status == SubscriptionStatus.withdrawn


def test_hard_bounces_suppress_and_mark_the_copy(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["dead@example.org", "alive@example.org"])
    first = new_campaign(mail_settings)
    run_within(send_campaign(mail_settings, first), 60, "the campaign")
    with session_scope(mail_settings) as session:
        entry = IntakeEntry(source="smtp", content_hash="x", raw_sha256="x", size=1, outcome="bounce")
        session.add(entry)
        session.flush()
        session.add(Bounce(intake_id=entry.id, at=utcnow(), address="dead@example.org", kind="hard", status="5.1.1"))
        session.add(Bounce(intake_id=entry.id, at=utcnow(), address="alive@example.org", kind="soft", status="4.2.2"))
    second = new_campaign(mail_settings)
    with session_scope(mail_settings) as session:
        campaigns.start(session, mail_settings, second, utcnow())
    sink.clear()
    assert run_within(send_due(mail_settings), 60, "the sending pass") == 1
    assert [r for _f, r, _raw in sink.messages()] == [["alive@example.org"]]
    assert status_of(mail_settings, first).bounced == 1 and status_of(mail_settings, first).sent == 1
    assert status_of(mail_settings, second).skipped_withdrawn == 1
    with session_scope(mail_settings) as session:
        assert session.get(Suppression, parse_address("dead@example.org").hash).reason == "bounce"  # type: ignore[union-attr]


def test_purge_destroys_personal_data_keeps_proof(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["leaver@example.org", "stayer@example.org"])
    row = subscription_of(mail_settings, "leaver@example.org")
    client_for(mail_settings).post(
        f"/unsubscribe/{subscribers.unsubscribe_token(mail_settings, row.id, row.nonce)}", data={"via": "page"}
    )
    now = utcnow()
    assert upkeep.purge_due(mail_settings, now) == 0  # too early: within the undo period
    assert upkeep.purge_due(mail_settings, now + dt.timedelta(days=8)) == 1
    import_active(mail_settings, ["another@example.org"])
    assert upkeep.purge_due(mail_settings, now + dt.timedelta(days=8, seconds=1)) == 0  # once a day
    with session_scope(mail_settings) as session:
        leaver = session.get(Subscriber, row.subscriber_id)
        assert leaver is not None and leaver.email is None and leaver.purged_at is not None and leaver.name == ""
        assert session.scalar(select(Subscriber.email).where(Subscriber.email == "stayer@example.org"))
        assert (
            session.scalar(
                select(func.count()).select_from(ConsentEvent).where(ConsentEvent.subscriber_id == leaver.id)
            )
            == 2
        )
    # The address can never be re-imported by mistake.
    with session_scope(mail_settings) as session:
        version = consent.current_consent(session, mail_settings).version
        report = roster.import_rows(
            session,
            mail_settings,
            [
                (
                    2,
                    {
                        "email": "leaver@example.org",
                        "consent_at": "2026-01-01",
                        "consent_source": "x",
                        "consent_text_version": version,
                    },
                )
            ],
            source_name="old.csv",
            now=utcnow(),
        )
        assert report.refused and report.added == 0


def test_withdrawal_from_one_list_keeps_the_other(mail_settings: Settings) -> None:
    with session_scope(mail_settings) as session:
        subscribers.default_list(session)
        subscribers.create_list(session, "tenders", "Торги", "информирование о торгах")
        address = parse_address("both@example.org")
        assert address is not None
        lists = subscribers.lists_by_slugs(session, ["news", "tenders"])
        result = subscribers.subscribe(
            session,
            mail_settings,
            address=address,
            lists=lists,
            evidence=Evidence(method="web_form"),
            consent_text=None,
            now=utcnow(),
        )
        subscriber = session.get(Subscriber, result.subscriber_id)
        assert subscriber is not None
        token = subscribers.confirm_token(mail_settings, subscriber)
        assert (
            len(
                subscribers.confirm(
                    session, mail_settings, token, evidence=Evidence(method="link"), consent_text=None, now=utcnow()
                )
            )
            == 2
        )
        news = session.scalar(select(Subscription).where(Subscription.list_id == lists[0].id))
        assert news is not None
        news_token = subscribers.unsubscribe_token(mail_settings, news.id, news.nonce)
    subscribers.withdraw_by_link(mail_settings, news_token, evidence=Evidence(method="link"))
    with session_scope(mail_settings) as session:
        statuses = dict(session.execute(select(Subscription.list_id, Subscription.status)).all())
        assert sorted(statuses.values()) == ["active", "withdrawn"]
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_deliveries_are_only_for_the_snapshot_at_start(mail_settings: Settings, sink: Sink) -> None:
    import_active(mail_settings, ["early@example.org"])
    campaign_id = new_campaign(mail_settings)
    with session_scope(mail_settings) as session:
        campaigns.start(session, mail_settings, campaign_id, utcnow())
    import_active(mail_settings, ["late@example.org"])
    run_within(send_campaign(mail_settings, campaign_id), 60, "the campaign")
    assert [r for _f, r, _raw in sink.messages()] == [["early@example.org"]]
    with session_scope(mail_settings) as session:
        assert (
            session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == DeliveryState.sent)) == 1
        )
