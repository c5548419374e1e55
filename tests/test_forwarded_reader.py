"""The forwarded author of a letter another body forwarded (issue 13, inline and attached forwards), and the
rule that proves the forwarding body by our own server's Authentication-Results (RFC 8601).

Golden files: tests/data/forwarded/NN_name.eml, written for this project in the shapes of Gmail, Outlook, Yandex,
Mail.ru, Apple Mail and Thunderbird (Russian and English), each with a hand-written NN_name.json: the author's
``name``, ``address``, ``date`` as the forward writes it, ``subject``, ``source`` and how the text starts; or
``null`` where the letter is no forward (a quoted reply) or the forward names no author's address.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailservice.intake.authres import forwarder_trust, parse_results
from mailservice.intake.forwarded import read_forwarded, strip_forward_prefix
from mailservice.mail.parse import parse_message

DATA = Path(__file__).parent / "data" / "forwarded"
SAMPLES = sorted(DATA.glob("*.eml"))


def test_every_sample_has_its_expected_file() -> None:
    assert len(SAMPLES) >= 16
    for eml in SAMPLES:
        assert eml.with_suffix(".json").is_file(), f"{eml.name} has no expected JSON"


@pytest.mark.parametrize("eml", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_golden(eml: Path) -> None:
    expected = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
    found = read_forwarded(parse_message(eml.read_bytes()))
    if expected is None:
        assert found is None, found
        return
    assert found is not None
    assert (found.name, found.address, found.date, found.subject, found.source) == (
        expected["name"],
        expected["address"],
        expected["date"],
        expected["subject"],
        expected["source"],
    )
    assert found.text.startswith(expected["text_starts"]), found.text
    # The body's own cover text and its separator are not the citizen's words.
    assert "Направляем" not in found.text and "Forwarded" not in found.text and "Пересыла" not in found.text


def test_the_yandex_end_marker_closes_the_forwarded_text() -> None:
    found = read_forwarded(parse_message((DATA / "05_yandex_classic.eml").read_bytes()))
    assert found is not None and "Конец" not in found.text and "Отдел обращений" not in found.text


def test_an_attached_forward_is_read_from_the_attachment_not_from_the_text_block_the_parser_made() -> None:
    parsed = parse_message((DATA / "11_attached_rfc822.eml").read_bytes())
    assert "-------- Пересланное сообщение --------" in parsed.text  # README "Limits": the parser's block
    found = read_forwarded(parsed)
    assert found is not None and found.source == "attachment"


def test_a_forward_inside_a_reply_subject_is_read_when_its_marker_is_a_forwards_own() -> None:
    # Only Outlook's separators (Original Message, a rule line) also stand above quoted replies.
    raw = (DATA / "02_gmail_ru.eml").read_bytes().replace(b"Subject: Fwd:", b"Subject: Re:", 1)
    assert b"Subject: Re:" in raw
    found = read_forwarded(parse_message(raw))
    assert found is not None and found.address == "belova.as@example.ru"


def test_a_forward_inside_a_quoted_reply_is_the_quoted_letters_not_this_ones() -> None:
    raw = (DATA / "02_gmail_ru.eml").read_bytes().decode("utf-8")
    head, body = raw.split("\n\n", 1)
    quoted = "\n".join("> " + line for line in body.splitlines())
    reply = f"{head}\n\nА ответа всё нет.\n\nпн, 30 нояб. 2026 г. в 12:00, МФЦ <adm@berdsk.example.ru>:\n{quoted}\n"
    assert read_forwarded(parse_message(reply.encode("utf-8"))) is None


def test_an_outlook_block_with_a_forged_address_in_the_name_gives_the_real_address() -> None:
    raw = (DATA / "03_outlook_en.eml").read_bytes()
    raw = raw.replace(b"From: Sidorov, Pavel [mailto:", b"From: victim@example.org [mailto:", 1)
    found = read_forwarded(parse_message(raw))
    assert found is not None and found.address == "p.sidorov@example.com"


@pytest.mark.parametrize(
    ("subject", "stripped"),
    [
        ("Fwd: Участок", "Участок"),
        ("FW: Fwd: Lease", "Lease"),
        ("ПЕРЕСЛ: Выкуп", "Выкуп"),
        ("Re: Участок", "Re: Участок"),
    ],
)
def test_forward_prefixes_are_stripped(subject: str, stripped: str) -> None:
    assert strip_forward_prefix(subject) == stripped


# The trust rule ---------------------------------------------------------------------------------------------

BODIES = ["mfc.nso.example.ru", "adm.berdsk.example.ru"]
OURS = "mx.dizo.example.ru"
BODY = "priemnaya@mfc.nso.example.ru"


def _trust(headers: list[str], sender: str = BODY, bodies: list[str] = BODIES, authserv_id: str = OURS) -> bool:
    return forwarder_trust(sender, headers, bodies=bodies, authserv_id=authserv_id).trusted


@pytest.mark.parametrize(
    "header",
    [
        f"{OURS}; dkim=pass header.d=mfc.nso.example.ru header.s=mail; spf=pass smtp.mailfrom=mfc.nso.example.ru",
        f"{OURS}; dmarc=pass (p=reject dis=none) header.from=mfc.nso.example.ru",
        f"{OURS} 1; dkim=pass (2048-bit key; secure) header.d=nso.example.ru header.i=@nso.example.ru",
        f"{OURS.upper()};\r\n\tdkim=pass\r\n\theader.d=MFC.NSO.EXAMPLE.RU",
        f"{OURS}; spf=fail smtp.mailfrom=x.example; dkim=fail header.d=mfc.nso.example.ru; "
        "dkim=pass header.d=mfc.nso.example.ru",
    ],
)
def test_our_servers_pass_for_the_bodys_domain_proves_the_body(header: str) -> None:
    assert _trust([header])


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ([], "no Authentication-Results at all"),
        (["other.example; dkim=pass header.d=mfc.nso.example.ru"], "another server's id"),
        ([f"{OURS}; dkim=fail header.d=mfc.nso.example.ru"], "dkim failed"),
        ([f"{OURS}; spf=pass smtp.mailfrom=mfc.nso.example.ru"], "SPF alone proves no From"),
        ([f"{OURS}; dkim=pass header.d=gmail.com"], "signed by an unrelated domain"),
        ([f"{OURS}; dkim=pass header.d=example.ru.evil.example"], "a look-alike domain"),
        ([f"{OURS}; dkim=pass header.d=ru"], "a top-level domain signs for nobody"),
        ([f"{OURS}; dkim=pass header.d=sub.mfc.nso.example.ru"], "a child domain is no parent"),
        ([f"{OURS}; dmarc=pass header.from=other.example.ru"], "DMARC for another From"),
        ([f"{OURS}; dmarc=pass"], "DMARC without its From domain"),
        ([f"{OURS}; dkim=pass (header.d=mfc.nso.example.ru) header.d=evil.example"], "a property in a comment"),
        (
            [f"{OURS}; dkim=none", f"{OURS}; dkim=pass header.d=mfc.nso.example.ru"],
            "the pass is below ours: the sender wrote it (RFC 8601 section 5)",
        ),
        (
            ["relay.example; dkim=pass header.d=mfc.nso.example.ru", f"{OURS}; dkim=fail header.d=mfc.nso.example.ru"],
            "the pass is another server's, ours failed",
        ),
    ],
)
def test_anything_but_our_topmost_pass_proves_nothing(headers: list[str], why: str) -> None:
    assert not _trust(headers), why


def test_a_sender_outside_the_bodies_or_no_setting_is_never_trusted() -> None:
    header = [f"{OURS}; dkim=pass header.d=example.ru"]
    assert not _trust(header, sender="ivan@example.ru")
    assert not _trust([f"{OURS}; dkim=pass header.d=mfc.nso.example.ru"], bodies=[])  # empty: the rule is off
    assert not _trust([f"{OURS}; dkim=pass header.d=mfc.nso.example.ru"], authserv_id="")
    # A public mail service listed by mistake proves an account there, not a body.
    assert not _trust(
        ["mx.dizo.example.ru; dkim=pass header.d=mail.ru"], sender="mfc-kolyvan@mail.ru", bodies=["mail.ru"]
    )
    # A subdomain of a body is not the body (the list names exact domains).
    assert not _trust([f"{OURS}; dkim=pass header.d=nso.example.ru"], sender="x@other.nso.example.ru")


def test_the_header_is_read_as_rfc_8601_writes_it() -> None:
    results = parse_results(
        'mx.example.org 1; (comment; with; semicolons) dkim=pass reason="good signature" header.d=a.example '
        "header.s=s1; dmarc=pass (p=none) header.from=a.example; none"
    )
    assert results is not None and results.authserv_id == "mx.example.org"
    assert [(r.method, r.result) for r in results.results] == [("dkim", "pass"), ("dmarc", "pass")]
    assert results.results[0].properties == {"header.d": "a.example", "header.s": "s1"}
    assert parse_results("") is None
