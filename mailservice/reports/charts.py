"""Bar charts as SVG, drawn on the server (issue 17): no script, no outside request, every label escaped.

Pure: numbers and labels in, SVG text out. The same SVG goes inline into the console's home page and, as an
:class:`mailservice.documents.Image`, into the monthly report's PDF (fpdf2 draws it; text names ``sans-serif``, which
the documents module maps to the shipped DejaVu Sans).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from mailservice.xmltext import xml_safe

# Colours that stay apart for the common colour-vision deficiencies (Okabe-Ito), dark enough on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
FONT = "sans-serif"
TEXT_COLOUR = "#222222"
GRID_COLOUR = "#d0d0d0"


def _text(value: str) -> str:
    return escape(xml_safe(value))


def _attr(value: str) -> str:
    return quoteattr(xml_safe(value))


@dataclass(frozen=True)
class Series:
    """One coloured part of every bar: its name (the legend) and a value per category."""

    name: str
    values: tuple[float, ...]


def _nice_max(value: float) -> float:
    """A round bound (1, 2, 5 times a power of ten, at least 1) at or above ``value``."""
    if value <= 1:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",") if value != int(value) else str(int(value))


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label={_attr(title)}>'
        f"<title>{_text(title)}</title>"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
        f'<text x="10" y="20" font-family="{FONT}" font-size="14" font-weight="bold" fill="{TEXT_COLOUR}">'
        f"{_text(title)}</text>" + "".join(body) + "</svg>"
    )


def _legend(series: Sequence[Series], x: float, y: float, width: float) -> list[str]:
    out: list[str] = []
    cx, cy = x, y
    for index, item in enumerate(series):
        label_width = 14 + 7 * len(item.name)
        if cx + label_width > x + width and cx > x:
            cx, cy = x, cy + 16
        colour = PALETTE[index % len(PALETTE)]
        out.append(f'<rect x="{cx:.1f}" y="{cy - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        out.append(
            f'<text x="{cx + 14:.1f}" y="{cy:.1f}" font-family="{FONT}" font-size="11" fill="{TEXT_COLOUR}">'
            f"{_text(item.name)}</text>"
        )
        cx += label_width + 12
    return out


def column_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 300,
    maximum: float | None = None,
    values_on_top: bool = False,
) -> str:
    """Vertical bars, one per category, the series stacked in each; a legend when there are several series.

    ``maximum`` fixes the axis (5 for ratings); ``values_on_top`` writes each bar's total above it."""
    left, right, top, bottom = 44.0, 12.0, 34.0 + (16.0 if len(series) > 1 else 0.0), 44.0
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    # Counts get four whole steps (0, 1, 2, 3, 4 or 0, 5, 10, ...); a fixed maximum (5 for ratings) one per unit.
    ticks = int(maximum) if maximum is not None and maximum == int(maximum) and maximum <= 10 else 4
    top_value = maximum if maximum is not None else 4 * _nice_max(max(totals, default=0.0) / 4)
    body: list[str] = []
    if len(series) > 1:
        body += _legend(series, left, 40.0, plot_w)
    for step in range(ticks + 1):
        value = top_value * step / ticks
        y = top + plot_h - plot_h * step / ticks
        body.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}" '
            'stroke-width="1"/>'
        )
        body.append(
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" font-family="{FONT}" font-size="10" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{_number(value)}</text>'
        )
    slot = plot_w / max(len(categories), 1)
    bar_w = max(slot * 0.7, 1.0)
    # Every n-th category label, so that labels (about 6 px a character at 10 px) never overlap.
    label_w = 6.0 * max((len(c) for c in categories), default=1) + 8.0
    every = max(1, math.ceil(label_w / slot))
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        base = top + plot_h
        for index, item in enumerate(series):
            value = item.values[i]
            if value <= 0:
                continue
            h = plot_h * min(value, top_value) / top_value
            base -= h
            body.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{_text(category)}: {_text(item.name)} '
                f"{_number(value)}</title></rect>"
            )
        if values_on_top and totals[i] > 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{base - 4:.1f}" font-family="{FONT}" font-size="10" '
                f'text-anchor="middle" fill="{TEXT_COLOUR}">{_number(totals[i])}</text>'
            )
        if i % every == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16:.1f}" font-family="{FONT}" font-size="10" '
                f'text-anchor="middle" fill="{TEXT_COLOUR}">{_text(category)}</text>'
            )
    body.append(
        f'<line x1="{left:.1f}" y1="{top + plot_h:.1f}" x2="{left + plot_w:.1f}" y2="{top + plot_h:.1f}" '
        f'stroke="{TEXT_COLOUR}" stroke-width="1"/>'
    )
    if not any(totals):
        body.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" font-family="{FONT}" font-size="13" '
            f'text-anchor="middle" fill="#666666">Нет данных</text>'
        )
    return _svg(width, height, title, body)


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, width: int = 640, row: int = 24) -> str:
    """Horizontal bars with their labels on the left and the values at their ends (statuses, grounds)."""
    label_w, top = 190.0, 34.0
    height = int(top + row * max(len(items), 1) + 12)
    plot_w = width - label_w - 50
    top_value = _nice_max(max((v for _l, v in items), default=0.0))
    body: list[str] = []
    for i, (label, value) in enumerate(items):
        y = top + row * i
        w = plot_w * value / top_value if top_value else 0
        body.append(
            f'<text x="{label_w - 8:.1f}" y="{y + row / 2 + 4:.1f}" font-family="{FONT}" font-size="11" '
            f'text-anchor="end" fill="{TEXT_COLOUR}">{_text(label)}</text>'
        )
        body.append(
            f'<rect x="{label_w:.1f}" y="{y + 4:.1f}" width="{max(w, 0):.1f}" height="{row - 8:.1f}" '
            f'fill="{PALETTE[0]}"><title>{_text(label)}: {_number(value)}</title></rect>'
        )
        body.append(
            f'<text x="{label_w + w + 6:.1f}" y="{y + row / 2 + 4:.1f}" font-family="{FONT}" font-size="11" '
            f'fill="{TEXT_COLOUR}">{_number(value)}</text>'
        )
    if not items:
        body.append(
            f'<text x="{width / 2:.1f}" y="{top + 14:.1f}" font-family="{FONT}" font-size="13" text-anchor="middle" '
            'fill="#666666">Нет данных</text>'
        )
    return _svg(width, height, title, body)
