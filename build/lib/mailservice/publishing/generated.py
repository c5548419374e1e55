"""Pages and files written from data at build time: request statistics, mailings sent, open data, QR codes.

:func:`generated_files` is pure: schema, data, settings and ``today`` in, (path, content) pairs out. The MkDocs hook
(:mod:`mailservice.publishing.mkdocs_hooks`) adds them to the build as virtual files, so nothing is written into
docs/ and a plain ``mkdocs build`` of the same folder produces the same site.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, Channel
from mailservice.publishing.opendata import INDICATORS, STRUCTURE, build_open_data, indicator_rows
from mailservice.publishing.qr import qr_png, qr_svg
from mailservice.publishing.schema import SiteSchema
from mailservice.publishing.stats import SiteData, totals
from mailservice.templating import render

STATISTICS_KEY = "statistics"
FEEDBACK_KEY = "feedback"
PROCESSES_KEY = "processes"
PROCESSES_PAGE = "cifrovye-processy.md"
QR_NAME = "qr-obratnaya-svyaz"
MAILINGS_PAGE = "rassylki.md"
OPENDATA_PAGE = "otkrytye-dannye.md"
OPENDATA_DIR = "opendata"

_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]()#+!|~])")


@dataclass(frozen=True)
class GeneratedFile:
    """A file of the built site that no one wrote by hand (docs-relative path)."""

    path: str
    content: str | bytes


def md_text(value: object) -> str:
    """Text from the database made inert in Markdown: HTML escaped, Markdown punctuation backslashed."""
    return _MD_SPECIAL_RE.sub(r"\\\1", html.escape(str(value), quote=False)).replace("\n", " ")


def _type_name(label: str) -> str:
    from mailservice.classify.rules import load_taxonomy

    return load_taxonomy()["type"].display_name(label)


def _channel_name(label: str) -> str:
    try:
        return CHANNEL_NAMES[Channel(label)]
    except ValueError:
        return label


def _ground_name(code: str) -> str:
    ground = REFUSAL_GROUNDS.get(code)
    return ground.title if ground else code


def feedback_url(schema: SiteSchema, site_url: str) -> str | None:
    """The absolute address of the feedback page (the QR code leads there), or None without a site URL."""
    section = schema.by_key(FEEDBACK_KEY)
    if section is None or not site_url.startswith(("http://", "https://")):
        return None
    # The offline plugin turns off directory URLs, so pages are addressed as .../index.html.
    return f"{site_url.rstrip('/')}/{section.dir}/index.html"


def _process_register_files(
    schema: SiteSchema, data: SiteData, *, opendata: Mapping[str, Any], site_url: str, today: dt.date
) -> list[GeneratedFile]:
    """The public part of the process register (seed 003) as a page and open data, from its approved version."""
    from mailservice.processes.publication import PublicRegister, markdown_page, open_data_files

    section = schema.by_key(PROCESSES_KEY)
    if section is None:
        return []
    register = data.process_register or PublicRegister(None, None, [])
    base = f"{site_url.rstrip('/')}/{section.dir}/{OPENDATA_DIR}/" if site_url else ""
    files = [GeneratedFile(f"{section.dir}/{PROCESSES_PAGE}", markdown_page(register))]
    # The publisher's details are shared; the statistics set's own name and title are not.
    passport = {k: v for k, v in opendata.items() if k not in ("name", "title")}
    for name, content in open_data_files(register, passport, today=today, base_url=base).items():
        files.append(GeneratedFile(f"{section.dir}/{OPENDATA_DIR}/{name}", content))
    return files


def generated_paths(schema: SiteSchema) -> set[str]:
    """The docs-relative paths that always exist in a build (staff pages may link to them)."""
    paths: set[str] = set()
    stats = schema.by_key(STATISTICS_KEY)
    if stats is not None:
        paths |= {
            f"{stats.dir}/index.md",
            f"{stats.dir}/{MAILINGS_PAGE}",
            f"{stats.dir}/{OPENDATA_PAGE}",
            f"{stats.dir}/{OPENDATA_DIR}/meta.csv",
        }
    feedback = schema.by_key(FEEDBACK_KEY)
    if feedback is not None:
        paths |= {f"{feedback.dir}/{QR_NAME}.png", f"{feedback.dir}/{QR_NAME}.svg"}
    processes = schema.by_key(PROCESSES_KEY)
    if processes is not None:
        paths |= {f"{processes.dir}/{PROCESSES_PAGE}", f"{processes.dir}/{OPENDATA_DIR}/meta.csv"}
    return paths


def generated_files(
    schema: SiteSchema,
    data: SiteData,
    *,
    opendata: Mapping[str, Any],
    site_url: str,
    today: dt.date,
) -> list[GeneratedFile]:
    """Every generated page and file of the build."""
    out: list[GeneratedFile] = []
    stats = schema.by_key(STATISTICS_KEY)
    if stats is not None:
        base = f"{site_url.rstrip('/')}/{stats.dir}/{OPENDATA_DIR}/" if site_url else ""
        rows = indicator_rows(data.quarters, type_name=_type_name, channel_name=_channel_name, ground_name=_ground_name)
        dataset = build_open_data(rows, opendata, today=today, base_url=base)
        context: dict[str, object] = {
            "section": stats,
            "data": data,
            "today": today,
            "quarters": data.quarters,
            "total": totals(data.quarters),
            "indicators": INDICATORS,
            "type_name": _type_name,
            "channel_name": _channel_name,
            "ground_name": _ground_name,
            "md": md_text,
            "opendata": opendata,
            "dataset": dataset,
            "passport": dict(dataset.passport),
            "structure": STRUCTURE,
            "opendata_dir": OPENDATA_DIR,
            "mailings_page": MAILINGS_PAGE,
            "opendata_page": OPENDATA_PAGE,
        }
        out.append(GeneratedFile(f"{stats.dir}/index.md", render("site/statistics.md", **context)))
        out.append(GeneratedFile(f"{stats.dir}/{MAILINGS_PAGE}", render("site/mailings.md", **context)))
        out.append(GeneratedFile(f"{stats.dir}/{OPENDATA_PAGE}", render("site/opendata.md", **context)))
        for name, content in dataset.files.items():
            out.append(GeneratedFile(f"{stats.dir}/{OPENDATA_DIR}/{name}", content))
    out += _process_register_files(schema, data, opendata=opendata, site_url=site_url, today=today)
    feedback = schema.by_key(FEEDBACK_KEY)
    url = feedback_url(schema, site_url)
    if feedback is not None and url is not None:
        out.append(GeneratedFile(f"{feedback.dir}/{QR_NAME}.png", qr_png(url)))
        out.append(GeneratedFile(f"{feedback.dir}/{QR_NAME}.svg", qr_svg(url)))
    return out


__all__ = [
    "FEEDBACK_KEY",
    "QR_NAME",
    "STATISTICS_KEY",
    "GeneratedFile",
    "feedback_url",
    "generated_files",
    "generated_paths",
    "md_text",
]
