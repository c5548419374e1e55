"""Minutes of a meeting from one snapshot of its records: HTML and DOCX from Jinja2 templates. Pure: no I/O.

``templates/wg/minutes.html`` gives the page (and the HTML copy sent to members); ``templates/wg/minutes_docx.txt``
gives the same text in a small line markup that :func:`render_docx` lays out with python-docx, so the wording of
both lives in templates staff can edit:

* ``# text`` centred bold title, ``## text`` bold heading, ``> text`` right-aligned line;
* ``- text`` bulleted paragraph; ``| a | b | c`` a table row (consecutive rows form one table, the first is the
  header); ``---`` a page break (annexes start on a new page); a blank line is ignored; anything else is a
  paragraph.
* ``~ text`` a literal paragraph: the template's ``lit()`` puts it before every further line of text a person
  wrote, so an opinion line that starts with ``-`` or ``|`` stays text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.shared import Pt

from mailservice.templating import render
from mailservice.workgroup.tally import TallyResult, Votes


@dataclass(frozen=True)
class Person:
    """A participant line: name, position, role in the group, and how they took part."""

    name: str
    position: str = ""
    role: str = ""
    mode: str = ""  # очно | дистанционно | отсутствовал(а)


@dataclass(frozen=True)
class Opinion:
    """A written opinion of an absent member or a dissenting opinion."""

    member: str
    text: str
    received: str  # local date and time, as printed
    item_number: int | None = None
    late: bool = False


@dataclass(frozen=True)
class ItemRecord:
    """One question of the agenda with what was heard, decided and voted."""

    number: int
    title: str
    speaker: str
    heard: str
    decision: str
    votes: Votes
    result: TallyResult | None
    voters: Sequence[tuple[str, str]] = ()  # (name, choice in Russian), for polls and named votes
    dissents: Sequence[Opinion] = ()


@dataclass(frozen=True)
class Signer:
    """A signature the profile requires, and whether it was given."""

    capacity: str  # председательствующий | председатель | секретарь | член рабочей группы
    name: str
    signed: str = ""  # local date and time, empty while unsigned


@dataclass(frozen=True)
class MinutesData:
    """Everything printed in the minutes; built by the service from the database."""

    department: str
    group_title: str
    number: int
    date: str  # «16 декабря 2026 г.»
    time: str
    place: str
    form: str
    is_poll: bool
    presiding: str
    secretary: str
    members_total: int
    taking_part: int
    quorum: bool
    present: Sequence[Person]
    absent: Sequence[Person]
    invitees: Sequence[Person]
    items: Sequence[ItemRecord]
    written_opinions: Sequence[Opinion]
    conciliation: bool  # dissent goes to a conciliation meeting (seeds 002 p. 15, 003 app. 3 p. 10)
    oral_consent: bool = False  # signed by the presiding member on the members' oral consent (seed 002 p. 14)
    general_dissents: Sequence[Opinion] = ()  # dissents not tied to one question
    audio: str = ""  # file name of the audio recording
    poll_closed: str = ""
    signers: Sequence[Signer] = field(default_factory=tuple)
    version: int = 1
    draft: bool = True


def content_hash(data: MinutesData) -> str:
    """SHA-256 of what the minutes say, leaving out signatures and the version label.

    Signing fills in the signature block; this hash proves that nothing else changed between the version the
    signers were asked to sign and the signed copy.
    """
    stripped = dataclasses.replace(data, signers=tuple(Signer(s.capacity, s.name) for s in data.signers))
    stripped = dataclasses.replace(stripped, version=0, draft=False)
    text = json.dumps(dataclasses.asdict(stripped), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_html(data: MinutesData) -> str:
    """The minutes as an HTML fragment (``<article>``), escaped."""
    return render("wg/minutes.html", m=data)


def render_document(fragment: str, *, title: str) -> str:
    """A stored minutes fragment as a standalone HTML document (the copy sent by e-mail)."""
    return render("wg/minutes_page.html", title=title, body=fragment)


def _literal(text: str) -> str:
    """Text a person wrote, safe inside the line markup: lines after the first become ``~ `` paragraphs."""
    lines = text.strip().splitlines() or [""]
    return "\n".join([lines[0], *(f"~ {line}" for line in lines[1:])])


def render_docx(data: MinutesData) -> bytes:
    """The minutes as a DOCX file."""
    markup = render("wg/minutes_docx.txt", m=data, lit=_literal)
    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(12)
    table_rows: list[list[str]] = []

    def flush_table() -> None:
        if not table_rows:
            return
        width = max(len(row) for row in table_rows)
        table = document.add_table(rows=len(table_rows), cols=width)
        table.style = "Table Grid"
        for r, row in enumerate(table_rows):
            for c in range(width):
                cell = table.cell(r, c)
                cell.text = row[c] if c < len(row) else ""
                if r == 0:
                    for run in cell.paragraphs[0].runs:
                        run.bold = True
        table_rows.clear()

    for raw in markup.splitlines():
        line = raw.rstrip()
        if line.startswith("|"):
            table_rows.append([cell.strip() for cell in line.strip("|").split("|")])
            continue
        flush_table()
        if not line.strip() or line == "~":
            continue
        if line.startswith("~ "):
            document.add_paragraph(line[2:])
        elif line == "---":
            document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        elif line.startswith("## "):
            document.add_paragraph().add_run(line[3:]).bold = True
        elif line.startswith("# "):
            paragraph = document.add_paragraph()
            paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
            paragraph.add_run(line[2:]).bold = True
        elif line.startswith("> "):
            paragraph = document.add_paragraph(line[2:])
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        elif line.startswith("- "):
            document.add_paragraph(line[2:], style="List Bullet")
        else:
            document.add_paragraph(line)
    flush_table()
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_text(data: bytes) -> str:
    """All text of a DOCX file, paragraphs and table cells, one per line (for checks and search)."""
    document = Document(io.BytesIO(data))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)
