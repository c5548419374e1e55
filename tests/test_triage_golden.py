"""Golden-file test of triage on real mail: every message of the shared corpora and of tests/data (tests/data/triage
holds one letter, made here, for each rule real mail in the corpora does not reach), with its verdict, its hold
and the reason staff read in the journal, as reviewed and committed in tests/data/golden/triage.tsv.

The rules' own tests (tests/test_triage.py) each show one rule on a message made for it; this one holds the whole
set of rules to what they decide on mail nobody here wrote (bounces of many MTAs, auto-replies, broken MIME) and on
the made letters, so a change of any rule that moves a message shows as a diff of this file to be reviewed, not as
silence.

Each message is read twice, as intake reads it: with no envelope sender (IMAP without Return-Path) and with the
null reverse-path ``<>`` that bounces and automatic replies carry (RFC 5321 4.5.5, RFC 3834 3.3).
After a deliberate change of triage, ``.venv/bin/python -m tests.test_triage_golden`` writes the file again; review
its diff before committing it.
"""

from __future__ import annotations

import csv
import email
from email import policy
from pathlib import Path

import pytest

from mailservice.mail.parse import ParseError, parse_message_and_tree
from mailservice.mail.triage import Triage, triage
from tests.shared import CORPORA, corpus_files

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "golden" / "triage.tsv"
COLUMNS = ["message", "envelope", "verdict", "hold", "relayed", "reason"]
# The two envelopes intake meets: none known, and the null reverse-path of machine mail.
ENVELOPES = {"none": None, "null": "<>"}


def _messages() -> dict[str, Path]:
    """Message name (``corpora/…`` or ``data/…``) -> file; the shared corpora only where they are present."""
    found: dict[str, Path] = {}
    for sub in ("mime", "bounces"):
        for path in corpus_files(sub):
            found[f"corpora/{path.relative_to(CORPORA)}"] = path
    for sub in ("eml", "forwarded", "smime", "triage"):
        for path in sorted((DATA / sub).glob("*.eml")):
            found[f"data/{sub}/{path.name}"] = path
    return found


MESSAGES = _messages()


def _read(path: Path, envelope: str | None) -> dict[str, str]:
    """What triage decides for the message, as one golden row (without its name and envelope)."""
    raw = path.read_bytes()
    try:
        parsed, tree = parse_message_and_tree(raw)
    except ParseError as exc:
        return {"verdict": "unparseable", "hold": "", "relayed": "", "reason": exc.reason}
    if tree is None:  # as intake does (intake/prepare.py) when the quick parse gave no tree
        tree = email.message_from_bytes(raw, policy=policy.compat32)
    result: Triage = triage(parsed, tree, envelope)
    return {"verdict": str(result.verdict), "hold": result.hold, "relayed": result.relayed, "reason": result.reason}


def _golden() -> dict[tuple[str, str], dict[str, str]]:
    if not GOLDEN.is_file():
        return {}
    with GOLDEN.open(newline="", encoding="utf-8") as handle:
        return {(row["message"], row["envelope"]): row for row in csv.DictReader(handle, delimiter="\t")}


def _write() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    with GOLDEN.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        for name, path in MESSAGES.items():
            for envelope, value in ENVELOPES.items():
                writer.writerow({"message": name, "envelope": envelope, **_read(path, value)})


GOLDEN_ROWS = _golden()


def test_the_golden_file_lists_every_message_read() -> None:
    """A message added to tests/data, or a corpus present here that the file does not know, needs its rows
    (reviewed) before its triage is pinned; a row of a message gone is stale."""
    if not (CORPORA / "bounces").is_dir():
        pytest.skip(f"shared corpora not found at {CORPORA} (set MAILSERVICE_CORPORA)")
    expected = {(name, envelope) for name in MESSAGES for envelope in ENVELOPES}
    assert set(GOLDEN_ROWS) == expected


@pytest.mark.parametrize("envelope", sorted(ENVELOPES))
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_triage_decides_as_reviewed(name: str, envelope: str) -> None:
    row = GOLDEN_ROWS.get((name, envelope))
    assert row is not None, f"{name}: not in {GOLDEN.name} (python -m tests.test_triage_golden, then review the diff)"
    expected = {key: row[key] for key in ("verdict", "hold", "relayed", "reason")}
    assert _read(MESSAGES[name], ENVELOPES[envelope]) == expected


if __name__ == "__main__":
    _write()  # not at import: pytest's workers would each write the file at collection
    print(f"{GOLDEN.relative_to(DATA.parent.parent)}: written; review its diff before committing it")
