"""Rules shared by every spreadsheet the service writes or reads (CSV and XLSX, every domain).

- **Formula-safe cells** (OWASP, "CSV Injection"): a text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return (or their full-width or small forms, which spreadsheet programs also accept: NFKC decides) would
  be run as a formula when staff open the file; a citizen's subject like ``=HYPERLINK(...)`` must stay text. Such a
  cell gets a leading apostrophe, also when blanks or invisible characters (every Unicode space, format character,
  separator or control: zero-width joiners, direction marks, the soft hyphen, a byte order mark) come before the
  formula start. Files the service reads back (its own exports) lose that apostrophe again
  (:func:`restore_cell`). That is CSV's way; an XLSX cell has a type, so such a text is written as a text cell with
  Excel's quote prefix (:func:`xlsx_value`), which keeps it text when staff edit it, and no apostrophe shows in it:
  «'+7 913 …» in every phone of the register read as broken (staff-day tryout of 7 December).
  Control characters XML cannot hold are dropped (:mod:`mailservice.xmltext`).
- **Text encodings of imported CSV**: UTF-8 with or without a byte order mark, UTF-16 with one, Windows-1251 or
  Windows-1252, detected and named; a file that is UTF-8 but for a broken line is refused with that line's number
  rather than read as something else.

Pure: values in, values out.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mailservice.xmltext import xml_safe

# Spreadsheet programs start a formula with these, also when preceded by blanks; other forms of them (full-width
# U+FF1D..., small U+FE66...) are read as the ASCII ones by some programs: a character counts by its NFKC form.
FORMULA_STARTS = frozenset("=+-@\t\r")
QUOTE = "'"

# Blanks and invisible characters that may hide a formula start from a check of the first character, which
# spreadsheet programs may skip: every space (Zs), format character (Cf: zero-width joiners, direction marks, the
# word joiner, the soft hyphen, a byte order mark), line and paragraph separator (Zl, Zp) and control (Cc). A list
# of chosen characters always misses some (defect U4); the Unicode categories do not.
_HIDING = frozenset({"Zs", "Cf", "Zl", "Zp", "Cc"})


def _formula_like(text: str) -> bool:
    """Whether the first character that is not blank or invisible (or a tab or CR before it) starts a formula."""
    for char in text:
        if unicodedata.normalize("NFKC", char)[:1] in FORMULA_STARTS:
            return True
        if unicodedata.category(char) not in _HIDING:
            return False
    return False


def safe_cell(value: object) -> object:
    """A cell value that no spreadsheet program runs as a formula and that XML can hold (an XLSX cell with a
    control character is refused by openpyxl); numbers and dates pass as they are."""
    if not isinstance(value, str):
        return value
    value = xml_safe(value)
    return QUOTE + value if _formula_like(value) else value


def xlsx_value(value: object) -> tuple[object, bool]:
    """What an XLSX cell holds for ``value`` (text XML can hold; numbers and dates as they are), and whether it is
    text that looks like a formula: the writer then makes it a text cell (never a formula cell) with the quote
    prefix style, so that no spreadsheet program runs it, as typed or once edited."""
    if not isinstance(value, str):
        return value, False
    value = xml_safe(value)
    return value, _formula_like(value)


def safe_text(value: object) -> str:
    """:func:`safe_cell` for a CSV field (always text)."""
    return str(safe_cell("" if value is None else value))


def safe_row(values: Iterable[object]) -> list[object]:
    """Every cell of a row made safe."""
    return [safe_cell(v) for v in values]


def safe_record(record: Mapping[str, object]) -> dict[str, object]:
    """Every value of a ``csv.DictWriter`` row made safe."""
    return {key: safe_cell(value) for key, value in record.items()}


def csv_bytes(rows: Iterable[Iterable[object]], *, bom: bool = False) -> bytes:
    """A CSV file of safe cells: comma, CRLF line ends (RFC 4180), UTF-8 (with a BOM for spreadsheet programs)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(safe_row(row) for row in rows)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def restore_cell(value: str) -> str:
    """Undo :func:`safe_cell` on a value read back from one of our files (a formula start after the apostrophe)."""
    if value.startswith(QUOTE) and _formula_like(value[1:]):
        return value[1:]
    return value


# Encodings of imported CSV ---------------------------------------------------------------------------------------

ENCODING_NAMES = {
    "utf-8-sig": "UTF-8 (с меткой BOM)",
    "utf-8": "UTF-8",
    "utf-16": "UTF-16 (с меткой BOM)",
    "cp1251": "Windows-1251",
    "cp1252": "Windows-1252",
}
# Bytes Windows-1252 leaves undefined (a file with them is not Windows-1252).
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})


class EncodingError(ValueError):
    """A file whose text cannot be read; the message (Russian) names the line."""


@dataclass(frozen=True)
class DecodedText:
    """The text of an imported file and the encoding it was read in."""

    text: str
    encoding: str

    @property
    def encoding_name(self) -> str:
        """The encoding as staff know it («Windows-1251»)."""
        return ENCODING_NAMES.get(self.encoding, self.encoding)


def _first_bad_utf8_line(data: bytes) -> int | None:
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def _single_byte(data: bytes) -> str:
    """Windows-1251 or Windows-1252 for non-UTF-8 bytes: Russian words are runs of high bytes, while accented
    letters in a West European text stand alone between ASCII letters."""
    high = [i for i, b in enumerate(data) if b >= 0x80]
    if any(data[i] in _CP1252_UNDEFINED for i in high):
        return "cp1251"
    if any(data[i] == 0x98 for i in high):  # undefined in Windows-1251
        return "cp1252"
    in_runs = sum(1 for i in high if (i > 0 and data[i - 1] >= 0x80) or (i + 1 < len(data) and data[i + 1] >= 0x80))
    return "cp1251" if in_runs * 2 >= len(high) else "cp1252"


def decode_text(data: bytes) -> DecodedText:
    """The text of an imported CSV file and its encoding; :class:`EncodingError` names the line that fails."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            return DecodedText(data.decode("utf-8"), "utf-8")
        except UnicodeDecodeError:
            pass
        bad = _first_bad_utf8_line(data)
        utf8_elsewhere = any(b >= 0x80 for b in data) and _has_utf8_sequences(data)
        if utf8_elsewhere and bad is not None:
            raise EncodingError(
                f"строка {bad}: символы не в кодировке UTF-8, хотя остальной файл в UTF-8; "
                "сохраните файл целиком в UTF-8"
            )
        encoding = _single_byte(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if encoding != "utf-16" else None
        where = f"строка {line}: " if line else ""
        raise EncodingError(f"{where}текст не читается в кодировке {ENCODING_NAMES[encoding]}") from None
    return DecodedText(text.removeprefix("\ufeff"), encoding)


def _has_utf8_sequences(data: bytes) -> bool:
    """Whether some line holds valid multi-byte UTF-8 (the file was meant to be UTF-8)."""
    for line in data.split(b"\n"):
        if any(b >= 0x80 for b in line):
            try:
                line.decode("utf-8")
                return True
            except UnicodeDecodeError:
                continue
    return False


__all__ = [
    "ENCODING_NAMES",
    "FORMULA_STARTS",
    "DecodedText",
    "EncodingError",
    "csv_bytes",
    "decode_text",
    "restore_cell",
    "safe_cell",
    "safe_record",
    "safe_row",
    "safe_text",
]
