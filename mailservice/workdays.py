"""The Russian production calendar: which days are working days, and counting in working days.

The `holidays` package (pinned) knows the holidays of Labour Code art. 112, the automatic move of a holiday
that falls on a weekend, and the Government's yearly transfers (working Saturdays, substituted days off).
A YAML override file restates each year's transfer decree and wins over the package, so a wrong or late
package release can be corrected without a code change. A year without a confirmed entry gives a warning.

The package's days for 2000-2040 are also kept as a table generated from it (``data/calendar_ru.json``, written by
`write_package_table`; a test checks it against the package): importing `holidays` and building a year from it
takes longer than a light CLI command may. The table is read only if the installed package is the version it was
generated from; otherwise, and for other years, the package itself answers.

Pure logic apart from `load_override_file`, `default_calendar` and the package table, which read files.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from mailservice.config import Settings
from mailservice.resources import package_path

SHIPPED_OVERRIDE_FILE = package_path("data", "calendar_overrides.yaml")
PACKAGE_TABLE_FILE = package_path("data", "calendar_ru.json")
PACKAGE_TABLE_YEARS = range(2000, 2041)

_YEAR_KEYS = frozenset({"decree", "confirmed", "days_off", "working_days"})


class CalendarError(ValueError):
    """An override file (or mapping) cannot be used: the message names the source and the problem."""


@dataclass(frozen=True)
class YearOverride:
    """One year of the override file: the decree and the days it moves."""

    year: int
    decree: str
    confirmed: bool
    days_off: frozenset[dt.date]
    working_days: frozenset[dt.date]
    source: str


# Parsing ----------------------------------------------------------------------------------------------------


def _parse_day(value: object, year: int, key: str, source: str) -> dt.date:
    if isinstance(value, dt.datetime):  # YAML may give a timestamp; only the date part is meaningful
        raise CalendarError(f"{source}: год {year}, {key}: «{value}» — нужна дата без времени (ГГГГ-ММ-ДД)")
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise CalendarError(
                f"{source}: год {year}, {key}: «{value}» не является датой в формате ГГГГ-ММ-ДД"
            ) from None
    else:
        raise CalendarError(f"{source}: год {year}, {key}: «{value!r}» не является датой в формате ГГГГ-ММ-ДД")
    if day.year != year:
        raise CalendarError(f"{source}: дата {day.isoformat()} указана в разделе {year} года ({key})")
    return day


def _parse_days(value: object, year: int, key: str, source: str) -> frozenset[dt.date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise CalendarError(f"{source}: год {year}, {key}: ожидается список дат, получено «{value!r}»")
    return frozenset(_parse_day(item, year, key, source) for item in value)


def _parse_year(key: object, entry: object, source: str) -> YearOverride:
    if isinstance(key, bool) or not isinstance(key, int | str) or not str(key).isdigit():
        raise CalendarError(f"{source}: «{key!r}» не является годом (ожидается, например, 2026)")
    year = int(key)
    if not 1900 <= year <= 9998:
        raise CalendarError(f"{source}: год {year} вне допустимого диапазона")
    if not isinstance(entry, Mapping):
        raise CalendarError(f"{source}: год {year}: ожидается словарь с ключами {', '.join(sorted(_YEAR_KEYS))}")
    unknown = set(entry) - _YEAR_KEYS
    if unknown:
        raise CalendarError(
            f"{source}: год {year}: неизвестные ключи {', '.join(sorted(map(str, unknown)))}; "
            f"допустимы {', '.join(sorted(_YEAR_KEYS))}"
        )
    decree = entry.get("decree") or ""
    if not isinstance(decree, str):
        raise CalendarError(f"{source}: год {year}, decree: ожидается строка с реквизитами постановления")
    confirmed = entry.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise CalendarError(f"{source}: год {year}, confirmed: ожидается true или false, получено «{confirmed!r}»")
    if confirmed and not decree.strip():
        raise CalendarError(f"{source}: год {year}: confirmed: true требует указать decree (постановление)")
    days_off = _parse_days(entry.get("days_off"), year, "days_off", source)
    working_days = _parse_days(entry.get("working_days"), year, "working_days", source)
    both = days_off & working_days
    if both:
        listed = ", ".join(sorted(d.isoformat() for d in both))
        raise CalendarError(f"{source}: год {year}: даты {listed} указаны и в days_off, и в working_days")
    return YearOverride(year, decree.strip(), confirmed, days_off, working_days, source)


def parse_overrides(document: object, source: str = "<overrides>") -> dict[int, YearOverride]:
    """Validate an override document (``{"years": {2026: {...}}}``) and return its years."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise CalendarError(f"{source}: ожидается словарь с ключом «years»")
    unknown = set(document) - {"years"}
    if unknown:
        raise CalendarError(f"{source}: неизвестные ключи верхнего уровня: {', '.join(sorted(map(str, unknown)))}")
    years = document.get("years") or {}
    if not isinstance(years, Mapping):
        raise CalendarError(f"{source}: «years» должен быть словарём «год: описание»")
    parsed: dict[int, YearOverride] = {}
    for key, entry in years.items():
        item = _parse_year(key, entry, source)
        if item.year in parsed:
            raise CalendarError(f"{source}: год {item.year} указан дважды")
        parsed[item.year] = item
    return parsed


def load_override_file(path: Path) -> dict[int, YearOverride]:
    """Read and validate one override file; every problem becomes a `CalendarError` naming the file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarError(f"{source}: файл календаря не читается: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CalendarError(f"{source}: файл календаря не в кодировке UTF-8") from exc
    try:
        # The safe loader in C (libyaml) when present: ten times faster, and this runs at every `deadline`.
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise CalendarError(f"{source}: ошибка синтаксиса YAML: {exc}") from exc
    except ValueError as exc:  # PyYAML builds dates itself: 2026-13-01 fails with ValueError, not YAMLError
        raise CalendarError(f"{source}: неверная дата: {exc}") from exc
    return parse_overrides(document, source)


# The calendar -----------------------------------------------------------------------------------------------


class Calendar:
    """Working days in Russia: the `holidays` package corrected by the override years (which win)."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, *, source: str = "<overrides>") -> None:
        self._years: dict[int, YearOverride] = parse_overrides(overrides, source)
        self._non_working: dict[int, frozenset[dt.date]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entries(cls, entries: Mapping[int, YearOverride]) -> Calendar:
        """A calendar over already parsed override years."""
        calendar = cls()
        calendar._years = dict(entries)
        return calendar

    @classmethod
    def from_files(cls, paths: Iterable[Path | str | None]) -> Calendar:
        """A calendar over override files read in order; a later file's years replace an earlier file's."""
        merged: dict[int, YearOverride] = {}
        for path in paths:
            if path is not None:
                merged.update(load_override_file(Path(path)))
        return cls.from_entries(merged)

    # Inspection -------------------------------------------------------------------------------------------

    def entry(self, year: int) -> YearOverride | None:
        """The override entry of ``year``, if any (for showing the decree to staff)."""
        return self._years.get(year)

    def warnings(self, years: Iterable[int]) -> list[str]:
        """Russian warnings for each of ``years`` that has no confirmed override entry."""
        messages = []
        for year in sorted(set(years)):
            item = self._years.get(year)
            if item is not None and item.confirmed:
                continue
            state = "запись есть, но не подтверждена" if item is not None else "записи нет"
            messages.append(
                f"Производственный календарь на {year} год не подтверждён ({state}): рабочие дни взяты из "
                f"пакета holidays и Трудового кодекса. Сверьте их с постановлением Правительства о переносе "
                f"выходных дней на {year} год и внесите его в файл переопределений календаря "
                f"с confirmed: true."
            )
        return messages

    # Working days -----------------------------------------------------------------------------------------

    def _non_working_days(self, year: int) -> frozenset[dt.date]:
        cached = self._non_working.get(year)
        if cached is not None:
            return cached
        with self._lock:  # the holidays object fills itself lazily; build each year once
            cached = self._non_working.get(year)
            if cached is None:
                off = package_non_working_days(year)
                item = self._years.get(year)
                if item is not None:  # the override wins over the package either way
                    off = (off - item.working_days) | item.days_off
                cached = off
                self._non_working[year] = cached
        return cached

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day on the five-day week."""
        return day not in self._non_working_days(day.year)

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (before it for negative ``n``); ``day`` is not counted."""
        step = dt.timedelta(days=1 if n > 0 else -1)
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_day_on_or_before(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the last working day before it."""
        while not self.is_working_day(day):
            day -= dt.timedelta(days=1)
        return day

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days counted from ``a`` to ``b`` the way `add_working_days` counts them.

        For ``b >= a``: working days in (a, b]; for ``b < a``: minus the working days in [b, a).
        So for a working day ``b``, ``add_working_days(a, working_days_between(a, b)) == b``.
        """
        if b >= a:
            start, end, sign = a + dt.timedelta(days=1), b, 1
        else:
            start, end, sign = b, a - dt.timedelta(days=1), -1
        count = 0
        day = start
        while day <= end:
            if self.is_working_day(day):
                count += 1
            day += dt.timedelta(days=1)
        return sign * count


# The package's days -----------------------------------------------------------------------------------------


def _days_of(year: int) -> Iterable[dt.date]:
    day = dt.date(year, 1, 1)
    while day.year == year:
        yield day
        day += dt.timedelta(days=1)


def _weekends(year: int) -> frozenset[dt.date]:
    return frozenset(day for day in _days_of(year) if day.weekday() >= 5)


def _from_package(year: int) -> frozenset[dt.date]:
    import holidays  # a third of a second: only for a year the table does not hold

    package = holidays.country_holidays("RU", years=year)
    return frozenset(day for day in _days_of(year) if not package.is_working_day(day))


def package_table(years: Iterable[int] = PACKAGE_TABLE_YEARS) -> dict[str, Any]:
    """The package's non-working days of ``years`` as the table stores them: per year the weekdays that are off
    (holidays, transferred days off) and the weekend days that are working days (transferred working Saturdays)."""
    table: dict[str, Any] = {}
    for year in years:
        off, weekends = _from_package(year), _weekends(year)
        table[str(year)] = {
            "days_off": sorted(day.isoformat() for day in off - weekends),
            "working_days": sorted(day.isoformat() for day in weekends - off),
        }
    return {"holidays": _installed_package_version(), "years": table}


def write_package_table(path: Path = PACKAGE_TABLE_FILE) -> None:
    """Regenerate the table from the installed package (after a change of the pinned `holidays` version)."""
    table = package_table()
    years = ",\n".join(f" {json.dumps(key)}: {json.dumps(entry)}" for key, entry in table["years"].items())
    path.write_text(f'{{"holidays": {json.dumps(table["holidays"])}, "years": {{\n{years}\n}}}}\n', encoding="utf-8")


def _installed_package_version() -> str | None:
    """The installed `holidays` version from its METADATA's Version line (metadata.version parses the whole file as
    an e-mail message: ten milliseconds of a light command)."""
    text = metadata.distribution("holidays").read_text("METADATA") or ""
    return next(
        (line.removeprefix("Version:").strip() for line in text.splitlines() if line.startswith("Version:")), None
    )


@functools.cache
def _table() -> dict[str, Any]:
    """The shipped table's years; empty when another version of the package is installed."""
    document = json.loads(PACKAGE_TABLE_FILE.read_text(encoding="utf-8"))
    return document["years"] if document["holidays"] == _installed_package_version() else {}


def package_non_working_days(year: int) -> frozenset[dt.date]:
    """The days of ``year`` that the `holidays` package (with the weekend) makes non-working."""
    entry = _table().get(str(year))
    if entry is None:
        return _from_package(year)
    days_off = {dt.date.fromisoformat(day) for day in entry["days_off"]}
    working = {dt.date.fromisoformat(day) for day in entry["working_days"]}
    return frozenset((_weekends(year) - working) | days_off)


def today(tz: ZoneInfo, now: dt.datetime) -> dt.date:
    """The department's local date at the aware instant ``now`` (the time zone decides what "today" is)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC)")
    return now.astimezone(tz).date()


# The process-wide calendar ----------------------------------------------------------------------------------

_default_cache: dict[tuple[tuple[str, int], ...], Calendar] = {}
_default_lock = threading.Lock()


def _file_key(path: Path) -> tuple[str, int]:
    try:
        return (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise CalendarError(f"{path}: файл календаря не найден или недоступен: {exc.strerror or exc}") from exc


def default_calendar(settings: Settings) -> Calendar:
    """The calendar from the shipped override file plus ``calendar_override_file`` from the settings.

    Cached per file and modification time, so an edited override file takes effect without a restart.
    """
    paths = [SHIPPED_OVERRIDE_FILE]
    if settings.calendar_override_file is not None:
        paths.append(Path(settings.calendar_override_file))
    key = tuple(_file_key(path) for path in paths)
    with _default_lock:
        calendar = _default_cache.get(key)
        if calendar is None:
            calendar = Calendar.from_files(paths)
            _default_cache.clear()  # only the current version of the files is ever needed
            _default_cache[key] = calendar
    return calendar
