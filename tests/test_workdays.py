"""The production calendar: package data, the override file winning, warnings and broken files."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mailservice import workdays
from mailservice.config import Settings
from mailservice.workdays import (
    PACKAGE_TABLE_FILE,
    PACKAGE_TABLE_YEARS,
    SHIPPED_OVERRIDE_FILE,
    Calendar,
    CalendarError,
    default_calendar,
    load_override_file,
    package_non_working_days,
    package_table,
    parse_overrides,
    today,
)

D = dt.date
SHIPPED = Calendar.from_files([SHIPPED_OVERRIDE_FILE])
PACKAGE_ONLY = Calendar()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2025, 11, 1), True),  # working Saturday (decree 1335: its day off moved to 03.11)
        (D(2025, 11, 3), False),
        (D(2025, 11, 4), False),  # Unity Day
        (D(2025, 2, 24), True),  # 23.02 fell on a Sunday, but the decree moved that day off to 08.05
        (D(2025, 5, 8), False),
        (D(2025, 6, 13), False),
        (D(2025, 12, 31), False),
        (D(2026, 1, 8), False),
        (D(2026, 1, 9), False),  # transferred from Sat 03.01 (decree 1466)
        (D(2026, 1, 12), True),
        (D(2026, 3, 9), False),  # 08.03 on a Sunday moves to Monday (Labour Code art. 112)
        (D(2026, 5, 8), True),
        (D(2026, 5, 11), False),
        (D(2026, 12, 30), True),
        (D(2026, 12, 31), False),  # transferred from Sun 04.01
        (D(2026, 11, 7), False),  # an ordinary Saturday
        (D(2026, 11, 11), True),  # an ordinary Wednesday
        (D(2027, 2, 20), True),  # working Saturday (decree 1187)
        (D(2027, 2, 22), False),
        (D(2027, 11, 5), False),
        (D(2027, 12, 31), False),
    ],
)
def test_is_working_day(day: dt.date, working: bool) -> None:
    assert SHIPPED.is_working_day(day) is working


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_shipped_overrides_agree_with_package(year: int) -> None:
    # The shipped file restates the decrees; a package upgrade that disagrees with them must be noticed.
    day = D(year, 1, 1)
    disagreements = []
    while day.year == year:
        if SHIPPED.is_working_day(day) != PACKAGE_ONLY.is_working_day(day):
            disagreements.append(day)
        day += dt.timedelta(days=1)
    assert disagreements == []


def test_shipped_file_has_confirmed_years_with_decrees() -> None:
    entries = load_override_file(SHIPPED_OVERRIDE_FILE)
    assert sorted(entries) == [2025, 2026, 2027]
    assert "1335" in entries[2025].decree and "04.10.2024" in entries[2025].decree
    assert "1466" in entries[2026].decree and "24.09.2025" in entries[2026].decree
    assert all(entry.confirmed for entry in entries.values())
    assert D(2025, 11, 1) in entries[2025].working_days
    assert {D(2026, 1, 9), D(2026, 12, 31)} == entries[2026].days_off


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2025, 10, 31), 1, D(2025, 11, 1)),  # the working Saturday counts
        (D(2025, 10, 31), 2, D(2025, 11, 5)),
        (D(2025, 12, 30), 1, D(2026, 1, 12)),  # over the New Year block
        (D(2026, 1, 12), -1, D(2025, 12, 30)),
        (D(2026, 12, 30), 1, D(2027, 1, 11)),
        (D(2026, 4, 30), 1, D(2026, 5, 4)),  # over the May holidays
        (D(2026, 12, 16), -5, D(2026, 12, 9)),  # RULES.md example
        (D(2026, 12, 16), -3, D(2026, 12, 11)),
        (D(2026, 12, 16), 5, D(2026, 12, 23)),
        (D(2026, 1, 3), 0, D(2026, 1, 3)),  # zero returns the day even when it is a holiday
        (D(2026, 1, 3), 1, D(2026, 1, 12)),  # counting from a day off
    ],
)
def test_add_working_days(start: dt.date, n: int, expected: dt.date) -> None:
    assert SHIPPED.add_working_days(start, n) == expected


@pytest.mark.parametrize(
    ("day", "before", "after"),
    [
        (D(2026, 12, 31), D(2026, 12, 30), D(2027, 1, 11)),
        (D(2026, 1, 9), D(2025, 12, 30), D(2026, 1, 12)),
        (D(2025, 11, 2), D(2025, 11, 1), D(2025, 11, 5)),
        (D(2026, 3, 9), D(2026, 3, 6), D(2026, 3, 10)),
        (D(2026, 3, 10), D(2026, 3, 10), D(2026, 3, 10)),
    ],
)
def test_working_day_on_or_before_after(day: dt.date, before: dt.date, after: dt.date) -> None:
    assert SHIPPED.working_day_on_or_before(day) == before
    assert SHIPPED.working_day_on_or_after(day) == after


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (D(2026, 12, 30), D(2027, 1, 11), 1),
        (D(2027, 1, 11), D(2026, 12, 30), -1),
        (D(2026, 3, 2), D(2026, 3, 2), 0),
        (D(2026, 3, 2), D(2026, 3, 9), 4),  # Tue-Fri; Sat, Sun and the observed Monday are off
        (D(2025, 10, 27), D(2025, 11, 7), 8),  # includes the working Saturday, skips 03.11 and 04.11
    ],
)
def test_working_days_between(a: dt.date, b: dt.date, expected: int) -> None:
    assert SHIPPED.working_days_between(a, b) == expected


def test_override_wins_over_package() -> None:
    wednesday, transferred = D(2026, 6, 10), D(2026, 1, 9)
    assert PACKAGE_ONLY.is_working_day(wednesday)
    assert not PACKAGE_ONLY.is_working_day(transferred)
    calendar = Calendar(
        {
            "years": {
                2026: {
                    "decree": "test decree",
                    "confirmed": True,
                    "days_off": [wednesday],
                    "working_days": ["2026-01-09"],
                }
            }
        }
    )
    assert not calendar.is_working_day(wednesday)
    assert calendar.is_working_day(transferred)
    assert calendar.add_working_days(D(2026, 6, 9), 1) == D(2026, 6, 11)


def _write(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def test_extra_file_replaces_shipped_year(tmp_path: Path) -> None:
    extra = _write(
        tmp_path / "local.yaml",
        {"years": {2026: {"decree": "local decree", "confirmed": True, "days_off": [D(2026, 6, 10)]}}},
    )
    calendar = Calendar.from_files([SHIPPED_OVERRIDE_FILE, extra, None])
    assert not calendar.is_working_day(D(2026, 6, 10))
    entry = calendar.entry(2026)
    assert entry is not None and entry.decree == "local decree" and entry.source == str(extra)
    # Other years still come from the shipped file.
    other = calendar.entry(2025)
    assert other is not None and "1335" in other.decree


def test_warnings_for_unconfirmed_years() -> None:
    warnings = SHIPPED.warnings([2026, 2028, 2026])
    assert len(warnings) == 1
    assert "2028" in warnings[0] and "не подтверждён" in warnings[0]
    assert SHIPPED.warnings([2025, 2026, 2027]) == []
    assert len(PACKAGE_ONLY.warnings([2026])) == 1
    draft = Calendar({"years": {2028: {"decree": "проект", "confirmed": False}}})
    (message,) = draft.warnings([2028])
    assert "не подтверждена" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("years: [unclosed", "YAML"),
        ("years:\n  2026:\n    days_off: [2026-13-01]\n", "неверная дата"),
        ("years:\n  2026:\n    days_off: ['31.12.2026']\n", "31.12.2026"),
        ("years:\n  2026:\n    days_off: [2027-01-01]\n", "2027-01-01"),
        ("years:\n  2026:\n    days_off: [2026-06-10]\n    working_days: [2026-06-10]\n", "2026-06-10"),
        ("years:\n  2026:\n    day_off: [2026-06-10]\n", "day_off"),
        ("years:\n  2026:\n    confirmed: true\n", "decree"),
        ("years:\n  2026:\n    decree: x\n    confirmed: 'yes'\n", "confirmed"),
        ("years:\n  twenty:\n    decree: x\n", "twenty"),
        ("years:\n  2026:\n    days_off: 2026-06-10\n", "список"),
        ("calendar: {}\n", "calendar"),
        ("- 2026\n", "years"),
        ("years:\n  2026:\n    days_off: [2026-06-10 10:00:00]\n", "без времени"),
    ],
)
def test_broken_override_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError) as info:
        Calendar.from_files([SHIPPED_OVERRIDE_FILE, path])
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


KEYS = "confirmed, days_off, decree, working_days"


@pytest.mark.parametrize(
    ("years", "message"),
    [
        ({2026: {"days_off": [5]}}, "f.yaml: год 2026, days_off: «5» не является датой в формате ГГГГ-ММ-ДД"),
        ({2026: {"working_days": [5]}}, "f.yaml: год 2026, working_days: «5» не является датой в формате ГГГГ-ММ-ДД"),
        ({2026: "x"}, f"f.yaml: год 2026: ожидается словарь с ключами {KEYS}"),
        ({2026: {"zz": 1, "bogus": 2}}, f"f.yaml: год 2026: неизвестные ключи bogus, zz; допустимы {KEYS}"),
        ({2026: {"decree": 5}}, "f.yaml: год 2026, decree: ожидается строка с реквизитами постановления"),
        (
            {2026: {"days_off": ["2026-06-11", "2026-06-10"], "working_days": ["2026-06-10", "2026-06-11"]}},
            "f.yaml: год 2026: даты 2026-06-10, 2026-06-11 указаны и в days_off, и в working_days",
        ),
        ({1899: {}}, "f.yaml: год 1899 вне допустимого диапазона"),
        ({9999: {}}, "f.yaml: год 9999 вне допустимого диапазона"),
    ],
)
def test_a_broken_override_says_exactly_what_and_where(years: dict[object, object], message: str) -> None:
    """The person editing the calendar file reads these messages: each names the file, the year and the key."""
    with pytest.raises(CalendarError) as info:
        parse_overrides({"years": years}, "f.yaml")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"years": {}, "b": 1, "a": 2}, "f.yaml: неизвестные ключи верхнего уровня: a, b"),
        ({"years": [2026]}, "f.yaml: «years» должен быть словарём «год: описание»"),
        ({"years": {2026: {}, "2026": {}}}, "f.yaml: год 2026 указан дважды"),
    ],
)
def test_a_broken_override_document_says_what(document: object, message: str) -> None:
    with pytest.raises(CalendarError) as info:
        parse_overrides(document, "f.yaml")
    assert str(info.value) == message


def test_override_files_that_cannot_be_read_are_named(tmp_path: Path) -> None:
    cp1251 = tmp_path / "cp1251.yaml"
    cp1251.write_bytes("years:\n  2026:\n    decree: Постановление\n".encode("cp1251"))
    with pytest.raises(CalendarError) as info:
        load_override_file(cp1251)
    assert str(info.value) == f"{cp1251}: файл календаря не в кодировке UTF-8"
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CalendarError) as info:
        load_override_file(missing)
    assert str(info.value) == f"{missing}: файл календаря не читается: No such file or directory"


def test_warning_says_whether_a_year_has_an_unconfirmed_entry_or_none() -> None:
    calendar = Calendar({"years": {2030: {"decree": "проект"}}})
    unconfirmed, absent = calendar.warnings([2030, 2031])
    assert "на 2030 год не подтверждён (запись есть, но не подтверждена)" in unconfirmed
    assert "на 2031 год не подтверждён (записи нет)" in absent
    with pytest.raises(CalendarError) as info:
        Calendar({"years": "x"})
    assert str(info.value) == "<overrides>: «years» должен быть словарём «год: описание»"


def test_today_needs_an_aware_instant() -> None:
    class NoOffset(dt.tzinfo):
        def utcoffset(self, _when: dt.datetime | None) -> dt.timedelta | None:
            return None

    for naive in (dt.datetime(2026, 3, 2, 12), dt.datetime(2026, 3, 2, 12, tzinfo=NoOffset())):
        with pytest.raises(ValueError, match=r"^now must be an aware datetime \(UTC\)$"):
            today(ZoneInfo("Asia/Novosibirsk"), naive)


def test_override_years_from_1900_to_9998_and_the_default_source_name() -> None:
    assert set(parse_overrides({"years": {1900: {}, 9998: {}}})) == {1900, 9998}
    with pytest.raises(CalendarError) as info:
        parse_overrides(["2026"])
    assert str(info.value) == "<overrides>: ожидается словарь с ключом «years»"


def test_missing_override_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(CalendarError, match=r"missing\.yaml"):
        Calendar.from_files([missing])
    with pytest.raises(CalendarError) as info:
        default_calendar(Settings(_env_file=None, calendar_override_file=missing))
    # The path, then the system's own words for what went wrong (not Python's "[Errno 2] ...: 'path'" again).
    assert str(info.value) == f"{missing}: файл календаря не найден или недоступен: {os.strerror(errno.ENOENT)}"


def test_two_override_files_of_the_same_moment_are_two_calendars(tmp_path: Path) -> None:
    """The cache tells the files by their path, not only by their modification time: a department that moves to
    another override file (or two services on one machine) never gets the other file's days off."""
    first = _write(
        tmp_path / "first.yaml", {"years": {2026: {"decree": "a", "confirmed": True, "days_off": [D(2026, 6, 10)]}}}
    )
    second = _write(
        tmp_path / "second.yaml", {"years": {2026: {"decree": "b", "confirmed": True, "days_off": [D(2026, 6, 17)]}}}
    )
    moment = first.stat().st_mtime_ns
    os.utime(second, ns=(moment, moment))
    assert not default_calendar(Settings(_env_file=None, calendar_override_file=first)).is_working_day(D(2026, 6, 10))
    other = default_calendar(Settings(_env_file=None, calendar_override_file=second))
    assert (other.is_working_day(D(2026, 6, 10)), other.is_working_day(D(2026, 6, 17))) == (True, False)


def test_default_calendar_reads_settings_and_follows_edits(tmp_path: Path) -> None:
    extra = _write(
        tmp_path / "local.yaml",
        {"years": {2026: {"decree": "local", "confirmed": True, "days_off": [D(2026, 6, 10)]}}},
    )
    settings = Settings(_env_file=None, calendar_override_file=extra)
    calendar = default_calendar(settings)
    assert not calendar.is_working_day(D(2026, 6, 10))
    assert default_calendar(settings) is calendar  # cached while the files are unchanged

    _write(extra, {"years": {2026: {"decree": "local", "confirmed": True, "days_off": [D(2026, 6, 17)]}}})
    stat = extra.stat()
    os.utime(extra, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = default_calendar(settings)
    assert edited.is_working_day(D(2026, 6, 10))
    assert not edited.is_working_day(D(2026, 6, 17))

    plain = default_calendar(Settings(_env_file=None))
    assert plain.is_working_day(D(2026, 6, 10)) and not plain.is_working_day(D(2026, 1, 9))


def test_today_uses_department_time_zone() -> None:
    novosibirsk = ZoneInfo("Asia/Novosibirsk")  # UTC+7
    assert today(novosibirsk, dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC)) == D(2027, 1, 1)
    assert today(novosibirsk, dt.datetime(2026, 12, 31, 16, 59, tzinfo=dt.UTC)) == D(2026, 12, 31)
    assert today(ZoneInfo("Europe/Kaliningrad"), dt.datetime(2026, 12, 31, 21, 59, tzinfo=dt.UTC)) == D(2026, 12, 31)
    with pytest.raises(ValueError, match="aware"):
        today(novosibirsk, dt.datetime(2026, 12, 31, 17, 0))


days = st.dates(min_value=D(2024, 1, 1), max_value=D(2028, 12, 31))


@given(day=days, n=st.integers(min_value=1, max_value=60))
def test_add_working_days_forward_property(day: dt.date, n: int) -> None:
    result = SHIPPED.add_working_days(day, n)
    assert result > day
    assert SHIPPED.is_working_day(result)
    assert SHIPPED.working_days_between(day, result) == n


@given(day=days, n=st.integers(min_value=1, max_value=60))
def test_add_working_days_backward_property(day: dt.date, n: int) -> None:
    result = SHIPPED.add_working_days(day, -n)
    assert result < day
    assert SHIPPED.is_working_day(result)
    assert SHIPPED.working_days_between(day, result) == -n


@given(day=days)
def test_on_or_before_is_the_nearest_working_day(day: dt.date) -> None:
    before = SHIPPED.working_day_on_or_before(day)
    assert before <= day and SHIPPED.is_working_day(before)
    assert SHIPPED.working_days_between(before, day) == 0  # no working day in (before, day]


def test_hypothesis_has_no_deadline() -> None:
    """The properties above load the calendar on their first example: a deadline would fail them under load."""
    from hypothesis import settings

    assert settings.default.deadline is None
    assert settings().deadline is None


def _days_of(year: int) -> list[dt.date]:
    return [D(year, 1, 1) + dt.timedelta(days=i) for i in range((D(year + 1, 1, 1) - D(year, 1, 1)).days)]


def _package_days_off(year: int) -> set[dt.date]:
    """The non-working days of ``year`` as the `holidays` package itself says (not through the table)."""
    package = holidays.country_holidays("RU", years=year)
    return {day for day in _days_of(year) if not package.is_working_day(day)}


def test_shipped_table_is_the_pinned_package_s_calendar() -> None:
    """data/calendar_ru.json is generated from the pinned `holidays` (make calendar-table): when the pin
    moves, this fails until the table is generated again."""
    shipped = json.loads(PACKAGE_TABLE_FILE.read_text(encoding="utf-8"))
    assert shipped["holidays"] == holidays.__version__
    assert shipped == package_table()


def test_table_gives_the_package_s_days_for_every_year_it_holds() -> None:
    assert workdays._table(), "the table is in use with the pinned package"
    assert list(PACKAGE_TABLE_YEARS) == sorted(int(year) for year in workdays._table())
    for year in (*PACKAGE_TABLE_YEARS, PACKAGE_TABLE_YEARS[0] - 1, PACKAGE_TABLE_YEARS[-1] + 1):
        assert package_non_working_days(year) == _package_days_off(year), year
    # Labour Code art. 112: the New Year holidays 1-8 January; Victory Day on Saturday 09.05.2026 moves to Monday.
    assert {D(2026, 1, 1), D(2026, 1, 8), D(2026, 5, 11)} <= package_non_working_days(2026)
    assert D(2026, 5, 12) not in package_non_working_days(2026)


def test_another_package_version_is_asked_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table generated from another `holidays` than the installed one is not read."""
    monkeypatch.setattr(workdays, "_installed_package_version", lambda: "0.0")
    workdays._table.cache_clear()
    try:
        assert workdays._table() == {}
        assert package_non_working_days(2026) == _package_days_off(2026)
    finally:
        monkeypatch.undo()
        workdays._table.cache_clear()


def _days_off_of(entry: dict[str, list[str]], year: int) -> set[dt.date]:
    """The non-working days of ``year`` that a table entry stands for: the weekend, less its working days, plus its
    days off."""
    weekend = {day for day in _days_of(year) if day.weekday() >= 5}
    working = {D.fromisoformat(day) for day in entry["working_days"]}
    return (weekend - working) | {D.fromisoformat(day) for day in entry["days_off"]}


def test_make_calendar_table_writes_the_shipped_table_from_the_package(tmp_path: Path) -> None:
    """`make calendar-table` writes, from the pinned package, the very file shipped (here into a temporary file, not
    into the package), and the file says what the package says: the New Year holidays 1-8 January (Labour Code
    art. 112), 09.01.2026 and 31.12.2026 off, Saturday 01.11.2025 a working day."""
    written = tmp_path / "calendar_ru.json"
    workdays.write_package_table(written)
    assert written.read_bytes() == PACKAGE_TABLE_FILE.read_bytes()
    document = json.loads(written.read_text(encoding="utf-8"))
    assert document["holidays"] == holidays.__version__
    assert sorted(document["years"]) == [str(year) for year in PACKAGE_TABLE_YEARS]
    for year in (2025, 2026, 2027):
        assert _days_off_of(document["years"][str(year)], year) == _package_days_off(year), year
    year_2026 = _days_off_of(document["years"]["2026"], 2026)
    assert {D(2026, 1, day) for day in range(1, 10)} | {D(2026, 12, 31)} <= year_2026
    assert D(2026, 1, 12) not in year_2026
    assert D(2025, 11, 1) not in _days_off_of(document["years"]["2025"], 2025)


def test_the_table_answers_for_its_years_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """README: the package's days for 2000-2040 are shipped as a table so that a light command need not import the
    package; a year outside them is asked of the package."""
    monkeypatch.setitem(sys.modules, "holidays", None)  # `import holidays` fails from here on
    for year in (PACKAGE_TABLE_YEARS[0], 2026, PACKAGE_TABLE_YEARS[-1]):
        assert D(year, 1, 1) in package_non_working_days(year)
    assert {D(2026, 1, 9), D(2026, 12, 31)} <= package_non_working_days(2026)
    assert D(2025, 11, 1) not in package_non_working_days(2025)
    with pytest.raises(ImportError):
        package_non_working_days(PACKAGE_TABLE_YEARS[-1] + 1)


@pytest.mark.parametrize("metadata_text", [None, "Metadata-Version: 2.1\nName: holidays\n"])
def test_an_installed_package_without_a_version_line_is_asked_itself(
    monkeypatch: pytest.MonkeyPatch, metadata_text: str | None
) -> None:
    """An installation with no METADATA (an .egg-info one has PKG-INFO instead) or none naming a version: the
    table's version cannot be matched, so it is not read and the package answers."""
    installed = SimpleNamespace(read_text=lambda name: metadata_text if name == "METADATA" else None)
    monkeypatch.setattr(workdays, "metadata", SimpleNamespace(distribution=lambda name: installed))
    workdays._table.cache_clear()
    try:
        assert workdays._installed_package_version() is None
        assert workdays._table() == {}
        assert package_non_working_days(2026) == _package_days_off(2026)
    finally:
        monkeypatch.undo()
        workdays._table.cache_clear()
