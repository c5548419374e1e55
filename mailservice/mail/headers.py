"""Safe header helpers: charset guessing, tolerant RFC 2047 decoding, address normalisation, injection guard.

Pure functions, no I/O. Everything that reads a value from outside goes through here before it is trusted:
inbound headers are decoded tolerantly (mail in the wild breaks every rule), and anything that will be written
into an outgoing header is checked by :func:`safe_header_value` first.
"""

from __future__ import annotations

import base64
import codecs
import collections
import functools
import math
import re
import unicodedata
from email.message import Message

from email_validator import EmailNotValidError, validate_email

__all__ = [
    "HeaderInjectionError",
    "cyrillic_score",
    "decode_base64_loose",
    "decode_bytes",
    "decode_encoded_words",
    "loose_address",
    "normalise_address",
    "normalise_charset",
    "one_line",
    "part_content_type",
    "safe_header_value",
]


_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")


def part_content_type(part: Message) -> str:
    """The part's media type, lower-case; RFC 2045 5.2 defaults (text/plain) when the header is broken.

    Python's own ``get_content_type`` returns garbage such as 'text/plain   charset="x"' when the
    parameter separator is missing, and may raise on hostile values.
    """
    try:
        value = part.get_content_type()
    except Exception:
        return "application/octet-stream"
    value = value.strip().lower()
    if _MEDIA_TYPE.match(value):
        return value
    head = re.split(r"[\s;]", value, maxsplit=1)[0]
    return head if _MEDIA_TYPE.match(head) else "text/plain"


class HeaderInjectionError(ValueError):
    """A value meant for a header carries a line break, a control character or is too long."""


# --------------------------------------------------------------------------------------------------
# Charsets
# --------------------------------------------------------------------------------------------------

# Labels seen in real mail that Python's codec registry does not know (or knows under another name).
_CHARSET_ALIASES = {
    "win-1251": "cp1251",
    "win1251": "cp1251",
    "windows1251": "cp1251",
    "cp-1251": "cp1251",
    "x-cp1251": "cp1251",
    "x-win-1251": "cp1251",
    "koi8r": "koi8-r",
    "x-koi8-r": "koi8-r",
    "koi8": "koi8-r",
    "x-mac-cyrillic": "mac_cyrillic",
    "maccyrillic": "mac_cyrillic",
    "gb2312": "gb18030",  # real GB2312 mail routinely uses GBK/GB18030 code points
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-utf-8": "utf-8",
    "ansi_x3.4-1968": "ascii",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "x-user-defined": "",
    "default": "",
}

# Python codecs that decode text but are no MIME charset: a label naming them is treated as unknown.
_NOT_MAIL_CHARSETS = {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
# Charsets whose declaration is only a weak hint: Russian mail declared as one of these is common, and every
# byte sequence "decodes" in a Latin single-byte charset, so plausibility must be checked.
_WEAK_CHARSETS = {"ascii", "latin-1", "iso8859-1", "cp1252", "iso8859-15"}
_CYRILLIC_SINGLE_BYTE = {"cp1251", "koi8-r", "koi8-u", "cp866", "iso8859-5", "mac-cyrillic"}
_SINGLE_BYTE_OR_WEAK = (
    _WEAK_CHARSETS
    | _CYRILLIC_SINGLE_BYTE
    | {f"iso8859-{n}" for n in range(2, 17)}
    | {f"cp{n}" for n in range(1250, 1259)}
)


def normalise_charset(label: str | None) -> str | None:
    """Return a Python codec name for a MIME charset label, or None when it is absent or unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if name.startswith("charset="):
        name = name[len("charset=") :].strip("\"' ")
    name = name.split("*", 1)[0]  # RFC 2231 language suffix: utf-8*ru
    name = _CHARSET_ALIASES.get(name, name)
    if not name:
        return None
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    return None if codec in _NOT_MAIL_CHARSETS else codec


_CYR_LOWER = re.compile("[а-яё]")
_CYR_UPPER_INSIDE = re.compile("(?<=[А-Яа-яЁё])[А-ЯЁ]")
_LETTER = re.compile(r"[^\W\d_]")


_MIXED_WORD = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*[А-Яа-яЁё])\w+")


def cyrillic_score(text: str) -> int:
    """Plausibility of ``text`` as Russian: lower-case Cyrillic counts for, capitals inside words against.

    Decoding KOI8-R bytes as windows-1251 (or the reverse) swaps the cases of almost every letter, so real
    text scores high in the right charset and strongly negative in the wrong one; Western European text read
    as Cyrillic gives words mixing both alphabets, which real text almost never has.
    """
    bad = text.count("\ufffd") + sum(1 for ch in text if 0x80 <= ord(ch) < 0xA0)
    return (
        len(_CYR_LOWER.findall(text))
        - 2 * len(_CYR_UPPER_INSIDE.findall(text))
        - 4 * bad
        - 3 * len(_MIXED_WORD.findall(text))
    )


def _high_letter_share(text: str) -> float:
    """Share of letters outside ASCII: Russian text is nearly all, Western European text a small part."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for ch in letters if ord(ch) > 0x7F) / len(letters)


# Letter frequencies of Russian prose, per cent (Ф. Н. Шарова-Бородина's corpus, the usual table); ё as written.
_RUSSIAN_FREQUENCIES = dict(
    zip(
        "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё",
        (10.97, 8.45, 8.01, 7.35, 6.70, 6.26, 5.47, 4.73, 4.54, 4.40, 3.49, 3.21, 2.98, 2.81, 2.62, 2.01, 1.90,
         1.74, 1.70, 1.65, 1.59, 1.44, 1.21, 0.97, 0.94, 0.73, 0.64, 0.48, 0.36, 0.32, 0.26, 0.04, 0.04),
        strict=True,
    )
)  # fmt: skip
# The single-byte Cyrillic charsets an undeclared letter may be in, the likeliest first (it wins a tie).
_UNDECLARED_CYRILLIC = ("cp1251", "koi8-r", "cp866")
# KOI8-R read as windows-1251 and back swap the cases: «Прошу» reads «оПНЬС», a capital after a small letter.
_LOWER_THEN_UPPER = re.compile("(?<=[а-яё])[А-ЯЁ]")
_CASE_SWITCH = 3.0
# Enough of a body to tell its charset: a longer one costs more and says the same.
_GUESS_SAMPLE = 65_536


def _byte_weight(char: str) -> float:
    """How much a character read from a high byte speaks for its charset: a Russian letter by its frequency
    (a capital a little less), punctuation nothing, anything else (box drawing, symbols, other scripts) against."""
    frequency = _RUSSIAN_FREQUENCIES.get(char.lower())
    if frequency is not None:
        return math.log2(frequency / 3.0) - (0.5 if char.isupper() else 0.0)
    if char == "№" or unicodedata.category(char)[0] in "PZ":
        return 0.0
    return -6.0


@functools.cache
def _high_byte_weights(codec: str) -> tuple[float, ...]:
    return tuple(_byte_weight(bytes([b]).decode(codec, errors="replace")) for b in range(0x80, 0x100))


def _guess_single_byte(data: bytes) -> str:
    """Pick windows-1251, KOI8-R, CP866 or windows-1252 for undeclared 8-bit bytes that are not UTF-8.

    Each Cyrillic charset is scored by the Russian letter frequencies of what its high bytes would read as (one
    count of the bytes, whatever the number of charsets) and by its capitals after small letters: mojibake is
    made of rare letters, case switches and box drawing. Text that reads as no words in any of them, or holds
    few non-ASCII letters, is Western European.
    """
    sample = data[:_GUESS_SAMPLE]
    counts = collections.Counter(sample)
    high = [(b, n) for b, n in counts.items() if b >= 0x80]
    best_name, best_score = "", -math.inf
    for name in _UNDECLARED_CYRILLIC:
        weights = _high_byte_weights(name)
        score = sum(weights[b - 0x80] * n for b, n in high)
        score -= _CASE_SWITCH * len(_LOWER_THEN_UPPER.findall(sample.decode(name, errors="replace")))
        if score > best_score:
            best_name, best_score = name, score
    # Rare letters («Ёж», «ЖАЛОБА») still read as words; a byte that reads as nothing costs 6.
    plausible = best_score > -2.0 * sum(n for _b, n in high)
    if plausible and _high_letter_share(sample.decode(best_name, errors="replace")) >= 0.3:
        return best_name
    return "cp1252"


# A letter damaged in transit (a relay's size limit, a broken mobile client, a line cut inside a character) still
# reads as UTF-8 but for a few invalid sequences: read it as UTF-8, each of them one replacement character, as mail
# clients show it. Text in a single-byte charset read as UTF-8 is nearly all invalid sequences (windows-1251 and
# KOI8-R letters are lead bytes followed by letters, not continuation bytes), so valid multibyte characters must
# outnumber the invalid sequences this many times over. A text whose only damage is its last character cut short
# (an encoded word of a subject cut by a client) needs fewer: measured on the service's own Russian words, CP866
# ones cut this way hold at most two valid UTF-8 characters by chance.
_UTF8_VALID_PER_INVALID = 8
_UTF8_VALID_BEFORE_CUT = 3


def _mostly_utf8(data: bytes) -> tuple[str, int] | None:
    """``data`` read as UTF-8 and its count of invalid sequences (each replaced), or None when it is not UTF-8."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError as exc:
        cut_at_end = exc.end == len(data) and exc.reason == "unexpected end of data"
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - data.count("\ufffd".encode())  # a replacement character sent as such is valid
    multibyte = sum(1 for ch in text if ord(ch) > 0x7F) - invalid
    if multibyte >= (_UTF8_VALID_BEFORE_CUT if cut_at_end else _UTF8_VALID_PER_INVALID * invalid):
        return text, invalid
    return None


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str | None]:
    """Decode text bytes; never raises.

    Tries the declared charset first, checks that the result is plausible, and otherwise falls back to
    UTF-8, then windows-1251, KOI8-R or CP866 chosen by :func:`_guess_single_byte`, then windows-1252. Returns the text
    and a short note (for the defects list) when the declaration was missing, unknown or wrong.
    """
    codec = normalise_charset(declared)
    note: str | None = None
    if declared and codec is None:
        note = f"unknown charset {declared.strip()[:40]!r}"
    if not any(b > 0x7F for b in data):
        if codec is not None:
            try:  # 7-bit charsets (ISO-2022-JP, UTF-7) need their codec even without high bytes
                return data.decode(codec), note
            except Exception:  # any codec failure (even "charset=base64") falls back: never crash on a label
                note = f"bytes invalid in declared charset {codec}"
        return data.decode("ascii", errors="replace"), note
    utf8 = _mostly_utf8(data) if codec is None or codec in _SINGLE_BYTE_OR_WEAK or codec == "utf-8" else None
    if codec is not None and codec in _SINGLE_BYTE_OR_WEAK and utf8 is not None:
        # Valid UTF-8 with multibyte sequences almost never arises by chance from single-byte text, while
        # UTF-8 mislabelled as windows-1251 or latin-1 is common.
        return utf8[0], _utf8_note(f"declared charset {codec} looks wrong; decoded as utf-8", utf8[1])
    if codec is not None and codec not in _WEAK_CHARSETS:
        try:
            text = data.decode(codec)
        except Exception:  # as above: a declared label is only a hint
            note = f"bytes invalid in declared charset {codec}"
        else:
            if codec in _CYRILLIC_SINGLE_BYTE:
                # A wrong Cyrillic declaration (koi8-r for cp1251 and back) is a classic; switch only when the
                # other reading is clearly better.
                alt = "koi8-r" if codec != "koi8-r" else "cp1251"
                alt_text = data.decode(alt, errors="replace")
                if cyrillic_score(alt_text) > max(cyrillic_score(text), 0) + 3:
                    return alt_text, f"declared charset {codec} looks wrong; decoded as {alt}"
            return text, note
    if utf8 is not None:
        if codec not in (None, "ascii", "utf-8"):
            note = f"declared charset {codec} looks wrong; decoded as utf-8"
        elif codec == "utf-8":
            note = None  # the declaration was right; the invalid sequences are named below
        return utf8[0], _utf8_note(note, utf8[1])
    guess = _guess_single_byte(data)
    if codec in _WEAK_CHARSETS and codec != "ascii":
        if guess in ("cp1251", "koi8-r"):
            return data.decode(guess, errors="replace"), f"declared charset {codec} looks wrong; decoded as {guess}"
        return data.decode(codec, errors="replace"), note
    if note is None:
        note = f"undeclared 8-bit text; decoded as {guess}"
    else:
        note += f"; decoded as {guess}"
    return data.decode(guess, errors="replace"), note


def _utf8_note(note: str | None, invalid: int) -> str | None:
    if not invalid:
        return note
    damage = f"{invalid} invalid utf-8 sequence(s) replaced"
    return f"{note}; {damage}" if note else damage


# --------------------------------------------------------------------------------------------------
# RFC 2047 encoded words
# --------------------------------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*?)\?=")
_UNTERMINATED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?\s]*)\??$")


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def decode_base64_loose(data: bytes) -> bytes:
    """Base64 (RFC 2045 6.8) read as far as it goes: characters outside the alphabet skipped, padding supplied.

    Text cut short (a relay's size limit, a broken client) may end one character past a whole quantum; that
    character holds 6 bits, less than a byte, and is dropped, so the rest still decodes (the standard library
    gives up on such text and returns the base64 characters themselves).
    """
    cleaned = _NOT_BASE64.sub(b"", data)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        return decode_base64_loose(payload.encode("ascii", errors="replace"))
    raw = payload.replace("_", " ").encode("utf-8", errors="surrogateescape")
    # RFC 2047 4.2: "=XX" hex escapes; a broken escape is kept literally rather than dropped.
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def decode_encoded_words(value: str) -> str:
    """Decode RFC 2047 encoded words anywhere in ``value``, tolerating the usual breakage.

    Accepts words glued to other text or inside quotes, missing base64 padding, unknown charsets (guessed),
    and multibyte characters split across adjacent words of the same charset (their bytes are joined before
    decoding). Whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2).
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = last_end = 0
    pending: bytes = b""
    pending_charset: str | None = None

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending or pending_charset is not None:
            out.append(decode_bytes(pending, pending_charset)[0])
        pending, pending_charset = b"", None

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset = match.group(1).split("*", 1)[0]
        data = _word_bytes(match.group(2), match.group(3))
        adjacent = pos > 0 and pos == last_end and not between.strip()
        if not adjacent or pending_charset is None or pending_charset.lower() != charset.lower():
            flush()
            if not adjacent:
                out.append(between)
            pending_charset = charset
            pending = data
        else:
            pending += data
        pos = last_end = match.end()
    flush()
    tail = value[pos:]
    broken = _UNTERMINATED_WORD.search(tail)
    if broken:  # a word cut off by a length-limiting MTA: decode what is there
        tail = tail[: broken.start()] + decode_bytes(_word_bytes(broken.group(2), broken.group(3)), broken.group(1))[0]
    out.append(tail)
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Addresses and outgoing header values
# --------------------------------------------------------------------------------------------------


def normalise_address(addr: str) -> str | None:
    """Normalise an e-mail address with email-validator (no DNS): domain lower-cased, IDN as Unicode.

    Returns None when the address is not valid. The local part keeps its case (RFC 5321 2.4).
    """
    if not addr or len(addr) > 320:
        return None
    candidate = addr.strip().strip("<>").strip()
    try:
        return validate_email(candidate, check_deliverability=False).normalized
    except (EmailNotValidError, UnicodeError, ValueError):
        return None


_LOOSE_DOMAIN = re.compile(r"^[\w\-]+(\.[\w\-]+)*$|^\[[0-9A-Fa-f:.]+\]$")


def loose_address(spec: str) -> str | None:
    """Normalise an address that email-validator refuses for policy reasons only.

    Special-use domains (``.invalid``, ``.localhost``), dotless hosts and quoted local parts still identify a
    sender or a bounced recipient, though no mail can be sent to them. Returns None for what is not
    ``local@domain`` at all.
    """
    spec = spec.strip().strip("<>").strip()
    local, at, domain = spec.rpartition("@")
    if not at or not local or not domain or any(ch.isspace() or ord(ch) < 32 for ch in spec):
        return None
    domain = domain.rstrip(".").lower()
    if not _LOOSE_DOMAIN.match(domain):
        return None
    try:
        domain = ".".join(
            label.encode("ascii").decode("idna") if label.startswith("xn--") else label for label in domain.split(".")
        )
    except UnicodeError:
        pass
    return f"{local}@{domain}"


def one_line(value: str) -> str:
    """One display line: control, format and line/paragraph separator characters become spaces, runs of white
    space fold into one, and no letter is lost. Names and subjects from letters, forms and staff input go through
    it before they are stored, and a display name before it goes into a header."""
    if not value.isprintable():  # printable text has no character of Unicode category C, Zl or Zp
        value = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    return " ".join(value.split())


def address_lines(value: str) -> str:
    """A postal address of several lines: each line as :func:`one_line` (control and format characters, the
    direction overrides U+202A-U+202E and U+2066-U+2069 among them, become spaces: one would reverse the rest of
    its line in the register and on the envelope), empty lines dropped, the line breaks kept."""
    return "\n".join(line for line in (one_line(part) for part in value.splitlines()) if line)


_ILLEGAL_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # Unicode category Cs: undecodable bytes kept as surrogate escapes


def safe_header_value(value: str, *, max_len: int = 998) -> str:
    """Return ``value`` unchanged if it can go into a header; raise HeaderInjectionError otherwise.

    Refuses CR, LF and other control characters (tab is allowed, it is folding white space), also when they
    hide inside an RFC 2047 encoded word: Python 3.11's header encoder passes ``=?UTF-8?Q?=0A?=`` through
    and a later refold turns it into a real line break (CVE-2024-6923). RFC 5322 2.1.1 caps a line at 998
    characters, which is the default limit.
    """
    if not isinstance(value, str):
        raise HeaderInjectionError("header value must be a string")
    if len(value) > max_len:
        raise HeaderInjectionError(f"header value longer than {max_len} characters")
    if _ILLEGAL_IN_HEADER.search(value):
        raise HeaderInjectionError("header value contains a line break or control character")
    if "=?" in value and _ILLEGAL_IN_HEADER.search(decode_encoded_words(value)):
        raise HeaderInjectionError("header value hides a line break or control character in an encoded word")
    if _SURROGATE.search(value):
        raise HeaderInjectionError("header value contains undecodable bytes")
    return value
