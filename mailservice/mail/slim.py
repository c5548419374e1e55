"""A letter over the message limit without its too-large attachments, so that it can still be read and registered
(59-FZ art. 8 p. 2: every written appeal is registered). Pure, no I/O.

The MIME structure is walked on the raw bytes: the header block of each entity is parsed (small), boundaries are
found with a regular expression over the original buffer (no copy), and the result is the original bytes with the
spans of the dropped parts left out. So a 34 MB letter (a 25 MB scan in base64) costs its own bytes and the small
remainder, never several copies of the scan.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

from mailservice.mail.body import _disposition, _part_filename
from mailservice.mail.filenames import sanitize_filename

__all__ = ["Slimmed", "slim"]

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MAX_DEPTH = 20


@dataclass(frozen=True)
class Slimmed:
    """The message without the dropped parts, and the names of those parts (for the acknowledgement)."""

    raw: bytes
    dropped: list[str]


@dataclass(frozen=True)
class _Leaf:
    cut_start: int  # where the part's span begins (its delimiter line), or its body for a single-part message
    cut_end: int
    size: int  # of the file, estimated
    name: str
    droppable: bool


def _headers(raw: bytes, start: int, end: int) -> tuple[Message, int, int]:
    """The header block of the entity at ``raw[start:end]``, where it ends and where its body starts."""
    match = _HEADER_END.search(raw, start, end)
    header_end = match.start() if match else end
    body_start = match.end() if match else end
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    return parser.parsebytes(raw[start:header_end] + b"\r\n\r\n"), header_end, body_start


def _leaves(raw: bytes, start: int, end: int, cut_start: int, depth: int) -> Iterator[_Leaf]:
    headers, header_end, body_start = _headers(raw, start, end)
    ctype = headers.get_content_type()
    boundary = headers.get_boundary() if ctype.startswith("multipart/") else None
    if boundary is None or depth >= _MAX_DEPTH:
        text = ctype.startswith("text/") and _disposition(headers) != "attachment"
        name = sanitize_filename(_part_filename(headers, []), ctype)
        size = end - body_start
        if str(headers.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
            size = size * 57 // 78  # 57 bytes of file per 76-character line and its CRLF
        yield _Leaf(cut_start, end, size, name, droppable=not text)
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
    message is stored whole either way.
    """
    leaves = [leaf for leaf in _leaves(raw, 0, len(raw), 0, 0) if leaf.droppable]
    dropped = [leaf for leaf in leaves if leaf.size > max_attachment_bytes]
    if not dropped:
        return Slimmed(raw, [])
    pieces: list[bytes] = []
    position = 0
    for leaf in sorted(dropped, key=lambda leaf: leaf.cut_start):
        start = leaf.cut_start
        if start == 0:  # a single-part message that is all attachment: keep its header, drop its body
            start = _headers(raw, 0, len(raw))[2]
        pieces.append(raw[position:start])
        position = max(position, leaf.cut_end)
    pieces.append(raw[position:])
    return Slimmed(b"".join(pieces), [leaf.name for leaf in dropped])
