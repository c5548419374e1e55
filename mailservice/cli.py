"""The ``mailservice`` command: the Typer root; each domain adds its own sub-commands.

Every command reads the same :class:`~mailservice.config.Settings`. A wrong argument or a refused operation prints
one line to standard error and exits with status 2 (usage) or 1 (refused); no traceback reaches the user.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import importlib
import json
import logging
import re
import sys
from typing import Annotated, Any

import typer
from typer import core as typer_core
from typer._click import exceptions as tclick

from mailservice import cli_params, cli_russian

# The root mounts every domain lazily, so that `mailservice --help` and a light command import only what they run
# (scikit-learn, FastAPI, MkDocs and openpyxl cost seconds together). name -> (module, attribute, short help): the
# attribute names a Typer app mounted as the group ``name``, or "app.command", one command of a Typer app.
# The short help is the sub-app's own first line (tests/test_cli_start.py keeps the two equal).
# mount: further domains add their line here.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "poll": ("mailservice.service_cli", "app.poll", "Забирать письма из папки IMAP в приём (IDLE, если сервер умеет)."),
    "receive": (
        "mailservice.service_cli",
        "app.receive",
        "Принимать почту по SMTP (или LMTP) и передавать её в приём.",
    ),
    "worker": (
        "mailservice.service_cli",
        "app.worker",
        "Отправлять письма из очереди по SMTP (--once: то, что пора, и выйти).",
    ),
    "sink": (
        "mailservice.service_cli",
        "app.sink",
        "Приёмник исходящей почты для разработки: хранит каждое письмо.",
    ),
    "serve": ("mailservice.service_cli", "app.serve", "Веб-приложение: публичные страницы и консоль сотрудников."),
    "run": ("mailservice.service_cli", "app.run", "Миграции и всё сразу в одном процессе: приём, очередь, IMAP, веб."),
    "backup": (
        "mailservice.backup",
        "app.backup",
        "Резервная копия: база данных и хранилище писем с контрольными суммами.",
    ),
    "restore": ("mailservice.backup", "app.restore", "Восстановить базу данных и хранилище писем из резервной копии."),
    "requests": ("mailservice.inforequests.cli", "app", "Реестр запросов и обращений."),
    "intake": ("mailservice.intake.cli", "app", "Журнал входящей почты, карантин и письма, ждущие регистрации."),
    "classify": (
        "mailservice.classify.cli",
        "app",
        "Классификация запросов по типу, теме и срочности: проверка текста, обучение и оценка модели.",
    ),
    "staff": ("mailservice.staff_cli", "staff_app", "Сотрудники консоли: учётные записи и пароли."),
    "retention": ("mailservice.staff_cli", "retention_app", "Сроки хранения истории взаимодействия (5 лет)."),
    "feedback": ("mailservice.staff_cli", "feedback_app", "Опросы после ответа и оценки клиентов."),
    "site": (
        "mailservice.publishing.cli",
        "app",
        "Сайт раскрытия информации: документы, проверка, сборка, публикация.",
    ),
    "subscribers": ("mailservice.mailings.cli", "subscribers_app", "Подписчики и списки рассылки."),
    "campaign": ("mailservice.mailings.cli", "campaign_app", "Рассылки: создание, проверка, отправка, состояние."),
    "processes": (
        "mailservice.processes.cli",
        "app",
        "Реестр межведомственных и внутриведомственных процессов.",
    ),
    "wg": ("mailservice.workgroup.cli", "app", "Рабочая группа: заседания, повестки, голосования, протоколы."),
}


@functools.cache
def _typer_command(module: str, attribute: str) -> Any:
    """The click command (or group) of a domain's Typer app, built once."""
    sub_app = getattr(importlib.import_module(module), attribute)
    sub_app._add_completion = False  # mounted under the root, which offers no shell completion either
    return typer.main.get_group(sub_app)  # a group even with one command (`retention run`)


def load_command(name: str) -> Any:
    """Import the module behind a root command and return that command."""
    module, attribute, _help = LAZY_COMMANDS[name]
    attribute, _dot, command_name = attribute.partition(".")
    command = _typer_command(module, attribute)
    if command_name:
        return command.commands[command_name]
    command.name = name
    return command


class LazyRoot(typer_core.TyperGroup):
    """The root group: its own commands at once, the domains' on first use (listed from LAZY_COMMANDS)."""

    _listing = False
    collector_paused = False  # set by `console`: Python's cyclic collector waits until the command is imported

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in LAZY_COMMANDS if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands or cmd_name not in LAZY_COMMANDS:
            return self.commands.get(cmd_name)
        if self._listing:  # the root's help lists the name and short help without importing the domain
            return typer_core.TyperCommand(name=cmd_name, help=LAZY_COMMANDS[cmd_name][2], callback=None)
        return load_command(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and self.get_command(ctx, name) is None and not name.startswith("-"):
            from difflib import get_close_matches

            hint = get_close_matches(name, self.list_commands(ctx))
            suffix = f" Did you mean {', '.join(repr(m) for m in hint)}?" if hint else ""
            ctx.fail(f"No such command {name!r}.{suffix}")
        resolved = super().resolve_command(ctx, args)
        if LazyRoot.collector_paused:
            # What the imports built lives as long as the process: out of the collector's sight from now on.
            LazyRoot.collector_paused = False
            gc.freeze()
            gc.enable()
        return resolved


app = typer.Typer(
    name="mailservice",
    cls=LazyRoot,
    help="Сервис обращений, рассылок и раскрытия информации департамента.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="База данных: миграции.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """Exception classes ``name`` of Typer (and its vendored click) and, if a command imported it, of click."""
    found: list[type[BaseException]] = [getattr(typer, name) if name in ("Exit", "Abort") else getattr(tclick, name)]
    click = sys.modules.get("click")
    if click is not None and hasattr(click.exceptions, name):
        found.append(getattr(click.exceptions, name))
    return tuple(found)


class CLIError(tclick.ClickException):
    """A refused operation: printed as one line, exit status 1."""

    exit_code = 1


def fail(message: str) -> CLIError:
    """Build the one-line error the root handler prints."""
    return CLIError(message)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Целевая ревизия")] = "heads",
    model: Annotated[
        bool, typer.Option("--model/--no-model", help="Обучить начальную модель классификатора, если её ещё нет")
    ] = True,
) -> None:
    """Применить все миграции к настроенной базе данных и подготовить классификатор."""
    from mailservice.config import get_settings
    from mailservice.db import upgrade

    upgrade(get_settings(), revision)
    typer.echo(f"База данных обновлена: {get_settings().effective_database_url.split('@')[-1]}")
    if model:
        from mailservice.service_cli import prepare_classifier

        prepare_classifier()


@app.command("deadline")
def deadline_cmd(
    law: Annotated[str, typer.Option("--law", help="8-fz (запрос) или 59-fz (обращение)")],
    registered: Annotated[str, typer.Option("--registered", help="Дата регистрации ГГГГ-ММ-ДД")],
    extended: Annotated[bool, typer.Option("--extended", help="Крайний срок после продления")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Срок ответа по закону и контрольная дата для запроса, зарегистрированного в указанный день."""
    from mailservice.config import get_settings
    from mailservice.inforequests.deadlines import Law, deadline, latest_extended_deadline
    from mailservice.workdays import default_calendar

    try:
        law_value = Law(law.lower())
    except ValueError:
        raise tclick.BadParameter("ожидалось 8-fz или 59-fz", param_hint="--law") from None
    try:
        day = dt.date.fromisoformat(registered)
    except ValueError:
        raise tclick.BadParameter("ожидалась дата ГГГГ-ММ-ДД", param_hint="--registered") from None
    settings = get_settings()
    calendar = default_calendar(settings)
    term = (
        latest_extended_deadline(law_value, day, calendar, settings.due_shift)
        if extended
        else deadline(law_value, day, calendar, settings.due_shift)
    )
    result = {"legal_due": term.legal_due.isoformat(), "control_date": term.control_date.isoformat()}
    for warning in calendar.warnings([day.year, term.legal_due.year]):
        typer.echo(f"Внимание: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"Срок ответа по закону: {result['legal_due']}\nКонтрольная дата: {result['control_date']}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every expected failure into one line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; keep its warnings only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    cli_russian.install()
    cli_params.install()
    command = typer.main.get_command(app)
    try:
        # With standalone_mode=False click returns the code of a ``typer.Exit`` instead of exiting.
        code = command.main(args=argv, prog_name="mailservice", standalone_mode=False)
    except Exception as exc:
        return _report(exc)
    return code if isinstance(code, int) else 0


def console() -> int:
    """The ``mailservice`` script and ``python -m mailservice``: :func:`main` as a process of its own.

    Python's cyclic collector passes again and again over the objects a command's imports build (modules, classes,
    SQL constructs: nothing it could free), and once more over all of them at exit: a quarter of a light command's
    CPU time. It is paused until the command is imported, then runs for what the command does; at exit it is not
    run over the imported objects again. Pooled database connections are closed first, as the collector would have.
    """
    gc.disable()
    LazyRoot.collector_paused = True
    try:
        return main()
    finally:
        if "mailservice.engine" in sys.modules:
            sys.modules["mailservice.engine"].dispose_engines()
        gc.freeze()


def _report(exc: Exception) -> int:
    """Print an expected failure as one line on standard error and return the exit status; re-raise the rest."""
    # Typer vendors its own click (``typer._click``) while domain commands may raise ``click`` exceptions (only
    # when they imported click): both families end here. Checked lazily so that neither click nor pydantic is
    # imported by a command that does not use it.
    if isinstance(exc, _click_classes("Exit")):
        return int(getattr(exc, "exit_code", 0) or 0)
    if isinstance(exc, _click_classes("Abort")):
        typer.echo("Прервано.", err=True)
        return 130
    if isinstance(exc, _click_classes("NoArgsIsHelpError")):
        # A group called without a command: its help is the answer (rich help is already printed by now).
        text = exc.format_message()  # type: ignore[attr-defined]
        if text.strip():
            typer.echo(text)
        return 0
    if isinstance(exc, _click_classes("UsageError")):
        ctx = getattr(exc, "ctx", None)
        hint = f" ({ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"Ошибка: {cli_russian.translate(exc.format_message())}{hint}", err=True)  # type: ignore[attr-defined]
        return 2
    if isinstance(exc, _click_classes("ClickException")):
        typer.echo(f"Ошибка: {cli_russian.translate(exc.format_message())}", err=True)  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        from mailservice.config import explain_settings_error

        where = "в настройках" if exc.title == "Settings" else "в данных"
        typer.echo(f"Ошибка {where}: {explain_settings_error(list(exc.errors()))}", err=True)
        return 2
    sqlalchemy = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy is not None and isinstance(exc, sqlalchemy.SQLAlchemyError):
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        if re.search(r'database "[^"]*" does not exist', detail):
            # PostgreSQL's FATAL at connect: no upgrade can help, the database itself is missing.
            advice = " Создайте базу данных (createdb) или исправьте MAILSERVICE_DATABASE_URL."
        elif "no such table" in detail or "does not exist" in detail:
            advice = " База данных не обновлена: выполните mailservice db upgrade."
        else:
            advice = ""
        typer.echo(f"Ошибка базы данных: {detail}.{advice}", err=True)
        return 1
    if isinstance(exc, ValueError):
        # Settings refusing a placeholder secret, and domain rules (all carry a readable message).
        typer.echo(f"Ошибка: {exc}", err=True)
        return 1
    raise exc


def run_async(coro: object) -> object:
    """Run a coroutine to completion from a synchronous command."""
    import asyncio

    return asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(console())
