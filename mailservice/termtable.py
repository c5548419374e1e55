"""Plain box tables for the terminal, fitted to its width without Rich (a light command starts sooner without it).

A table is columns of cells; a cell is paragraphs, each shown on lines of its own. A paragraph is one of:

* *kept* (:class:`Keep`): never cut or broken inside a word: a registration number, a date. Its column is at least
  as wide as its longest word;
* *folded* (a plain ``str``): wrapped at spaces, a word longer than the column broken;
* *shortened* (:class:`Short`): wrapped like a folded one, but on at most ``lines`` lines, the last ending in «…»
  when the text did not fit.

When the table is wider than the terminal, the columns that may give width give it in the order the caller says
(:attr:`Column.shrink`, the lowest first), each down to its floor. The caller may offer several layouts of the
same data (:func:`first_fitting`), from the widest to the most folded, and print the first that fits.

Text from outside is made inert first (:func:`mailservice.termtext.inert`): no control character reaches the
terminal.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from mailservice.termtext import inert

ELLIPSIS = "…"
PADDING = 1  # a space each side of a cell's text


@dataclass(frozen=True)
class Keep:
    """A paragraph never cut nor broken inside a word (a number, a date)."""

    text: str


@dataclass(frozen=True)
class Short:
    """A paragraph shortened to at most ``lines`` lines, ending in «…» when cut."""

    text: str
    lines: int = 1


Paragraph = str | Keep | Short  # a plain str is folded
Cell = Sequence[Paragraph]


@dataclass(frozen=True)
class Column:
    """A column's header, how far it may narrow (``floor``) and when it gives width (``shrink``: lowest first;
    None: never narrower than its text)."""

    header: str
    floor: int = 6
    shrink: int | None = None


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes: two for a wide (East Asian) character, none for a combining one."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _split_word(word: str, width: int) -> list[str]:
    """``word`` in pieces at most ``width`` cells wide."""
    pieces: list[str] = []
    current, used = "", 0
    for char in word:
        size = text_width(char)
        if current and used + size > width:
            pieces.append(current)
            current, used = "", 0
        current += char
        used += size
    return [*pieces, current] if current else pieces


def fold(text: str, width: int) -> list[str]:
    """``text`` wrapped at spaces into lines at most ``width`` cells wide (a longer word broken); [""] for none."""
    lines: list[str] = []
    line, used = "", 0
    for word in text.split():
        size = text_width(word)
        if line and used + 1 + size <= width:
            line, used = f"{line} {word}", used + 1 + size
            continue
        if line:
            lines.append(line)
        if size <= width:
            line, used = word, size
        else:
            *whole, line = _split_word(word, width)
            lines.extend(whole)
            used = text_width(line)
    return [*lines, line] if line or not lines else lines


def shorten(text: str, width: int, lines: int) -> list[str]:
    """``text`` folded to ``width`` on at most ``lines`` lines, the last ending in «…» when some was left out."""
    folded = fold(text, width)
    if len(folded) <= lines:
        return folded
    kept = folded[:lines]
    last = kept[-1]
    while last and text_width(last) + len(ELLIPSIS) > width:
        last = last[:-1]
    kept[-1] = last.rstrip() + ELLIPSIS
    return kept


def _text(paragraph: Paragraph) -> str:
    """What a paragraph shows, made inert."""
    return inert(paragraph if isinstance(paragraph, str) else paragraph.text)


def _lines(paragraph: Paragraph, width: int) -> list[str]:
    text = _text(paragraph)
    if isinstance(paragraph, Short):
        return shorten(text, width, paragraph.lines)
    return fold(text, width)  # a kept paragraph's column is as wide as its longest word: never broken inside one


def _natural(cell: Cell) -> int:
    return max((text_width(_text(p)) for p in cell), default=0)


def _least(cell: Cell) -> int:
    """The narrowest a cell's kept paragraphs allow: their longest word."""
    return max((text_width(w) for p in cell if isinstance(p, Keep) for w in p.text.split()), default=0)


def widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], total: int) -> tuple[list[int], bool]:
    """Each column's text width for a table at most ``total`` cells wide, and whether it fits in that."""
    natural = [max([text_width(c.header), *(_natural(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    least = [max([0, *(_least(r[i]) for r in rows)]) for i in range(len(columns))]
    chosen = list(natural)
    excess = sum(chosen) + (2 * PADDING + 1) * len(columns) + 1 - total
    order = sorted((c.shrink, i) for i, c in enumerate(columns) if c.shrink is not None)
    for _rank, i in order:
        if excess <= 0:
            break
        floor = max(columns[i].floor, least[i])
        give = min(excess, max(0, chosen[i] - floor))
        chosen[i] -= give
        excess -= give
    return chosen, excess <= 0


def render(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], total: int) -> str:
    """The table as text at most ``total`` cells wide where it can be (kept text makes it wider otherwise)."""
    chosen, _fits = widths(columns, rows, total)
    pad = " " * PADDING

    def rule(left: str, middle: str, right: str, fill: str) -> str:
        return left + middle.join(fill * (w + 2 * PADDING) for w in chosen) + right

    def line(texts: Sequence[str], bar: str = "│") -> str:
        cells = (f"{pad}{t}{' ' * (w - text_width(t))}{pad}" for t, w in zip(texts, chosen, strict=True))
        return bar + bar.join(cells) + bar

    headers = [fold(c.header, w) for c, w in zip(columns, chosen, strict=True)]
    out = [rule("┌", "┬", "┐", "─")]
    out.extend(line([h[k] if k < len(h) else "" for h in headers]) for k in range(max(map(len, headers))))
    out.append(rule("├", "┼", "┤", "─"))
    for row in rows:
        blocks = [[text for p in cell for text in _lines(p, w)] for cell, w in zip(row, chosen, strict=True)]
        height = max((len(b) for b in blocks), default=1)
        out.extend(line([b[k] if k < len(b) else "" for b in blocks]) for k in range(height))
    out.append(rule("└", "┴", "┘", "─"))
    return "\n".join(out)


def first_fitting(
    layouts: Sequence[tuple[Sequence[Column], Sequence[Sequence[Cell]]]], total: int
) -> tuple[Sequence[Column], Sequence[Sequence[Cell]]]:
    """The first layout whose table fits ``total`` cells with no column below its floor, else the last."""
    for columns, rows in layouts:
        if widths(columns, rows, total)[1]:
            return columns, rows
    return layouts[-1]
