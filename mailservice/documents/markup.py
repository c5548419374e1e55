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
            blocks.append(Table(rows=tuple(rows)))
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


def literal(text: str) -> str:
    """Text a person wrote, safe inside the markup: lines after the first become ``~`` paragraphs."""
    lines = text.strip().splitlines() or [""]
    return "\n".join([lines[0], *(f"~ {line}" for line in lines[1:])])


def cell(text: str) -> str:
    """Text a person wrote, safe inside a table row of the markup: one line, no cell separator."""
    return " ".join(text.replace("|", "/").split())
