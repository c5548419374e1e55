"""The request statistics as an open data set: a flat CSV, its structure file and its passport (meta.csv).

RULES.md: flat tables as CSV with a passport, an open licence and the update date. File names and passport
properties follow the Russian methodological recommendations on open data (version 3.0): ``meta.csv``,
``data-<date>-structure-<date>.csv``, ``structure-<date>.csv``; UTF-8, comma-separated, a header row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailservice.publishing.stats import QuarterStats

STANDARD_VERSION = "http://opendata.gosmonitor.ru/standard/3.0"

# (code, name) of each count of QuarterStats, in the order the site shows them.
INDICATORS: tuple[tuple[str, str], ...] = (
    ("received", "Поступило запросов и обращений"),
    ("registered", "Зарегистрировано"),
    ("answered_on_time", "Дан ответ в установленный срок"),
    ("answered_late", "Дан ответ с нарушением срока"),
    ("extended", "Срок рассмотрения продлён"),
    ("forwarded", "Перенаправлено по компетенции"),
    ("refused", "Отказано в предоставлении информации (с указанием основания)"),
    ("in_progress", "На рассмотрении"),
)

STRUCTURE: tuple[tuple[str, str, str, str], ...] = (
    ("year", "Year", "Год поступления", "integer"),
    ("quarter", "Quarter of the year (1-4)", "Квартал поступления (1-4)", "integer"),
    ("indicator_code", "Indicator code", "Код показателя", "string"),
    ("indicator", "Indicator", "Показатель", "string"),
    ("value", "Number of requests", "Количество запросов и обращений", "integer"),
)


@dataclass(frozen=True)
class OpenDataFiles:
    """The three files of the set, by name, and the passport as (property, value) rows for the page."""

    files: Mapping[str, bytes]
    data_name: str
    structure_name: str
    passport: tuple[tuple[str, str], ...]
    valid: dt.date


def _csv(rows: Sequence[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def indicator_rows(
    quarters: Sequence[QuarterStats],
    *,
    type_name: Callable[[str], str],
    channel_name: Callable[[str], str],
    ground_name: Callable[[str], str],
) -> list[tuple[int, int, str, str, int]]:
    """One row per quarter and indicator (totals, then by type, channel and refusal ground), oldest first."""
    rows: list[tuple[int, int, str, str, int]] = []
    for q in sorted(quarters, key=lambda s: s.quarter):
        year, number = q.quarter.year, q.quarter.number
        for code, name in INDICATORS:
            rows.append((year, number, code, name, int(getattr(q, code))))
        for label, count in sorted(q.by_type.items()):
            rows.append((year, number, f"type:{label}", f"Поступило: тип «{type_name(label)}»", count))
        for label, count in sorted(q.by_channel.items()):
            rows.append((year, number, f"channel:{label}", f"Поступило: канал «{channel_name(label)}»", count))
        for label, count in sorted(q.by_ground.items()):
            rows.append((year, number, f"refusal:{label}", f"Отказано: {ground_name(label)}", count))
    return rows


def build_open_data(
    rows: Sequence[tuple[int, int, str, str, int]],
    settings: Mapping[str, Any],
    *,
    today: dt.date,
    base_url: str,
) -> OpenDataFiles:
    """The data, structure and passport files of the set; ``settings`` is mkdocs.yml ``extra.opendata``."""
    structure_version = str(settings.get("structure_version") or "20260101")
    stamp = f"{today:%Y%m%d}"
    data_name = f"data-{stamp}-structure-{structure_version}.csv"
    structure_name = f"structure-{structure_version}.csv"
    identifier = f"{settings.get('inn', '')}-{settings.get('name', 'statistika-zaprosov')}"
    # The set is relevant until the end of the next quarter, when the next build adds a quarter.
    next_quarter_end = _quarter_end(_quarter_end(today) + dt.timedelta(days=1))
    passport: tuple[tuple[str, str], ...] = (
        ("standardversion", STANDARD_VERSION),
        ("identifier", identifier),
        ("title", str(settings.get("title", ""))),
        (
            "description",
            "Количество запросов о предоставлении информации и обращений граждан, поступивших в департамент, "
            "по кварталам: зарегистрировано, дан ответ в срок и с нарушением срока, срок продлён, перенаправлено, "
            "отказано (по основаниям), по типам и каналам поступления. Персональные данные не содержатся.",
        ),
        ("creator", str(settings.get("creator", ""))),
        ("created", str(settings.get("created") or structure_version)),
        ("modified", stamp),
        ("subject", "запросы информации,обращения граждан,8-ФЗ,59-ФЗ,статистика"),
        ("format", "csv"),
        (f"data-{stamp}-structure-{structure_version}", base_url + data_name),
        (f"structure-{structure_version}", base_url + structure_name),
        ("valid", f"{next_quarter_end:%Y%m%d}"),
        ("provenance", "Рассчитывается автоматически по реестру запросов департамента при каждой сборке сайта."),
        ("publishername", str(settings.get("creator", ""))),
        ("publisherphone", str(settings.get("publisher_phone", ""))),
        ("publishermbox", str(settings.get("publisher_mbox", ""))),
        ("license", f"{settings.get('license', '')} {settings.get('license_url', '')}".strip()),
    )
    files = {
        data_name: _csv([[name for name, *_ in STRUCTURE], *rows]),
        structure_name: _csv([["field name", "english description", "russian description", "format"], *STRUCTURE]),
        "meta.csv": _csv([["property", "value"], *passport]),
    }
    return OpenDataFiles(
        files=files, data_name=data_name, structure_name=structure_name, passport=passport, valid=next_quarter_end
    )


def _quarter_end(day: dt.date) -> dt.date:
    month = ((day.month - 1) // 3 + 1) * 3
    first_of_next = dt.date(day.year + (month == 12), month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


__all__ = ["INDICATORS", "STRUCTURE", "OpenDataFiles", "build_open_data", "indicator_rows"]
