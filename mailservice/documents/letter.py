"""An official letter on the department's letterhead as a :class:`Document` (then DOCX or PDF). Pure.

What a letter carries follows 8-FZ art. 19 (the department's name and postal address, the signatory's position, the
answer's own number and date) and the layout of GOST R 7.0.97-2016: letterhead, outgoing number and date and the
reference to the request («На № … от …»), the addressee block on the right, the title of the text, the greeting,
the text, attachments, the signature, the executor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailservice.config import Settings
from mailservice.documents.model import Align, Block, Document, Letterhead, Paragraph, Signature, paragraphs


def letterhead(settings: Settings) -> Letterhead:
    """The department's letterhead from the settings (name, postal address, phones, e-mail, site)."""
    lines = [
        settings.department_address,
        f"Справочная служба: {settings.department_phones}" if settings.department_phones else "",
        f"Эл. почта: {settings.from_address}" if settings.from_address else "",
    ]
    return Letterhead(organisation=settings.department_name, lines=tuple(line for line in lines if line))


@dataclass(frozen=True)
class Letter:
    """The parts of an outgoing letter."""

    letterhead: Letterhead
    number: str  # the letter's own outgoing number
    date: dt.date
    addressee: tuple[str, ...]  # name (or organisation), then the postal address lines
    title: str  # «О предоставлении информации»
    body: str  # paragraphs separated by blank lines
    signatory_position: str
    signatory_name: str
    greeting: str = ""  # «Уважаемый Иван Иванович!»
    reference: str = ""  # «На № 2026-000042 от 01.03.2026»
    attachments: tuple[str, ...] = ()
    executor: str = ""  # «Исп.: Петров П. П., 238-60-02»


def letter_document(letter: Letter, *, author: str = "") -> Document:
    """The letter as a document."""
    blocks: list[Block] = [
        Paragraph(f"Исх. № {letter.number} от {letter.date:%d.%m.%Y}"),
    ]
    if letter.reference:
        blocks.append(Paragraph(letter.reference))
    blocks.append(Paragraph("\n".join(line for line in letter.addressee if line.strip()), align=Align.right))
    if letter.title:
        blocks.append(Paragraph(letter.title, bold=True))
    if letter.greeting:
        blocks.append(Paragraph(letter.greeting, align=Align.center))
    blocks += paragraphs(letter.body)
    if letter.attachments:
        listed = "\n".join(f"{i}. {name}" for i, name in enumerate(letter.attachments, 1))
        blocks.append(Paragraph(f"Приложение:\n{listed}"))
    blocks.append(Signature(letter.signatory_position, letter.signatory_name))
    if letter.executor:
        blocks.append(Paragraph(letter.executor, small=True))
    return Document(
        title=f"Исх. № {letter.number} от {letter.date:%d.%m.%Y}: {letter.title}".strip(": "),
        blocks=tuple(blocks),
        letterhead=letter.letterhead,
        author=author or letter.letterhead.organisation,
    )
