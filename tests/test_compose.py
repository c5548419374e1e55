"""Building outgoing mail: the fast header writer gives exactly what the compat32 folder gives."""

from __future__ import annotations

import itertools
import random
import string
from email import charset as stdlib_charset
from email.header import Header
from email.mime.text import MIMEText
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from mailservice.config import Settings
from mailservice.mail.compose import UTF8, WIRE_POLICY, _encoded_line, _text_part, build_message, serialise

HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + ' \t<>@.,;:"()[]=?-_/' + "ёЖщ", max_size=120)


def _slow(message: object) -> bytes:
    return message.as_bytes(policy=WIRE_POLICY)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(name=HEADER_TEXT, subject=HEADER_TEXT, reference=st.text(alphabet=string.ascii_letters + ".@-", max_size=90))
def test_serialise_matches_the_compat32_generator(name: str, subject: str, reference: str) -> None:
    message = build_message(
        Settings(from_address="info@dizo.test"),
        to="ivanov@example.ru",
        to_name=name,
        subject=subject,
        template="feedback_survey",
        context={
            "request": SimpleNamespace(number="2026-000042", client=SimpleNamespace(organisation="")),
            "addressee": name,
            "url": "https://example.test/x",
            "days": 30,
            "final": "answered",
        },
        in_reply_to=reference or None,
        references=[reference] * random.Random(len(reference)).randint(0, 25),
        extra_headers={"X-Long": "x" * len(subject) * 2, "X-Name": name},
        attachments=[("Справка.pdf", "application/pdf", b"%PDF-1.4 test")],
    )
    assert serialise(message) == _slow(message)


def _standard_utf8() -> stdlib_charset.Charset:
    standard = stdlib_charset.Charset("utf-8")
    standard.header_encoding = stdlib_charset.BASE64
    standard.body_encoding = stdlib_charset.BASE64
    return standard


# Cyrillic (2 bytes), ASCII (1), CJK (3) and emoji (4 bytes in UTF-8): every remainder of a 3-byte Base64 group.
MIXED_WIDTHS = st.text(alphabet="abc Z.,;ёЖщЯ漢字€😀🇷", max_size=200)


@settings(max_examples=300, deadline=None)
@given(
    value=MIXED_WIDTHS,
    name=st.sampled_from(["Subject", "To", "X-A-Very-Long-Header-Name-Indeed"]),
    max_line=st.sampled_from([0, 20, 40, 78, 200]),
)
def test_encoded_words_split_as_the_standard_charset_splits_them(value: str, name: str, max_line: int) -> None:
    """The linear encoded-word splitter gives the bytes of the standard (quadratic) one, at any line length."""
    ours = Header(value, UTF8, header_name=name).encode(linesep="\r\n", maxlinelen=max_line)
    standard = Header(value, _standard_utf8(), header_name=name).encode(linesep="\r\n", maxlinelen=max_line)
    assert ours == standard


@settings(max_examples=300, deadline=None)
@given(value=MIXED_WIDTHS, lengths=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=6))
def test_encoded_word_lines_match_the_standard_when_nothing_fits(value: str, lengths: list[int]) -> None:
    """Line lengths too short for one character (the first line then starts empty, as None) split the same."""
    ours = UTF8.header_encode_lines(value, itertools.chain(lengths, itertools.repeat(lengths[-1])))
    standard = _standard_utf8().header_encode_lines(value, itertools.chain(lengths, itertools.repeat(lengths[-1])))
    assert ours == standard


@settings(max_examples=200, deadline=None)
@given(
    # Any text but lone surrogates (which no UTF-8 letter can carry), with at least one non-ASCII character.
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=400).map(lambda t: t + "ж"),
    subtype=st.sampled_from(["plain", "html"]),
)
def test_a_text_part_is_what_mimetext_makes(text: str, subtype: str) -> None:
    """The quick text part gives MIMEText's bytes (headers, their order, Base64 lines) and the same text back."""
    ours = _text_part(text, subtype)
    standard = MIMEText(text, subtype, UTF8)  # type: ignore[arg-type]
    assert serialise(ours) == serialise(standard) == standard.as_bytes(policy=WIRE_POLICY)
    assert ours.get_payload(decode=True) == text.encode("utf-8")
    assert ours.get_content_type() == f"text/{subtype}" and ours.get_content_charset() == "utf-8"


@settings(max_examples=300, deadline=None)
@given(
    number=st.from_regex(r"\A[0-9]{4}-[0-9]{6}\Z"),
    rest=st.text(alphabet="abc Z.,;0123456789ёЖщЯ漢€😀", max_size=120),
)
def test_an_encoded_header_reused_for_other_digits_folds_as_the_standard_folder(number: str, rest: str) -> None:
    """The acknowledgement's subject is folded once per shape and filled with each number's digits: the same
    bytes as folding it anew (compose._encoded_line)."""
    value = f"[№ {number}] {rest}"
    standard = WIRE_POLICY.fold_binary("Subject", Header(value, UTF8, header_name="Subject"))  # type: ignore[arg-type]
    assert _encoded_line("Subject", value) == standard
