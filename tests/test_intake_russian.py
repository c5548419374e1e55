"""Intake's outcomes and reasons as the CLI shows them: Russian (T3), the recorded figures kept."""

from __future__ import annotations

import re

import pytest

from mailservice.intake.models import Outcome
from mailservice.intake.russian import outcome_ru, reason_ru

LATIN_WORD = re.compile(r"\b[A-Za-z]{3,}\b")


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_a_russian_name(outcome: Outcome) -> None:
    name = outcome_ru(outcome)
    assert re.search("[а-яё]", name) and not LATIN_WORD.search(name), name


@pytest.mark.parametrize(
    ("reason", "kept"),
    [
        ("message larger than 31457280 bytes", "31457280"),
        ("unparseable: binary data, not an RFC 5322 message", "5322"),
        ("unparseable: empty message", ""),
        ("same Message-ID and content as journal entry 17", "17"),
        ("sent again: same sender, subject, text and files as journal entry 18", "18"),
        ("database integrity error", ""),
        ("follow-up to 2026-000040 (status answered): new linked request", "2026-000040"),
        ("held unregistered for staff: looks like advertising", ""),
        ("held unregistered for staff: list mail that asks something", ""),
        ("held unregistered for staff: null envelope sender <> on a letter that asks something", "<>"),
    ],
)
def test_quarantine_and_journal_reasons_read_in_russian(reason: str, kept: str) -> None:
    wording = reason_ru(reason)
    assert re.search("[а-яё]", wording), wording
    assert not LATIN_WORD.search(wording.replace("RFC", "").replace("Message-ID", "")), wording
    assert kept in wording


def test_an_unknown_reason_is_shown_as_recorded() -> None:
    assert reason_ru("something new") == "something new"


def test_every_reason_a_letter_is_held_for_reads_in_russian() -> None:
    # Every hold intake can record (mail/triage.TRIAGE_HOLDS), read as `intake import` prints it.
    from mailservice.mail.triage import TRIAGE_HOLDS

    for reason in TRIAGE_HOLDS.values():
        wording = reason_ru("held unregistered for staff: " + reason)
        assert not LATIN_WORD.search(wording), wording
