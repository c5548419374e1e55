"""Tests for the inbound parser and the header helpers, including golden files of crafted Russian mail."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailservice.mail.bounces import parse_bounce
from mailservice.mail.headers import (
    HeaderInjectionError,
    decode_bytes,
    decode_encoded_words,
    normalise_address,
    safe_header_value,
)
from mailservice.mail.parse import ParseError, parse_message, sanitize_filename
from mailservice.mail.triage import triage

EML_DIR = Path(__file__).parent / "data" / "eml"
GOLDEN = sorted(EML_DIR.glob("*.eml"))


def _raw_msg(raw: bytes) -> Message:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _simple(headers: str, body: str = "Текст письма.\n", charset: str = "utf-8") -> bytes:
    head = headers.strip("\n") + "\n"
    if "content-type" not in head.lower():
        head += f"MIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: 8bit\n"
    return (head + "\n").encode("utf-8") + body.encode(charset)


# --------------------------------------------------------------------------------------------------
# Golden files
# --------------------------------------------------------------------------------------------------


def test_enough_crafted_messages() -> None:
    assert len(GOLDEN) >= 12
    for eml in GOLDEN:
        assert eml.with_suffix(".json").is_file(), f"{eml.name} has no expected JSON"


@pytest.mark.parametrize("eml", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden(eml: Path) -> None:
    expected = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
    raw = eml.read_bytes()
    msg = parse_message(raw)
    raw_msg = _raw_msg(raw)
    verdict = triage(msg, raw_msg, None)
    assert msg.subject == expected["subject"]
    assert msg.from_addr == expected["from_addr"]
    assert msg.from_name == expected["from_name"]
    assert verdict.verdict == expected["verdict"], verdict.reason
    assert msg.new_text[:80] == expected["new_text"]
    assert [a.filename for a in msg.attachments] == expected["attachments"]
    if "bounce" in expected:
        info = parse_bounce(raw_msg)
        assert (info.recipient, info.kind, info.status) == (
            expected["bounce"]["recipient"],
            expected["bounce"]["kind"],
            expected["bounce"]["status"],
        )


def test_tagged_reply_keeps_thread_ids() -> None:
    msg = parse_message((EML_DIR / "14_tagged_reply.eml").read_bytes())
    assert "[№ 2026-000042]" in msg.subject
    assert msg.message_id == "CAB+xyz0014@mail.gmail.com"
    assert msg.in_reply_to == ["req-2026-000042.2@mailservice.localhost"]
    assert msg.references == ["req-2026-000042.1@mailservice.localhost", "req-2026-000042.2@mailservice.localhost"]
    assert msg.date == datetime(2026, 2, 17, 12, 45, 10, tzinfo=UTC)
    assert msg.cc == ["Secretary@mailservice.localhost"]  # the invalid entry is dropped, the domain lower-cased


def test_undeclared_charset_recorded_as_defect() -> None:
    msg = parse_message((EML_DIR / "03_undeclared_8bit_cp1251.eml").read_bytes())
    assert "кадастровую стоимость" in msg.text
    assert any("undeclared 8-bit" in d for d in msg.defects)


def test_rfc2231_attachment_content() -> None:
    msg = parse_message((EML_DIR / "09_rfc2231_cyrillic_attachment.eml").read_bytes())
    (att,) = msg.attachments
    assert att.content_type == "application/pdf"
    assert att.data.startswith(b"%PDF-1.4")
    assert att.size == len(att.data)
    assert not att.inline


def test_forwarded_message_is_an_attachment_named_by_subject() -> None:
    msg = parse_message((EML_DIR / "16_forwarded_ru.eml").read_bytes())
    (att,) = msg.attachments
    assert att.content_type == "message/rfc822"
    inner = _raw_msg(att.data)
    assert inner["Message-ID"] == "<inner-0016@example.ru>"


def test_header_injection_subject_is_one_line() -> None:
    msg = parse_message((EML_DIR / "17_header_injection.eml").read_bytes())
    assert "\n" not in msg.subject and "\r" not in msg.subject
    with pytest.raises(HeaderInjectionError):
        safe_header_value("Вопрос=?UTF-8?Q?=0A?=Bcc: victim@example.com")


# --------------------------------------------------------------------------------------------------
# Errors: only ParseError, only for the hopeless
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 4, "not an RFC 5322 message"),
        (b"Dear sir,\nplease answer my question.\n", "no header block"),
        (b"Subject: no sender\nTo: info@example.ru\n\nbody\n", "no usable sender"),
        (b"From: undisclosed\nSubject: x\n\nbody\n", "no usable sender"),
        (b"From: Ivan <ivan@>\nSubject: x\n\nbody\n", "no usable sender"),
    ],
)
def test_parse_error_reasons(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_message(raw)
    assert reason in info.value.reason


def test_sender_falls_back_to_sender_header() -> None:
    msg = parse_message(_simple("From: undisclosed\nSender: clerk@example.ru\nSubject: x"))
    assert msg.from_addr == "clerk@example.ru"
    assert any("Sender" in d for d in msg.defects)


def test_machine_report_without_sender_is_kept_for_triage() -> None:
    raw = _simple("From: MAILER-DAEMON\nReturn-Path: <>\nSubject: Undelivered Mail Returned to Sender")
    msg = parse_message(raw)
    assert msg.from_addr is None
    assert triage(msg, _raw_msg(raw), None).verdict != "normal"


def test_indented_first_header_line_is_repaired() -> None:
    raw = b" From: Ivan <ivan@example.ru>\nSubject: test\n\nbody\n"
    assert parse_message(raw).from_addr == "ivan@example.ru"


def test_obsolete_space_before_colon() -> None:
    # RFC 5322 4.5.? obs-fields allow white space between field name and colon.
    msg = parse_message(b"From  : Ivan <ivan@example.ru>\nSubject   : hi\n\nbody\n")
    assert (msg.from_addr, msg.subject) == ("ivan@example.ru", "hi")


def test_header_that_policy_default_rejects() -> None:
    # policy.default raises on access for this From (an encoded CR LF inside the display name).
    raw = b"From: =?utf-8?q?Ivan=0D=0AEvil?= <ivan@example.ru>\nSubject: x\n\nbody\n"
    msg = parse_message(raw)
    assert msg.from_addr == "ivan@example.ru"
    assert "\n" not in msg.from_name


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_never_raises_other_than_parse_error_on_random_bytes(data: bytes) -> None:
    try:
        parse_message(data)
    except ParseError as exc:
        assert exc.reason and not exc.reason.startswith("parser failure"), exc.reason


_SEED = (EML_DIR / "09_rfc2231_cyrillic_attachment.eml").read_bytes()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_never_raises_on_mutated_message(data: st.DataObject) -> None:
    raw = bytearray(_SEED)
    for _ in range(data.draw(st.integers(min_value=1, max_value=12))):
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if op == "flip":
            raw[pos] = data.draw(st.integers(min_value=0, max_value=255))
        elif op == "delete":
            del raw[pos : pos + data.draw(st.integers(min_value=1, max_value=40))]
        else:
            raw[pos:pos] = data.draw(st.sampled_from([b"\n", b"\r\n\r\n", b"=?", b"--b1", b";", b'"', b"\xff\xfe"]))
        if not raw:
            break
    try:
        parse_message(bytes(raw))
    except ParseError as exc:
        # "parser failure" is the last-resort wrapper: reaching it means a bug here, not a bad message.
        assert exc.reason and not exc.reason.startswith("parser failure"), exc.reason


# --------------------------------------------------------------------------------------------------
# Bodies and attachments
# --------------------------------------------------------------------------------------------------


def test_html_only_body_becomes_text_without_scripts() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        "<body><p>Прошу дать <b>ответ</b>.</p><p><a href='https://example.ru/doc'>документ</a></p></body></html>"
    )
    raw = _simple("From: a@example.ru\nSubject: x\nContent-Type: text/html; charset=utf-8", html)
    msg = parse_message(raw)
    assert msg.html is not None and "<script>" in msg.html
    assert "Прошу дать ответ." in msg.text
    assert "alert" not in msg.text and "color:red" not in msg.text
    assert "<https://example.ru/doc>" in msg.text


def test_oversized_attachment_dropped_but_named() -> None:
    payload = base64.encodebytes(b"x" * 5000).decode()
    raw = (
        "From: a@example.ru\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n"
        "--B\nContent-Type: text/plain; charset=utf-8\n\nсм. вложение\n"
        "--B\nContent-Type: application/zip\nContent-Disposition: attachment; filename=big.zip\n"
        f"Content-Transfer-Encoding: base64\n\n{payload}--B\n"
        "Content-Type: image/png\nContent-Disposition: inline; filename=small.png\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n"
    ).encode()
    msg = parse_message(raw, max_attachment_bytes=1000)
    assert msg.oversized_attachments == ["big.zip"]
    assert [(a.filename, a.inline) for a in msg.attachments] == [("small.png", True)]


def test_smime_parts_are_kept_as_attachments() -> None:
    raw = (
        "From: a@example.ru\nSubject: signed\nMIME-Version: 1.0\n"
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=S\n\n'
        "--S\nContent-Type: text/plain; charset=utf-8\n\nПодписанный текст\n"
        "--S\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
        "Content-Disposition: attachment; filename=smime.p7s\nContent-Transfer-Encoding: base64\n\nMIIB\n--S--\n"
    ).encode()
    msg = parse_message(raw)
    assert msg.text == "Подписанный текст"
    assert [a.filename for a in msg.attachments] == ["smime.p7s"]


def test_unknown_and_wrong_charsets_do_not_crash() -> None:
    body = "Привет, это проверка кодировки письма.".encode("cp1251")
    for declared in ("x-unknown", "charset=us-ascii", "fakescii", "koi8-r", "iso-8859-1"):
        raw = f"From: a@example.ru\nSubject: x\nContent-Type: text/plain; charset={declared}\n\n".encode() + body
        assert parse_message(raw).text == "Привет, это проверка кодировки письма.", declared


def test_very_large_header_block() -> None:
    received = "".join(f"Received: from relay{i}.example.ru by mx.example.ru; Mon, 2 Feb 2026\n" for i in range(4000))
    raw = (received + "From: a@example.ru\nSubject: " + "длинная тема " * 2000 + "\n\nbody\n").encode()
    assert len(raw) > 200_000
    msg = parse_message(raw)
    assert msg.from_addr == "a@example.ru"
    assert msg.subject.startswith("длинная тема длинная тема")


def test_date_is_aware_utc_and_bad_dates_are_defects() -> None:
    msg = parse_message(_simple("From: a@example.ru\nDate: Mon, 02 Feb 2026 09:15:00 +0700"))
    assert msg.date == datetime(2026, 2, 2, 2, 15, tzinfo=UTC)
    assert parse_message(_simple("From: a@example.ru\nDate: Mon, 02 Feb 2026 09:15:00 -0000")).date.tzinfo == UTC  # type: ignore[union-attr]
    bad = parse_message(_simple("From: a@example.ru\nDate: вчера вечером"))
    assert bad.date is None
    assert any(d.startswith("date:") for d in bad.defects)


def test_content_hash_ignores_trace_headers_and_line_endings() -> None:
    base = _simple("From: a@example.ru\nSubject: x\nMessage-ID: <1@example.ru>")
    redelivered = (
        b"Return-Path: <a@example.ru>\nDelivered-To: info@example.ru\nX-Original-To: other@example.ru\n"
        b"Received: from mx (mx [192.0.2.1])\n\tby mx2; Mon, 2 Feb 2026\n"
        b"DKIM-Signature: v=1; a=rsa-sha256;\n b=abc\nAuthentication-Results: mx; spf=pass\n" + base
    ).replace(b"\n", b"\r\n")
    assert parse_message(base).content_hash == parse_message(redelivered).content_hash
    changed = base.replace("Текст".encode(), "Другой текст".encode())
    assert parse_message(changed).content_hash != parse_message(base).content_hash


def test_headers_mapping_selected_and_lower_case() -> None:
    msg = parse_message(_simple("From: a@example.ru\nAuto-Submitted: auto-replied\nList-Id: <list.example.ru>"))
    assert msg.headers["auto-submitted"] == "auto-replied"
    assert msg.headers["list-id"] == "<list.example.ru>"
    assert "from" not in msg.headers
    with pytest.raises(TypeError):
        msg.headers["x"] = "y"  # type: ignore[index]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ctype", "expected"),
    [
        ("../../etc/passwd", "text/plain", "passwd"),
        ("..\\..\\boot.ini", "text/plain", "boot.ini"),
        ("Заявление №1.docx", "application/octet-stream", "Заявление №1.docx"),
        ("a\x00b\x1fc.txt", "text/plain", "abc.txt"),
        ("счёт\u202efdp.exe", "application/octet-stream", "счётfdp.exe"),
        ('what?<>:"|*.txt', "text/plain", "what_______.txt"),
        ("  ..hidden  ", "text/plain", "hidden"),
        ("CON.txt", "text/plain", "_CON.txt"),
        (None, "application/pdf", "attachment.pdf"),
        ("", "message/rfc822", "attachment.eml"),
        ("../..", "image/jpeg", "attachment.jpg"),
        (None, "application/x-unknown-thing", "attachment.bin"),
    ],
)
def test_sanitize_filename(name: str | None, ctype: str, expected: str) -> None:
    assert sanitize_filename(name, ctype) == expected


def test_sanitize_filename_limits_length_keeping_extension() -> None:
    name = "Очень длинное имя файла " * 30 + ".pdf"
    result = sanitize_filename(name, "application/pdf")
    assert result.endswith(".pdf")
    assert len(result.encode("utf-8")) <= 200
    assert result.startswith("Очень длинное имя")


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("Ivan@Example.RU", "Ivan@example.ru"),
        ("иван@ПОЧТА.РФ", "иван@почта.рф"),
        ("user@xn--80a1acny.xn--p1ai", "user@почта.рф"),
        ("<user@example.ru>", "user@example.ru"),
        ("not an address", None),
        ("user@", None),
        ("", None),
    ],
)
def test_normalise_address(addr: str, expected: str | None) -> None:
    assert normalise_address(addr) == expected


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nBcc: x@example.ru",
        "a\nb",
        "a\rb",
        "bell\x07",
        "nul\x00",
        "line\u2028sep",
        "=?UTF-8?Q?=0A?=Bcc: x@example.ru",
        "=?utf-8?b?YQ1i?=",
        "x" * 999,
    ],
)
def test_safe_header_value_refuses(value: str) -> None:
    with pytest.raises(HeaderInjectionError):
        safe_header_value(value)


def test_safe_header_value_accepts_normal_text() -> None:
    assert safe_header_value("Ответ на запрос № 2026-000042\tот 02.02.2026") == (
        "Ответ на запрос № 2026-000042\tот 02.02.2026"
    )
    assert safe_header_value("x" * 50, max_len=50) == "x" * 50
    with pytest.raises(HeaderInjectionError):
        safe_header_value("x" * 51, max_len=50)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("=?windows-1251?B?z/Do4uXy?=", "Привет"),
        ("=?koi8-r?Q?=F0=D2=C9=D7=C5=D4?=", "Привет"),
        ("=?utf-8?B?0J/RgNC4?= =?utf-8?B?0LLQtdGC?=", "Привет"),  # white space between words dropped
        ("=?utf-8?Q?=D0=9F=D1?= =?utf-8?Q?=80=D0=B8?=", "При"),  # a character split across two words
        ("Re:=?utf-8?B?0J/RgNC4?=", "Re:При"),  # glued to other text
        ("=?utf-8?B?0J/RgNC4", "При"),  # unterminated, missing padding
        ("=?x-unknown?B?z/Do4uXy?=", "Привет"),  # unknown charset: guessed
        ("=?utf-8*ru?Q?=D0=94=D0=B0?=", "Да"),  # RFC 2231 language suffix
        ("plain text", "plain text"),
    ],
)
def test_decode_encoded_words(encoded: str, expected: str) -> None:
    assert decode_encoded_words(encoded) == expected


def test_decode_bytes_guesses_cyrillic() -> None:
    text = "Прошу предоставить сведения о земельном участке."
    assert decode_bytes(text.encode("cp1251"))[0] == text
    assert decode_bytes(text.encode("koi8-r"))[0] == text
    assert decode_bytes(text.encode("utf-8"), "windows-1251")[0] == text  # UTF-8 mislabelled
    assert decode_bytes(text.encode("koi8-r"), "windows-1251") == (
        text,
        "declared charset cp1251 looks wrong; decoded as koi8-r",
    )
    german = "Grüße aus München, schöne Grüße"
    assert decode_bytes(german.encode("cp1252"))[0] == german
