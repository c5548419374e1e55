"""Issue 14: production accepted `changemechangemechangemechangeme` and 32 x `a` as secret keys, and
`ENVIRONMENT=test` skipped every production check. Now there are two environments, and a key needs real entropy
(README, "Security model": at least 32 characters and about 128 bits by the service's estimate)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mailservice.config import Settings, estimate_entropy_bits

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "630000, г. Новосибирск, а/я 1"
REAL = {"from_address": "info@dizo.example.ru", "public_url": "https://obr.dizo-nso.ru"}  # not development's
WEAK_KEYS = [
    "changemechangemechangemechangeme",
    "a" * 32,
    "a" * 64,
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "0123456789" * 4,
    "Passw0rd!" * 4,
    "ab" * 24,
    "x7Qp2_Lm9RtVb4Nc8Hd3Jf",  # random-looking, but 22 characters
]


@pytest.mark.parametrize("key", WEAK_KEYS)
def test_production_refuses_weak_keys(key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEYS"):
        Settings(environment="production", secret_keys=[key], department_address=ADDRESS)
    # Also when the weak key is an old one kept for rotation.
    with pytest.raises(ValidationError, match="SECRET_KEYS"):
        Settings(environment="production", secret_keys=[secrets.token_urlsafe(48), key], department_address=ADDRESS)


def test_production_takes_generated_keys() -> None:
    for _ in range(200):  # the README's command, and a 32-byte base64 key
        for key in (secrets.token_urlsafe(48), secrets.token_urlsafe(32), secrets.token_hex(32)):
            assert estimate_entropy_bits(key) >= 128, key
            assert Settings(environment="production", secret_keys=[key], department_address=ADDRESS, **REAL).secret_keys


@pytest.mark.parametrize("name", ["test", "testing", "staging", "prod", ""])
def test_only_development_and_production_exist(name: str) -> None:
    with pytest.raises(ValidationError, match="environment"):
        Settings(environment=name)


def start(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command of the service started as a deployment starts it (only these MAILSERVICE_ settings)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MAILSERVICE_")}
    return subprocess.run(
        [sys.executable, "-m", "mailservice", "requests", "list"],
        capture_output=True,
        text=True,
        env={**clean, **env, "MAILSERVICE_DATA_DIR": str(cwd)},
        cwd=cwd,
        timeout=120,
    )


def test_the_service_refuses_to_start_with_environment_test(tmp_path: Path) -> None:
    """What a deployment does: the old escape hatch ENVIRONMENT=test with a placeholder key."""
    escape = start({"MAILSERVICE_ENVIRONMENT": "test", "MAILSERVICE_SECRET_KEYS": "changeme"}, tmp_path)
    assert escape.returncode != 0 and "MAILSERVICE_ENVIRONMENT" in escape.stderr
    weak = start(
        {
            "MAILSERVICE_ENVIRONMENT": "production",
            "MAILSERVICE_SECRET_KEYS": "changemechangemechangemechangeme",
            "MAILSERVICE_DEPARTMENT_ADDRESS": ADDRESS,
        },
        tmp_path,
    )
    assert weak.returncode != 0 and "SECRET_KEYS" in weak.stderr


def test_trusted_proxies_must_be_addresses() -> None:
    assert Settings(trusted_proxies="10.0.0.1, 192.168.0.0/16").trusted_proxies == ["10.0.0.1", "192.168.0.0/16"]
    with pytest.raises(ValidationError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies="proxy.example.org")
    assert Settings().trusted_proxies == []  # none by default


@pytest.mark.parametrize(
    "host",
    ["smtp..dizo.example.ru", "-smtp.dizo.example.ru", "smtp dizo.example.ru", "smtp.dizo.example.ru/25", "", "a" * 64],
)
def test_a_server_name_that_cannot_be_connected_to_is_refused_at_start_up(host: str) -> None:
    """A typing slip in a server's name is told before the first letter, naming the variable (RFC 1123 2.1: labels
    of letters, digits and hyphens, at most 63 characters; an empty label is what IDNA refuses to encode)."""
    with pytest.raises(ValidationError, match=f"MAILSERVICE_SMTP_HOST «{re.escape(host)}» — не имя сервера"):
        Settings(smtp_host=host)
    if host:  # no IMAP host at all is allowed: mail then comes by the receiver
        with pytest.raises(ValidationError, match="MAILSERVICE_IMAP_HOST"):
            Settings(imap_host=host)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "localhost", "smtp.dizo.example.ru", "smtp.dizo.example.ru.", "почта.рф", "relay_1"]
)
def test_a_server_name_that_can_be_connected_to_is_kept(host: str) -> None:
    """Addresses, names with a final dot, internationalised names (RFC 5890) and container names with an underscore."""
    assert (Settings(smtp_host=host).smtp_host, Settings(imap_host=host).imap_host) == (host, host)
    assert Settings(imap_host="").imap_host == ""


@pytest.mark.parametrize(
    "url",
    [
        "https://info.example.gov.ru",  # the placeholder .env.example carried until 7 December
        "https://example.com/",
        "https://obr.dizo.example",
        "https://dizo.test",
        "https://dizo.invalid",
    ],
)
def test_production_refuses_a_placeholder_public_url(url: str) -> None:
    """Tryout of 7 December (a new administrator): the example address of .env.example passed, and every
    acknowledgement carried a dead status link. RFC 2606 and RFC 6761 reserve these names for examples."""
    key = secrets.token_urlsafe(48)
    with pytest.raises(ValidationError, match="адрес-образец"):
        Settings(environment="production", secret_keys=[key], department_address=ADDRESS, **{**REAL, "public_url": url})


def test_the_example_settings_file_names_no_address_that_would_pass() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^MAILSERVICE_PUBLIC_URL=$", example, re.MULTILINE)
    assert re.search(r"^MAILSERVICE_SITE_URL=$", example, re.MULTILINE)


def test_production_refuses_a_login_over_plain_smtp_to_a_remote_relay() -> None:
    """Tryout of 7 December: MAILSERVICE_SMTP_SECURITY=none with a user and password to a remote relay started, and
    the login would cross the network in the clear (as plain IMAP to a remote host, which was refused already)."""
    base = {"environment": "production", "secret_keys": [secrets.token_urlsafe(48)], "department_address": ADDRESS}
    remote = {"smtp_host": "smtp.dizo-nso.ru", "smtp_security": "none", "smtp_user": "info", "smtp_password": "p"}
    with pytest.raises(ValidationError, match="SMTP_SECURITY=none"):
        Settings(**base, **REAL, **remote)  # type: ignore[arg-type]
    # Encrypted, or without a login, or to this machine's own relay: accepted.
    for changed in ({"smtp_security": "starttls"}, {"smtp_user": "", "smtp_password": ""}, {"smtp_host": "127.0.0.1"}):
        assert Settings(**base, **REAL, **{**remote, **changed})  # type: ignore[arg-type]
