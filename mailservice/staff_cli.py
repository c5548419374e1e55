"""Console issue commands: ``mailservice staff``, ``mailservice retention``, ``mailservice feedback``."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING, Annotated

import click
import typer

from mailservice.cli_options import StaffOption as StaffOption  # where the domains read it
from mailservice.config import get_settings
from mailservice.db import session_scope, utcnow

if TYPE_CHECKING:
    from mailservice.web.staff.auth import Role

staff_app = typer.Typer(help="Сотрудники консоли: учётные записи и пароли.", no_args_is_help=True)
retention_app = typer.Typer(help="Сроки хранения истории взаимодействия (5 лет).", no_args_is_help=True)
feedback_app = typer.Typer(help="Опросы после ответа и оценки клиентов.", no_args_is_help=True)


def _login_password() -> str:
    """The password of a login: typed without echo on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        return getpass.getpass("Пароль: ")
    return sys.stdin.readline().rstrip("\r\n")


def signed_in_staff(email: str, roles: frozenset[Role] | None = None) -> str:
    """The address of the active staff account ``email`` once its password (standard input) is checked, as the
    console's login checks it (a failure counts toward its limit); with ``roles``, the account must have one."""
    from mailservice.web.staff import auth

    password = _login_password()
    with session_scope(get_settings()) as session:
        result = auth.authenticate(session, email=email, password=password, ip="cli", now=utcnow())
        user = result.user
        found = (user.email, auth.Role(user.role)) if user is not None else None
    if found is None:
        if result.blocked:
            raise click.ClickException("Слишком много неудачных попыток входа: повторите через 15 минут")
        raise click.ClickException("Неверный адрес учётной записи или пароль")
    address, role = found
    if roles is not None and role not in roles:
        allowed = ", ".join(sorted(auth.ROLE_NAMES[r] for r in roles))
        raise click.ClickException(f"У учётной записи {address} нет права на это действие (нужна роль: {allowed})")
    return address


def _read_password() -> str:
    """A new password: typed twice without echo on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        value: str = typer.prompt("Пароль", hide_input=True, confirmation_prompt="Повторите пароль")
        return value
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("Пароль не передан на стандартный ввод")
    return line.rstrip("\r\n")


@staff_app.command("add")
def staff_add(
    email: Annotated[str, typer.Option("--email", help="Адрес сотрудника (логин)")],
    role: Annotated[
        str, typer.Option("--role", help="operator, publisher, mailing_manager, administrator или process_officer")
    ],
    name: Annotated[str, typer.Option(help="ФИО")] = "",
    position: Annotated[str, typer.Option(help="Должность (подпись под ответами)")] = "",
) -> None:
    """Создать учётную запись сотрудника; пароль читается со стандартного ввода."""
    from mailservice.web.staff import audit, auth

    try:
        chosen = auth.Role(role)
    except ValueError:
        raise click.BadParameter(
            f"ожидалось одно из: {', '.join(r.value for r in auth.Role)}", param_hint="--role"
        ) from None
    password = _read_password()
    now = utcnow()
    try:
        with session_scope(get_settings()) as session:
            user = auth.create_user(
                session, email=email, role=chosen, password=password, now=now, name=name, position=position
            )
            audit.record(
                session,
                now=now,
                actor="cli",
                action="staff_add",
                object_type="staff",
                object_id=user.id,
                details={"role": chosen.value},
            )
            address = user.email
    except auth.AuthError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Сотрудник {address} добавлен с ролью {auth.ROLE_NAMES[chosen]}")


@staff_app.command("passwd")
def staff_passwd(email: Annotated[str, typer.Option("--email", help="Адрес сотрудника")]) -> None:
    """Задать новый пароль (со стандартного ввода); сеансы сотрудника завершаются."""
    from mailservice.web.staff import audit, auth

    password = _read_password()
    now = utcnow()
    try:
        with session_scope(get_settings()) as session:
            user = auth.get_user_by_email(session, email)
            if user is None:
                raise click.ClickException(f"Сотрудник {email} не найден")
            auth.set_password(session, user, password, now)
            audit.record(session, now=now, actor="cli", action="staff_passwd", object_type="staff", object_id=user.id)
    except auth.AuthError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Пароль сотрудника {auth.normalise_email(email)} изменён, его сеансы завершены")


@staff_app.command("list")
def staff_list() -> None:
    """Список учётных записей сотрудников."""
    from sqlalchemy import select

    from mailservice.web.staff.auth import ROLE_NAMES, Role
    from mailservice.web.staff.models import StaffUser

    with session_scope(get_settings()) as session:
        users = list(session.scalars(select(StaffUser).order_by(StaffUser.email)))
        if not users:
            typer.echo(
                "Учётных записей сотрудников нет. Первую добавьте командой: "
                "mailservice staff add --email АДРЕС --role administrator"
            )
        for user in users:
            state = "" if user.active else " (отключён)"
            typer.echo(f"{user.email}\t{ROLE_NAMES[Role(user.role)]}\t{user.name}{state}")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Показать, что будет сделано, ничего не меняя")] = False,
) -> None:
    """Обезличить или удалить то, что хранится дольше срока после последнего обращения (кроме удержания по закону)."""
    from mailservice import retention

    settings = get_settings()
    now = utcnow()
    if dry_run:
        with session_scope(settings) as session:
            report, _doomed = retention.run(session, settings, now, dry_run=True)
            session.rollback()
    else:
        # Kept with its report, as the worker's runs are (`retention reports`), naming the system user who ran it.
        report = retention.hand_run(settings, now, by=f"командная строка, пользователь {_system_user()}")
    for line in report.lines():
        typer.echo(line)


def _system_user() -> str:
    """The operating system's user running the command (a container's user may have no name: its uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


@retention_app.command("reports")
def retention_reports(
    limit: Annotated[int, typer.Option("--limit", help="Сколько последних запусков показать")] = 5,
) -> None:
    """Отчёты запусков хранения: ежедневных (обработчик очереди) и выполненных вручную (retention run)."""
    from mailservice import jobruns, retention

    settings = get_settings()
    with session_scope(settings) as session:
        runs = jobruns.latest(session, retention.JOB, limit)
        if not runs:
            typer.echo("Запусков ещё не было.")
        for item in runs:
            when = item.started_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")
            by = item.report.get("by") or retention.WORKER
            label = "вручную" if item.period.startswith(retention.HAND_PERIOD_PREFIX) else item.period
            typer.echo(f"Запуск {label} ({when}; {by}):")
            for line in item.report.get("lines", []):
                typer.echo(f"  {line}")


@feedback_app.command("send-surveys")
def feedback_send_surveys() -> None:
    """Поставить в очередь опрос по отвеченным запросам, где его ещё нет (ответы вне консоли)."""
    from mailservice.feedback.service import sweep

    settings = get_settings()
    with session_scope(settings) as session:
        count = sweep(session, settings, utcnow())
    typer.echo(f"Опросов поставлено в очередь: {count}")


@feedback_app.command("stats")
def feedback_stats_cmd() -> None:
    """Число оценок и средние по месяцам, каналам и подразделениям."""
    from mailservice.feedback.staff import ANONYMOUS_SOURCES
    from mailservice.feedback.stats import feedback_stats

    settings = get_settings()
    with session_scope(settings) as session:
        stats = feedback_stats(session, settings)
        anonymous = feedback_stats(session, settings, sources=ANONYMOUS_SOURCES)
    typer.echo(f"Ответов: {stats.count}; средняя оценка: {stats.average if stats.average is not None else '—'}")
    typer.echo(
        f"С анонимной формы на сайте (не публикуются): {anonymous.count}; "
        f"средняя оценка: {anonymous.average if anonymous.average is not None else '—'}"
    )
    for title, items in (
        ("По месяцам", stats.by_month),
        ("По каналам", stats.by_channel),
        ("По подразделениям", stats.by_unit),
    ):
        typer.echo(f"{title}:")
        for bucket in items:
            typer.echo(f"  {bucket.label}: {bucket.average:.2f} ({bucket.count})")
