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


def _triage_reasons() -> list[str]:
    """Every reason mail/triage.py gives (its source read as data: a reason added there without a wording here
    fails), each f-string's fields filled with a sample value, and the reasons the golden file saw on real mail."""
    import ast
    from pathlib import Path

    import mailservice.mail.triage as triage_module
    from tests.test_triage_golden import GOLDEN_ROWS

    reasons: set[str] = set()
    for node in ast.walk(ast.parse(Path(triage_module.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Triage":
            text = node.args[1]
            if isinstance(text, ast.Constant):
                reasons.add(text.value)
            elif isinstance(text, ast.JoinedStr):
                sample = "".join(v.value if isinstance(v, ast.Constant) else "X-Sample" for v in text.values)
                if not sample.startswith("X-Sample: "):  # a header's name and value: as the golden file saw them
                    reasons.add(sample)
    reasons.add("X-Precedence: list")
    reasons |= {row["reason"] for row in GOLDEN_ROWS.values() if row["verdict"] != "unparseable"}
    return sorted(reasons)


@pytest.mark.parametrize("reason", _triage_reasons())
def test_every_triage_reason_reads_in_russian(reason: str) -> None:
    """`intake journal` and `intake import` show why a letter was taken for a bounce or an automatic message:
    in Russian, with only the header names, codes and system names of the original kept in Latin letters."""
    for shown, suffix in ((reason, ""), (reason + "; asks something: held for staff", "ждёт решения сотрудника")):
        wording = reason_ru(shown)
        assert re.search("[а-яё]", wording) and wording.endswith(suffix), wording
        kept = set(LATIN_WORD.findall(reason))
        assert set(LATIN_WORD.findall(wording)) <= kept, wording
