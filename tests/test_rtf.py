"""Outlook's compressed RTF body is read: decompressed by [MS-OXRTFCP] (its section 3 examples), then turned into
text (or the HTML it encapsulates, [MS-OXRTFEX]) with Russian in the code page the RTF names; both readers are
bounded and never raise on damaged input.
"""

from __future__ import annotations

import email.policy
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailservice.mail.parse import parse_message
from mailservice.mail.quotes import html_to_text
from mailservice.mail.rtf import MAX_TEXT, RtfError, decompress_rtf, rtf_text
from mailservice.mail.tnef import read_tnef

# [MS-OXRTFCP] 3.1.1 / 3.2.1, "Example 1: Simple Compressed RTF": these bytes and this RTF.
EXAMPLE_1 = bytes.fromhex(
    "2d000000 2b000000 4c5a4675 f1c5c7a7 03000a00 72637067 31323542 320af320 68656c09 00206277 05b06c64 7d0a800f a0"
)
EXAMPLE_1_RTF = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
# [MS-OXRTFCP] 3.1.2 / 3.2.2, "Example 2: Reading a Token from the Dictionary that Crosses WritePosition".
EXAMPLE_2 = bytes.fromhex("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")
EXAMPLE_2_RTF = b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"


def test_the_specs_examples_decompress() -> None:
    assert decompress_rtf(EXAMPLE_1, 2**20) == (EXAMPLE_1_RTF, True)
    assert decompress_rtf(EXAMPLE_2, 2**20) == (EXAMPLE_2_RTF, True)
    assert rtf_text(EXAMPLE_1_RTF) == ("hello world", False)


def test_a_damaged_or_cut_stream_is_refused_or_bounded() -> None:
    damaged = bytearray(EXAMPLE_1)
    damaged[20] ^= 0x01
    with pytest.raises(RtfError, match="CRC"):
        decompress_rtf(bytes(damaged), 2**20)
    with pytest.raises(RtfError, match="cut short"):
        decompress_rtf(EXAMPLE_1[:-3], 2**20)
    assert decompress_rtf(EXAMPLE_2, 10) == (EXAMPLE_2_RTF[:10], False)  # the output cap
    stored = struct.pack("<IIII", 12 + len(EXAMPLE_1_RTF), len(EXAMPLE_1_RTF), 0x414C454D, 0) + EXAMPLE_1_RTF
    assert decompress_rtf(stored, 2**20) == (EXAMPLE_1_RTF, True)  # "MELA": stored uncompressed (2.1.3.1.1)


# --- RTF to text: what Outlook writes for a Russian letter ---

PLAIN_1251 = (
    b"{\\rtf1\\ansi\\ansicpg1251\\fromtext \\fbidis \\deff0{\\fonttbl\r\n{\\f0\\fswiss\\fcharset204 Arial;}\r\n"
    b"{\\f1\\fmodern Courier New;}\r\n{\\f2\\fnil\\fcharset2 Symbol;}}\r\n{\\colortbl\\red0\\green0\\blue0;}\r\n"
    b"{\\*\\generator Microsoft Exchange Server;}\r\n{\\info{\\title \\'d2\\'e5\\'ec\\'e0}}\r\n"
    b"\\uc1\\pard\\plain\\deftab360 \\f0\\fs20 \\'c7\\'e4\\'f0\\'e0\\'e2\\'f1\\'f2\\'e2\\'f3\\'e9\\'f2\\'e5!\\par\r\n"
    b"\\'cf\\'f0\\'ee\\'f8\\'f3 \\'e2\\'fb\\'e4\\'e0\\'f2\\'fc "
    b"\\'f1\\'ef\\'f0\\'e0\\'e2\\'ea\\'f3 \\{\\'b9 5\\}.\\par\r\n"
    b"\\tab \\'c8\\'e2\\'e0\\'ed\\'ee\\'e2\\line\r\n}"
)
# A Western Outlook: the document's code page is 1252, the Cyrillic is in a font of charset 204; and \uN with a
# "?" fallback to be skipped (\uc1).
WESTERN_WITH_CYRILLIC_FONT = (
    b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}{\\f1\\fswiss\\fcharset204 Arial;}}"
    b"\\pard\\f1 \\'cf\\'f0\\'e8\\'e2\\'e5\\'f2\\f0 , caf\\'e9 \\u1052?\\u1080?\\u1088?\\par}"
)
# HTML encapsulated in RTF ([MS-OXRTFEX] 2.1.3.1): \htmlrtf runs are RTF-only, \*\htmltag groups hold the markup.
FROM_HTML = (
    b"{\\rtf1\\ansi\\ansicpg1251\\fromhtml1 \\deff0{\\fonttbl{\\f0\\fswiss\\fcharset204 Arial;}}\r\n"
    b"{\\*\\htmltag19 <html>}{\\*\\htmltag34 <body>}\r\n"
    b"{\\*\\htmltag64 <p>}\\htmlrtf {\\htmlrtf0 \\'cf\\'f0\\'ee\\'f8\\'f3 \\'ee\\'f2\\'e2\\'e5\\'f2\\'e8\\'f2\\'fc"
    b"{\\*\\htmltag84 &nbsp;}\\htmlrtf \\~\\htmlrtf0 \\'ef\\'ee \\'fd\\'eb. \\'ef\\'ee\\'f7\\'f2\\'e5."
    b"{\\*\\htmltag72 </p>}\\htmlrtf \\par\\htmlrtf0 }\\htmlrtf0 \r\n"
    b"{\\*\\htmltag42 </body>}{\\*\\htmltag27 </html>}}"
)


def test_a_russian_plain_rtf_in_code_page_1251() -> None:
    text, html = rtf_text(PLAIN_1251)
    assert not html
    assert text == "Здравствуйте!\nПрошу выдать справку {№ 5}.\n\tИванов\n"


def test_cyrillic_in_a_font_of_charset_204_and_unicode_escapes() -> None:
    assert rtf_text(WESTERN_WITH_CYRILLIC_FONT) == ("Привет, café Мир\n", False)
    # \uc2: two bytes of fallback after each \uN are dropped, the third is text
    assert rtf_text(b"{\\rtf1\\ansi\\ansicpg1251\\uc2 \\u1055\\'cf\\'f0\\'ee x}") == ("По x", False)


def test_html_encapsulated_in_rtf_gives_back_the_html() -> None:
    html, is_html = rtf_text(FROM_HTML)
    assert is_html
    assert html == "<html><body><p>Прошу ответить&nbsp;по эл. почте.</p></body></html>"
    assert html_to_text(html).strip() == "Прошу ответить по эл. почте."  # &nbsp; read as a space


def test_the_rtf_reader_is_bounded() -> None:
    deep = b"{" * 100_000 + b"\\'cf\\'f0" + b"}" * 100_000
    assert rtf_text(b"{\\rtf1\\ansi\\ansicpg1251" + deep + b"}")[0] == "Пр"
    assert rtf_text(b"{\\rtf1 \\bin4294967295 x}") == ("", False)  # a binary run longer than the file
    long = rtf_text(b"{\\rtf1 " + b"a" * (MAX_TEXT + 10) + b"}")[0]
    assert len(long) == MAX_TEXT


@given(st.binary(max_size=400))
def test_any_bytes_give_text_no_longer_than_they_are(data: bytes) -> None:
    text, _ = rtf_text(b"{\\rtf1\\ansi\\ansicpg1251 " + data)
    assert len(text) <= len(data) + 1


@given(st.data())
def test_a_mutated_stream_raises_only_rtf_error_and_stays_within_its_cap(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from([EXAMPLE_1, EXAMPLE_2])))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        out, _ = decompress_rtf(bytes(raw), 64)
    except RtfError:
        return
    assert len(out) <= 64


# --- through winmail.dat and the parser ---


def _lzfu(rtf: bytes) -> bytes:
    """A valid compressed RTF of literals only ([MS-OXRTFCP] 2.1.3.1: control bytes of zero bits), then the
    reference to the write position that ends it; the CRC of 2.1.3.2, computed bit by bit."""
    body = bytearray()
    for start in range(0, len(rtf), 8):
        chunk = rtf[start : start + 8]
        body += b"\x00" + chunk
    write = (207 + len(rtf)) % 4096
    if len(rtf) % 8:
        body[-1 - len(rtf) % 8] |= 1 << (len(rtf) % 8)  # the next bit of the last control byte
    else:
        body += b"\x01"
    body += struct.pack(">H", write << 4)
    crc = 0
    for byte in body:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return struct.pack("<IIII", len(body) + 12, len(rtf), 0x75465A4C, crc) + bytes(body)


def _tnef_with_rtf(rtf: bytes) -> bytes:
    """A TNEF ([MS-OXTNEF] 2.1.3) whose message properties hold only PR_RTF_COMPRESSED (0x1009, binary)."""
    value = _lzfu(rtf)
    prop = struct.pack("<HHII", 0x0102, 0x1009, 1, len(value)) + value + b"\x00" * (-len(value) % 4)
    props = struct.pack("<I", 1) + prop
    attribute = struct.pack("<BHHI", 1, 0x9003, 0x0006, len(props)) + props + struct.pack("<H", sum(props) & 0xFFFF)
    return b"\x78\x9f\x3e\x22\x01\x00" + attribute


def _letter(tnef: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Иванов Иван <ivanov@example.ru>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Справка"
    msg.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize(
    ("rtf", "text"),
    [
        (PLAIN_1251, "Здравствуйте!\nПрошу выдать справку {№ 5}.\n\tИванов"),
        (FROM_HTML, "Прошу ответить по эл. почте."),
    ],
    ids=["plain", "from-html"],
)
def test_a_winmail_dat_with_only_a_russian_rtf_body_gives_the_letters_text(rtf: bytes, text: str) -> None:
    content = read_tnef(_tnef_with_rtf(rtf))
    assert not content.unread_body and content.complete
    parsed = parse_message(_letter(_tnef_with_rtf(rtf)))
    assert parsed.text.strip() == text
    assert parsed.attachments == [] and parsed.staff_notes == ()


@given(st.data())
def test_a_mutated_outlook_rtf_body_never_raises_and_the_letter_keeps_text_or_the_dat(data: st.DataObject) -> None:
    raw = bytearray((Path(__file__).parent / "data" / "tnef" / "rtf.tnef").read_bytes())
    magic = raw.index(b"LZFu")
    (comp_size,) = struct.unpack_from("<I", raw, magic - 8)
    for _ in range(data.draw(st.integers(1, 6))):  # in its CRC and compressed bytes ([MS-OXRTFCP] 2.1.3.1)
        raw[data.draw(st.integers(magic + 4, magic - 8 + comp_size + 3))] = data.draw(st.integers(0, 255))
    content = read_tnef(bytes(raw))
    assert content.unread_body != bool(content.body.strip() or content.html.strip())
    parsed = parse_message(_letter(bytes(raw)))
    assert parsed.text.strip() or "winmail.dat" in [a.filename for a in parsed.attachments]
