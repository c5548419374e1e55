"""TNEF (``winmail.dat``, application/ms-tnef) from Outlook and Exchange: the plain body and the attached files.

Outlook wraps a letter's files (and its formatted text) in one TNEF attachment that no other mail program opens;
a citizen's scans would be stored unread. This is a minimal reader of [MS-OXTNEF]: the message's plain text
(attBody, or PR_BODY among the message's MAPI properties), its HTML text when that is all it has (PR_BODY_HTML), and
each attachment's data (attAttachData or PR_ATTACH_DATA_OBJ) and name (PR_ATTACH_LONG_FILENAME, else
attAttachTitle, else PR_DISPLAY_NAME). An RTF-only body (PR_RTF_COMPRESSED) is decompressed and read as text, or
as the HTML it encapsulates (:mod:`mailservice.mail.rtf`); one that cannot be is ``unread_body``. An attached
Outlook message is not read: the result then says it is incomplete, and the caller keeps the .dat file as well.

Bounded: the stream is walked once through a memoryview; every length and count read from it is checked against
the bytes left, so a hostile file costs at most one pass and one copy of its size. The first thing that cannot be
read ends the walk, keeping what came before. (The tnefparse package, LGPL-3.0, was considered: it copies the rest
of the stream for every attribute and loops over counts read from the data, so one crafted file could hold a worker
for hours.) Pure: no I/O.
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass, field

from mailservice.mail.headers import decode_bytes
from mailservice.mail.rtf import RtfError, decompress_rtf, rtf_text

__all__ = ["TNEF_SIGNATURE", "TnefContent", "TnefFile", "is_tnef", "read_tnef"]

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"  # 0x223E9F78, little-endian
TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
# More files than this in one winmail.dat: the rest stay in the .dat.
MAX_FILES = 200
# An RTF body longer than this (pictures embedded in it, mostly; a letter's text is tens of kilobytes) is read only
# so far, and the .dat is kept whole: decompressing and reading 2 MiB takes about a second of one core.
MAX_RTF_BYTES = 2 * 2**20

_LEVEL_MESSAGE = 1
_LEVEL_ATTACHMENT = 2
# Attribute ids (the low word of the attribute's id; the high word is its type).
_ATT_BODY = 0x800C
_ATT_MSG_PROPS = 0x9003
_ATT_OEM_CODEPAGE = 0x9007
_ATT_ATTACH_REND_DATA = 0x9002
_ATT_ATTACH_TITLE = 0x8010
_ATT_ATTACH_DATA = 0x800F
_ATT_ATTACHMENT = 0x9005
# MAPI property ids.
_PR_BODY = 0x1000
_PR_RTF_COMPRESSED = 0x1009
_PR_BODY_HTML = 0x1013
_PR_DISPLAY_NAME = 0x3001
_PR_ATTACH_DATA_OBJ = 0x3701
_PR_ATTACH_FILENAME = 0x3704
_PR_ATTACH_LONG_FILENAME = 0x3707
_PR_ATTACH_MIME_TAG = 0x370E
_PR_INTERNET_CPID = 0x3FDE
# MAPI property types: fixed sizes, and the variable-length ones.
_FIXED_SIZES = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 2, 0x0014: 8,
                0x0040: 8, 0x0048: 16, 0x0001: 0}  # fmt: skip
_PT_STRING8 = 0x001E
_PT_UNICODE = 0x001F
_PT_BINARY = 0x0102
_PT_OBJECT = 0x000D
_VARIABLE = frozenset({_PT_STRING8, _PT_UNICODE, _PT_BINARY, _PT_OBJECT})
_MULTI_VALUED = 0x1000
# IID_IMessage: a PR_ATTACH_DATA_OBJ object that is an attached Outlook message (not read here).
_IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")


class _Broken(Exception):
    """The stream cannot be read on from here."""


@dataclass(frozen=True)
class TnefFile:
    """One file found inside a TNEF stream."""

    name: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass
class TnefContent:
    """What was read from one TNEF stream; ``complete`` is False when anything was left unread."""

    body: str = ""
    html: str = ""  # only when there is no plain text
    unread_body: bool = False  # the text is there only as RTF
    files: list[TnefFile] = field(default_factory=list)
    complete: bool = True
    problems: list[str] = field(default_factory=list)  # English, for the defects list


def is_tnef(content_type: str, filename: str | None, data: bytes) -> bool:
    """Whether an attached part is a TNEF stream (by its type or the name Outlook gives it, and its signature)."""
    named = content_type in TNEF_TYPES or (filename or "").strip().lower() == "winmail.dat"
    return named and data[:4] == TNEF_SIGNATURE


@dataclass
class _Attachment:
    title: str | None = None
    long_name: str | None = None
    display_name: str | None = None
    mime: str | None = None
    data: bytes | None = None
    message: bool = False  # an attached Outlook message: its placeholder data is not a file


def read_tnef(data: bytes) -> TnefContent:
    """The plain body and files of a TNEF stream; never raises (what cannot be read is told in ``problems``)."""
    result = TnefContent()
    view = memoryview(data)
    if bytes(view[:4]) != TNEF_SIGNATURE or len(view) < 6:
        result.complete = False
        result.problems.append("not a TNEF stream")
        return result
    codepage: str | None = None  # attOemCodepage comes first ([MS-OXTNEF] 2.1.3.1); until then, guessed
    attachments: list[_Attachment] = []
    att_body: str | None = None
    props: dict[int, object] = {}
    offset = 6
    try:
        while offset < len(view):
            if len(view) - offset < 11:  # too short for an attribute: padding or stray bytes some writers add
                break
            level = view[offset]
            attr_id, length = struct.unpack_from("<HxxI", view, offset + 1)
            start = offset + 9
            if length > len(view) - start - 2:
                raise _Broken(f"attribute 0x{attr_id:04x} longer than the stream")
            value = view[start : start + length]
            offset = start + length + 2  # the checksum is not checked: a wrong one still holds readable data
            if level == _LEVEL_MESSAGE:
                if attr_id == _ATT_OEM_CODEPAGE and length >= 4:
                    codepage = _codec(struct.unpack_from("<I", value)[0]) or codepage
                elif attr_id == _ATT_BODY:
                    att_body = _decode(bytes(value), codepage)
                elif attr_id == _ATT_MSG_PROPS:
                    props = _properties(value, codepage, result)
            elif level == _LEVEL_ATTACHMENT:
                if attr_id == _ATT_ATTACH_REND_DATA or not attachments:
                    if len(attachments) >= MAX_FILES:
                        raise _Broken(f"more than {MAX_FILES} files")
                    attachments.append(_Attachment())
                _attachment_attribute(attachments[-1], attr_id, value, codepage, result)
            else:
                raise _Broken(f"attribute level {level}")
    except _Broken as exc:
        result.complete = False
        result.problems.append(str(exc))
    result.body = (att_body if att_body and att_body.strip() else _text(props.get(_PR_BODY)) or "").replace("\x00", "")
    html = props.get(_PR_BODY_HTML)
    if not result.body.strip() and html is not None:
        html_bytes = html[1] if isinstance(html, tuple) else str(html).encode("utf-8")
        cpid = props.get(_PR_INTERNET_CPID)
        label = _codec(cpid) if isinstance(cpid, int) else None
        result.html = decode_bytes(html_bytes.rstrip(b"\x00"), label or "utf-8")[0]
    if not result.body.strip() and not result.html.strip() and _PR_RTF_COMPRESSED in props:
        _rtf_body(props[_PR_RTF_COMPRESSED], result)
    for item in attachments:
        if item.data is None or item.message:
            continue
        name = item.long_name or item.title or item.display_name
        result.files.append(TnefFile(name=name, content_type=item.mime, data=item.data))
    return result


def _rtf_body(value: object, out: TnefContent) -> None:
    """The letter's text from its compressed RTF (the only body Outlook wrote): plain, or the HTML it encapsulates;
    ``unread_body`` when it cannot be read."""
    try:
        if not isinstance(value, tuple):
            raise RtfError("compressed RTF is not a binary property")
        rtf, whole = decompress_rtf(value[1], MAX_RTF_BYTES)
        text, html = rtf_text(rtf)
    except RtfError as exc:
        out.unread_body = True
        out.problems.append(str(exc))
        return
    if not whole:
        out.complete = False
        out.problems.append(f"RTF body over {MAX_RTF_BYTES} bytes, cut")
    if html:
        out.html = text
    else:
        out.body = text
    out.unread_body = not text.strip()


def _attachment_attribute(
    item: _Attachment, attr_id: int, value: memoryview, codepage: str | None, out: TnefContent
) -> None:
    if attr_id == _ATT_ATTACH_TITLE:
        item.title = _decode(bytes(value), codepage) or None
    elif attr_id == _ATT_ATTACH_DATA:
        item.data = bytes(value)
    elif attr_id == _ATT_ATTACHMENT:
        props = _properties(value, codepage, out)
        item.long_name = _text(props.get(_PR_ATTACH_LONG_FILENAME)) or _text(props.get(_PR_ATTACH_FILENAME))
        item.display_name = _text(props.get(_PR_DISPLAY_NAME))
        item.mime = _text(props.get(_PR_ATTACH_MIME_TAG))
        obj = props.get(_PR_ATTACH_DATA_OBJ)
        if isinstance(obj, tuple):
            kind, payload = obj
            if kind == _PT_OBJECT and payload[:16] == _IID_IMESSAGE:
                item.message = True
                out.complete = False
                out.problems.append("an attached Outlook message, not read")
            elif item.data is None:
                item.data = payload[16:] if kind == _PT_OBJECT else payload


def _codec(cpid: int) -> str | None:
    """The Python codec of a Windows code page identifier, if Python has it."""
    name = {65001: "utf-8", 20866: "koi8-r", 21866: "koi8-u", 28591: "latin-1", 20127: "ascii"}.get(cpid, f"cp{cpid}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode(data: bytes, codepage: str | None) -> str:
    """8-bit text of the stream in its OEM code page (attOemCodepage: exact, even for a short capitalised name);
    the careful guess of :func:`decode_bytes` without one or when the bytes are invalid in it."""
    data = data.rstrip(b"\x00")
    try:
        return data.decode(codepage) if codepage else decode_bytes(data)[0]
    except UnicodeDecodeError:
        return decode_bytes(data, codepage)[0]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _properties(view: memoryview, codepage: str | None, out: TnefContent) -> dict[int, object]:
    """The MAPI properties ([MS-OXTNEF] 2.1.3.4) of a list, by id: strings as text, 32-bit integers as int, binary
    and object values as (type, bytes); others are skipped. A list that cannot be read to its end keeps what came
    before."""
    found: dict[int, object] = {}
    try:
        (count,) = _unpack("<I", view, 0)
        offset = 4
        for _ in range(count):  # each property takes at least 4 bytes: the stream's end comes first
            prop_type, prop_id = _unpack("<HH", view, offset)
            offset += 4
            if prop_id >= 0x8000:  # a named property: its GUID and name or number, then the value
                (kind,) = _unpack("<I", view, offset + 16)
                offset += 20
                if kind == 0:
                    offset += 4
                else:
                    (size,) = _unpack("<I", view, offset)
                    offset += 4 + _padded(size)
            multi = bool(prop_type & _MULTI_VALUED)
            base = prop_type & ~_MULTI_VALUED
            values = 1
            if multi or base in _VARIABLE:
                (values,) = _unpack("<I", view, offset)
                offset += 4
            if base in _VARIABLE:
                items: list[bytes] = []
                for _ in range(values):
                    (size,) = _unpack("<I", view, offset)
                    offset += 4
                    if size > len(view) - offset:
                        raise _Broken("a property value longer than its list")
                    items.append(bytes(view[offset : offset + size]))
                    offset += _padded(size)
                if not multi and items and prop_id < 0x8000:
                    found[prop_id] = _value(base, items[0], codepage)
            elif base in _FIXED_SIZES:
                if base == 0x0003 and not multi and prop_id < 0x8000 and offset + 4 <= len(view):
                    found[prop_id] = struct.unpack_from("<i", view, offset)[0]
                offset += _padded(_FIXED_SIZES[base] * values)
            else:
                raise _Broken(f"MAPI property type 0x{prop_type:04x}")
            if offset > len(view):
                raise _Broken("a property list longer than its attribute")
    except (_Broken, struct.error) as exc:
        out.complete = False
        out.problems.append(f"MAPI properties: {exc}")
    return found


def _value(prop_type: int, data: bytes, codepage: str | None) -> object:
    if prop_type == _PT_UNICODE:
        return data.decode("utf-16-le", errors="replace").rstrip("\x00")
    if prop_type == _PT_STRING8:
        return _decode(data, codepage)
    return (prop_type, data)


def _unpack(fmt: str, view: memoryview, offset: int) -> tuple[int, ...]:
    if offset < 0 or offset + struct.calcsize(fmt) > len(view):
        raise _Broken("a property list cut short")
    return struct.unpack_from(fmt, view, offset)


def _padded(size: int) -> int:
    return size + (-size % 4)
