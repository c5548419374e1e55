"""``mailservice intake``: the journal, the quarantine, and feeding .eml files by hand."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.config import get_settings
from mailservice.db import session_scope, utcnow
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw

app = typer.Typer(help="Журнал входящей почты и карантин.", no_args_is_help=True)

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
        writer.writerows(rows)
    elif fmt == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            typer.echo(
                f"{row['id']:>6} {row['received_at'][:19]} {row['source']:<5} {row['outcome']:<18} "
                f"{(row['from_addr'] or '-')[:30]:<30} {str(row['subject'])[:40]} {row['reason'][:60]}"
            )


@app.command("quarantine")
def quarantine_cmd() -> None:
    """Письма в карантине, ещё не разобранные сотрудниками."""
    with session_scope() as session:
        entries = session.scalars(
            select(IntakeEntry)
            .where(IntakeEntry.outcome == Outcome.quarantined, IntakeEntry.resolved_at.is_(None))
            .order_by(IntakeEntry.id)
        ).all()
        for e in entries:
            typer.echo(f"{e.id:>6} {e.received_at:%Y-%m-%d %H:%M} {e.raw_sha256[:12]} {e.reason}")
        typer.echo(f"В карантине: {len(entries)}", err=True)


@app.command("release")
def release_cmd(
    entry_id: Annotated[int, typer.Argument(help="Номер строки журнала")],
    actor: Annotated[str, typer.Option(help="Кто выпускает")] = "cli",
) -> None:
    """Пропустить письмо из карантина через приём заново (после исправления), сохранив исходную строку журнала."""
    settings = get_settings()
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, entry_id)
        if entry is None or entry.outcome != Outcome.quarantined:
            raise click.ClickException(f"В карантине нет строки {entry_id}")
        if entry.resolved_at is not None:
            raise click.ClickException(f"Строка {entry_id} уже разобрана ({entry.resolved_by})")
        raw = BlobStore(settings.blob_dir).get(entry.raw_sha256)
    result = process_raw(settings, raw, Source("file", envelope_from=entry.envelope_from))
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, entry_id)
        assert entry is not None
        if result.outcome != Outcome.quarantined:
            entry.resolved_at, entry.resolved_by = utcnow(), actor
    typer.echo(f"Строка {entry_id}: {result.outcome} {result.request_number or ''} {result.reason}".rstrip())


@app.command("import")
def import_cmd(files: Annotated[list[Path], typer.Argument(help="Файлы .eml")]) -> None:
    """Передать файлы .eml в приём, как будто они пришли по почте."""
    settings = get_settings()
    for path in files:
        if not path.is_file():
            raise click.BadParameter(f"нет такого файла: {path}", param_hint="FILES")
        result = process_raw(settings, path.read_bytes(), Source("file"))
        typer.echo(f"{path}: {result.outcome} {result.request_number or ''} {result.reason}".rstrip())
