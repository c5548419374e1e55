"""The ``mailservice`` command: the Typer root; each domain adds its own sub-commands.

Every command reads the same :class:`~mailservice.config.Settings`. A wrong argument or a refused operation prints
one line to standard error and exits with status 2 (usage) or 1 (refused); no traceback reaches the user.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from typing import Annotated

import click
import typer
from pydantic import ValidationError
from typer._click import exceptions as tclick

from mailservice.config import get_settings
from mailservice.db import upgrade

app = typer.Typer(
    name="mailservice",
    help="Сервис обращений, рассылок и раскрытия информации департамента.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="База данных: миграции.", no_args_is_help=True)
app.add_typer(db_app, name="db")


class CLIError(click.ClickException):
    """A refused operation: printed as one line, exit status 1."""

    exit_code = 1


def fail(message: str) -> CLIError:
    """Build the one-line error the root handler prints."""
    return CLIError(message)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Целевая ревизия")] = "heads") -> None:
    """Apply all migrations to the configured database."""
    upgrade(get_settings(), revision)
    typer.echo(f"База данных обновлена: {get_settings().effective_database_url.split('@')[-1]}")


@app.command("deadline")
def deadline_cmd(
    law: Annotated[str, typer.Option("--law", help="8-fz (запрос) или 59-fz (обращение)")],
    registered: Annotated[str, typer.Option("--registered", help="Дата регистрации YYYY-MM-DD")],
    extended: Annotated[bool, typer.Option("--extended", help="Крайний срок после продления")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Print the legal due date and the control date of a request registered on a date."""
    from mailservice.inforequests.deadlines import Law, deadline, latest_extended_deadline
    from mailservice.workdays import default_calendar

    try:
        law_value = Law(law.lower())
    except ValueError:
        raise click.BadParameter("expected 8-fz or 59-fz", param_hint="--law") from None
    try:
        day = dt.date.fromisoformat(registered)
    except ValueError:
        raise click.BadParameter("expected a date YYYY-MM-DD", param_hint="--registered") from None
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


def _register_domains() -> None:
    # Each domain owns its sub-commands; the root only mounts them.
    from mailservice.classify.cli import app as classify_app
    from mailservice.inforequests.cli import app as requests_app
    from mailservice.intake.cli import app as intake_app
    from mailservice.service_cli import register as register_service_commands

    app.add_typer(requests_app, name="requests")
    app.add_typer(intake_app, name="intake")
    app.add_typer(classify_app, name="classify")
    register_service_commands(app)
    from mailservice.staff_cli import register as register_console_commands  # staff, retention, feedback

    register_console_commands(app)
    from mailservice.publishing.cli import app as site_app  # disclosure site (issue 5)

    app.add_typer(site_app, name="site")
    from mailservice.mailings.cli import campaign_app, subscribers_app  # mailings (issue 4)

    app.add_typer(subscribers_app, name="subscribers")
    app.add_typer(campaign_app, name="campaign")
    from mailservice.processes.cli import app as processes_app  # process register (issue 9)

    app.add_typer(processes_app, name="processes")
    from mailservice.workgroup.cli import app as workgroup_app  # working group (issue 8)

    app.add_typer(workgroup_app, name="wg")
    # mount: further domains add their line here


_register_domains()


# Typer 0.29 vendors its own copy of click: parsing errors come from ``typer._click``, while domain commands may
# raise ``click`` exceptions. Both families end here, as one line.
_USAGE = (click.UsageError, tclick.UsageError)
_CLICK = (click.ClickException, tclick.ClickException)
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and turn every expected failure into one line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every SMTP command at INFO; keep its warnings only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    command = typer.main.get_command(app)
    try:
        # With standalone_mode=False click returns the code of a ``typer.Exit`` instead of exiting.
        code = command.main(args=argv, prog_name="mailservice", standalone_mode=False)
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        typer.echo("Прервано.", err=True)
        return 130
    except _USAGE as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" ({ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"Ошибка: {exc.format_message()}{hint}", err=True)
        return 2
    except _CLICK as exc:
        typer.echo(f"Ошибка: {exc.format_message()}", err=True)
        return int(exc.exit_code)
    except ValidationError as exc:
        first = exc.errors()[0]
        typer.echo(f"Ошибка в настройках: {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        return 2
    except ValueError as exc:
        # Settings refusing a placeholder secret, and domain rules (all carry a readable message).
        typer.echo(f"Ошибка: {exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


def run_async(coro: object) -> object:
    """Run a coroutine to completion from a synchronous command."""
    return asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
