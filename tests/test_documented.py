"""The values tests compare with (tests/documented.py) are the README's: each is stated there in these words."""

from __future__ import annotations

from pathlib import Path

from tests.documented import README_PHRASES

README = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())


def test_every_documented_value_is_in_the_readme() -> None:
    missing = [phrase for phrase in README_PHRASES if " ".join(phrase.split()) not in README]
    assert not missing, missing
