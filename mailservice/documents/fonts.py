"""The DejaVu fonts shipped with the package (data/fonts/, Bitstream Vera licence in data/fonts/LICENSE).

A PDF embeds its fonts; the PDF core fonts (Helvetica, Times) hold no Cyrillic, so every PDF uses these. They are
registered under the CSS generic names ``serif`` and ``sans-serif``, which is also what an SVG chart's text names,
so a chart's Cyrillic labels find them. Parsing one font file costs about 60 ms: a style is added to a PDF only
when it is first used.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from mailservice.resources import package_path

# family -> style ("" regular, "B" bold, "I" italic) -> file
FILES = {
    "serif": {"": "DejaVuSerif.ttf", "B": "DejaVuSerif-Bold.ttf", "I": "DejaVuSerif-Italic.ttf"},
    "sans-serif": {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"},
}
# The model's family names (Document.font) -> the names fonts are registered under.
FAMILIES = {"serif": "serif", "sans": "sans-serif"}


def font_dir() -> Path:
    """Where the shipped fonts are."""
    return package_path("documents", "data", "fonts")


def ensure(pdf: FPDF, family: str, style: str = "") -> None:
    """Add one style of a family to ``pdf`` unless it is there (only the glyphs used are embedded)."""
    if f"{family}{style}" not in pdf.fonts:
        pdf.add_font(family, style, str(font_dir() / FILES[family][style]))


def ensure_all(pdf: FPDF) -> None:
    """Every family and style (before drawing an SVG, whose text may use any of them)."""
    for family, styles in FILES.items():
        for style in styles:
            ensure(pdf, family, style)
