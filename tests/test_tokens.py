"""Signed links: purpose salts, tampering, key rotation, expiry."""

from __future__ import annotations

import datetime as dt
import secrets
import time

import pytest
from itsdangerous import TimestampSigner

from mailservice.config import Settings
from mailservice.tokens import Minter, Purpose, TokenError, load, load_timed, load_with_time, sign, sign_timed

OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40


def settings_with(*keys: str) -> Settings:
    return Settings(environment="development", secret_keys=list(keys))


def test_round_trip_and_purpose_separation() -> None:
    settings = settings_with(NEW)
    token = sign(settings, Purpose.unsubscribe, {"s": 42})
    assert load(settings, Purpose.unsubscribe, token) == {"s": 42}
    with pytest.raises(TokenError):
        load(settings, Purpose.subscribe_confirm, token)


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-1], lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1], lambda t: "x" + t, lambda t: ""],
)
def test_tampered_and_truncated_tokens_fail(mangle: object) -> None:
    settings = settings_with(NEW)
    token = sign(settings, Purpose.unsubscribe, {"s": 1})
    with pytest.raises(TokenError):
        load(settings, Purpose.unsubscribe, mangle(token))  # type: ignore[operator]


def test_rotation_newest_signs_all_verify() -> None:
    before = sign(settings_with(OLD), Purpose.unsubscribe, {"s": 7})
    rotated = settings_with(NEW, OLD)
    assert load(rotated, Purpose.unsubscribe, before) == {"s": 7}  # old links keep working
    after = sign(rotated, Purpose.unsubscribe, {"s": 8})
    assert load(settings_with(NEW), Purpose.unsubscribe, after) == {"s": 8}  # signed with the newest key
    with pytest.raises(TokenError):
        load(settings_with(OLD), Purpose.unsubscribe, after)
    with pytest.raises(TokenError):
        load(settings_with(NEW), Purpose.unsubscribe, before)  # a retired key no longer verifies


def test_timed_tokens_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with(NEW)
    token = sign_timed(settings, Purpose.subscribe_confirm, {"s": 3})
    assert load_timed(settings, Purpose.subscribe_confirm, token, max_age_s=60) == {"s": 3}
    # A token signed two minutes ago (the signer's clock set back while it signs: no sleeping in a test).
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 120)
    old = sign_timed(settings, Purpose.subscribe_confirm, {"s": 3})
    monkeypatch.undo()
    assert load_timed(settings, Purpose.subscribe_confirm, old, max_age_s=180) == {"s": 3}
    with pytest.raises(TokenError) as info:
        load_timed(settings, Purpose.subscribe_confirm, old, max_age_s=60)
    assert info.value.expired


def test_a_timed_token_tells_when_it_was_signed_for_its_own_purpose_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's one-time forms judge a token's age by their own clock (web/staff/once.py): the payload and
    the signing time, in UTC, whatever the age; a token of another purpose, tampered or of a retired key is
    refused; one of a key moved down the list still reads."""
    signed_at = int(time.time()) - 7200  # two hours ago: no age limit applies here
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
    token = sign_timed(settings_with(OLD), Purpose.console_form, "form-1")
    monkeypatch.undo()
    payload, when = load_with_time(settings_with(NEW, OLD), Purpose.console_form, token)
    assert payload == "form-1"
    assert when == dt.datetime.fromtimestamp(signed_at, dt.UTC) and when.utcoffset() == dt.timedelta(0)
    for settings, purpose, text in [
        (settings_with(NEW, OLD), Purpose.request_form, token),
        (settings_with(NEW, OLD), Purpose.console_form, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]),
        (settings_with(NEW), Purpose.console_form, token),
    ]:
        with pytest.raises(TokenError) as info:
            load_with_time(settings, purpose, text)
        assert not info.value.expired


def test_settings_refuse_placeholder_secrets_outside_development() -> None:
    with pytest.raises(ValueError, match="SECRET_KEYS"):
        Settings(environment="production", secret_keys=[])
    with pytest.raises(ValueError, match="заглушка"):
        Settings(environment="production", secret_keys=["changeme"])
    real = secrets.token_urlsafe(48)
    with pytest.raises(ValueError, match="DEPARTMENT_ADDRESS"):
        Settings(environment="production", secret_keys=[real])
    address = "630000, г. Новосибирск, а/я 1"
    real_addresses = {"from_address": "info@dizo.example.ru", "public_url": "https://obr.dizo-nso.ru"}
    production = Settings(environment="production", secret_keys=[real], department_address=address, **real_addresses)
    assert production.secret_keys == [real]


@pytest.mark.parametrize(
    "payload",
    [
        [1, "0" * 16],
        [987654321, secrets.token_hex(8)],
        [5, "абв" * 40],  # long and repetitive: the compressed form (leading dot)
        {"s": 42},
        [0, ""],
    ],
)
def test_minter_gives_the_tokens_itsdangerous_gives(payload: object) -> None:
    from itsdangerous import URLSafeSerializer

    for purpose in (Purpose.unsubscribe, Purpose.feedback):
        # itsdangerous itself, as documented: the last key of its list signs (ours lists the newest first).
        reference = URLSafeSerializer([OLD, NEW], salt=purpose.value).dumps(payload)
        minted = Minter(settings_with(NEW, OLD), purpose)(payload)
        assert minted == reference
        assert load(settings_with(NEW, OLD), purpose, minted) == payload
    long_form = Minter(settings_with(NEW), Purpose.unsubscribe)([5, "абв" * 40])
    assert long_form.startswith(".")  # the compressed branch really ran


def test_minter_matches_itsdangerous_at_the_compression_boundary_and_every_padding() -> None:
    """Payloads whose compressed form is one byte shorter, as long as, or two bytes shorter than the JSON less one
    (itsdangerous compresses only when that is shorter), and enough of them that the base64 ends in every letter."""
    from itsdangerous import URLSafeSerializer

    payloads: list[object] = [{"s": "a" * n} for n in range(1, 40)] + [{"i": list(range(n))} for n in range(1, 40)]
    payloads += [{"s": "ab" * n, "n": n} for n in range(1, 12)] + [{"s": "a" * 60, "k": k} for k in range(300)]
    reference = URLSafeSerializer([NEW], salt=Purpose.unsubscribe.value)
    mint = Minter(settings_with(NEW), Purpose.unsubscribe)
    mismatched = [p for p in payloads if mint(p) != reference.dumps(p)]
    assert not mismatched, mismatched[:3]
    # A compressed body ending in X (only the padding "=" may be stripped from the end, nothing else).
    assert any(mint(p).startswith(".") and mint(p).split(".")[-2].endswith("X") for p in payloads)


def test_sign_gives_the_tokens_itsdangerous_gives_whatever_the_keys() -> None:
    """sign() mints with a keyed state kept per key and purpose: a token is still itsdangerous' own for the
    settings of that call (a rotated key signs at once, never the state of an earlier key)."""
    from itsdangerous import URLSafeSerializer

    for keys in ((NEW,), (NEW, OLD), (OLD, NEW), (OLD,)):
        for purpose in (Purpose.request_status, Purpose.unsubscribe):
            for payload in ({"n": "2026-000042"}, [7, "абв" * 40]):
                reference = URLSafeSerializer(list(reversed(keys)), salt=purpose.value).dumps(payload)
                assert sign(settings_with(*keys), purpose, payload) == reference
