"""The CLI as a user runs it: real subprocesses, one-line errors, register/list/show/status/export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from tests.cli_support import cli_env


def run(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: a real subprocess with this test's MAILSERVICE_* environment."""
    return subprocess.run(
        [sys.executable, "-m", "mailservice", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=cli_env(),
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("deadline", "--law", "7-fz", "--registered", "2026-03-01"), 2, "--law"),
        (("deadline", "--law", "8-fz", "--registered", "01.03.2026"), 2, "--registered"),
        (("requests", "status", "2026-999999", "--to", "answered"), 1, "не найден"),
        (("requests", "status", "2026-000001", "--to", "flying"), 2, "--to"),
        (("requests", "status", "2026-000001", "--to", "registered"), 2, "--to"),
        (("requests", "export", "--format", "pdf", "--output", "x"), 2, "--format"),
        (("no-such-command",), 2, "no-such-command"),
    ],
)
def test_wrong_arguments_get_one_line(lite_settings: Settings, args: tuple[str, ...], code: int, needle: str) -> None:
    result = run(*args)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]
    assert "Traceback" not in result.stderr


def test_status_help_offers_only_the_statuses_staff_may_set() -> None:
    # README, "Lifecycle": "Staff may set every status but `received`/`registered`" (tester's F15: the help offered
    # both, and both were always refused).
    result = run("requests", "status", "--help")
    assert result.returncode == 0, result.stderr
    offered = re.search(r"--to \[([a-z_|]+)\]", result.stdout)
    assert offered, result.stdout
    assert set(offered.group(1).split("|")) == {s.value for s in Status} - {"received", "registered"}


def test_deadline_json() -> None:
    result = run("deadline", "--law", "8-fz", "--registered", "2026-03-01", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "legal_due": "2026-03-31",
        "control_date": "2026-03-31",
    }
    extended = run("deadline", "--law", "8-fz", "--registered", "2026-03-01", "--extended", "--json")
    assert json.loads(extended.stdout.strip().splitlines()[-1])["legal_due"] == "2026-04-15"


def test_register_list_show_status_export(lite_settings: Settings, tmp_path: Path) -> None:
    result = run(
        "requests", "register", "--channel", "phone", "--name", "Петрова Анна Сергеевна", "--email", "anna@example.ru",
        "--subject", "Часы приёма", "--text", "Звонила узнать часы приёма по вопросам аренды",
        "--received", "2026-11-24T10:15",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Зарегистрирован № 2026-000001" in result.stdout
    listed = json.loads(run("requests", "list", "--json").stdout)
    assert [r["number"] for r in listed] == ["2026-000001"]
    shown = run("requests", "show", "2026-000001").stdout
    assert "Петрова Анна Сергеевна" in shown and "получен -> зарегистрирован" in shown
    # Tester's F13: the law and the labels by their Russian names, never as codes (8-fz, info_request, normal).
    labels = re.search(r"Закон: ([^;\n]+); тип: ([^;\n]+); тема: ([^;\n]+); срочность: ([^;\n]+)", shown)
    assert labels, shown
    assert "8-ФЗ" in labels[1] and all(re.fullmatch(r"[А-ЯЁ][а-яёА-ЯЁ ,.()-]*", n) for n in labels.groups()[1:]), shown
    # README "Needs review": a flagged request names the decision to check (here the topic only).
    with session_scope(lite_settings) as session:
        request = session.scalars(select(Request)).one()
        request.needs_review, request.classification = True, {**request.classification, "review": ["topic"]}
    assert "срочность: Обычно; проверить тему\n" in run("requests", "show", "2026-000001").stdout
    refused = run("requests", "status", "2026-000001", "--to", "refused", "--comment", "нет")
    assert refused.returncode == 1 and "основание" in refused.stderr
    ok = run("requests", "status", "2026-000001", "--to", "answered", "--comment", "Приём по вторникам с 10 до 13.")
    assert ok.returncode == 0, ok.stderr

    out = tmp_path / "register.csv"
    assert run("requests", "export", "--format", "csv", "--output", str(out)).returncode == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert list(rows[0])[:4] == ["№", "Дата и время поступления", "Дата регистрации", "Канал"]
    assert rows[0]["№"] == "2026-000001" and rows[0]["Статус"] == "дан ответ" and rows[0]["Канал"] == "телефон"
    assert rows[0]["Дата и время поступления"] == "24.11.2026 10:15"
    xlsx = tmp_path / "register.xlsx"
    assert run("requests", "export", "--format", "xlsx", "--output", str(xlsx)).returncode == 0
    sheet = openpyxl.load_workbook(xlsx).worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "№" and values[1][0] == "2026-000001" and len(values) == 2


def test_register_refuses_a_date_of_receipt_before_2000_or_in_the_future(lite_settings: Settings) -> None:
    # Tryout F9; README: a request's date of receipt before 2000 is a typing error, as in the console's form.
    base = ["requests", "register", "--channel", "phone", "--name", "Петрова А. С.", "--subject", "Тема", "--text", "Т"]
    old = run(*base, "--received", "1999-01-01T10:00")
    assert old.returncode == 2 and "Ошибка" in old.stderr and "2000" in old.stderr
    future = run(*base, "--received", "2099-01-01T10:00")
    assert future.returncode == 2 and "ещё не наступил" in future.stderr
    assert json.loads(run("requests", "list", "--json").stdout) == []


def test_export_defuses_formulas(lite_settings: Settings, tmp_path: Path) -> None:
    run("requests", "register", "--channel", "post", "--name", "Злоумышленник", "--subject", "=HYPERLINK(\"http://x\")",
        "--text", "текст", "--address", "г. Новосибирск")  # fmt: skip
    out = tmp_path / "r.csv"
    run("requests", "export", "--format", "csv", "--output", str(out))
    row = next(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert row["Тема письма"].startswith("'=")


def test_journal_csv(lite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # the table's width: each cell on one line
    eml = tmp_path / "a.eml"
    from tests.mailfactory import citizen_mail

    eml.write_bytes(citizen_mail())
    assert run("intake", "import", str(eml)).returncode == 0
    assert run("intake", "import", str(eml)).returncode == 0
    journal = list(csv.DictReader(io.StringIO(run("intake", "journal", "--format", "csv").stdout)))
    assert [r["outcome"] for r in journal] == ["new_request", "duplicate"]

    # The table is for staff (tryout of 7 December: times in UTC, codes, no header): a header row, the time in the
    # department's zone (README: TIMEZONE, Asia/Novosibirsk, UTC+7), outcomes and reasons in Russian.
    table = run("intake", "journal").stdout
    assert re.search(r"Строка.*Получено.*Откуда.*Исход.*Отправитель.*Тема.*Причина", table.splitlines()[1]), table
    for row in journal:
        received = dt.datetime.fromisoformat(row["received_at"])
        local = received.astimezone(dt.timezone(dt.timedelta(hours=7)))
        assert re.search(rf"│ {row['id']} +│ {local:%d\.%m\.%Y %H:%M} +│ файл +│", table), table
    assert "зарегистрировано" in table and "повтор уже" in table, table
    assert "new_request" not in table and "duplicate" not in table, table


@pytest.mark.postgres
def test_a_database_that_does_not_exist_is_named_as_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tryout of 7 December (a new administrator): a PostgreSQL database not created yet gave the advice to run
    `db upgrade`, which cannot create it."""
    from tests.conftest import PG_URL, make_env, pg_unreachable_reason

    reason = pg_unreachable_reason()
    assert reason is None, reason
    make_env(monkeypatch, tmp_path, PG_URL.rsplit("/", 1)[0] + "/mailservice_no_such_database")
    result = run("staff", "list")
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert 'database "mailservice_no_such_database" does not exist' in lines[0]
    assert "Создайте базу данных (createdb) или исправьте MAILSERVICE_DATABASE_URL" in lines[0]
    assert "db upgrade" not in lines[0]
