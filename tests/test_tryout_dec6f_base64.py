"""Tryout of 6 December, round 7, X1 and X2: the block-wise base64 of an S/MIME signature (mail/slim.py
``_a2b_base64``) is ``binascii.a2b_base64`` byte for byte, error for error, in memory bounded by the decoded size
wherever the pad characters stand."""

from __future__ import annotations

import binascii
import re
import tracemalloc
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from mailservice.mail import slim as slim_module
from mailservice.mail.parse import parse_message
from mailservice.mail.slim import slim
from tests.test_slim import TEXT, _entity, _signed_letter

# X1 -------------------------------------------------------------------------------------------------------------


def test_a_stray_pad_character_early_in_the_signature_does_not_multiply_its_memory() -> None:
    """The bound of the day's own test (test_slim: the base64 decoded and a few MB of buffers) holds for a letter
    whose signature has one stray '=' at the start of its base64: a2b_base64 skips it (the same letter is read),
    so the decoder must not fall back to decoding everything at once."""
    raw = _signed_letter(_entity(12 * 2**20), chunked=True)
    head, blank, body = raw.partition(b"\r\n\r\n")
    hostile = head + blank + b"=" + body  # a pad before any data character: skipped by binascii.a2b_base64
    tracemalloc.start()
    try:
        result = slim(hostile, max_attachment_bytes=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.dropped == ["скан паспорта.pdf"] and TEXT in parse_message(result.raw).text
    assert peak < len(hostile) * 57 // 78 + 4 * 2**20, f"peak {peak / 2**20:.1f} MB for {len(hostile) / 2**20:.1f} MB"


def test_pads_strewn_everywhere_a2b_base64_ignores_cost_no_more_than_the_decoded_bytes() -> None:
    """'=' where a2b_base64 skips it (before a quad's second character, or one alone before its third), in every
    line, and long runs of it between quads: the decoded bytes and a few blocks, never a copy of the text."""
    line = b"=QU=JD" + b"=" * 70 + b"\r\n"  # 'ABC' for 78 characters
    text = line * (4 * 2**20 // len(line))
    tracemalloc.start()
    try:
        decoded = slim_module._a2b_base64(memoryview(text))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded == binascii.a2b_base64(text)
    assert peak < len(text) * 3 // 4 + 4 * slim_module._BASE64_BLOCK, f"peak {peak / 2**20:.1f} MB"


# X2 -------------------------------------------------------------------------------------------------------------


def _error(text_: bytes, decode: Any) -> str:
    try:
        decode(text_)
    except binascii.Error as exc:
        return str(exc)
    return "no error"


def test_a_lone_trailing_character_gives_the_error_a2b_base64_gives_for_the_whole() -> None:
    text_ = b"QUJD" * 1000 + b"Q"
    assert _error(text_, lambda t: slim_module._a2b_base64(memoryview(t))) == _error(text_, binascii.a2b_base64)


# Both, on any text -----------------------------------------------------------------------------------------------


def _outcome(decode: Any, text_: bytes) -> tuple[str, Any]:
    """What a decoder gives: its bytes, or its error's type and arguments (the message)."""
    try:
        return "bytes", bytes(decode(text_))
    except Exception as exc:  # the type is what is compared
        return type(exc).__qualname__, exc.args


# Data characters, pads, line breaks and spaces, junk (outside the alphabet, 8-bit too), weighted toward '='.
_PIECES = st.sampled_from([b"Q", b"U", b"J", b"D", b"+", b"/", b"=", b"==", b"=", b"\r\n", b" ", b"*", b"\xff", b"-"])


@given(st.lists(_PIECES, max_size=60), st.integers(1, 9))
def test_any_text_decodes_as_a2b_base64_decodes_it_whole(pieces: list[bytes], block: int) -> None:
    """Pads anywhere (before, inside and after quads, in runs, at block boundaries), whitespace and junk, blocks
    of a few characters: the same bytes as ``binascii.a2b_base64`` or the same error, message included."""
    text_ = b"".join(pieces)
    got = _outcome(lambda t: slim_module._a2b_base64(memoryview(t), block=block), text_)
    assert got == _outcome(binascii.a2b_base64, text_)


@given(st.binary(max_size=40), st.lists(st.tuples(st.integers(0, 70), _PIECES), max_size=8), st.integers(1, 9))
def test_encoded_data_with_anything_inserted_decodes_as_a2b_base64_does(
    data: bytes, inserts: list[tuple[int, bytes]], block: int
) -> None:
    """Real base64 (lines of 76 and CRLF, its own padding) with pads, junk or data characters put anywhere."""
    encoded = binascii.b2a_base64(data, newline=False)
    text_ = bytearray(b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76)))
    for at, extra in inserts:
        text_[min(at, len(text_)) : min(at, len(text_))] = extra
    got = _outcome(lambda t: slim_module._a2b_base64(memoryview(t), block=block), bytes(text_))
    assert got == _outcome(binascii.a2b_base64, bytes(text_))


# On every release requires-python admits ----------------------------------------------------------------------

# Pads in runs longer than the small windows the test gives, among data characters.
_QUAD_PIECES = st.sampled_from([b"Q", b"U", b"J", b"=", b"==", b"=" * 9])


@given(st.lists(_QUAD_PIECES, max_size=80), st.integers(0, 40), st.integers(1, 12))
def test_the_whole_quads_found_a_window_at_a_time_end_where_one_match_ends(
    pieces: list[bytes], start: int, window: int
) -> None:
    """mail/slim.py matches a block's whole quads a window at a time (a greedy repeat keeps state for every quad
    it passed). With windows of a few characters, quads cut at a window's edge and runs of pads longer than a
    window, the end is where one match over the whole block ends."""
    chunk = b"".join(pieces)
    start = min(start, len(chunk))
    expected = slim_module._QUADS.match(chunk, start)
    assert expected is not None  # it matches no quad at all rather than fail
    with mock.patch.object(slim_module, "_QUADS_WINDOW", window):
        assert slim_module._whole_quads(chunk, start) == expected.end()


# A possessive quantifier (*+, ++, ?+, {m,n}+) right after a group.
_POSSESSIVE_GROUP = re.compile(r"\)(?:[*+?]|\{\d*,?\d*\})\+")


def test_no_pattern_of_the_service_repeats_a_group_possessively() -> None:
    """requires-python admits CPython 3.11.0 to 3.11.4 (Debian 12's Python is 3.11.2), whose regular expressions
    mis-match a possessive repeat of a group: ``(?:ab?c)*+`` matches "a" (gh-106052, fixed in 3.11.5). The
    block-wise base64 used one, and there a signed letter over the size limit lost its text. CI runs a later
    release, where no other test can see it."""
    root = Path(slim_module.__file__).parents[1]
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _POSSESSIVE_GROUP.search(line)
    ]
    assert found == []
