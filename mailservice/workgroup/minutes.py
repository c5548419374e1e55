"""Minutes of a meeting from one snapshot of its records: HTML and DOCX from Jinja2 templates. Pure: no I/O.

``templates/wg/minutes.html`` gives the page (and the HTML copy sent to members); ``templates/wg/minutes_docx.txt``
gives the same text in the line markup of :mod:`mailservice.documents.markup`, which becomes the shared document
model and then DOCX, so the wording of both lives in templates staff can edit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailservice.templating import render
from mailservice.workgroup.tally import TallyResult, Votes

if TYPE_CHECKING:
    from mailservice.documents import Document


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
class InstructionLine:
    """An instruction the decision gives: to whom, what, the expected result and the term as given."""

    assignee: str
    text: str
    expected_result: str
    term: str  # «в течение 10 рабочих дней (до 20.12.2026)»


def term_text(due_wd: int | None, due: dt.date) -> str:
    """«в течение 10 рабочих дней (до 20.12.2026)» or «до 20.12.2026»."""
    day = due.strftime("%d.%m.%Y")
    if not due_wd:
        return f"до {day}"
    unit = "рабочего дня" if due_wd % 10 == 1 and due_wd % 100 != 11 else "рабочих дней"
    return f"в течение {due_wd} {unit} (до {day})"


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
    details: str = ""  # the follow-up item's listing of earlier instructions
    instructions: Sequence[InstructionLine] = ()


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


def render_docx(data: MinutesData) -> bytes:
    """The minutes as a DOCX file (the shared document model, :mod:`mailservice.documents`)."""
    from mailservice.documents import render_docx as render_docx_document  # python-docx and fpdf2: when used

    return render_docx_document(minutes_document(data))


def minutes_document(data: MinutesData) -> Document:
    """The minutes as a document of the shared model (DOCX today; a PDF renders from the same model)."""
    from mailservice.documents.markup import literal, markup_document

    markup = render("wg/minutes_docx.txt", m=data, lit=literal)
    return markup_document(markup, title=f"Протокол № {data.number}: {data.group_title}", author=data.department)


def docx_text(data: bytes) -> str:
    """All text of a DOCX file, paragraphs and table cells, one per line (for checks and search)."""
    from docx import Document as read_docx

    document = read_docx(io.BytesIO(data))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)
