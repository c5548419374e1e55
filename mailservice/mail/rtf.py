"""Outlook's compressed RTF body (PidTagRtfCompressed in a winmail.dat) to the letter's plain text or HTML.

Two small readers, both bounded and pure:

* :func:`decompress_rtf`: [MS-OXRTFCP] 2.1.3 (LZFu): a 16-byte header, the CRC of the compressed bytes checked
  (2.1.3.2), a 4096-byte ring dictionary preloaded with the spec's 207-byte RTF prefix, control bytes whose bits
  say literal or 2-byte reference (12-bit offset, 4-bit length - 2); a reference to the write position ends the
  stream. ``MELA`` streams are stored uncompressed. The output stops at ``max_bytes``.
* :func:`rtf_text`: RTF (Microsoft RTF 1.9.1) to text: groups, control words and symbols, ``\\par`` and friends,
  ``\\'hh`` in the code page of ``\\ansicpgN`` or of the current font's ``\\fcharsetN`` (cp1251 for Russian), ``\\uN``
  with its ``\\ucN`` fallback skipped, ignorable ``\\*`` destinations and the tables (fonttbl, colortbl,
  stylesheet, info, pict...) skipped. HTML encapsulated in RTF ([MS-OXRTFEX], ``\\fromhtml1``) gives back the
  HTML: the text outside ``\\htmlrtf`` runs plus the ``\\*\\htmltag`` groups. One pass over the bytes; the group
  stack and the output are capped.
"""

from __future__ import annotations

import codecs
import re
import struct
import zlib
from dataclasses import dataclass, replace

__all__ = ["RtfError", "decompress_rtf", "rtf_text"]

# [MS-OXRTFCP] 2.1.2.1: the dictionary's initial contents.
_PREFIX = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor "
    b"MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_COMPRESSED = 0x75465A4C  # "LZFu"
_UNCOMPRESSED = 0x414C454D  # "MELA"
MAX_TEXT = 2_000_000  # characters of text (or HTML) kept from one RTF body
_MAX_GROUPS = 256  # groups deeper than this share the state of the deepest one kept


class RtfError(Exception):
    """The compressed RTF cannot be read (English, for the defects list)."""


def _crc(data: bytes) -> int:
    # [MS-OXRTFCP] 2.1.3.2: the CRC-32 table of ISO 3309 but with neither the initial nor the final inversion;
    # zlib's crc32 does both, so both are undone.
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def decompress_rtf(data: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """The RTF of a PidTagRtfCompressed value and whether it is whole (False when cut at ``max_bytes``)."""
    if len(data) < 16:
        raise RtfError("compressed RTF shorter than its header")
    comp_size, raw_size, kind, crc = struct.unpack_from("<IIII", data)
    if comp_size < 12 or comp_size + 4 > len(data):
        raise RtfError("compressed RTF cut short")
    body = data[16 : comp_size + 4]
    if kind == _UNCOMPRESSED:
        return body[: min(raw_size, max_bytes)], raw_size <= max_bytes
    if kind != _COMPRESSED:
        raise RtfError(f"compressed RTF of unknown type 0x{kind:08x}")
    if _crc(body) != crc:
        raise RtfError("compressed RTF fails its CRC")
    limit = min(raw_size, max_bytes)
    ring = bytearray(4096)
    ring[: len(_PREFIX)] = _PREFIX
    write = len(_PREFIX)
    out = bytearray()
    pos = 0
    end = len(body)
    while pos < end and len(out) < limit:
        control = body[pos]
        pos += 1
        if control == 0 and pos + 8 <= end and write + 8 <= 4096:  # eight literals: copied at once
            chunk = body[pos : pos + 8]
            out += chunk
            ring[write : write + 8] = chunk
            write = (write + 8) & 0xFFF
            pos += 8
            continue
        for bit in range(8):
            if not control >> bit & 1:
                if pos >= end:
                    break
                byte = body[pos]
                pos += 1
                out.append(byte)
                ring[write] = byte
                write = (write + 1) & 0xFFF
                continue
            if pos + 2 > end:
                raise RtfError("compressed RTF cut inside a reference")
            reference = body[pos] << 8 | body[pos + 1]
            pos += 2
            offset = reference >> 4
            if offset == write:  # 2.1.3.1.4: a reference to the write position ends the stream
                return bytes(out[:limit]), raw_size <= max_bytes
            length = (reference & 0xF) + 2
            if (write - offset) & 0xFFF >= length and offset + length <= 4096 and write + length <= 4096:
                chunk = bytes(
                    ring[offset : offset + length]
                )  # neither end wraps and the copy ends before it is written
                out += chunk
                ring[write : write + length] = chunk
                write = (write + length) & 0xFFF
                continue
            for _ in range(length):  # byte by byte: this reference crosses the write position or the ring's end
                byte = ring[offset]
                offset = (offset + 1) & 0xFFF
                out.append(byte)
                ring[write] = byte
                write = (write + 1) & 0xFFF
            if len(out) >= limit:
                break
    return bytes(out[:limit]), raw_size <= max_bytes


# --- RTF to text ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?[0-9]{1,10})? ?"  # a control word, its parameter, its delimiting space
    rb"|((?:\\'[0-9a-fA-F]{2})+)"  # bytes in the current code page, \'hh each
    rb"|\\(.)"  # a control symbol
    rb"|([{}])"
    rb"|([^\\{}\r\n]+)"  # text
    rb"|[\r\n]+|\\",  # line ends (not text in RTF), a backslash at the very end
    re.DOTALL,
)
# Destinations whose text is not the letter's (RTF 1.9.1): tables, document properties, pictures, objects, field
# instructions (their result, \fldrslt, is kept), headers and footers.
_SKIPPED = frozenset(
    b"colortbl stylesheet info pict object objdata header headerl headerr headerf footer footerl footerr footerf "
    b"listtable listoverridetable rsidtbl filetbl revtbl xmlnstbl themedata colorschememapping latentstyles datastore "
    b"generator fldinst private nonshppict shppict mmathPr pgdsctbl userprops docvar bkmkstart bkmkend".split()
)
_NEWLINES = frozenset({b"par", b"line", b"sect", b"page", b"row"})
_SYMBOLS = {b"tab": "\t", b"cell": "\t", b"emdash": "\u2014", b"endash": "\u2013", b"lquote": "\u2018",
            b"rquote": "\u2019", b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"bullet": "\u2022",
            b"emspace": " ", b"enspace": " ", b"qmspace": " "}  # fmt: skip
_CONTROL_SYMBOLS = {b"~": "\u00a0", b"_": "\u2011", b"-": "", b"\\": "\\", b"{": "{", b"}": "}", b"\n": "\n",
                    b"\r": "\n", b"\t": "\t"}  # fmt: skip
# \fcharsetN (the Windows character sets) to code pages; 0 (ANSI) and 1 (default) are the document's \ansicpg.
_CHARSETS = {77: "mac_roman", 128: "cp932", 129: "cp949", 134: "gbk", 136: "big5", 161: "cp1253", 162: "cp1254",
             163: "cp1258", 177: "cp1255", 178: "cp1256", 186: "cp1257", 204: "cp1251", 222: "cp874",
             238: "cp1250", 255: "cp437"}  # fmt: skip


@dataclass(frozen=True)
class _State:
    skip: bool = False  # inside a destination that is not text
    uc: int = 1  # characters of fallback after \uN (\ucN)
    codec: str | None = None  # the current font's code page (None: the document's)
    fonttbl: bool = False
    htmlrtf: bool = False  # [MS-OXRTFEX]: RTF-only text, not part of the encapsulated HTML
    htmltag: bool = False


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"


class _Writer:
    """The output: bytes in a code page wait until text in another one comes, then are decoded together."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.pending = bytearray()
        self.pending_codec = "cp1252"

    def text(self, value: str) -> None:
        self.flush()
        if self.size < MAX_TEXT:
            self.parts.append(value)
            self.size += len(value)

    def raw(self, value: bytes, codec: str) -> None:
        if codec != self.pending_codec:
            self.flush()
            self.pending_codec = codec
        if self.size + len(self.pending) < MAX_TEXT:
            self.pending += value

    def flush(self) -> None:
        if self.pending:
            decoded = bytes(self.pending).decode(self.pending_codec, errors="replace")
            self.parts.append(decoded)
            self.size += len(decoded)
            self.pending.clear()

    def result(self) -> str:
        self.flush()
        joined = "".join(self.parts)[:MAX_TEXT]
        # \uN gives UTF-16 code units: a pair of surrogates becomes one character, a lone one U+FFFD.
        text = joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", errors="replace")
        return text.replace("\x00", "")


def rtf_text(rtf: bytes) -> tuple[str, bool]:
    """The text of an RTF document, and whether it is HTML (``\\fromhtml1``: the encapsulated HTML is returned)."""
    out = _Writer()
    state = _State()
    stack: list[_State] = []
    extra_depth = 0  # groups past _MAX_GROUPS
    document = "cp1252"
    fonts: dict[int, str] = {}
    font: int | None = None  # the font being defined in the font table
    default_font: int | None = None
    html = False
    group_start = False  # the next token is the first of a group (a destination's name)
    star = False  # the group began with \* (an ignorable destination)
    skip_chars = 0  # fallback characters after \uN still to drop
    pos = 0
    size = len(rtf)
    while pos < size:
        match = _TOKEN.match(rtf, pos)
        if match is None:  # cannot happen (the last alternative takes any backslash); stop rather than loop
            break
        pos = match.end()
        word, param, hexbytes, symbol, brace, run = match.groups()
        first, group_start = group_start, False
        if brace is not None:
            skip_chars = 0
            if brace == b"{":
                if len(stack) < _MAX_GROUPS:
                    stack.append(state)
                else:
                    extra_depth += 1
                group_start = True
                star = False
            elif extra_depth:
                extra_depth -= 1
            elif stack:
                state = stack.pop()
            continue
        emitting = not state.skip and not state.fonttbl and (not html or not state.htmlrtf or state.htmltag)
        if word is not None:
            value = int(param) if param is not None else None
            if first and star:
                star = False
                if not (html and word == b"htmltag"):
                    state = replace(state, skip=True)
                    continue
            if word == b"htmltag":
                state = replace(state, htmltag=True)
            elif first and word == b"fonttbl":
                state = replace(state, fonttbl=True)
            elif first and word in _SKIPPED:
                state = replace(state, skip=True)
            elif word == b"f" and value is not None:
                if state.fonttbl:
                    font = value
                else:
                    state = replace(state, codec=fonts.get(value))
            elif word == b"fcharset" and state.fonttbl and font is not None and value in _CHARSETS:
                fonts[font] = _CHARSETS[value]
            elif word == b"deff" and value is not None:
                default_font = value
            elif word == b"ansicpg" and value is not None:
                document = _codec(f"cp{value}")
            elif word == b"mac":
                document = "mac-roman"
            elif word in (b"pc", b"pca"):
                document = "cp437" if word == b"pc" else "cp850"
            elif word == b"fromhtml":
                html = value != 0
            elif word == b"htmlrtf":
                state = replace(state, htmlrtf=value != 0)
            elif word == b"uc" and value is not None:
                state = replace(state, uc=max(0, min(value, 8)))
            elif word == b"u" and value is not None:
                if emitting:
                    out.text(chr(value % 65536))
                skip_chars = state.uc
                continue
            elif word == b"bin" and value is not None:
                pos += max(0, value)  # raw binary data of a picture or object
            elif emitting and word in _NEWLINES:
                out.text("\n")
            elif emitting and word in _SYMBOLS:
                out.text(_SYMBOLS[word])
            skip_chars = 0
            continue
        if symbol is not None:
            if symbol == b"*":
                star = first
                group_start = first
                continue
            if skip_chars:
                skip_chars -= 1
                continue
            if emitting and symbol in _CONTROL_SYMBOLS:
                out.text(_CONTROL_SYMBOLS[symbol])
            continue
        if hexbytes is not None:
            raw = bytes.fromhex(hexbytes.replace(b"\\'", b"").decode())
            if skip_chars:  # the fallback of a \uN: one \'hh is one character
                dropped = min(skip_chars, len(raw))
                raw = raw[dropped:]
                skip_chars -= dropped
            if raw and emitting:
                out.raw(raw, state.codec or fonts.get(default_font or 0) or document)
            continue
        if run is not None:
            if skip_chars:
                dropped = min(skip_chars, len(run))
                run = run[dropped:]
                skip_chars -= dropped
            if run and emitting:
                out.raw(run, state.codec or fonts.get(default_font or 0) or document)
    return out.result(), html
