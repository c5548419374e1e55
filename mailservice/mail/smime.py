"""Opaque S/MIME (RFC 8551 3.5.2, ``application/pkcs7-mime``): the letter inside a CMS SignedData, unverified.

A citizen's mail client (CryptoPro, Thunderbird, Outlook) that signs "opaquely" sends the whole letter as one
``smime.p7m`` file: the MIME entity is the ``eContent`` of the SignedData's ``encapContentInfo`` (RFC 5652 5.1,
5.2). This reads that entity out so the letter's text and files can be read like any other. The signature is NOT
checked (no certificates, no trust anchors): the caller keeps the .p7m for staff and tells them so. An
EnvelopedData (RFC 5652 6: encrypted to us, with a key we do not have) is only recognised.

A small BER reader, bounded like :mod:`mailservice.mail.tnef`: every length is checked against the bytes left,
nesting is limited (:data:`MAX_DEPTH`), so is the number of elements read (:data:`MAX_ELEMENTS`) and the size of
the content put together (``max_bytes``); what cannot be read raises nothing and yields ``problem``. Indefinite
lengths and constructed OCTET STRINGs (X.690 8.1.3.6, 8.7.3), which ``openssl cms -stream`` and CryptoPro write,
are read. Pure: no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SMIME_TYPES", "SmimeContent", "read_smime", "signed_view"]

SMIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
MAX_DEPTH = 32
# Elements read in one file, the repeated reads of nested indefinite-length ones included: a signed letter has
# a few hundred (its certificates) plus one per chunk of its content; a crafted file stops here, not hours later.
MAX_ELEMENTS = 200_000

# Content types (RFC 5652 4, 5.1, 6.1; RFC 5083 for AuthEnvelopedData), DER-encoded object identifiers.
_ID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_ID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_ID_ENVELOPED_DATA = bytes.fromhex("2a864886f70d010703")  # 1.2.840.113549.1.7.3
_ID_AUTH_ENVELOPED_DATA = bytes.fromhex("2a864886f70d0109100117")  # 1.2.840.113549.1.9.16.1.23

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OCTET_STRING_CONSTRUCTED = 0x24
_CONTEXT_0 = 0xA0


class _Broken(Exception):
    """The structure cannot be read on from here."""


class _Full(Exception):
    """The content goes on past the limit: what was read up to it is in the spans."""


@dataclass(frozen=True)
class SmimeContent:
    """What an S/MIME file holds: ``kind`` is ``signed``, ``enveloped`` or ``unknown``; ``entity`` the signed MIME
    entity (raw bytes, still to be parsed) when it could be read; ``problem`` says why not (English); ``cut`` that
    only the first ``max_bytes`` of a longer content were read (see :func:`signed_view`)."""

    kind: str
    entity: bytes | None = None
    problem: str | None = None
    cut: bool = False


@dataclass(frozen=True)
class _Element:
    tag: int
    start: int  # first byte of the contents
    end: int  # one past the contents (before the end-of-contents octets of an indefinite length)
    after: int  # one past the whole element


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.view = memoryview(data)
        self.budget = MAX_ELEMENTS

    def element(self, offset: int, depth: int = 0) -> _Element:
        """The element at ``offset`` (X.690 8.1: identifier, length, contents)."""
        view = self.view
        self.budget -= 1
        if self.budget < 0:
            raise _Broken("too many elements")
        if depth > MAX_DEPTH:
            raise _Broken("nested too deeply")
        if offset + 2 > len(view):
            raise _Broken("cut short")
        tag = view[offset]
        pos = offset + 1
        if tag & 0x1F == 0x1F:  # a high tag number: base-128 bytes; none of those read here, skipped whole
            for _ in range(4):
                if pos >= len(view):
                    raise _Broken("cut short")
                pos += 1
                if not view[pos - 1] & 0x80:
                    break
            else:
                raise _Broken("tag number too long")
            tag = 0x1F | (tag & 0xE0)
        if pos >= len(view):
            raise _Broken("cut short")
        first = view[pos]
        pos += 1
        if first == 0x80:  # indefinite length: constructed only, ends with two zero octets (X.690 8.1.3.6)
            if not tag & 0x20:
                raise _Broken("indefinite length of a primitive element")
            child = pos
            while True:
                if child + 2 > len(view):
                    raise _Broken("no end-of-contents")
                if view[child] == 0 and view[child + 1] == 0:
                    return _Element(tag, pos, child, child + 2)
                child = self.element(child, depth + 1).after
        if first & 0x80:
            count = first & 0x7F
            if count > 4 or pos + count > len(view):
                raise _Broken("length too long")
            length = int.from_bytes(view[pos : pos + count], "big")
            pos += count
        else:
            length = first
        if length > len(view) - pos:
            raise _Broken("longer than the file")
        return _Element(tag, pos, pos + length, pos + length)

    def children(self, parent: _Element, depth: int) -> list[_Element]:
        """The elements inside a constructed one (a few: only SEQUENCEs of fixed shape are listed)."""
        found: list[_Element] = []
        offset = parent.start
        while offset < parent.end and len(found) < 16:
            child = self.element(offset, depth + 1)
            found.append(child)
            offset = child.after
        return found

    def octets(self, item: _Element, depth: int, spans: array[int], room: list[int]) -> None:
        """The spans of an OCTET STRING's value, primitive or constructed of chunks (X.690 8.7.3), within
        ``room[0]`` bytes (a list: the chunks share it). Spans, not copies: the caller joins them once. ``spans``
        holds their starts and ends in turn (16 bytes a chunk: a 30 MB content may be 30,000 of them)."""
        if item.tag == _OCTET_STRING:
            length = item.end - item.start
            if length > room[0]:
                spans.extend((item.start, item.start + room[0]))
                room[0] = -1  # over: the caller decides whether a cut content is an error
                raise _Full
            spans.extend((item.start, item.end))
            room[0] -= length
            return
        if item.tag != _OCTET_STRING_CONSTRUCTED:
            raise _Broken("content is not an OCTET STRING")
        if depth >= MAX_DEPTH:
            raise _Broken("nested too deeply")
        offset = item.start
        while offset < item.end:
            chunk = self.element(offset, depth + 1)
            self.octets(chunk, depth + 1, spans, room)
            offset = chunk.after


def read_smime(data: bytes, max_bytes: int, *, cut: bool = False) -> SmimeContent:
    """What the S/MIME file ``data`` holds (see :class:`SmimeContent`); never raises.

    A signed content over ``max_bytes`` is a ``problem``; with ``cut`` its first ``max_bytes`` are the entity
    instead (``SmimeContent.cut``), for a reader that wants the letter's text and drops what follows.
    """
    kind, spans, problem, was_cut = _locate(data, max_bytes, cut)
    if spans is None:
        return SmimeContent(kind, problem=problem)
    view = memoryview(data)
    return SmimeContent(kind, entity=b"".join(view[start:end] for start, end in _pairs(spans)), cut=was_cut)


def signed_view(data: bytes | bytearray | memoryview, max_bytes: int) -> tuple[memoryview | None, bool]:
    """The signed entity of ``data`` as a view and whether it was cut at ``max_bytes``; None when there is none to
    read. No copy when it is one OCTET STRING (as DER writes it), nor when ``data`` is writable (a buffer of the
    caller's own, which this overwrites): its chunks (BER) are then moved together in place. For mail/slim.py: a
    30 MB signed letter is read there without a second copy of its content."""
    kind, spans, _problem, was_cut = _locate(data, max_bytes, True)
    if kind != "signed" or spans is None:
        return None, False
    view = memoryview(data)
    if len(spans) == 2:
        return view[spans[0] : spans[1]], was_cut
    if view.readonly:
        return memoryview(b"".join(view[start:end] for start, end in _pairs(spans))), was_cut
    # The spans are in order and apart, so each moves left onto bytes already read; a memoryview assignment copies
    # overlapping bytes as memmove does.
    size = 0
    for start, end in _pairs(spans):
        view[size : size + end - start] = view[start:end]
        size += end - start
    return view[:size], was_cut


def _pairs(spans: array[int]) -> Iterator[tuple[int, int]]:
    """(start, end) of each span."""
    ends = iter(spans)
    return zip(ends, ends, strict=True)


def _locate(
    data: bytes | bytearray | memoryview, max_bytes: int, cut: bool
) -> tuple[str, array[int] | None, str | None, bool]:
    """The kind of ``data``, the spans of its signed content (None: none read), the problem, whether cut."""
    reader = _Reader(data)
    try:
        info = reader.element(0)
        if info.tag != _SEQUENCE:
            raise _Broken("not a ContentInfo")
        parts = reader.children(info, 0)
        if len(parts) < 2 or parts[0].tag != _OID or parts[1].tag != _CONTEXT_0:
            raise _Broken("not a ContentInfo")
        kind_oid = bytes(reader.view[parts[0].start : parts[0].end])
    except _Broken as exc:
        return "unknown", None, str(exc), False
    if kind_oid in (_ID_ENVELOPED_DATA, _ID_AUTH_ENVELOPED_DATA):
        return "enveloped", None, None, False
    if kind_oid != _ID_SIGNED_DATA:
        return "unknown", None, f"content type {kind_oid.hex()}", False
    spans = array("q")
    try:
        if not _signed_entity(reader, parts[1], spans, max_bytes):
            return "signed", None, None, False
    except _Full:
        if not cut:
            return "signed", None, f"content over {max_bytes} bytes", False
        return "signed", spans, None, True
    except _Broken as exc:
        return "signed", None, str(exc), False
    return "signed", spans, None, False


def _signed_entity(reader: _Reader, explicit: _Element, spans: array[int], max_bytes: int) -> bool:
    """SignedData (RFC 5652 5.1): version, digestAlgorithms, encapContentInfo {eContentType, [0] eContent}.
    Fills ``spans``; False when there is no content (detached or certificates only, RFC 8551 3.8)."""
    inner = reader.children(explicit, 1)
    if not inner or inner[0].tag != _SEQUENCE:
        raise _Broken("not a SignedData")
    fields = reader.children(inner[0], 2)
    if len(fields) < 3 or fields[0].tag != _INTEGER or fields[1].tag != _SET or fields[2].tag != _SEQUENCE:
        raise _Broken("not a SignedData")
    encap = reader.children(fields[2], 3)
    if not encap or encap[0].tag != _OID:
        raise _Broken("no encapContentInfo")
    if bytes(reader.view[encap[0].start : encap[0].end]) != _ID_DATA:
        raise _Broken("encapsulated content is not id-data")
    if len(encap) < 2:
        return False
    if encap[1].tag != _CONTEXT_0:
        raise _Broken("no eContent")
    wrapped = reader.children(encap[1], 4)
    if not wrapped:
        raise _Broken("empty eContent")
    reader.octets(wrapped[0], 5, spans, [max_bytes])
    return True
