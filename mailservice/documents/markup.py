"""A small line markup as a :class:`~mailservice.documents.model.Document`. Pure: no I/O.

Documents whose wording staff edit in templates (the working group's minutes, reports to the head of the
department, protocols of disagreements) are written in this markup; :func:`markup_document` turns it into the one
document model, which :func:`~mailservice.documents.render_docx` and :func:`~mailservice.documents.render_pdf`
both read, so the DOCX and the PDF of a document say the same.

* ``# text`` the title: the first line of a run of them is the document's heading, the rest centred bold lines;
* ``## text`` a section heading; ``> text`` a right-aligned line (the addressee);
* ``- text`` a list item (printed with a dash); ``---`` a page break (annexes start on a new page);
* ``| a | b | c`` a table row: consecutive rows form one table, the first is the header;
* ``~ text`` a literal paragraph: a template puts it before every further line of text a person wrote (see
  :func:`literal`), so such a line that starts with ``-`` or ``|`` stays text;
* a blank line is ignored; anything else is a paragraph.
"""

from __future__ import annotations

from mailservice.documents.model import Align, Block, Document, Heading, PageBreak, Paragraph, Table


def markup_document(markup: str, *, title: str, author: str = "", footer: str = "") -> Document:
    """The document the markup describes."""
    blocks: list[Block] = []
    rows: list[tuple[str, ...]] = []
    in_title = False

    def flush_table() -> None:
        if rows:
            blocks.append(Table(rows=tuple(rows), widths=column_widths(rows)))
            rows.clear()

    for raw in markup.splitlines():
        line = raw.rstrip()
        if line.startswith("|"):
            rows.append(tuple(part.strip() for part in line.strip("|").split("|")))
            continue
        flush_table()
        if not line.strip() or line == "~":
            continue
        starts_title = line.startswith("# ")
        if line.startswith("~ "):
            blocks.append(Paragraph(line[2:]))
        elif line == "---":
            blocks.append(PageBreak())
        elif line.startswith("## "):
            blocks.append(Heading(line[3:], level=2))
        elif starts_title and in_title:
            blocks.append(Paragraph(line[2:], align=Align.center, bold=True))
        elif starts_title:
            blocks.append(Heading(line[2:], level=1))
        elif line.startswith("> "):
            blocks.append(Paragraph(line[2:], align=Align.right))
        elif line.startswith("- "):
            blocks.append(Paragraph(f"– {line[2:]}"))
        else:
            blocks.append(Paragraph(line))
        in_title = starts_title
    flush_table()
    return Document(title=title, blocks=tuple(blocks), author=author, footer=footer)


# About this many characters of a table's body type (11-point DejaVu Serif, 2.3 mm a character) fit across an A4
# portrait page between the margins once the cells' padding is taken off; a header is bold, 1.2 times as wide.
LINE_CHARS = 68
BOLD = 1.2


def column_widths(rows: list[tuple[str, ...]]) -> tuple[float, ...]:
    """Relative column widths (in characters) from the text the columns hold; the first row is the header.

    Each column first gets its longest word, so that no word is broken across lines, and its whole text up to 12
    characters (a number, a date, a state stay on one line); the room left on the line goes to the columns of
    longer texts in proportion to what they hold (up to 60 characters each), and to a column left empty to be
    filled in by hand (a signature) as if it held 20. A table that needs more than a line gets what it needs, in
    proportion: the PDF renderer then sets it in smaller type.
    """
    width = max(len(row) for row in rows)
    header, body = rows[0], rows[1:]
    base, extra = [], []
    for c in range(width):
        cells = [row[c] for row in body if c < len(row)]
        title = header[c] if c < len(header) else ""
        word = max([BOLD * len(w) for w in title.split()] + [len(w) for cell in cells for w in cell.split()] + [3])
        longest = max((len(cell) for cell in cells), default=0)
        base.append(max(word, min(longest, 12)) + 1)
        by_hand = bool(body) and not any(cells)
        extra.append(20 if by_hand else max(0, min(longest, 60) - base[-1]))
    spare = max(0, LINE_CHARS - sum(base))
    wanted = sum(extra)
    return tuple(float(b) + (spare * e / wanted if wanted else 0.0) for b, e in zip(base, extra, strict=True))


def literal(text: str) -> str:
    """Text a person wrote, safe inside the markup: lines after the first become ``~`` paragraphs."""
    lines = text.strip().splitlines() or [""]
    return "\n".join([lines[0], *(f"~ {line}" for line in lines[1:])])


def cell(text: str) -> str:
    """Text a person wrote, safe inside a table row of the markup: one line, no cell separator."""
    return " ".join(text.replace("|", "/").split())
