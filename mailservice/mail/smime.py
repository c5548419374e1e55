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

from dataclasses import dataclass

__all__ = ["SMIME_TYPES", "SmimeContent", "read_smime"]

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


@dataclass(frozen=True)
class SmimeContent:
    """What an S/MIME file holds: ``kind`` is ``signed``, ``enveloped`` or ``unknown``; ``entity`` the signed MIME
    entity (raw bytes, still to be parsed) when it could be read; ``problem`` says why not (English)."""

    kind: str
    entity: bytes | None = None
    problem: str | None = None


@dataclass(frozen=True)
class _Element:
    tag: int
    start: int  # first byte of the contents
    end: int  # one past the contents (before the end-of-contents octets of an indefinite length)
    after: int  # one past the whole element


class _Reader:
    def __init__(self, data: bytes) -> None:
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

    def octets(self, item: _Element, depth: int, out: bytearray, limit: int) -> None:
        """The value of an OCTET STRING, primitive or constructed of chunks (X.690 8.7.3), up to ``limit``."""
        if item.tag == _OCTET_STRING:
            if len(out) + item.end - item.start > limit:
                raise _Broken(f"content over {limit} bytes")
            out += self.view[item.start : item.end]
            return
        if item.tag != _OCTET_STRING_CONSTRUCTED:
            raise _Broken("content is not an OCTET STRING")
        if depth >= MAX_DEPTH:
            raise _Broken("nested too deeply")
        offset = item.start
        while offset < item.end:
            chunk = self.element(offset, depth + 1)
            self.octets(chunk, depth + 1, out, limit)
            offset = chunk.after


def read_smime(data: bytes, max_bytes: int) -> SmimeContent:
    """What the S/MIME file ``data`` holds (see :class:`SmimeContent`); never raises."""
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
        return SmimeContent("unknown", problem=str(exc))
    if kind_oid in (_ID_ENVELOPED_DATA, _ID_AUTH_ENVELOPED_DATA):
        return SmimeContent("enveloped")
    if kind_oid != _ID_SIGNED_DATA:
        return SmimeContent("unknown", problem=f"content type {kind_oid.hex()}")
    try:
        return SmimeContent("signed", entity=_signed_entity(reader, parts[1], max_bytes))
    except _Broken as exc:
        return SmimeContent("signed", problem=str(exc))


def _signed_entity(reader: _Reader, explicit: _Element, max_bytes: int) -> bytes | None:
    """SignedData (RFC 5652 5.1): version, digestAlgorithms, encapContentInfo {eContentType, [0] eContent}."""
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
        return None  # detached or certificates only (RFC 8551 3.8): no letter inside
    if encap[1].tag != _CONTEXT_0:
        raise _Broken("no eContent")
    wrapped = reader.children(encap[1], 4)
    if not wrapped:
        raise _Broken("empty eContent")
    out = bytearray()
    reader.octets(wrapped[0], 5, out, max_bytes)
    return bytes(out)
