"""mail/slim.py: a letter over the message limit read without its too-large attachments (T1), on real MIME; an
opaquely signed one is opened (its text is inside the one S/MIME part), not cut."""

from __future__ import annotations

import binascii
import email.policy
import os
import tracemalloc
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailservice.mail import slim as slim_module
from mailservice.mail.parse import parse_message
from mailservice.mail.slim import slim
from tests.test_smime import _signed, _tlv

LIMIT = 10_000
TEXT = "Прошу оформить в собственность участок под моим домом."


def _letter() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Кравцова Ольга <kravtsova@example.ru>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Документы"
    msg.set_content(TEXT)
    return msg


def test_an_attachment_over_the_limit_is_cut_out_and_named_the_rest_kept() -> None:
    msg = _letter()
    msg.add_attachment(os.urandom(LIMIT * 5), maintype="application", subtype="pdf", filename="скан паспорта.pdf")
    msg.add_attachment(b"%PDF small", maintype="application", subtype="pdf", filename="заявление.pdf")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    result = slim(raw, max_attachment_bytes=LIMIT)
    assert result.dropped == ["скан паспорта.pdf"]
    assert len(result.raw) < LIMIT < len(raw)
    parsed = parse_message(result.raw)
    assert TEXT in parsed.text
    assert [(a.filename, a.data) for a in parsed.attachments] == [("заявление.pdf", b"%PDF small")]


def test_a_file_under_the_limit_and_a_long_text_are_kept() -> None:
    msg = _letter()
    msg.set_content(TEXT + "\n" + "Подробности. " * 2000)  # the text part alone is over the limit: text is kept
    msg.add_attachment(os.urandom(LIMIT // 2), maintype="image", subtype="jpeg", filename="фото.jpg")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    result = slim(raw, max_attachment_bytes=LIMIT)
    assert result.dropped == [] and result.raw == raw


def test_a_nested_multipart_and_a_cut_message_without_its_close_delimiter() -> None:
    inner = _letter()
    inner.add_alternative("<p>" + TEXT + "</p>", subtype="html")  # multipart/alternative inside multipart/mixed
    inner.add_attachment(os.urandom(LIMIT * 3), maintype="application", subtype="zip", filename="архив.zip")
    raw = inner.as_bytes(policy=email.policy.SMTP)
    cut = raw[: raw.rindex(b"\r\n--")]  # the close delimiter lost: the last part runs to the end
    for whole in (raw, cut):
        result = slim(whole, max_attachment_bytes=LIMIT)
        assert result.dropped == ["архив.zip"]
        parsed = parse_message(result.raw)
        assert TEXT in parsed.text and parsed.attachments == []


# --- an opaquely signed letter over the limit: opened, not cut (its text is inside the signature) ---

SMIME = Path(__file__).parent / "data" / "smime"
KRAVTSOVA = "Прошу оформить в собственность земельный участок под моим жилым домом"
UNCHECKED = "Подпись не проверялась"


def _signed_letter(entity: bytes, *, inside_mixed: bool = False, chunked: bool = False) -> bytes:
    """A letter whose content is an S/MIME SignedData (RFC 5652 5.1, no signers: the reader checks none) around
    ``entity``; ``chunked``: a BER constructed OCTET STRING of 1000-byte chunks (openssl cms -stream, CryptoPro)."""
    if chunked:
        chunks = b"".join(_tlv(0x04, entity[i : i + 1000]) for i in range(0, len(entity), 1000))
        p7m = _signed(b"\x24\x80" + chunks + b"\x00\x00")
    else:
        p7m = _signed(_tlv(0x04, entity))
    msg = _letter()
    if inside_mixed:
        msg.set_content("Письмо подписано, см. вложение.")
        msg.add_attachment(p7m, maintype="application", subtype="pkcs7-mime", filename="smime.p7m")
    else:
        msg.set_content(p7m, maintype="application", subtype="pkcs7-mime", filename="smime.p7m")
    return msg.as_bytes(policy=email.policy.SMTP)


def _entity(scan: int) -> bytes:
    inner = EmailMessage()
    inner.set_content(TEXT)
    inner.add_attachment(os.urandom(scan), maintype="application", subtype="pdf", filename="скан паспорта.pdf")
    inner.add_attachment(b"%PDF small", maintype="application", subtype="pdf", filename="заявление.pdf")
    return inner.as_bytes(policy=email.policy.SMTP)


def test_a_signed_letter_over_the_limit_keeps_its_text_and_small_files_golden() -> None:
    raw = (SMIME / "07_signed_over_the_limit.eml").read_bytes()  # OpenSSL, DER, a 150 KB scan inside
    result = slim(raw, max_attachment_bytes=100_000)
    assert result.dropped == ["скан паспорта.pdf"]
    assert len(result.notes) == 1 and UNCHECKED in result.notes[0] and "«скан паспорта.pdf»" in result.notes[0]
    parsed = parse_message(result.raw)
    assert KRAVTSOVA in parsed.text
    assert parsed.subject == "Документы на оформление участка" and parsed.from_addr == "kravtsova@example.ru"
    assert [(a.filename, a.data) for a in parsed.attachments] == [("заявление.pdf", b"%PDF-1.4\n% zayavlenie\n%%EOF\n")]


@pytest.mark.parametrize(("inside_mixed", "chunked"), [(False, False), (True, False), (False, True), (True, True)])
def test_a_signed_letter_alone_or_in_a_multipart_der_or_ber(inside_mixed: bool, chunked: bool) -> None:
    raw = _signed_letter(_entity(LIMIT * 5), inside_mixed=inside_mixed, chunked=chunked)
    result = slim(raw, max_attachment_bytes=LIMIT)
    assert result.dropped == ["скан паспорта.pdf"] and len(result.raw) < LIMIT
    parsed = parse_message(result.raw)
    assert TEXT in parsed.text and [a.filename for a in parsed.attachments] == ["заявление.pdf"]
    if inside_mixed:
        assert "Письмо подписано, см. вложение." in parsed.text


def test_a_signed_bare_text_a_cut_content_and_an_unreadable_signature() -> None:
    bare = _signed_letter(("Прошу ответить. " * (LIMIT // 8)).encode())  # no MIME headers inside: text only
    result = slim(bare, max_attachment_bytes=LIMIT)
    assert result.dropped == [] and "Прошу ответить." in parse_message(result.raw).text
    # Cut short (the file ends inside the signed content): the reader fails, the part is dropped as a file.
    whole = _signed_letter(_entity(LIMIT * 5))
    damaged = whole[: len(whole) // 2]
    result = slim(damaged, max_attachment_bytes=LIMIT)
    assert result.dropped == ["smime.p7m"] and result.notes == []


def test_a_signed_content_over_the_readers_cap_keeps_the_text_before_the_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bounded reader's cap the content is read up to it: the text (first) is kept, the file the cut
    falls in is dropped, whatever its estimated size, and staff are told the signature was read in part."""
    entity = _entity(LIMIT * 5)
    monkeypatch.setattr("mailservice.mail.slim._SMIME_MAX_BYTES", len(entity) // 2)  # inside the scan
    result = slim(_signed_letter(entity), max_attachment_bytes=LIMIT)
    assert result.dropped == ["скан паспорта.pdf"]
    assert len(result.notes) == 1 and "прочитано не до конца" in result.notes[0]
    parsed = parse_message(result.raw)
    assert TEXT in parsed.text and parsed.attachments == []


@pytest.mark.parametrize("chunked", [False, True], ids=["der", "ber-chunks"])
def test_a_signed_letter_of_35_mb_is_read_with_one_copy_of_its_signature(chunked: bool) -> None:
    """README (limits): the signature is decoded once and the letter inside is read in that copy, whether the
    signature holds it in one piece (DER) or in chunks (BER): the base64 decoded (57 bytes a 78-byte line) and a
    few MB of working buffers, never a second copy for the chunks."""
    raw = _signed_letter(_entity(19 * 2**20), chunked=chunked)  # a 19 MB scan: about 35 MB of letter
    assert len(raw) > 34 * 2**20
    tracemalloc.start()
    try:
        result = slim(raw, max_attachment_bytes=15 * 2**20)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"signed letter of {len(raw) / 2**20:.1f} MB slimmed with a peak of {peak / 2**20:.1f} MB")
    assert peak < len(raw) * 57 // 78 + 4 * 2**20
    assert result.dropped == ["скан паспорта.pdf"] and TEXT in parse_message(result.raw).text


def _decoded(decode: Callable[[bytes], bytes | bytearray], text: bytes) -> bytes | str:
    try:
        return bytes(decode(text))
    except binascii.Error:
        return "binascii.Error"


@given(
    st.binary(max_size=40),
    st.lists(st.tuples(st.integers(0, 60), st.sampled_from([b"=", b"==", b"\r\n", b" ", b"*", b"A", b"\xff"]))),
    st.integers(1, 9),
)
def test_the_signature_is_decoded_block_by_block_as_a2b_base64_decodes_it_whole(
    data: bytes, inserts: list[tuple[int, bytes]], block: int
) -> None:
    """The block-wise decoder (its own writable buffer) gives what ``binascii.a2b_base64`` gives for the whole
    text, or the same error: line breaks, stray characters and padding anywhere, blocks of a few characters."""
    text = bytearray(base64_lines(data))
    for at, extra in inserts:
        text[min(at, len(text)) : min(at, len(text))] = extra
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(slim_module, "_BASE64_BLOCK", block)
        got = _decoded(lambda t: slim_module._a2b_base64(memoryview(t)), bytes(text))
    assert got == _decoded(binascii.a2b_base64, bytes(text))


def base64_lines(data: bytes) -> bytes:
    """``data`` in base64 as a mail part carries it: lines of 76 characters and CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))
