"""Loose ends of 6 December (fixer6a): production link addresses, the monthly report without a head of department,
the console's form tokens purged, migrations frozen, the acknowledgement limit's key, old duplicate subscribers.

Each test failed on the code before its fix. The database tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailservice.config import Settings
from tests.test_tryout_dec6d import _LATIN_WORDS, _cli, _prod_env

REAL_KEY = "Zq3vN8pL2xR7tY5wK1mB9cD4fG6hJ0sA-e_UiOo2Pq7Rs9Tu"
PRODUCTION = {
    "environment": "production",
    "secret_keys": [REAL_KEY],
    "department_address": "630007, г. Новосибирск, ул. Серебренниковская, д. 6",
    "from_address": "info@dizo.example.ru",
}

# 1. A production PUBLIC_URL that leads back to the server, or over plain HTTP -----------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "https://127.0.0.1",
        "https://127.3.4.5:8443/",
        "https://localhost",
        "https://LOCALHOST.:8000",
        "https://obr.localhost",
        "https://[::1]:8000",
        "https://0.0.0.0",
        "obr.dizo.example.ru",
        "http://obr.dizo.example.ru",
    ],
)
def test_production_refuses_a_link_address_citizens_cannot_open_safely(url: str) -> None:
    # README "Production checks": PUBLIC_URL must be the https address citizens open; a loopback one would put the
    # server's own address into every letter, a plain http one sends tokens and staff passwords in the clear.
    with pytest.raises(ValidationError, match="MAILSERVICE_PUBLIC_URL"):
        Settings(**PRODUCTION, public_url=url)


@pytest.mark.parametrize("url", ["https://obr.dizo.example.ru", "HTTPS://obr.dizo.example.ru:8443/mail/"])
def test_production_accepts_a_real_https_link_address(url: str) -> None:
    assert Settings(**PRODUCTION, public_url=url).public_url == url


def test_development_keeps_its_local_link_address() -> None:
    assert Settings(environment="development", public_url="http://127.0.0.1:8000").public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://obr.dizo.example.ru"])
def test_a_refused_link_address_is_one_russian_line_naming_the_variable(tmp_path: Path, url: str) -> None:
    result = _cli("db", "upgrade", env=_prod_env(tmp_path, MAILSERVICE_PUBLIC_URL=url))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Ошибка") and "MAILSERVICE_PUBLIC_URL" in line and url in line
    assert not _LATIN_WORDS.search(line), line
