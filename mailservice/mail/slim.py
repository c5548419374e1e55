"""A letter over the message limit without its too-large attachments, so that it can still be read and registered
(59-FZ art. 8 p. 2: every written appeal is registered). Pure, no I/O.

The MIME structure is walked on the raw bytes: the header block of each entity is parsed (small), boundaries are
found with a regular expression over the original buffer (no copy), and the result is the original bytes with the
spans of the dropped parts left out. So a 34 MB letter (a 25 MB scan in base64) costs its own bytes and the small
remainder, never several copies of the scan.

An opaquely signed letter (S/MIME ``application/pkcs7-mime``, RFC 8551 3.5.2) is ONE part: its text and its files
are inside the signature. Dropping that part would drop the letter's words, so it is opened instead: decoded once,
its signed entity read by the bounded reader of :mod:`mailservice.mail.smime` (a view, no second copy for DER),
slimmed the same way, and put in the signature's place; the signature itself stays only in the raw message, which
intake stores whole, and staff are told (``Slimmed.notes``).
"""

from __future__ import annotations

import binascii
import email.parser
import email.policy
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from mailservice.mail.body import _SMIME_MAX_BYTES, _disposition, _part_filename
from mailservice.mail.filenames import sanitize_filename
from mailservice.mail.smime import SMIME_TYPES, signed_view

__all__ = ["Slimmed", "slim"]

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MAX_DEPTH = 20
_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
# The fields of a top-level S/MIME part that describe the signature, not the letter inside (RFC 2045 9, 8551 3.2).
_CONTENT_FIELD = re.compile(rb"content-[a-z-]+[ \t]*:", re.IGNORECASE)
# Signatures inside signatures are opened this many layers deep (as mail/body.py reads them).
_SIGNED_LAYERS = 3

Raw = bytes | memoryview
# Base64 is decoded a block of this many characters at a time (_a2b_base64).
_BASE64_BLOCK = 1 << 18
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")))
# binascii.a2b_base64 (Modules/binascii.c, not strict), over the alphabet and '=' only: a '=' before the second
# data character of a quad is skipped; after the second, one '=' followed by a data character is skipped and two
# end the data; after the third, one ends it (the quad's first two or three characters give its last bytes).
# _QUADS: the whole quads from a quad's start, pads skipped among them; _PAD_ENDS: a quad that a pad ends.
# Plain greedy quantifiers: '=' and [^=] never overlap, so each has one way to match and nothing backtracks. Not
# possessive ones (*+): CPython 3.11.0-3.11.4, Debian 12's Python among them, mis-matches a possessive repeat of a
# group (gh-106052, fixed in 3.11.5), and a signed letter then lost its text. A greedy repeat keeps some state for
# every quad it passed, so _QUADS looks at a window of the block at a time (_whole_quads).
_QUADS = re.compile(rb"(?:=*[^=]=*[^=]=?[^=][^=])*")
_QUADS_WINDOW = 1 << 14
_PAD_ENDS = re.compile(rb"=*[^=]=*[^=](?:==|=?[^=]=)")


@dataclass(frozen=True)
class Slimmed:
    """The message without the dropped parts, the names of those parts (for the acknowledgement) and notes for
    staff (Russian: a signed letter opened to be read)."""

    raw: bytes
    dropped: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Leaf:
    cut_start: int  # where the part's span begins (its delimiter line), or its body for a single-part message
    cut_end: int
    size: int  # of the file, estimated
    name: str
    droppable: bool
    start: int = 0  # where the part's own header block begins
    body_start: int = 0
    signed: bool = False  # an opaque S/MIME part: the letter may be inside
    encoding: str = ""


def _headers(raw: Raw, start: int, end: int) -> tuple[Message, int, int]:
    """The header block of the entity at ``raw[start:end]``, where it ends and where its body starts."""
    match = _HEADER_END.search(raw, start, end)
    header_end = match.start() if match else end
    body_start = match.end() if match else end
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(bytes(raw[start:header_end]) + b"\r\n\r\n"), header_end, body_start


def _leaves(raw: Raw, start: int, end: int, cut_start: int, depth: int) -> Iterator[_Leaf]:
    headers, header_end, body_start = _headers(raw, start, end)
    ctype = headers.get_content_type()
    boundary = headers.get_boundary() if ctype.startswith("multipart/") else None
    if boundary is None or depth >= _MAX_DEPTH:
        text = ctype.startswith("text/") and _disposition(headers) != "attachment"
        name = sanitize_filename(_part_filename(headers, []), ctype)
        size = end - body_start
        encoding = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
        if encoding == "base64":
            size = size * 57 // 78  # 57 bytes of file per 76-character line and its CRLF
        signed = ctype in SMIME_TYPES
        yield _Leaf(cut_start, end, size, name, not text, start, body_start, signed, encoding)
        return
    # A literal start ("\n--boundary") lets the regular expression engine skip through the base64 quickly; a CR
    # before it belongs to the delimiter (RFC 2046 5.1.1).
    delimiter = re.compile(b"\n--" + re.escape(boundary.encode("ascii", "replace")) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    # From the header block's own line end: the first delimiter may follow the blank line at once (no preamble).
    found = [
        (m.start() - (m.start() > 0 and raw[m.start() - 1] == 0x0D), m.end(), bool(m.group(1)))
        for m in delimiter.finditer(raw, header_end, end)
    ]
    for (here_start, here_end, close), (after_start, _end, _close) in itertools.pairwise(found):
        if close:  # the close delimiter: the epilogue follows
            return
        yield from _leaves(raw, here_end, after_start, here_start, depth + 1)
    if found and not found[-1][2]:  # no close delimiter (a cut message): the last part runs to the end
        yield from _leaves(raw, found[-1][1], end, found[-1][0], depth + 1)


def slim(raw: bytes, *, max_attachment_bytes: int) -> Slimmed:
    """``raw`` without the parts whose file exceeds ``max_attachment_bytes`` (text is always kept).

    A base64 part's file size is estimated from its length (57 bytes a 78-byte line), not decoded; the raw
    message is stored whole either way. An opaque S/MIME part over the limit is opened, not dropped (see the
    module's docstring); one that cannot be read is dropped like any file.
    """
    return _slim(raw, max_attachment_bytes, cut=False, layer=0)


def _slim(raw: Raw, max_attachment_bytes: int, *, cut: bool, layer: int) -> Slimmed:
    """:func:`slim` of ``raw``; ``cut``: ``raw`` was cut short, so a file running to its very end is dropped."""
    leaves = [leaf for leaf in _leaves(raw, 0, len(raw), 0, 0) if leaf.droppable]
    dropped = [leaf for leaf in leaves if leaf.size > max_attachment_bytes or (cut and leaf.cut_end == len(raw))]
    if not dropped:
        return Slimmed(bytes(raw), [])
    pieces: list[Raw] = []
    names: list[str] = []
    notes: list[str] = []
    position = 0
    for leaf in sorted(dropped, key=lambda leaf: leaf.cut_start):
        opened = _open_signed(raw, leaf, max_attachment_bytes, layer) if leaf.signed and not cut else None
        start = leaf.cut_start
        if start == 0:  # a single-part message that is all attachment: keep its header, drop its body
            start = _headers(raw, 0, len(raw))[2]
        if opened is not None and leaf.cut_start == 0:
            pieces.append(_letter_fields(raw))
        elif opened is not None:
            pieces.append(raw[position : leaf.start])  # up to the signature part's own header block
        else:
            pieces.append(raw[position:start])
        if opened is not None:
            pieces.append(opened.raw)
            names += opened.dropped
            notes += opened.notes
        else:
            names.append(leaf.name)
        position = max(position, leaf.cut_end)
    pieces.append(raw[position:])
    return Slimmed(b"".join(pieces), names, notes)


def _open_signed(raw: Raw, leaf: _Leaf, max_attachment_bytes: int, layer: int) -> Slimmed | None:
    """The letter signed inside an S/MIME part, slimmed, or None when there is none to read."""
    if layer >= _SIGNED_LAYERS or leaf.encoding not in ("", "7bit", "8bit", "binary", "base64"):
        return None
    body = memoryview(raw)[leaf.body_start : leaf.cut_end]
    try:
        # One copy of the signature (base64 decoded, writable); the letter is then a view into it, its chunks (BER)
        # moved together in place. A binary signature is a view of ``raw``: only chunks are copied, once.
        data: Raw | bytearray = _a2b_base64(body) if leaf.encoding == "base64" else body
        entity, was_cut = signed_view(data, _SMIME_MAX_BYTES)
    except (binascii.Error, ValueError):  # cut or damaged base64: the part is dropped as a file
        return None
    if entity is None:
        return None
    if not _HEADER_LINE.match(entity):  # a bare text signed without MIME headers
        entity = memoryview(b"Content-Type: text/plain\r\n\r\n" + bytes(entity))
    inner = _slim(entity, max_attachment_bytes, cut=was_cut, layer=layer + 1)
    quoted = ", ".join(f"«{name}»" for name in inner.dropped)
    what = f"вложение {quoted} не принято" if len(inner.dropped) == 1 else f"вложения {quoted} не приняты"
    note = (
        f"Письмо подписано электронной подписью (S/MIME) и больше предельного размера: его текст прочитан из файла "
        f"{leaf.name}"
        + (f", {what} из-за размера" if inner.dropped else "")
        + ("; содержимое подписи прочитано не до конца" if was_cut else "")
        + ". Подпись не проверялась; файл подписи к обращению не приложен, письмо сохранено целиком в исходном виде."
    )
    return Slimmed(inner.raw, inner.dropped, [note, *inner.notes])


def _a2b_base64(text: memoryview, block: int | None = None) -> bytearray:
    """``binascii.a2b_base64(text)`` into a buffer of its own, ``block`` characters at a time: the decoded bytes
    once, writable; the same bytes, or the same error (message included), for every text.

    Characters outside the alphabet are dropped first, as a2b_base64 skips them, so the blocks split at whole
    quads. A pad ends the data only where a2b_base64 lets it (:data:`_PAD_ENDS`); any other '=' is skipped as it
    skips it, so the memory stays the output (three quarters of the text at most) and a block or two wherever
    the pads stand, and never more than a quad is carried from a block to the next."""
    step = _BASE64_BLOCK if block is None else block
    out = bytearray(len(text) * 3 // 4 + 3)
    size = 0
    carry = b""  # the characters of an unfinished quad (at most three and a pad), carried to the next block
    for start in range(0, len(text), step):
        chunk = carry + bytes(text[start : start + step]).translate(None, _NOT_BASE64)
        pad = chunk.find(b"=")
        if pad < 0:  # the usual block: whole quads and a tail, without the (slower) regular expression
            whole = len(chunk) // 4 * 4
        else:  # only data characters before the first pad: whole quads up to its quad's start
            whole = _whole_quads(chunk, pad // 4 * 4)
        end = _PAD_ENDS.match(chunk, whole)
        decoded = binascii.a2b_base64(memoryview(chunk)[: end.end() if end else whole])
        out[size : size + len(decoded)] = decoded
        size += len(decoded)
        carry = b"" if end else _unfinished_quad(chunk[whole:])
        if end:  # a2b_base64 reads nothing after this pad
            break
    if carry:
        try:
            binascii.a2b_base64(carry)
        except binascii.Error as exc:
            # The error a2b_base64 gives for the whole text: where it counts the data characters, it counts the
            # whole quads decoded before the carry too.
            data = carry.rstrip(b"=")
            count = size // 3 * 4 + len(data)
            raise binascii.Error(str(exc).replace(f"({len(data)})", f"({count})", 1)) from None
    del out[size:]
    return out


def _whole_quads(chunk: bytes, start: int) -> int:
    """Where the whole quads from ``start`` (a quad's start) end: ``_QUADS.match(chunk, start).end()``, matched a
    window at a time so that the engine's state stays a window's (a few hundred kB at most, whatever the block)."""
    size = len(chunk)
    window = _QUADS_WINDOW
    while True:
        stop = min(start + window, size)
        match = _QUADS.match(chunk, start, stop)
        end = match.end() if match else start
        if stop == size:
            return end
        if end > start:  # quads up to the last one the window holds whole: go on from there
            start, window = end, _QUADS_WINDOW
        else:  # the quads end here, or the next one is longer than the window (a run of pads): look further
            window *= 2


def _unfinished_quad(tail: bytes) -> bytes:
    """The data characters of a quad begun at the end of a block, without the pads a2b_base64 skips (before its
    second character): kept is only a pad after its second character, which ends the data if a pad follows it."""
    data = tail.translate(None, b"=")
    return data + b"=" if len(data) == 2 and tail.endswith(b"=") else data


def _letter_fields(raw: Raw) -> bytes:
    """The header block of a single-part signed letter without its Content-* fields (they describe the signature;
    the opened letter brings its own), each field with its folded lines."""
    header_end = _headers(raw, 0, len(raw))[1]
    kept: list[bytes] = []
    keep = True
    for line in bytes(raw[:header_end]).splitlines():
        if line[:1] not in (b" ", b"\t"):
            keep = _CONTENT_FIELD.match(line) is None
        if keep:
            kept.append(line + b"\r\n")
    return b"".join(kept)
