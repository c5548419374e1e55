"""An SVG as PNG for DOCX (python-docx takes no SVG): fpdf2 draws it on a page of its own size with the shipped
fonts, PDFium (pypdfium2, a wheel) rasterises that page. No system library (cairo, rsvg) is needed."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
from fpdf import FPDF
from fpdf.svg import SVGObject

from mailservice.documents import fonts
from mailservice.documents.model import DocumentError

# Pixels across the longest side: sharp on paper at the widths a page allows, small enough for a letter.
MAX_PIXELS = 2000
MAX_SVG_BYTES = 5 * 1024 * 1024


def svg_size(svg: bytes) -> tuple[float, float]:
    """Width and height of an SVG in points (its own width/height, else its viewBox)."""
    if len(svg) > MAX_SVG_BYTES:
        raise DocumentError("Изображение SVG больше 5 МБ")
    try:
        parsed = SVGObject(svg)
    except Exception as exc:  # defusedxml and fpdf2's parser raise several kinds
        raise DocumentError(f"SVG не читается: {exc}") from exc
    width, height = parsed.width, parsed.height
    if not (width and height) and parsed.viewbox:
        width, height = parsed.viewbox[2], parsed.viewbox[3]
    if not (width and height) or width <= 0 or height <= 0:
        raise DocumentError("У изображения SVG нет размеров (width/height или viewBox)")
    return float(width), float(height)


def svg_to_png(svg: bytes) -> bytes:
    """The PNG of an SVG, its longest side ``MAX_PIXELS`` pixels, on a white background."""
    width, height = svg_size(svg)
    pdf = FPDF(unit="pt", format=(width, height))
    pdf.set_margin(0)
    pdf.set_auto_page_break(False)
    fonts.ensure_all(pdf)
    pdf.add_page()
    pdf.image(io.BytesIO(svg), x=0, y=0, w=width, h=height)
    page = pdfium.PdfDocument(bytes(pdf.output()))[0]
    bitmap = page.render(scale=MAX_PIXELS / max(width, height), fill_color=(255, 255, 255, 255))
    out = io.BytesIO()
    bitmap.to_pil().save(out, format="PNG", optimize=True)
    return out.getvalue()
