"""Tests for the inbound parser and the header helpers, including golden files of crafted Russian mail."""

from __future__ import annotations

import base64
import email
import json
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailservice.mail import fastpath, header_reader
from mailservice.mail.bounces import parse_bounce
from mailservice.mail.headers import (
    HeaderInjectionError,
    decode_base64_loose,
    decode_bytes,
    decode_encoded_words,
    normalise_address,
    safe_header_value,
)
from mailservice.mail.parse import (
    ParsedMessage,
    ParseError,
    parse_message,
    parse_message_and_tree,
    sanitize_filename,
)
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


def _mutated(data: st.DataObject) -> bytes:
    """The seed message with up to 12 bytes flipped, runs deleted or fragments of MIME syntax inserted."""
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
    return bytes(raw)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_never_raises_on_mutated_message(data: st.DataObject) -> None:
    try:
        parse_message(_mutated(data))
    except ParseError as exc:
        # "parser failure" is the last-resort wrapper: reaching it means a bug here, not a bad message.
        assert exc.reason and not exc.reason.startswith("parser failure"), exc.reason


def _tree_state(msg: Message) -> list[object]:
    """Everything a parsed tree holds, part by part (defects by kind and text: they do not compare by value)."""
    state: list[object] = []
    for part in msg.walk():
        fields = dict(vars(part))
        fields["defects"] = [(type(defect), str(defect)) for defect in fields.get("defects", [])]
        if part.is_multipart():
            fields["_payload"] = len(part.get_payload())
        state.append((type(part), fields))
    return state


def _assert_compat32_tree(raw: bytes) -> None:
    """parse_message_and_tree gives the message parse_message does, and a tree that is compat32's of ``raw``."""
    try:
        expected = parse_message(raw)
    except ParseError:
        with pytest.raises(ParseError):
            parse_message_and_tree(raw)
        return
    parsed, tree = parse_message_and_tree(raw)
    assert parsed == expected
    if tree is not None:
        reference = email.message_from_bytes(raw, policy=policy.compat32)
        assert _tree_state(tree) == _tree_state(reference)
        assert _written(tree) == _written(reference)


def _written(msg: Message) -> bytes | str:
    try:
        return msg.as_bytes()
    except Exception as exc:  # a damaged message the generator cannot write: then both fail alike
        return repr(exc)


_TREE_SAMPLES = sorted((Path(__file__).parent / "data").rglob("*.eml"))


@pytest.mark.parametrize("eml", _TREE_SAMPLES, ids=[f"{p.parent.name}/{p.stem}" for p in _TREE_SAMPLES])
def test_the_parse_tree_is_compat32s_own(eml: Path) -> None:
    """Intake's triage and bounce reader get the parse's tree instead of a second compat32 parse: the same tree."""
    _assert_compat32_tree(eml.read_bytes())


def test_the_parse_tree_is_given_only_when_it_is_compat32s() -> None:
    plain = _simple("From: a@example.ru\nSubject: Запрос")
    assert parse_message_and_tree(plain)[1] is not None
    _assert_compat32_tree(b"From a@example.ru Mon Jan  1 00:00:00 2026\n" + plain)  # an mbox separator line
    # "Subject :" is repaired before parsing (RFC 5322 4.5): compat32 reads the bytes as they came.
    changed = plain.replace(b"Subject:", b"Subject :")
    parsed, tree = parse_message_and_tree(changed)
    assert tree is None and parsed == parse_message(changed)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_parse_tree_of_a_mutated_message_is_compat32s(data: st.DataObject) -> None:
    _assert_compat32_tree(_mutated(data))


def test_a_nul_in_a_charset_name_is_a_defect_not_a_parser_failure() -> None:
    """Found by the property test above: the stdlib decodes an 8-bit text part with its charset parameter while
    the walker only asks whether the part is a list, and a NUL in that name raised ValueError."""
    raw = _SEED.replace(b"charset=utf-8", b"charset=\x00tf-8", 1)
    assert raw != _SEED
    parsed = parse_message(raw)
    assert "Добрый день, заявление во вложении." in parsed.text


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


def test_decode_bytes_reads_damaged_utf8_as_utf8_and_single_byte_text_not() -> None:
    # W2: a line cut inside a character (a relay folding at 998 bytes) and a last character cut short leave
    # UTF-8 with two invalid sequences; it stays UTF-8, each one replacement character, as mail clients show it.
    text = "Прошу предоставить сведения о земельном участке в Бердске."
    damaged = text.encode()[:20] + b"\r\n" + text.encode()[21:] + "Иван".encode()[:-1]
    for declared in ("utf-8", None, "windows-1251"):
        decoded, note = decode_bytes(damaged, declared)
        assert decoded == "Прошу пред\ufffd\r\nставить сведения о земельном участке в Бердске.Ива\ufffd", decoded
        assert note is not None and "2 invalid utf-8" in note
    # Text in a single-byte Cyrillic charset is no such UTF-8, whatever the declaration says.
    for charset in ("cp1251", "koi8-r", "cp866", "iso8859-5"):
        assert decode_bytes(text.encode(charset), charset)[0] == text
    assert decode_bytes(text.encode("cp1251"), "utf-8")[0] == text


@pytest.mark.parametrize(
    ("charset", "disposition", "folded"),
    [("cp1251", True, False), ("koi8-r", False, False), ("utf-8", True, True), ("cp1251", False, True)],
)
def test_an_attachment_name_in_raw_8bit_bytes_is_read(charset: str, disposition: bool, folded: bool) -> None:
    # W6: the name in raw bytes, in Content-Disposition or only in Content-Type, folded inside its quotes or not.
    name = "Заявление о предоставлении земельного участка.pdf"
    quoted = b'"' + name.encode(charset) + b'"'
    if folded:  # at a space, as mail programs fold (RFC 5322 2.2.3)
        quoted = quoted.replace(b" ", b"\r\n ", 1)
    header = b"Content-Disposition: attachment; filename=" if disposition else b"Content-Type: application/pdf; name="
    raw = (
        b"From: a@example.ru\r\nTo: info@dizo.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b"--b\r\n" + header + quoted + b"\r\n"
        + (b"Content-Type: application/pdf\r\n" if disposition else b"Content-Disposition: attachment\r\n")
        + b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )  # fmt: skip
    [attachment] = parse_message(raw).attachments
    assert attachment.filename == name, attachment.filename


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_decode_base64_loose_reads_text_cut_short(cut: int) -> None:
    # W2: base64 cut short by a size-limited relay; a length one past a whole quantum is what the standard
    # library cannot read (bpo-27397).
    data = "Прошу предоставить сведения.".encode()
    decoded = decode_base64_loose(base64.b64encode(data)[:-cut])
    assert data.startswith(decoded) and len(decoded) >= len(data) - 3
    assert decode_encoded_words("=?utf-8?B?" + base64.b64encode("Привет".encode()).decode()[:-3] + "?=") == "Прив\ufffd"


# --------------------------------------------------------------------------------------------------
# Fast paths: the same result as policy.default
# --------------------------------------------------------------------------------------------------

_CHARSETS = ["utf-8"] * 6 + ["UTF-8", "koi8-r", "windows-1251", "iso-8859-1", "us-ascii", "utf-8*ru", "utf-7", "bogus"]
_WORD_TEXTS = ["Иванов", "Иван Иванович", " lead", "trail ", "a  b", "tab\there", "=?", '"q"', "a,b", "<x@y>"]
_WORD_TEXTS += ["\r\n", "\x00", "ё€", "", "a.b", "\u00a0nb", "\\"]


@st.composite
def _encoded_words(draw: st.DrawFn) -> str:
    charset = draw(st.sampled_from(_CHARSETS))
    text = "".join(draw(st.lists(st.sampled_from(_WORD_TEXTS), max_size=3)))
    try:
        data = text.encode(charset.split("*")[0])
    except (LookupError, UnicodeError):
        data = text.encode("utf-8")
    if data and not draw(st.integers(min_value=0, max_value=4)):
        data = data[: draw(st.integers(min_value=1, max_value=len(data)))]  # a character cut in two
    encoding = draw(st.sampled_from("bBqQ"))
    if encoding in "bB":
        payload = base64.b64encode(data).decode()
        payload = payload if draw(st.integers(min_value=0, max_value=4)) else payload.rstrip("=")
    else:
        payload = "".join(
            chr(b) if 0x21 <= b <= 0x7E and chr(b) not in "=?_ " else "_" if b == 0x20 else f"={b:02X}" for b in data
        )
    return f"=?{charset}?{encoding}?{payload}?=" + draw(st.sampled_from([""] * 8 + ["x", "=Z"]))


_ATOMS = st.sampled_from(
    ["Ivan", "Ivanov", "O'Neil", "Jo-Ann", "_"] * 3 + ["I.", "I.I.", ".", "a=?b", "=?x", "a@b", "(c)", '"', "Ж", "?="]
)
_SPACES = st.sampled_from([" ", "\t", "  ", "", " \t ", " \u00a0 "])


@st.composite
def _phrases(draw: st.DrawFn) -> str:
    words = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["ew", "ew", "atom", "quoted"]))
        if kind == "ew":
            words.append(draw(_encoded_words()) + draw(st.sampled_from(["", "", ".", ". ", ".x"])))
        elif kind == "atom":
            words.append(draw(_ATOMS))
        else:
            inner = draw(st.lists(st.one_of(_encoded_words(), st.sampled_from(["a", "b c", "=?", ""])), max_size=3))
            words.append('"' + draw(_SPACES).join(inner) + '"')
    out = draw(st.sampled_from(["", " "]))
    for i, word in enumerate(words):
        out += word + (draw(_SPACES) if i < len(words) - 1 else "")
    return out + draw(st.sampled_from(["", " "]))


_SPECS = st.sampled_from(
    ["a@b.ru", "ivan.ivanov@example.com", "x+y@mail.ru"] * 4
    + ["a..b@c.d", "=?utf-8?q?x?=@e.ru", '"a b"@c.d', "a@[1.2.3.4]"]
)


@st.composite
def _address_lists(draw: st.DrawFn) -> str:
    boxes = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        kind = draw(st.sampled_from(["bare", "angle", "named", "named"]))
        spec = draw(_SPECS)
        if kind == "bare":
            boxes.append(spec)
        elif kind == "angle":
            boxes.append(f"<{spec}>")
        else:
            boxes.append(draw(_phrases()) + draw(st.sampled_from(["", " "])) + f"<{spec}>")
    return draw(st.sampled_from([",", ", ", " , "])).join(boxes) + draw(st.sampled_from(["", "", "", " ", ","]))


@st.composite
def _mime_values(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(["content-type", "content-disposition"]))
    tokens = st.sampled_from(["text", "plain", "TEXT", "multipart", "x-foo", "inline", "attachment", "a*b", "a'b"])
    value = draw(st.sampled_from(["", " "])) + draw(tokens)
    if name == "content-type" or draw(st.booleans()):
        value += draw(st.sampled_from(["/", " / "])) + draw(tokens)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        param = draw(st.sampled_from(["charset", "Charset", "name", "boundary", "x*", "a'b", "name"]))
        text = draw(
            st.sampled_from(
                ['"utf-8"', "utf-8", '""', '"a b"', '"----=_Part_1.2"', '"=?utf-8?q?x?="', "a%20b", "x'y", '"a;b"', ""]
            )
        )
        value += ";" + draw(st.sampled_from(["", " ", "\t"])) + param + draw(st.sampled_from(["=", " = "])) + text
    return name, value + draw(st.sampled_from(["", "", ";", " "]))


@settings(max_examples=400, deadline=None)
@given(st.one_of(_phrases(), st.text(max_size=40)))
def test_fast_unstructured_agrees_with_policy_default(value: str) -> None:
    fast = fastpath._fast_unstructured(value)
    if fast is not None:
        header = policy.default.header_factory("subject", value)
        assert (fast, header.defects) == (str(header), ())


@settings(max_examples=400, deadline=None)
@given(_address_lists())
def test_fast_addresses_agree_with_policy_default(value: str) -> None:
    fast = fastpath._fast_addresses(value, join_words=False)
    if fast is not None:
        clean = header_reader._clean_line
        header = policy.default.header_factory("to", value)
        expected = [(clean(a.display_name), a.addr_spec) for a in header.addresses]
        assert [(clean(display), spec) for display, spec in fast] == expected


@settings(max_examples=400, deadline=None)
@given(_mime_values())
def test_fast_mime_header_agrees_with_policy_default(item: tuple[str, str]) -> None:
    name, value = item
    fast = fastpath._fast_mime_header(name, value)
    if fast is not None:
        header = policy.default.header_factory(name, value)
        assert (fast, header.defects) == (str(header), ())


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 25 Nov 2026 14:39:37 +0000",
        "1 Jan 2026 10:00 -0000",
        "Mon, 1 Jan 2024 00:00:00 +0300 (MSK)",
        "Tue, 31 Feb 2026 10:00:00 +0000",
        "Thu, 1 Jan 1970 00:00:00 +9999",
        "garbage",
        "",
    ],
)
def test_fast_date_agrees_with_policy_default(value: str) -> None:
    fast = fastpath._fast_date(value)
    if fast is not None:
        header = policy.default.header_factory("date", value)
        assert (fast, header.defects) == (str(header), ())


@pytest.mark.parametrize(
    ("kind", "value", "fast"),
    [
        ("subject", "=?utf-8?b?0JjQsg==?= =?utf-8?b?0JjQsg==?=", True),  # RFC 2047 6.2: the space goes
        ("subject", "=?utf-8?b?0JjQsg==?=\t \t=?utf-8?q?=D0=98?=", True),
        ("subject", " =?utf-8?b?0JjQsg==?= x  y =?UTF-8?B?0JjQsg==?= ", True),
        ("subject", "Re: =?koi8-r?b?8NLJ18XU?= =?utf-8*ru?q?=D0=94=D0=B0_?=", True),
        ("subject", "=?utf-8?q?=D0=98?==?utf-8?q?=D0=98?=", False),  # glued words
        ("subject", "=?utf-8?b?0JjQsg?=", False),  # missing padding
        ("subject", "=?utf-8?q?=D0?=", False),  # half a character
        ("to", '"=?utf-8?b?0JjQsg==?= =?utf-8?b?0JjQsg==?=" <a@b.ru>', True),  # the space goes inside quotes too
        ("to", "=?utf-8?b?0JjQsg==?= =?utf-8?b?0JjQsg==?= <a@b.ru>", True),  # but not in a phrase
        ("to", "Ivan   Ivanov <a@b.ru>, <c@d.ru>, e@f.ru", True),
        ("to", '"Ivanov, Ivan" <a@b.ru>', True),
        ("to", "=?utf-8?q?Ivan=0D=0AEvil?= <ivan@example.ru>", False),  # policy.default raises on this one
        ("to", "=?utf-8?b?0JjQstCw0L3QvtCyINCYLiDQmA==?=. <ivanov@example.ru>", True),  # Python's "Иванов И. И."
        ("to", "Ivanov I. I. <a@b.ru>", True),  # RFC 5322 4.1 obs-phrase
        ("to", "Ivanov I.I.<a@b.ru>", False),  # policy.default raises on a period right before "<"
        ("to", "a@b.ru (Ivan)", False),
        ("content-type", "text/plain;charset=utf-8", True),
        ("content-type", 'TEXT/Plain ; charset = "x"', True),
        ("content-type", 'multipart/mixed; boundary="----=_Part_1"; x=""', True),
        ("content-type", "text/plain; name*=utf-8''%D0%98.txt", False),
        ("content-type", 'text/plain; name="a"; name="b"', False),
        ("content-disposition", 'attachment;\tfilename="a b.pdf"', True),
        ("content-disposition", 'attachment; filename="=?utf-8?B?0JjQsg==?="', False),
    ],
)
def test_fast_paths_on_known_values(kind: str, value: str, fast: bool) -> None:
    if kind == "subject":
        result: object = fastpath._fast_unstructured(value)
        expected: object = str(policy.default.header_factory(kind, value))
    elif kind == "to":
        found = fastpath._fast_addresses(value, join_words=False)
        clean = header_reader._clean_line
        result = found and [(clean(display), spec) for display, spec in found]
        if found:
            expected = [
                (clean(a.display_name), a.addr_spec) for a in policy.default.header_factory(kind, value).addresses
            ]
    else:
        result = fastpath._fast_mime_header(kind, value)
        expected = str(policy.default.header_factory(kind, value))
    assert (result is not None) == fast
    if fast:
        assert result == expected


def test_a_name_cut_mid_word_across_encoded_words_is_joined(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tryout F16, RFC 2047 6.2: white space between adjacent encoded words is ignored, in a name as in a subject
    (mailers that encode by byte count cut Cyrillic names mid-word); the stdlib keeps a space there."""

    def word(text: str) -> str:
        return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode() + "?="

    name = word("ООО «Новосиб") + "\r\n " + word("ирскземстрой»")
    raw = f"From: {name} <ooo@example.ru>\r\nSubject: {word('Запрос о предоставл')}\r\n {word('ении')}\r\n\r\nx\r\n"
    for parsed in (parse_message(raw.encode()), _parse_without_fast_paths(raw.encode(), monkeypatch)):
        assert (parsed.from_name, parsed.subject) == ("ООО «Новосибирскземстрой»", "Запрос о предоставлении")
        assert parsed.from_addr == "ooo@example.ru"
    # Ordinary words around encoded ones keep their spaces; a CR/LF inside a word is still a space.
    mixed = f"From: {word('Иван')} Петров {word('Ив')} {word('анович')} <ivan@example.ru>\r\n\r\nx\r\n"
    assert parse_message(mixed.encode()).from_name == "Иван Петров Иванович"
    broken = f"From: {word('Ива' + chr(13) + chr(10) + 'н')} <ivan@example.ru>\r\n\r\nx\r\n"
    assert parse_message(broken.encode()).from_name == "Ива н"
    # An encoded word still never becomes an address.
    forged = f"From: {word('victim@example.ru')} {word('<victim@example.ru>')} <attacker@evil.test>\r\n\r\nx\r\n"
    assert parse_message(forged.encode()).from_addr == "attacker@evil.test"


def test_common_values_take_the_fast_paths() -> None:
    # Guards the speed: what Thunderbird, Outlook, Gmail and Python itself write must not need the full parser.
    assert fastpath._fast_unstructured("=?utf-8?B?0JfQsNC/0YDQvtGB?= =?utf-8?B?INC+?=") == "Запрос о"
    assert fastpath._fast_addresses('"=?utf-8?B?0JDQvdC90LA=?=" <anna@mail.ru>, b@example.ru')
    assert fastpath._fast_addresses("=?UTF-8?Q?=D0=90=D0=BD=D0=BD=D0=B0?= <anna@mail.ru>")
    assert fastpath._fast_mime_header("content-type", 'multipart/alternative; boundary="000000000000abc"')
    assert fastpath._fast_mime_header("content-disposition", 'attachment; filename="scan.pdf"')
    assert fastpath._fast_date("Tue, 03 Mar 2026 10:00:00 +0300")
    assert fastpath._quick_parse(_SEED) is not None


def _parse_without_fast_paths(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> ParsedMessage:
    with monkeypatch.context() as patch:
        # Each fast path where it is looked up when a message is parsed (setattr fails on a name that is gone).
        patch.setattr(fastpath, "_quick_parse", lambda data: None)
        patch.setattr(header_reader, "_fast_reader", lambda name: None)
        patch.setattr(header_reader, "_fast_addresses", lambda value: None)
        return parse_message(raw)


def _same_result(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        fast: ParsedMessage | str = parse_message(raw)
    except ParseError as exc:
        fast = exc.reason
    try:
        slow: ParsedMessage | str = _parse_without_fast_paths(raw, monkeypatch)
    except ParseError as exc:
        slow = exc.reason
    assert fast == slow


@pytest.mark.parametrize("eml", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_fast_paths_change_nothing_on_golden_files(eml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_result(eml.read_bytes(), monkeypatch)


@pytest.mark.parametrize(
    "from_header",
    [
        # Found by the generated-mail test below: UTF-8 bytes under a Latin-1 label. The careful path reads them as
        # UTF-8 (decode_bytes); the fast path read Latin-1 and gave mojibake.
        "Ivan =?utf-8?b?0JjQstCw0L3QvtCy?= =?iso-8859-1?b?0JjQstCw0L3QvtCy?=<a@b.ru>",
        "=?windows-1251?b?0JjQstCw0L3QvtCy?= <a@b.ru>",
        "=?iso-8859-1?q?=C8=E2=E0=ED?= <a@b.ru>",  # cp1251 bytes under a Latin-1 label
    ],
)
def test_fast_paths_follow_the_careful_reading_of_a_wrong_label(
    from_header: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = f"To: info@dizo.test\nFrom: {from_header}\nSubject: x\n\nbody\n".encode()
    _same_result(raw, monkeypatch)
    assert parse_message(raw).from_name.startswith(("Ivan Иванов", "Иванов", "Иван")), parse_message(raw).from_name


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_fast_paths_change_nothing_on_generated_mail(data: st.DataObject) -> None:
    headers = {
        "From": data.draw(_address_lists()),
        "Subject": data.draw(st.one_of(_phrases(), st.text(max_size=30))),
        "Content-Type": data.draw(_mime_values())[1],
    }
    head = "".join(f"{name}: {value}\n" for name, value in headers.items() if "\n" not in value and "\r" not in value)
    raw = b"To: info@dizo.test\nDate: Tue, 03 Mar 2026 10:00:00 +0300\n" + head.encode("utf-8") + b"\nbody\n"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _same_result(raw, monkeypatch)
        # The generated headers first, ahead of the seed's own (multipart) Content-Type and From.
        seeded = _SEED.replace(b"Subject:", b"X-Subject:").replace(b"\nTo:", b"\n" + head.encode() + b"To:")
        _same_result(seeded, monkeypatch)
