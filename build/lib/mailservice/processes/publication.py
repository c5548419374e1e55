"""The register's public part for the disclosure site: processes with a digital access point and their status.

The site (issue 5) owns pages and publishing; it calls :func:`public_register` for the rows, :func:`markdown_page`
for a generated page and :func:`open_data_files` for the open data set (a flat CSV with its structure file and
passport ``meta.csv``, as RULES.md asks: CSV, passport, open licence, update date). Only the newest version the
officer approved is published; owners' names and internal columns stay out.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.processes.register import STATUS_LABELS, RowData
from mailservice.processes.service import latest_approved, version_rows

STRUCTURE_VERSION = "20261201"
STANDARD_VERSION = "http://opendata.gosmonitor.ru/standard/3.0"
STRUCTURE: tuple[tuple[str, str, str, str], ...] = (
    ("process_id", "Process identifier", "Идентификатор процесса", "string"),
    ("service_name", "Service, function or online service", "Название услуги, функции, сервиса", "string"),
    ("process_name", "Process", "Название процесса", "string"),
    ("process_group", "Process group", "Группа процессов", "string"),
    ("status", "Re-engineering status", "Статус процесса", "string"),
    ("digital_access", "Digital access point", "Точка размещения в цифровом виде", "string"),
)


@dataclass(frozen=True)
class PublicProcess:
    """One published process."""

    process_id: str
    service_name: str
    process_name: str
    process_group: str
    status: str  # the Russian label
    digital_access: str

    def values(self) -> list[str]:
        """The cells in :data:`STRUCTURE` order."""
        return [getattr(self, code) for code, *_ in STRUCTURE]


@dataclass(frozen=True)
class PublicRegister:
    """What the site publishes: the version, the local date it was approved, and its public rows."""

    version: int | None
    approved_on: dt.date | None
    rows: list[PublicProcess]


def public_rows(rows: Sequence[RowData]) -> list[PublicProcess]:
    """The processes that have a digital access point, in register order (pure)."""
    return [
        PublicProcess(
            process_id=row.process_id,
            service_name=row.service_name,
            process_name=row.process_name,
            process_group=row.process_group,
            status=STATUS_LABELS[row.status],
            digital_access=row.digital_access,
        )
        for row in rows
        if row.digital_access.strip()
    ]


def public_register(session: Session, settings: Settings) -> PublicRegister:
    """The public part of the newest approved version (empty when no version is approved yet)."""
    version = latest_approved(session)
    if version is None or version.approved_at is None:
        return PublicRegister(None, None, [])
    approved_on = version.approved_at.astimezone(settings.tz).date()
    return PublicRegister(version.number, approved_on, public_rows(version_rows(version)))


def _csv(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180
    return buffer.getvalue().encode("utf-8")


def open_data_files(
    register: PublicRegister, passport: Mapping[str, str], *, today: dt.date, base_url: str
) -> dict[str, bytes]:
    """The data file, its structure and ``meta.csv`` (names per the open data recommendations v3.0).

    ``passport`` gives ``inn``, ``title``, ``creator``, ``publisher_phone``, ``publisher_mbox``, ``license`` and
    ``license_url`` (the site's open data settings); ``base_url`` ends with a slash.
    """
    stamp = f"{today:%Y%m%d}"
    data_name = f"data-{stamp}-structure-{STRUCTURE_VERSION}.csv"
    structure_name = f"structure-{STRUCTURE_VERSION}.csv"
    approved = f"{register.approved_on:%Y%m%d}" if register.approved_on else stamp
    meta = (
        ("standardversion", STANDARD_VERSION),
        ("identifier", f"{passport.get('inn', '')}-reestr-processov"),
        ("title", passport.get("title") or "Реестр процессов: процессы, доступные в цифровом виде"),
        (
            "description",
            "Процессы департамента, доступные в цифровом виде (ЕПГУ, официальный сайт), и статус их реинжиниринга "
            f"по реестру межведомственных и внутриведомственных процессов (версия № {register.version or '—'}).",
        ),
        ("creator", passport.get("creator", "")),
        ("created", STRUCTURE_VERSION),
        ("modified", approved),
        ("subject", "реестр процессов,клиентоцентричность,реинжиниринг,государственные услуги"),
        ("format", "csv"),
        (f"data-{stamp}-structure-{STRUCTURE_VERSION}", base_url + data_name),
        (f"structure-{STRUCTURE_VERSION}", base_url + structure_name),
        ("valid", ""),  # no fixed term: the set changes when a new version is approved
        ("provenance", "Формируется автоматически из утверждённой версии реестра процессов."),
        ("publishername", passport.get("creator", "")),
        ("publisherphone", passport.get("publisher_phone", "")),
        ("publishermbox", passport.get("publisher_mbox", "")),
        ("license", f"{passport.get('license', '')} {passport.get('license_url', '')}".strip()),
    )
    return {
        data_name: _csv([[code for code, *_ in STRUCTURE], *(row.values() for row in register.rows)]),
        structure_name: _csv([["field name", "english description", "russian description", "format"], *STRUCTURE]),
        "meta.csv": _csv([["property", "value"], *meta]),
    }


def _md(value: str) -> str:
    """Table cell text made inert in Markdown (the site's own escaping lives in publishing.generated.md_text)."""
    from mailservice.publishing.generated import md_text

    return md_text(value)


def markdown_page(register: PublicRegister) -> str:
    """A Markdown page of the public part (a table; the site adds it as a generated page)."""
    lines = ["# Процессы, доступные в цифровом виде", ""]
    if register.version is None or register.approved_on is None:
        return "\n".join([*lines, "Реестр процессов ещё не утверждён.", ""])
    lines += [
        f"Реестр процессов, версия № {register.version}, утверждена {register.approved_on:%d.%m.%Y}.",
        "",
        "| Идентификатор | Услуга, функция, сервис | Процесс | Статус реинжиниринга | Где доступен |",
        "|---|---|---|---|---|",
    ]
    for row in register.rows:
        cells = (row.process_id, row.service_name, row.process_name, row.status, row.digital_access)
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join([*lines, ""])
