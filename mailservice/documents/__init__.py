"""Letters and reports as DOCX and PDF from one structured document (issue 16).

Build a :class:`Document` (an optional :class:`Letterhead`, then :class:`Heading`, :class:`Paragraph`,
:class:`Table`, :class:`Image` (an SVG chart, a PNG scan), :class:`Signature`, :class:`PageBreak` blocks) and call
:func:`render_docx` or :func:`render_pdf`; both read the same model, so the two files say the same. PDFs embed the
shipped DejaVu fonts (Cyrillic); text is cleaned of characters XML cannot hold when the model is made.
:func:`letter_document` lays out an official letter (letterhead, outgoing number and date, addressee, signatory).
"""

from __future__ import annotations

from mailservice.documents.letter import Letter, letter_document, letterhead
from mailservice.documents.model import (
    Align,
    Block,
    Document,
    DocumentError,
    Heading,
    Image,
    Letterhead,
    PageBreak,
    Paragraph,
    Signature,
    Table,
    paragraphs,
    xml_text,
)
from mailservice.documents.to_docx import render_docx
from mailservice.documents.to_pdf import render_pdf

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_TYPE = "application/pdf"

__all__ = [
    "DOCX_TYPE",
    "PDF_TYPE",
    "Align",
    "Block",
    "Document",
    "DocumentError",
    "Heading",
    "Image",
    "Letter",
    "Letterhead",
    "PageBreak",
    "Paragraph",
    "Signature",
    "Table",
    "letter_document",
    "letterhead",
    "paragraphs",
    "render_docx",
    "render_pdf",
    "xml_text",
]
