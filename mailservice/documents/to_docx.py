"""A :class:`~mailservice.documents.model.Document` as DOCX (python-docx).

The same page as the PDF (A4, margins 25/15/20/20 mm, GOST R 7.0.97-2016 p. 5.1). A DOCX does not embed fonts:
it names Times New Roman (serif) or Arial (sans), which every office suite has or substitutes, and marks the text
Russian for spelling. Headings use Word's heading styles (navigation pane, accessible structure), table headers
repeat on every page, pictures carry their text alternative.
"""

from __future__ import annotations

import io

from docx import Document as new_docx
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

from mailservice.documents.model import Align, Document, Heading, Image, Letterhead, PageBreak, Paragraph, Signature
from mailservice.documents.model import Table as TableBlock
from mailservice.documents.svg import svg_to_png
from mailservice.documents.to_pdf import HEADING_SIZE, MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, SIZE

FONT = {"serif": "Times New Roman", "sans": "Arial"}
ALIGN = {
    Align.left: WD_ALIGN_PARAGRAPH.LEFT,
    Align.center: WD_ALIGN_PARAGRAPH.CENTER,
    Align.right: WD_ALIGN_PARAGRAPH.RIGHT,
    Align.justify: WD_ALIGN_PARAGRAPH.JUSTIFY,
}


def render_docx(document: Document) -> bytes:
    """The DOCX bytes of ``document``."""
    doc = new_docx()
    _page(doc)
    _styles(doc, FONT[document.font], SIZE[document.font])
    props = doc.core_properties
    props.title, props.author, props.language = document.title[:255], document.author[:255], "ru-RU"
    size = SIZE[document.font]
    if document.letterhead is not None:
        _letterhead(doc, document.letterhead)
    for block in document.blocks:
        if isinstance(block, Heading):
            heading = doc.add_heading(block.text, level=block.level)
            if block.level == 1:
                heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif isinstance(block, Paragraph):
            paragraph = doc.add_paragraph()
            paragraph.alignment = ALIGN[block.align]
            run = paragraph.add_run(block.text)  # python-docx turns line breaks into <w:br/>
            run.bold, run.italic = block.bold or None, block.italic or None
            if block.small:
                run.font.size = Pt(size - 2)
        elif isinstance(block, TableBlock):
            _table(doc, block, size - 1)
        elif isinstance(block, Image):
            _image(doc, block, size - 1)
        elif isinstance(block, Signature):
            _signature(doc, block)
        elif isinstance(block, PageBreak):
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    if document.footer:
        footer = doc.sections[0].footer.paragraphs[0]
        footer.text = document.footer
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _page(doc: DocxDocument) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)  # python-docx's template is US Letter
    section.left_margin, section.right_margin = Mm(MARGIN_LEFT), Mm(MARGIN_RIGHT)
    section.top_margin, section.bottom_margin = Mm(MARGIN_TOP), Mm(MARGIN_BOTTOM)


def _styles(doc: DocxDocument, font: str, size: float) -> None:
    normal = doc.styles["Normal"]
    normal.font.name = font
    normal.font.size = Pt(size)
    rpr = normal.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is not None:
        fonts.set(qn("w:cs"), font)  # complex-script slot too, so no run falls back to the theme font
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "ru-RU")
    rpr.append(lang)
    for level, points in HEADING_SIZE.items():
        style = doc.styles[f"Heading {level}"]
        style.font.name = font
        style.font.size = Pt(points)
        style.font.bold = True
        style.font.italic = False
        style.font.color.rgb = RGBColor(0, 0, 0)


def _letterhead(doc: DocxDocument, head: Letterhead) -> None:
    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(head.organisation)
    run.bold = True
    run.font.size = Pt(13)
    last = title
    for line in head.lines:
        last = doc.add_paragraph()
        last.alignment = WD_ALIGN_PARAGRAPH.CENTER
        last.paragraph_format.space_after = Pt(0)
        last.add_run(line).font.size = Pt(9)
    # The rule under the letterhead: a bottom border of its last paragraph.
    ppr = last._p.get_or_add_pPr()
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "8"), ("w:space", "4"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    border.append(bottom)
    ppr.append(border)
    doc.add_paragraph()


def _table(doc: DocxDocument, block: TableBlock, size: float) -> None:
    if not block.rows:
        return
    table = doc.add_table(rows=len(block.rows), cols=block.columns)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    usable = 210 - MARGIN_LEFT - MARGIN_RIGHT
    weights = block.widths or (1.0,) * block.columns
    for r, values in enumerate(block.rows):
        row = table.rows[r]
        for c, value in enumerate(values):
            cell = row.cells[c]
            cell.width = Mm(usable * weights[c] / sum(weights))
            run = cell.paragraphs[0].add_run(value)
            run.font.size = Pt(size)
            if r == 0 and block.header:
                run.bold = True
    if block.header:
        # The header row repeats at the top of every page (w:tblHeader).
        trpr = table.rows[0]._tr.get_or_add_trPr()
        flag = OxmlElement("w:tblHeader")
        flag.set(qn("w:val"), "true")
        trpr.append(flag)
    doc.add_paragraph()


def _image(doc: DocxDocument, image: Image, size: float) -> None:
    data = svg_to_png(image.data) if image.format == "svg" else image.data
    width = min(image.width_mm, 210 - MARGIN_LEFT - MARGIN_RIGHT)
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    shape = paragraph.add_run().add_picture(io.BytesIO(data), width=Mm(width))
    shape._inline.docPr.set("descr", image.alt)  # the text alternative a screen reader reads
    if image.caption:
        caption = doc.add_paragraph()
        caption.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = caption.add_run(image.caption)
        run.italic = True
        run.font.size = Pt(size)


def _signature(doc: DocxDocument, signature: Signature) -> None:
    doc.add_paragraph()
    table = doc.add_table(rows=1, cols=2)  # no style: no borders
    usable = 210 - MARGIN_LEFT - MARGIN_RIGHT
    left, right = table.rows[0].cells
    left.width, right.width = Mm(usable * 0.6), Mm(usable * 0.4)
    left.paragraphs[0].add_run(signature.position)
    right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    right.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.BOTTOM  # the name on the position's last line
    right.paragraphs[0].add_run(signature.name)
