"""The CLI as a new user meets it: it starts without loading what it does not run, speaks Russian, and never cuts
a registration number. No timing is asserted here (bench/cli.py measures it); what is checked is what makes the
time: which heavy libraries a command imports."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

import pytest
import typer
from sqlalchemy import select
from typer import core

from mailservice import cli_russian, model_domains
from mailservice.cli import LAZY_COMMANDS, app, load_command, main
from mailservice.config import Settings
from mailservice.db import Base, session_scope
from mailservice.mailings.models import CAMPAIGN_STATUS_NAMES, CampaignStatus
from tests.cli_support import cli_env

# The libraries the issue names as costing seconds at every start, and the other heavy ones.
HEAVY = ("sklearn", "pymorphy3", "openpyxl", "fastapi", "mkdocs", "docx", "aiosmtpd", "aiosmtplib", "numpy", "scipy")

PROBE = """
import sys
from mailservice.cli import main
code = main(sys.argv[1:])
print("LOADED=" + ",".join(sorted(sys.modules)), file=sys.stderr)
sys.exit(code)
"""
# The model modules of the domains `requests list` and `show` do not read (see mailservice/model_domains.py).
OTHER_DOMAINS_MODELS = {
    module for name, modules in model_domains.MODEL_MODULES.items() if name != "requests" for module in modules
}


def modules_loaded_by(*args: str) -> set[str]:
    """Every module a CLI call (in a process of its own) has imported by its end."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    line = next((x for x in result.stderr.splitlines() if x.startswith("LOADED=")), None)
    assert result.returncode == 0 and line is not None, result.stderr
    return set(line.removeprefix("LOADED=").split(","))


def loaded_by(*args: str) -> set[str]:
    """The top-level packages a CLI call has imported."""
    return {module.split(".")[0] for module in modules_loaded_by(*args)}


def test_help_imports_no_domain_library() -> None:
    loaded = loaded_by("--help")
    # Not even the database layer, the settings or Rich: the root lists its commands from LAZY_COMMANDS.
    assert not loaded & {*HEAVY, "sqlalchemy", "pydantic", "rich", "jinja2", "holidays"}, loaded


def test_deadline_imports_no_database_or_domain_library(lite_settings: Settings) -> None:
    loaded = loaded_by("deadline", "--law", "8-fz", "--registered", "2026-03-01")
    assert not loaded & {*HEAVY, "sqlalchemy", "jinja2"}, loaded


def test_deadline_reads_the_calendar_table_not_the_holidays_package(lite_settings: Settings) -> None:
    """Importing `holidays` and building a year from it is most of a light command's time (workdays.py)."""
    assert "holidays" not in loaded_by("deadline", "--law", "8-fz", "--registered", "2026-03-01")


def test_requests_list_and_show_import_only_the_register(
    lite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # An open request with a due date: `list` computes "due soon" in working days for it (the calendar).
    assert (
        main(["requests", "register", "--channel", "phone", "--name", "Иван", "--subject", "Часы", "--text", "т"]) == 0
    )
    number = re.search(r"№ (\d{4}-\d{6})", capsys.readouterr().out)
    assert number is not None
    for args in (("requests", "list"), ("requests", "show", number[1])):
        modules = modules_loaded_by(*args)
        loaded = {module.split(".")[0] for module in modules}
        assert "sqlalchemy" in loaded  # it does read the database
        assert not loaded & {*HEAVY, "jinja2", "email_validator", "holidays", "rich"}, (args, loaded)
        assert not modules & OTHER_DOMAINS_MODELS, (args, modules & OTHER_DOMAINS_MODELS)
        assert "mailservice.inforequests.service" not in modules, args
    # `show` reads the register's models only, not every domain's; the search index's hooks come with them.
    assert {"mailservice.inforequests.models", "mailservice.inforequests.search_index"} <= modules
    # `list` reads its columns with SQLAlchemy Core: neither the ORM nor any model is imported.
    modules = modules_loaded_by("requests", "list")
    assert not {m for m in modules if m.startswith(("sqlalchemy.orm", "mailservice.")) and m.endswith(".models")}
    assert not {m for m in modules if m.startswith("sqlalchemy.orm")}
    assert "mailservice.db" not in modules


def test_the_lists_columns_are_the_models(lite_settings: Settings) -> None:
    """inforequests/listing.py names the columns `requests list` reads without the models: each is a column of the
    model's table under the same name, with the same type (a date stays a date, a moment an aware UTC datetime)."""
    from mailservice.inforequests import listing

    model_domains.load(["requests"])
    for light in (listing.REQUESTS, listing.CLIENTS, listing.CLIENT_CONTACTS):
        model = Base.metadata.tables[light.name]
        for column in light.columns:
            assert column.name in model.columns, (light.name, column.name)
            declared = model.columns[column.name].type
            assert type(column.type) is type(declared), (light.name, column.name, declared)


def test_every_model_is_in_a_domain_and_each_domain_has_what_it_names() -> None:
    """model_domains lists every module with models, and each domain with the domains it needs holds every class
    its relationships name and every table its foreign keys name: a session of one domain can query."""
    model_domains.load()
    module_of_table = {
        table.name: mapper.class_.__module__ for mapper in Base.registry.mappers for table in mapper.tables
    }
    domain_of = {module: name for name, modules in model_domains.MODEL_MODULES.items() for module in modules}
    assert set(module_of_table.values()) <= set(domain_of), set(module_of_table.values()) - set(domain_of)
    assert set(module_of_table) == set(Base.metadata.tables)  # no table outside the mapped classes
    for mapper in Base.registry.mappers:
        named = {r.mapper.class_.__module__ for r in mapper.relationships}
        named |= {module_of_table[fk.column.table.name] for table in mapper.tables for fk in table.foreign_keys}
        own = model_domains.closure([domain_of[mapper.class_.__module__]])
        assert {domain_of[module] for module in named} <= own, (mapper.class_, named)
    with pytest.raises(KeyError):
        model_domains.closure(["nonexistent"])


def test_the_script_runs_its_command_with_the_collector_on(lite_settings: Settings) -> None:
    """`console` pauses Python's cyclic collector while a command imports: the command itself (a server, the worker)
    must run with it on, or its garbage would only grow."""
    probe = (
        "import gc, sys\n"
        "from mailservice.cli import console\n"
        "code = console()\n"
        "print('COLLECTOR', gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "deadline", "--law", "8-fz", "--registered", "2026-03-01"],
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Срок ответа по закону: 2026-03-31" in result.stdout  # 8-FZ art. 18: 30 days
    assert "COLLECTOR True True" in result.stdout, result.stdout


def test_root_short_help_is_each_domains_own() -> None:
    """LAZY_COMMANDS repeats each sub-app's help so that `--help` imports nothing: the two must not drift."""
    for name, (_module, attribute, short_help) in LAZY_COMMANDS.items():
        command = load_command(name)
        own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
        assert own == short_help, (name, attribute)


def _all_commands() -> list[list[str]]:
    cli_russian.install()
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        if isinstance(command, core.TyperGroup):
            for name in command.list_commands(None):  # type: ignore[arg-type]
                walk(command.get_command(None, name), [*path, name])  # type: ignore[arg-type]

    walk(typer.main.get_command(app), [])
    return found


def test_every_help_is_in_russian() -> None:
    english = re.compile(
        r"\b(Show this message|Options:|Commands:|Usage:|\[default|\[required|Arguments:)"
        r"|\[OPTIONS\]|COMMAND \[ARGS\]|<(str|int|float|Path|date|datetime|int range|float range)>|<list\[|\bx[<>]="
    )
    bare_option = re.compile(r"^  (--[\w-]+)( <[^>]*>)?$", flags=re.MULTILINE)  # an option with no help after it
    paths = _all_commands()
    assert len(paths) > 100  # every domain's commands were reached
    for path in paths:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main([*path, "--help"]) == 0
        text = buffer.getvalue()
        assert "Использование: mailservice" in text, path
        assert not english.search(text), (path, text)
        for match in bare_option.finditer(text):  # a long placeholder puts the help on the next line
            following = text[match.end() :].split("\n", 2)[1]
            assert following.startswith(" " * 10) and following.strip(), (path, match[1], "no help")
        if path:  # the command's own description: Russian words, not an English docstring
            description = text.split("\n\n")[1]
            assert re.search("[а-яё]{3,}", description), (path, description)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("requests", "list", "--status", "flying"), "недопустимое значение '--status': «flying» — нет такого"),
        (("requests", "list", "--limit", "x"), "ожидалось целое число"),
        (("requests", "list", "--limit", "0"), "должно быть не меньше 1"),
        (("requests", "list", "--bogus"), "нет такого параметра --bogus"),
        (("requets",), "нет такой команды «requets»; возможно, имелось в виду requests"),
        (("requests", "register"), "не указан параметр '--channel'; допустимо: email, phone"),
        (("requests", "show"), "не указан аргумент 'number'"),
        (("requests", "show", "a", "b"), "лишние аргументы: b"),
        (("requests", "list", "--json=3"), "параметр --json указывается без значения"),
        (("staff", "add", "--email", "a@b.ru", "--role", "boss"), "недопустимое значение --role: ожидалось одно из"),
        (("deadline", "--law", "7-fz", "--registered", "2026-03-01"), "ожидалось 8-fz или 59-fz"),
        (("wg", "deadlines", "--profile", "moscow", "--meeting", "2026-12-16"), "нет такого профиля рабочей группы"),
    ],
)
def test_usage_errors_are_one_russian_line(
    lite_settings: Settings, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str
) -> None:
    assert main(list(args)) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and " INFO " not in line]
    assert len(err) == 1, err
    assert err[0].startswith("Ошибка: ") and needle in err[0], err[0]
    assert not re.search(r"\b(Invalid|Missing|No such|expected|Got unexpected|does not)\b", err[0]), err[0]


def test_database_not_migrated_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import make_env, reset_caches

    make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path}/empty.sqlite3")  # type: ignore[arg-type,operator]
    try:
        assert main(["requests", "list"]) == 1
    finally:
        reset_caches()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "выполните mailservice db upgrade" in err[0]


def test_list_never_cuts_a_registration_number(lite_settings: Settings) -> None:
    long_subject = "Сведения о договорах аренды земельных участков в Новосибирском районе за 2025 год"
    for i in range(3):
        registered = subprocess.run(
            [sys.executable, "-m", "mailservice", "requests", "register", "--channel", "phone",
             "--name", "Константинопольская Александра Владимировна", "--subject", long_subject, "--text", "т",
             "--email", f"a{i}@example.ru"],
            capture_output=True, text=True, env=cli_env(), timeout=120,
        )  # fmt: skip
        assert registered.returncode == 0, registered.stderr
    numbers = [r["number"] for r in json.loads(_cli("requests", "list", "--json", columns=80))]
    assert len(numbers) == 3 and all(re.fullmatch(r"\d{4}-\d{6}", n) for n in numbers)
    for columns in (80, 60):
        table = _cli("requests", "list", columns=columns)
        assert max(len(line) for line in table.splitlines()) <= columns
        for number in numbers:
            assert re.search(rf"[│|] {number} ", table), (columns, table)
        assert "зар" in table and "registered" not in table  # the status in Russian (however narrow)
        # F14: the rest stays readable: the status, the channel and the client's name whole, and the subject
        # shown, its beginning whole, shortened with «…» if need be.
        lines = table.splitlines()
        for word in ("зарегистрирован", "телефон", "Константинопольская", "Сведения о договорах"):
            assert sum(word in line for line in lines) >= 3, (columns, word, table)
        assert long_subject in _words(table) or table.count("…") >= 3, (columns, table)


def test_list_at_80_and_60_columns_shows_a_full_number_and_the_subject(lite_settings: Settings) -> None:
    """Issue 15, F14: a registration number like 2026-000123 is never cut, whatever the width; the subject is shown
    (shortened with «…» when it does not fit)."""
    from mailservice.inforequests.models import Request

    long_subject = "Сведения о договорах аренды земельных участков в Новосибирском районе за 2025 год и ранее"
    args = ["requests", "register", "--channel", "visit", "--name", "Петров", "--subject", "т", "--text", "т"]
    assert main(args) == 0
    with session_scope(lite_settings) as session:
        request = session.scalars(select(Request)).one()
        request.number, request.subject = "2026-000123", long_subject
    for columns in (80, 60):
        table = _cli("requests", "list", columns=columns)
        assert max(len(line) for line in table.splitlines()) <= columns, table
        assert "2026-000123" in table and "2026-0001…" not in table, table
        assert "Сведения о договорах" in table and "Петров" in table, table
        assert long_subject in _words(table) or "…" in table, table


def _words(table: str) -> str:
    """The words of a table column after column, one space apart (a cell folded over lines reads as one text)."""
    rows = [line.split("│")[1:-1] for line in table.splitlines() if line.startswith("│")]
    return " ".join(" ".join(" ".join(row[i] for row in rows).split()) for i in range(len(rows[0])))


def _cli(*args: str, columns: int) -> str:
    env = cli_env(COLUMNS=str(columns))
    result = subprocess.run(
        [sys.executable, "-m", "mailservice", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_campaign_status_has_a_russian_name() -> None:
    assert set(CAMPAIGN_STATUS_NAMES) == set(CampaignStatus)
    assert CAMPAIGN_STATUS_NAMES[CampaignStatus.done] == "завершена"


def test_translation_passes_unknown_text_through() -> None:
    assert cli_russian.translate("файл не найден: /x") == "файл не найден: /x"
    assert cli_russian.translate("Missing option '--x'.\n Choose from:\n\ta,\n\tb") == (
        "не указан параметр '--x'; допустимо: a, b"
    )


def test_run_on_a_busy_port_says_which_and_where_to_change_it(
    lite_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.conftest import reset_caches

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("MAILSERVICE_WEB_HOST", "127.0.0.1")
        monkeypatch.setenv("MAILSERVICE_WEB_PORT", str(port))
        reset_caches()
        try:
            assert main(["run"]) == 2
        finally:
            reset_caches()
    err = capsys.readouterr().err
    assert f"порт 127.0.0.1:{port} недоступен" in err and "MAILSERVICE_WEB_PORT" in err, err
    assert "Traceback" not in err
