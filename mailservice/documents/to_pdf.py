"""A :class:`~mailservice.documents.model.Document` as PDF (fpdf2, the shipped DejaVu fonts embedded).

A4 with the margins of GOST R 7.0.97-2016 p. 5.1 (at least 20 mm left, 10 mm right, 20 mm top and bottom; we
take 25/15/20/20, the same as the DOCX); page numbers from the second page, centred at the top (the same GOST);
headings become the PDF's outline (bookmarks), so a long report can be navigated.
"""

from __future__ import annotations

import io
import itertools

from fpdf import FPDF, FontFace
from fpdf.enums import Align as PdfAlign
from fpdf.enums import MethodReturnValue, TableHeadingsDisplay, XPos, YPos

from mailservice.documents import fonts
from mailservice.documents.model import (
    Align,
    Document,
    DocumentError,
    Heading,
    Image,
    Letterhead,
    PageBreak,
    Paragraph,
    Signature,
)
from mailservice.documents.model import Table as TableBlock

MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 25.0, 15.0, 20.0, 20.0
SIZE = {"serif": 12.0, "sans": 11.0}
HEADING_SIZE = {1: 14.0, 2: 12.5, 3: 12.0}
ALIGN = {Align.left: "L", Align.center: "C", Align.right: "R", Align.justify: "J"}
CELL_PADDING = 1.0  # mm
SMALLEST_TABLE_SIZE = 8.0  # points: a wide table's type shrinks down to this so that its words stay whole
LINE = 0.5  # line height in mm per point of type (about 1.4 lines)


class _PDF(FPDF):
    """FPDF with the page number at the top from the second page and an optional footer line."""

    def __init__(self, family: str, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.ms_family = family
        self.ms_footer = footer_text

    def header(self) -> None:
        if self.page_no() > 1:
            fonts.ensure(self, self.ms_family)
            self.set_font(self.ms_family, "", 9)
            self.set_y(8)
            self.cell(0, 5, str(self.page_no()), align="C")
            self.set_y(MARGIN_TOP)

    def footer(self) -> None:
        if self.ms_footer:
            fonts.ensure(self, self.ms_family)
            self.set_font(self.ms_family, "", 8)
            self.set_y(-12)
            self.cell(0, 5, self.ms_footer, align="C")


def render_pdf(document: Document) -> bytes:
    """The PDF bytes of ``document``."""
    family = fonts.FAMILIES[document.font]
    pdf = _PDF(family, document.footer)
    pdf.set_margins(MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT)
    pdf.set_auto_page_break(True, MARGIN_BOTTOM)
    pdf.set_title(document.title)
    pdf.set_author(document.author)
    pdf.set_creator("mailservice")
    pdf.set_lang("ru-RU")
    pdf.add_page()
    writer = _Writer(pdf, family, SIZE[document.font])
    if document.letterhead is not None:
        writer.letterhead(document.letterhead)
    for block in document.blocks:
        writer.block(block)
    return bytes(pdf.output())


class _Writer:
    """Draws blocks one after another on the pages of one PDF."""

    def __init__(self, pdf: FPDF, family: str, size: float) -> None:
        self.pdf = pdf
        self.family = family
        self.size = size
        self.section_level = -1  # the outline needs levels that grow by one at a time

    def font(self, style: str = "", size: float | None = None) -> float:
        """Select a style and size; returns the line height in mm."""
        fonts.ensure(self.pdf, self.family, style)
        size = size or self.size
        self.pdf.set_font(self.family, style, size)
        return size * LINE

    def text(self, value: str, *, align: str = "L", height: float) -> None:
        # Tabs have no glyph: four spaces are what a reader expects.
        self.pdf.multi_cell(0, height, value.replace("\t", "    "), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def letterhead(self, head: Letterhead) -> None:
        pdf = self.pdf
        self.text(head.organisation, align="C", height=self.font("B", 13))
        line_height = self.font("", 9)
        for line in head.lines:
            self.text(line, align="C", height=line_height)
        y = pdf.get_y() + 1.5
        pdf.set_line_width(0.4)
        pdf.line(pdf.l_margin, y, pdf.w - pdf.r_margin, y)
        pdf.set_y(y + 5)

    def block(self, block: object) -> None:
        if isinstance(block, Heading):
            self.heading(block)
        elif isinstance(block, Paragraph):
            self.paragraph(block)
        elif isinstance(block, TableBlock):
            self.table(block)
        elif isinstance(block, Image):
            self.image(block)
        elif isinstance(block, Signature):
            self.signature(block)
        elif isinstance(block, PageBreak):
            self.pdf.add_page()
        else:  # pragma: no cover - the Block union is closed
            raise DocumentError(f"unknown block {type(block).__name__}")

    def heading(self, heading: Heading) -> None:
        level = min(heading.level - 1, self.section_level + 1)
        self.section_level = level
        self.pdf.ln(2)
        self.pdf.start_section(heading.text[:200], level=level)
        height = self.font("B", HEADING_SIZE[heading.level])
        self.text(heading.text, align="C" if heading.level == 1 else "L", height=height)
        self.pdf.ln(2)

    def paragraph(self, paragraph: Paragraph) -> None:
        style = ("B" if paragraph.bold else "") + ("I" if paragraph.italic and not paragraph.bold else "")
        height = self.font(style, self.size - 2 if paragraph.small else self.size)
        self.text(paragraph.text, align=ALIGN[paragraph.align], height=height)
        self.pdf.ln(1.5)

    def table(self, table: TableBlock) -> None:
        if not table.rows:
            return
        pdf = self.pdf
        weights = table.widths or (1.0,) * table.columns
        widths = [pdf.epw * w / sum(weights) for w in weights]
        size = self.table_size(table, widths)
        self.font("B", size)
        height = self.font("", size)
        rows = _split_tall_rows(pdf, table.rows, widths, height, limit=pdf.eph * 0.8)
        with pdf.table(
            width=pdf.epw,
            align="LEFT",  # fpdf2 centres on the page, not between the (unequal) margins
            col_widths=weights,
            first_row_as_headings=table.header,
            headings_style=FontFace(emphasis="BOLD"),
            repeat_headings=TableHeadingsDisplay.ON_TOP_OF_EVERY_PAGE,
            line_height=height,
            padding=CELL_PADDING,
            text_align="LEFT",
        ) as grid:
            for row in rows:
                cells = grid.row()
                for value in row:
                    cells.cell(value.replace("\t", "    "))
        pdf.ln(2)

    def table_size(self, table: TableBlock, widths: list[float]) -> float:
        """One point under the body's type, smaller (half a point at a time, down to 8 points) while a word would
        not fit its column and fpdf2 would break it between letters."""
        longest: list[list[tuple[str, str]]] = []  # per column: its longest words, with their style
        for c in range(table.columns):
            words = [
                ("B" if r == 0 and table.header else "", word)
                for r, row in enumerate(table.rows)
                for word in row[c].split()
            ]
            longest.append(sorted(words, key=lambda w: len(w[1]) * (1.2 if w[0] else 1.0))[-3:])
        size = self.size - 1
        while size > SMALLEST_TABLE_SIZE and not self.words_fit(longest, widths, size):
            size -= 0.5
        return size

    def words_fit(self, longest: list[list[tuple[str, str]]], widths: list[float], size: float) -> bool:
        for words, width in zip(longest, widths, strict=True):
            for style, word in words:
                self.font(style, size)
                if self.pdf.get_string_width(word) > width - 2 * CELL_PADDING:
                    return False
        return True

    def image(self, image: Image) -> None:
        pdf = self.pdf
        if image.format == "svg":
            fonts.ensure_all(pdf)  # the chart's text names serif or sans-serif, any style
        try:
            pdf.image(io.BytesIO(image.data), w=min(image.width_mm, pdf.epw), x=PdfAlign.C, alt_text=image.alt)
        except Exception as exc:  # fpdf2 and Pillow raise many kinds for a broken file
            raise DocumentError(f"Изображение «{image.alt}» не удалось прочитать: {exc}") from exc
        if image.caption:
            self.text(image.caption, align="C", height=self.font("I", self.size - 1))
        pdf.ln(2)

    def signature(self, signature: Signature) -> None:
        pdf = self.pdf
        height = self.font()
        pdf.ln(height)
        left = pdf.epw * 0.6
        pdf.multi_cell(left, height, signature.position, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        bottom = pdf.get_y()
        pdf.set_xy(pdf.l_margin + left, bottom - height)
        pdf.cell(pdf.epw - left, height, signature.name, align="R")
        pdf.set_xy(pdf.l_margin, bottom)
        pdf.ln(2)


def _split_tall_rows(
    pdf: FPDF, rows: tuple[tuple[str, ...], ...], widths: list[float], height: float, *, limit: float
) -> list[tuple[str, ...]]:
    """Rows whose text would not fit on one page split into several (fpdf2 refuses a row taller than a page)."""
    most = max(1, int(limit // height))
    out: list[tuple[str, ...]] = []
    for row in rows:
        lines: list[list[str]] = [
            pdf.multi_cell(  # type: ignore[misc]
                max(width - 2 * CELL_PADDING, 1.0), height, value, dry_run=True, output=MethodReturnValue.LINES
            )
            for value, width in zip(row, widths, strict=True)
        ]
        if max((len(cell) for cell in lines), default=0) <= most:
            out.append(row)
            continue
        chunks = [["\n".join(cell[i : i + most]) for i in range(0, len(cell), most)] for cell in lines]
        out.extend(tuple(parts) for parts in itertools.zip_longest(*chunks, fillvalue=""))
    return out
