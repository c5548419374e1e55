"""Run the parser, triage and bounce parser over every message of the shared real-mail corpora.

/work/shared/corpora (or $MAILSERVICE_CORPORA): mime/ holds tricky or broken messages, bounces/ holds DSNs,
text bounces, auto-replies and complaints with MANIFEST.tsv expectations. Checks:
- nothing raises except ParseError, and exactly the messages listed below are quarantined, each for its reason;
- no bounces/ message is triaged as a person's message, unless its MANIFEST says it is not a bounce;
- where a MANIFEST gives the bounced address or hard/soft, parse_bounce agrees, apart from the known
  exceptions listed with a reason each (an exception that starts agreeing fails the test: remove it).
A summary (verdict counts, quarantine reasons, agreement) is printed whatever the outcome.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailservice.mail.bounces import BounceInfo, parse_bounce
from mailservice.mail.headers import loose_address, normalise_address
from mailservice.mail.parse import ParseError, parse_message
from mailservice.mail.triage import Verdict, triage
from tests.shared import CORPORA, corpus_files

pytestmark = pytest.mark.skipif(
    not (CORPORA / "mime").is_dir() or not (CORPORA / "bounces").is_dir(),
    reason=f"shared corpora not found at {CORPORA} (set MAILSERVICE_CORPORA)",
)

# Messages that cannot be handled, with the reason each is quarantined.
EXPECTED_QUARANTINE = {
    "mime/cpython/msg_11.txt": "no usable sender",  # headers of a forwarded part only
    "mime/cpython/msg_18.txt": "no usable sender",
    "mime/cpython/msg_19.txt": "no header block",  # a mailing-list digest body without headers
    "mime/cpython/msg_37.txt": "no usable sender",
    "mime/cpython/msg_38.txt": "no usable sender",
    "mime/cpython/msg_39.txt": "no usable sender",
    "mime/cpython/msg_40.txt": "no usable sender",
    "mime/enmime/mail/erroneous.raw": "no header block",  # "// Not an RFC-822 Document"
    "mime/flanker/attached-pdf.eml": "no usable sender",
    "mime/imap_tools/messages/error_emails/bad_encoded_subject.eml": "no usable sender",
}

# The corpus expectation and our reading differ for a reason we accept.
KNOWN_ADDRESS_EXCEPTIONS = {
    "bounces/sisimai/lhost-domino-03.eml": "the RFC 3464 Final-Recipient (neko.example.org) and the text "
    "(neko.example.com) disagree; we trust the machine-readable report",
    "bounces/sisimai/lhost-exim-03.eml": "X-Failed-Recipients (example.jp) and the text (example.or.jp) disagree; "
    "we trust the header Exim writes for exactly this purpose",
    "bounces/sisimai/lhost-office365-04.eml": "the MANIFEST address was derived from a mangled mailto: link; the "
    "bounce names otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp",
    "bounces/sisimai/lhost-v5sendmail-01.eml": "the MANIFEST address is truncated ('kijitora@exampl') and the "
    "bounce text names no address at all",
}
KNOWN_KIND_EXCEPTIONS = {
    # Provider rules: some carriers answer "User unknown" for mail their filters refuse; sisimai knows each
    # provider, we judge by what the bounce says.
    "bounces/sisimai/lhost-ezweb-02.eml": "au/ezweb.ne.jp says 'user unknown' for filtered mail (provider rule)",
    "bounces/sisimai/lhost-messagingserver-08.eml": "au/ezweb.ne.jp 'User unknown' (provider rule)",
    "bounces/sisimai/lhost-sendmail-50.eml": "au/ezweb.ne.jp 'User unknown' (provider rule)",
    "bounces/sisimai/rfc3464-57.eml": "au/ezweb.ne.jp 'User unknown' (provider rule)",
    "bounces/sisimai/rhost-kddi-01.eml": "au/ezweb.ne.jp 'User unknown' (provider rule)",
    "bounces/sisimai/lhost-sendmail-19.eml": "NTT docomo 'Unknown user' after pipelined DATA (provider rule)",
    "bounces/sisimai/lhost-sendmail-40.eml": "NTT docomo 'Unknown user' after pipelined DATA (provider rule)",
    "bounces/sisimai/rhost-nttdocomo-01.eml": "NTT docomo 'Unknown user' after pipelined DATA (provider rule)",
    "bounces/sisimai/lhost-mcafee-01.eml": "McAfee gateway 'Unknown user' classed as filtered by sisimai",
    "bounces/sisimai/lhost-mcafee-05.eml": "McAfee gateway 'User not exist' classed as filtered by sisimai",
    "bounces/sisimai/lhost-activehunter-02.eml": "ActiveHunter 'User unknown' classed as filtered by sisimai",
    "bounces/sisimai/lhost-exchange2003-04.eml": "'Recipient Not Found' classed as filtered by sisimai",
    "bounces/sisimai/lhost-postfix-07.eml": "OCN relay 'User unknown' classed as filtered by sisimai",
    "bounces/sisimai/lhost-sendmail-48.eml": "SFR 'Recipient address rejected: User unknown' classed as filtered",
    "bounces/sisimai/lhost-x1-02.eml": "'[User unknown]' from this MTA classed as filtered by sisimai",
    "bounces/sisimai/lhost-messagingserver-06.eml": "status 5.2.1 (mailbox disabled) but text 'User Unknown'; we "
    "follow the text",
    "bounces/sisimai/rfc3464-01.eml": "5.1.1 'User Unknown' is a dead address by RFC 3463; sisimai's test marks it "
    "soft",
    "bounces/sisimai/rfc3464-42.eml": "'The email account that you tried to reach does not exist' is a dead "
    "address; sisimai's test marks it soft",
    "bounces/sisimai/rfc3464-35.eml": "'is not a registered gateway user' with 5.0.0 reads as a dead address; "
    "sisimai marks all three recipients soft",
    "bounces/sisimai/lhost-zoho-02.eml": "'Invalid Address ... User Unknown' (5.2.1) reads as a dead address; "
    "sisimai marks both recipients soft",
    "bounces/sisimai/lhost-interscanmss-02.eml": "'Unable to deliver message to <addr>' gives no cause; sisimai's "
    "InterScan module knows it means an unknown user",
    "bounces/sisimai/lhost-exim-37.eml": "refused after end of DATA, which we read as a content refusal (soft); "
    "sisimai reads the text 'does not exist'",
    "bounces/sisimai/lhost-exim-49.eml": "a bare '550 Rejected' gives no cause: class 5 is hard for us, soft for "
    "sisimai",
    # Temporary failures: RFC 3463 class 4 is transient whatever the text says.
    "bounces/sisimai/lhost-opensmtpd-12.eml": "4.0.0 'No MX found', a temporary report; sisimai marks it hard",
    "bounces/sisimai/lhost-postfix-05.eml": "450 4.1.1 'User unknown in virtual alias table' is temporary",
    # No cause we can read: "unknown" where sisimai guesses soft.
    "bounces/sisimai/lhost-googlegroups-04.eml": "localised Google Groups notice (Czech) without a status code",
    "bounces/sisimai/lhost-googlegroups-06.eml": "localised Google Groups notice (Greek) without a status code",
    "bounces/sisimai/lhost-googlegroups-08.eml": "localised Google Groups notice (Persian) without a status code",
    "bounces/sisimai/lhost-googlegroups-10.eml": "localised Google Groups notice (Hebrew) without a status code",
    "bounces/sisimai/lhost-googlegroups-12.eml": "localised Google Groups notice (Ukrainian) without a status code",
    "bounces/sisimai/lhost-notes-01.eml": "Lotus Notes report whose only reason is in Japanese",
    "bounces/sisimai/lhost-x3-02.eml": "'failed permanently' with no reason or status",
    "bounces/sisimai/lhost-x3-05.eml": "'failed permanently' with no reason or status",
}


@dataclass(frozen=True)
class Outcome:
    name: str
    verdict: Verdict | None
    reason: str
    bounce: BounceInfo | None
    crash: str | None = None


def _run(path: Path) -> Outcome:
    name = str(path.relative_to(CORPORA))
    raw = path.read_bytes()
    try:
        msg = parse_message(raw)
    except ParseError as exc:
        return Outcome(name, None, exc.reason, None)
    except Exception as exc:  # the contract is broken: reported by the test, not raised here
        return Outcome(name, None, "", None, crash=f"parse_message: {type(exc).__name__}: {exc}")
    readings = []
    # The intake hands triage a compat32 message; other callers may use policy.default: both must agree.
    for parse_policy in (policy.compat32, policy.default):
        try:
            raw_msg = BytesParser(policy=parse_policy).parsebytes(raw)
            result = triage(msg, raw_msg, None)
            bounce = parse_bounce(raw_msg) if result.verdict is Verdict.bounce else None
        except Exception as exc:
            return Outcome(name, None, "", None, crash=f"triage/parse_bounce: {type(exc).__name__}: {exc}")
        readings.append((result.verdict, result.reason, bounce))
    if readings[0] != readings[1]:
        return Outcome(name, None, "", None, crash=f"compat32 and default policies disagree: {readings}")
    verdict, reason, bounce = readings[0]
    return Outcome(name, verdict, reason, bounce)


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    files = corpus_files("mime") + corpus_files("bounces")
    return {o.name: o for o in map(_run, files)}


def _manifests() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for manifest in sorted((CORPORA / "bounces").rglob("MANIFEST.tsv")):
        with manifest.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rows[str((manifest.parent / row["file"]).relative_to(CORPORA))] = row
    return rows


def _column(row: dict[str, str], prefix: str) -> str:
    return next((value or "" for key, value in row.items() if key and key.startswith(prefix)), "")


def _expectations(row: dict[str, str]) -> tuple[list[str], list[str]]:
    """(expected bounced addresses, expected kinds) of one MANIFEST row; empty when none is given."""
    if "expected_hard_or_soft (go-sisimai HardBounce flag)" in row:  # sisimai
        addresses = _column(row, "recipients (derived")
        kinds = _column(row, "expected_hard_or_soft")
    else:
        addresses = _column(row, "expected_bounced_address") or _column(row, "dsn_final_recipients")
        kinds = _column(row, "expected_hard_or_soft")
    addr_list = [a.strip() for a in addresses.split(";") if a.strip()]
    kind_list = [k.strip().split(" ")[0] for k in kinds.split(";") if k.strip()]
    return addr_list, [k for k in kind_list if k in ("hard", "soft")]


def _canon(addr: str) -> str:
    bare = addr.strip().strip("<>")
    return (normalise_address(bare) or loose_address(bare) or bare).lower()


def _is_not_a_bounce(row: dict[str, str]) -> bool:
    return "not-a-bounce" in _column(row, "mta_or_format")


def test_no_crash_and_only_expected_quarantine(
    outcomes: dict[str, Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    crashes = {o.name: o.crash for o in outcomes.values() if o.crash}
    quarantined = {o.name: o.reason for o in outcomes.values() if o.verdict is None and not o.crash}
    verdicts = Counter(o.verdict.value for o in outcomes.values() if o.verdict is not None)
    with capsys.disabled():
        print(f"\ncorpora: {len(outcomes)} messages; verdicts {dict(verdicts)}; quarantined {len(quarantined)}:")
        for name, reason in sorted(quarantined.items()):
            print(f"  {name}: {reason}")
    assert not crashes, crashes
    assert set(quarantined) == set(EXPECTED_QUARANTINE)
    for name, fragment in EXPECTED_QUARANTINE.items():
        assert fragment in quarantined[name], (name, quarantined[name])


def test_bounce_corpus_never_normal(outcomes: dict[str, Outcome]) -> None:
    manifests = _manifests()
    wrong = []
    for name, outcome in outcomes.items():
        if not name.startswith("bounces/"):
            continue
        assert name in manifests, f"{name} missing from its MANIFEST.tsv"
        expected_normal = _is_not_a_bounce(manifests[name])
        if (outcome.verdict is Verdict.normal) != expected_normal:
            wrong.append((name, outcome.verdict, outcome.reason))
    assert not wrong


def test_bounce_parser_agrees_with_manifests(outcomes: dict[str, Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    manifests = _manifests()
    counts: Counter[str] = Counter()
    address_disagree: dict[str, str] = {}
    kind_disagree: dict[str, str] = {}
    for name, row in sorted(manifests.items()):
        addresses, kinds = _expectations(row)
        outcome = outcomes[name]
        if not addresses and not kinds:
            continue
        if outcome.bounce is None:
            counts["expectation given, verdict not bounce (not compared)"] += 1
            continue
        got = outcome.bounce
        if addresses:
            if _canon(got.recipient or "") in {_canon(a) for a in addresses}:
                counts["address agrees"] += 1
            else:
                address_disagree[name] = f"got {got.recipient}, expected {addresses}"
        if kinds:
            # Multi-recipient rows list recipients sorted and kinds in message order: only the set is usable.
            agrees = got.kind in kinds if len(kinds) > 1 else got.kind == kinds[0]
            if agrees:
                counts["kind agrees"] += 1
            else:
                kind_disagree[name] = f"got {got.kind} ({got.status}: {got.diagnostic[:80]}), expected {kinds}"
    unexpected_address = {k: v for k, v in address_disagree.items() if k not in KNOWN_ADDRESS_EXCEPTIONS}
    unexpected_kind = {k: v for k, v in kind_disagree.items() if k not in KNOWN_KIND_EXCEPTIONS}
    stale = sorted(
        (set(KNOWN_ADDRESS_EXCEPTIONS) - set(address_disagree)) | (set(KNOWN_KIND_EXCEPTIONS) - set(kind_disagree))
    )
    with capsys.disabled():
        compared_addr = counts["address agrees"] + len(address_disagree)
        compared_kind = counts["kind agrees"] + len(kind_disagree)
        print(
            f"\nparse_bounce vs MANIFEST: address {counts['address agrees']}/{compared_addr} agree, "
            f"hard/soft {counts['kind agrees']}/{compared_kind} agree "
            f"({len(KNOWN_ADDRESS_EXCEPTIONS)} + {len(KNOWN_KIND_EXCEPTIONS)} known exceptions); "
            f"{counts['expectation given, verdict not bounce (not compared)']} with an expectation triaged "
            "as auto_reply (not compared)"
        )
        for name, detail in sorted({**unexpected_address, **unexpected_kind}.items()):
            print(f"  UNEXPECTED {name}: {detail}")
    assert not unexpected_address, unexpected_address
    assert not unexpected_kind, unexpected_kind
    assert not stale, f"known exceptions that now agree, remove them: {stale}"
