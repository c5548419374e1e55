"""``mailservice intake``: the journal, the quarantine, and feeding .eml files by hand."""

from __future__ import annotations

import csv
import datetime as dt
import json
import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests import queues
from mailservice.inforequests.models import Request
from mailservice.intake import actions
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import IntakeResult, Source, process_raw
from mailservice.intake.russian import outcome_ru, reason_ru
from mailservice.spreadsheets import safe_record
from mailservice.termtext import inert

app = typer.Typer(help="Журнал входящей почты, карантин и письма, ждущие регистрации.", no_args_is_help=True)

JOURNAL_COLUMNS = (
    "id",
    "received_at",
    "source",
    "mailbox",
    "uidvalidity",
    "uid",
    "message_id",
    "from_addr",
    "subject",
    "outcome",
    "reason",
    "request_id",
)


@app.command("journal")
def journal_cmd(
    fmt: Annotated[str, typer.Option("--format", help="csv, json или table")] = "table",
    outcome: Annotated[Outcome | None, typer.Option(help="Только с этим исходом")] = None,
) -> None:
    """Журнал приёма: строка на каждое полученное письмо с его исходом."""
    if fmt not in ("csv", "json", "table"):
        raise click.BadParameter("ожидалось csv, json или table", param_hint="--format")
    with session_scope() as session:
        query = select(IntakeEntry).order_by(IntakeEntry.id)
        if outcome is not None:
            query = query.where(IntakeEntry.outcome == outcome)
        rows = [
            {col: (getattr(e, col).isoformat() if col == "received_at" else getattr(e, col)) for col in JOURNAL_COLUMNS}
            for e in session.scalars(query)
        ]
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=JOURNAL_COLUMNS)
        writer.writeheader()
        writer.writerows(safe_record(row) for row in rows)  # subjects and senders come from outside
    elif fmt == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        typer.echo(_journal_table(rows, get_settings().tz))


# Where a letter came from, as staff name it (protocol names stay as they are).
SOURCE_NAMES = {"imap": "IMAP", "smtp": "SMTP", "lmtp": "LMTP", "file": "файл"}


def _journal_table(rows: list[dict[str, Any]], tz: dt.tzinfo) -> str:
    """The journal for staff: a header row, the department's local time, the outcome and the reason in Russian
    (CSV and JSON keep the recorded values: UTC with its offset, the codes)."""
    import shutil

    from mailservice.termtable import Cell, Column, Keep, Short, render

    columns = [
        Column("Строка"),
        Column("Получено", 10, 4),  # the time goes under the date
        Column("Откуда"),
        Column("Исход", 10, 3),
        Column("Отправитель", 11, 2),
        Column("Тема", 10, 1),
        Column("Причина", 10, 0),
    ]
    cells: list[list[Cell]] = [
        [
            [Keep(str(row["id"]))],
            [Keep(f"{dt.datetime.fromisoformat(row['received_at']).astimezone(tz):%d.%m.%Y %H:%M}")],
            [Keep(SOURCE_NAMES.get(row["source"], row["source"]))],
            [Keep(outcome_ru(row["outcome"]))],  # folded at spaces only
            [Short(row["from_addr"] or "—")],
            [Short(str(row["subject"] or "—"), 2)],
            [Short(reason_ru(row["reason"]), 3)],
        ]
        for row in rows
    ]
    return render(columns, cells, shutil.get_terminal_size().columns)


@app.command("quarantine")
def quarantine_cmd(
    aside: Annotated[
        bool, typer.Option("--aside", help="Показать письма, отложенные как не являющиеся обращениями")
    ] = False,
) -> None:
    """Письма в карантине, ещё не разобранные сотрудниками (или отложенные как не обращения)."""
    from mailservice.intake import quarantine

    view = quarantine.View.not_appeal if aside else quarantine.View.waiting
    tz = get_settings().tz  # the department's local time, as the console shows it
    with session_scope() as session:
        entries = quarantine.listed(session, view)
        for e in entries:
            who = (
                f" | отложено {e.resolved_at.astimezone(tz):%d.%m.%Y %H:%M}, {inert(e.resolved_by)}"
                if aside and e.resolved_at
                else ""
            )
            typer.echo(
                f"{e.id:>6} {e.received_at.astimezone(tz):%d.%m.%Y %H:%M} {e.raw_sha256[:12]} "
                f"{inert(reason_ru(e.reason))}{who}"
            )
        typer.echo(f"{'Отложено как не обращения' if aside else 'В карантине'}: {len(entries)}", err=True)


@app.command("set-aside")
def set_aside_cmd(
    entry_id: Annotated[int, typer.Argument(help="Номер строки журнала из `mailservice intake quarantine`")],
    actor: Annotated[str, typer.Option(help="Кто откладывает")] = "cli",
) -> None:
    """Отложить письмо из карантина как не являющееся обращением (мусор без отправителя): без номера, письмо
    сохраняется; выпустить его можно и потом."""
    from mailservice.intake import quarantine

    try:
        with session_scope() as session:
            quarantine.set_aside(session, entry_id, actor=actor, now=utcnow())
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Строка {entry_id}: отложена как не являющаяся обращением, без регистрации")


@app.command("release")
def release_cmd(
    entry_id: Annotated[int, typer.Argument(help="Номер строки журнала")],
    actor: Annotated[str, typer.Option(help="Кто выпускает")] = "cli",
    sender: Annotated[
        str | None,
        typer.Option(
            help="Адрес автора, если в письме его прочитать нельзя: сотрудник прочитал письмо и вводит адрес сам "
            "(записывается как введённый, не подтверждён)"
        ),
    ] = None,
) -> None:
    """Пропустить письмо из карантина через приём заново (после исправления или с адресом, указанным сотрудником),
    сохранив исходную строку журнала."""
    from mailservice.intake import quarantine

    try:
        result = quarantine.release(get_settings(), entry_id, actor=actor, sender=sender)
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Строка {entry_id}: {_said(result)}")


def _said(result: IntakeResult) -> str:
    """An intake outcome in Russian: what happened, the number, the reason."""
    words = [outcome_ru(result.outcome), result.request_number or "", inert(reason_ru(result.reason))]
    return " ".join(word for word in words if word)


def is_mbox(path: Path) -> bool:
    """True for an mbox file (Thunderbird's or a mail server's export): it opens with a ``From `` line (RFC 4155),
    where a single letter opens with a header field."""
    with path.open("rb") as file:
        return file.read(5) == b"From "


def _letters(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(label, raw)`` for each letter of a file: the file itself, or each letter of an mbox in turn (one in
    memory at a time)."""
    if not is_mbox(path):
        yield str(path), path.read_bytes()
        return
    box = mailbox.mbox(str(path), create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            yield f"{path}, письмо {number}", box.get_bytes(key)
    finally:
        box.close()


@app.command("import")
def import_cmd(files: Annotated[list[Path], typer.Argument(help="Файлы .eml или mbox")]) -> None:
    """Передать письма в приём, как будто они пришли по почте: файлы .eml и файлы mbox (выгрузка Thunderbird
    или почтового сервера), каждое письмо mbox отдельно, со своей строкой итога."""
    settings = get_settings()
    for path in files:
        if not path.is_file():
            raise click.BadParameter(f"нет такого файла: {path}", param_hint="FILES")
    for path in files:
        count = 0
        for label, raw in _letters(path):
            count += 1
            typer.echo(f"{inert(label)}: {_said(process_raw(settings, raw, Source('file')))}")
        if count == 0:
            typer.echo(f"{inert(str(path))}: в файле mbox нет писем", err=True)


@app.command("held")
def held_cmd(as_json: Annotated[bool, typer.Option("--json", help="Вывести в формате JSON")] = False) -> None:
    """Письма, ждущие регистрации (похожи на рекламу, автоответ или рассылку), и срок их регистрации."""
    settings = get_settings()
    today = utcnow().astimezone(settings.tz).date()
    with session_scope(settings) as session:
        rows: list[dict[str, Any]] = []
        for request in actions.held_requests(session):
            due = queues.registration_date(settings, request)
            rows.append(
                {
                    "id": request.id,
                    "received_at": request.received_at.isoformat(),
                    "register_by": due.isoformat() if due else None,
                    "late": bool(due and today > due),
                    "from": request.reply_email,
                    "subject": request.subject,
                    "reasons": actions.hold_reasons_of(request),
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        mark = " ПРОСРОЧЕНО" if row["late"] else ""
        typer.echo(
            f"{row['id']:>6} зарегистрировать до {row['register_by']}{mark} {inert((row['from'] or '-')[:30]):<30} "
            f"{inert(str(row['subject'])[:40])} | {inert('; '.join(row['reasons'])[:80])}"
        )
    typer.echo(f"Ждут регистрации: {len(rows)}", err=True)


def _held(session: Session, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None or not queues.is_held(request):
        raise click.ClickException(f"Нет письма {request_id}, ждущего регистрации")
    return request


@app.command("register")
def register_cmd(
    request_id: Annotated[int, typer.Argument(help="Номер (id) письма из `mailservice intake held`")],
    actor: Annotated[str, typer.Option(help="Кто регистрирует")] = "cli",
) -> None:
    """Зарегистрировать задержанное письмо: номер, подтверждение и срок с этого момента."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            closed = session.get(Request, request_id)
            # A letter closed as advertising by mistake is registered too (the lateness recorded).
            unnumbered = closed is not None and closed.status == "closed" and closed.number is None
            request = closed if unnumbered and closed is not None else _held(session, request_id)
            actions.register_held(session, settings, request, actor=actor, now=utcnow())
            typer.echo(f"Зарегистрирован № {request.number}, срок ответа {request.due_date}")
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from None


@app.command("spam")
def spam_cmd(
    request_id: Annotated[int, typer.Argument(help="Номер (id) письма из `mailservice intake held`")],
    actor: Annotated[str, typer.Option(help="Кто подтверждает")] = "cli",
) -> None:
    """Подтвердить, что задержанное письмо — реклама без запроса: оно закрывается без номера."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            actions.confirm_spam(session, _held(session, request_id), actor=actor, now=utcnow())
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Письмо {request_id}: подтверждено как реклама, закрыто без регистрации")
