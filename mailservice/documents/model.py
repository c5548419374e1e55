"""The structured document both renderers read: a letterhead and a list of blocks. Pure: no I/O.

Every text field is cleaned once, here, when a block is made (:func:`xml_text`): a character XML 1.0 does not
allow (NUL, vertical tab, form feed, a lone surrogate, U+FFFE) would make python-docx refuse the whole document and
print as garbage in a PDF, and such characters come from outside (a citizen's letter, a pasted text). The
renderers then never see one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import Enum
from typing import Literal

# XML 1.0 section 2.2 "Char": TAB, LF, CR and everything from U+0020 except surrogates, U+FFFE and U+FFFF. C1
# controls (U+0080-U+009F) are allowed by XML but are never text: they are dropped too.
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


class DocumentError(ValueError):
    """A document that cannot be made or rendered (an unreadable image, say); the message is Russian."""


def xml_text(value: str) -> str:
    """``value`` without the characters an XML 1.0 document (DOCX) cannot hold; CR LF and CR become LF."""
    return _NOT_XML_CHAR.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


class _Clean:
    """Mixin of the frozen blocks: every ``str`` field (and tuples of them) passes through :func:`xml_text`."""

    def __post_init__(self) -> None:
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            cleaned = _clean(value)
            if cleaned is not value:
                object.__setattr__(self, item.name, cleaned)


def _clean(value: object) -> object:
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    return value


class Align(Enum):
    """Horizontal alignment of a paragraph."""

    left = "left"
    center = "center"
    right = "right"
    justify = "justify"


@dataclass(frozen=True)
class Letterhead(_Clean):
    """The department's letterhead: its name (bold, centred) and contact lines under it, then a rule."""

    organisation: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Heading(_Clean):
    """A heading of level 1 (the document's title) to 3; it becomes a heading style (DOCX) and a bookmark (PDF)."""

    text: str
    level: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.level <= 3:
            raise ValueError("heading level must be 1, 2 or 3")


@dataclass(frozen=True)
class Paragraph(_Clean):
    """A paragraph; a line break inside ``text`` stays a line break in both formats."""

    text: str
    align: Align = Align.left
    bold: bool = False
    italic: bool = False
    small: bool = False  # notes, the executor line: two points smaller


@dataclass(frozen=True)
class Table(_Clean):
    """A table of text cells; the first row is the header (repeated on every page) when ``header``.

    ``widths`` are relative column widths (any positive numbers); empty: equal columns.
    """

    rows: tuple[tuple[str, ...], ...]
    header: bool = True
    widths: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        width = max((len(r) for r in self.rows), default=0)
        # Ragged rows are padded so that both renderers draw the same grid.
        object.__setattr__(self, "rows", tuple(tuple(r) + ("",) * (width - len(r)) for r in self.rows))
        if self.widths and (len(self.widths) != width or any(w <= 0 for w in self.widths)):
            raise ValueError("widths must give one positive number per column")

    @property
    def columns(self) -> int:
        """Number of columns."""
        return len(self.rows[0]) if self.rows else 0


ImageFormat = Literal["svg", "png", "jpeg"]


@dataclass(frozen=True)
class Image(_Clean):
    """A picture (an SVG chart, a PNG or JPEG scan) ``width_mm`` wide, with its text alternative and caption.

    SVG text should name the families ``sans-serif`` or ``serif``: both are the shipped DejaVu fonts, which hold
    Cyrillic. The PDF keeps an SVG as vector graphics; DOCX gets it rasterised (python-docx takes no SVG).
    """

    data: bytes
    format: ImageFormat
    alt: str
    width_mm: float = 160.0
    caption: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format not in ("svg", "png", "jpeg"):
            raise ValueError(f"unsupported image format {self.format!r}")
        if self.width_mm <= 0:
            raise ValueError("image width must be positive")


@dataclass(frozen=True)
class Signature(_Clean):
    """A signature line: the position on the left, the name on the right of the same line."""

    position: str
    name: str


@dataclass(frozen=True)
class PageBreak:
    """Start a new page."""


Block = Heading | Paragraph | Table | Image | Signature | PageBreak
FontFamily = Literal["serif", "sans"]


@dataclass(frozen=True)
class Document(_Clean):
    """One document: metadata, an optional letterhead at the top of the first page, and its blocks in order."""

    title: str
    blocks: tuple[Block, ...]
    letterhead: Letterhead | None = None
    author: str = ""
    font: FontFamily = "serif"
    # A line printed at the foot of every page beside the page number (a report's name, say); empty: number only.
    footer: str = ""

    def text(self) -> str:
        """Every text of the document in order, one block a line (what a reader of either file should find)."""
        out: list[str] = []
        if self.letterhead is not None:
            out += [self.letterhead.organisation, *self.letterhead.lines]
        for block in self.blocks:
            if isinstance(block, Heading | Paragraph):
                out.append(block.text)
            elif isinstance(block, Table):
                out += [" | ".join(row) for row in block.rows]
            elif isinstance(block, Image):
                out.append(block.caption)
            elif isinstance(block, Signature):
                out.append(f"{block.position} {block.name}")
        return "\n".join(out)


def paragraphs(text: str, *, align: Align = Align.justify) -> tuple[Paragraph, ...]:
    """Text a person wrote as paragraphs: a blank line separates them, single line breaks stay."""
    parts = re.split(r"\n\s*\n", xml_text(text).strip())
    return tuple(Paragraph(part.strip("\n"), align=align) for part in parts if part.strip())
