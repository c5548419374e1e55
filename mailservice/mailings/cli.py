"""``mailservice subscribers ...`` and ``mailservice campaign ...``: staff commands for the mailings."""

from __future__ import annotations

import asyncio
import csv
import email
import email.policy
import json
import signal
import sys
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import func, select

from mailservice.config import get_settings
from mailservice.db import session_scope, utcnow
from mailservice.mail import smtp
from mailservice.mailings import campaigns, consent, roster, subscribers, upkeep
from mailservice.mailings.campaigns import CampaignError
from mailservice.mailings.consent import parse_address
from mailservice.mailings.models import (
    CAMPAIGN_STATUS_NAMES,
    CampaignStatus,
    ConsentText,
    MailingList,
    Subscription,
    SubscriptionStatus,
)
from mailservice.mailings.render import CampaignRenderer, Recipient, TemplateRefused, signer_from_settings
from mailservice.mailings.sender import send_campaign
from mailservice.mailings.subscribers import UnknownList
from mailservice.spreadsheets import decode_text, safe_record

subscribers_app = typer.Typer(help="Подписчики и списки рассылки.", no_args_is_help=True)
campaign_app = typer.Typer(help="Рассылки: создание, проверка, отправка, состояние.", no_args_is_help=True)
err = Console(stderr=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"не удалось прочитать {path}: {exc}") from None


# --------------------------------------------------------------------------------------------------------------
# subscribers
# --------------------------------------------------------------------------------------------------------------


@subscribers_app.command("lists")
def lists_cmd() -> None:
    """Списки рассылки с числом активных подписчиков."""
    with session_scope() as session:
        subscribers.default_list(session)
        counts = dict(
            session.execute(
                select(Subscription.list_id, func.count())
                .where(Subscription.status == SubscriptionStatus.active)
                .group_by(Subscription.list_id)
            ).all()
        )
        for row in session.scalars(select(MailingList).order_by(MailingList.id)):
            archived = " (в архиве)" if row.archived_at else ""
            typer.echo(f"{row.slug:<20} {counts.get(row.id, 0):>7}  {row.title}{archived}")


@subscribers_app.command("list-create")
def list_create_cmd(
    slug: Annotated[str, typer.Argument(help="Код списка (латиница)")],
    title: Annotated[str, typer.Option("--title", help="Название для подписчиков")],
    purpose: Annotated[str, typer.Option("--purpose", help="Цель обработки (входит в согласие)")] = "",
) -> None:
    """Создать список рассылки (тему)."""
    try:
        with session_scope() as session:
            subscribers.create_list(session, slug, title, purpose)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Список {slug} создан.")


@subscribers_app.command("consent-text")
def consent_text_cmd() -> None:
    """Действующий текст согласия и его версия (значение для consent_text_version)."""
    settings = get_settings()
    with session_scope(settings) as session:
        text = consent.current_consent(session, settings)
        typer.echo(f"Версия: {text.version}\n\n{text.text}")


@subscribers_app.command("import")
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="CSV: email, name, list, consent_at, consent_source, consent_text_version")
    ],
    consent_text: Annotated[
        list[str] | None,
        typer.Option("--consent-text", help="VERSION=FILE: текст согласия этой версии, показанный подписчикам"),
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Загрузить верные строки, пропустив ошибочные")
    ] = False,
) -> None:
    """Загрузить подписчиков с подтверждением согласия; строки без него отклоняются с номерами."""
    settings = get_settings()
    try:
        decoded = decode_text(file.read_bytes())
        rows = roster.read_csv(decoded.text)
    except OSError as exc:
        raise click.ClickException(f"не удалось прочитать {file}: {exc}") from None
    except ValueError as exc:  # EncodingError and a broken row name the line
        raise click.ClickException(f"{file}: {exc}") from None
    typer.echo(f"Кодировка файла: {decoded.encoding_name}")
    with session_scope(settings) as session:
        for spec in consent_text or []:
            version, sep, text_file = spec.partition("=")
            if not sep or not version.strip() or len(version.strip()) > 40:
                raise click.BadParameter("ожидается VERSION=FILE", param_hint="--consent-text")
            text = _read(Path(text_file)).strip()
            existing = session.get(ConsentText, version.strip())
            digest = consent.text_version(text)[1]
            if existing is not None and existing.sha256 != digest:
                raise click.ClickException(f"версия {version.strip()} уже записана с другим текстом")
            if existing is None:
                session.add(ConsentText(version=version.strip(), text=text, sha256=digest))
        session.flush()
        report = roster.import_rows(
            session, settings, rows, source_name=file.name, now=utcnow(), skip_invalid=skip_invalid
        )
        for line, reason in report.refused:
            err.print(f"строка {line}: {reason}", highlight=False)
        if report.refused and not skip_invalid:
            session.rollback()
            raise click.ClickException(
                f"отклонено строк: {len(report.refused)}; ничего не загружено (исправьте файл или --skip-invalid)"
            )
    typer.echo(
        f"Добавлено: {report.added}, активировано: {report.activated}, уже были: {report.unchanged}, "
        f"отклонено: {len(report.refused)}"
    )
    if report.refused:
        raise typer.Exit(1)


@subscribers_app.command("export")
def export_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Файл CSV (по умолчанию stdout)")] = None,
    list_slug: Annotated[str | None, typer.Option("--list", help="Только этот список")] = None,
    include_all: Annotated[bool, typer.Option("--all", help="Также неподтверждённые и отписавшиеся")] = False,
) -> None:
    """Выгрузить подписчиков с подтверждением согласия (формат загрузки и статус)."""
    with session_scope() as session:
        rows = roster.export_rows(session, list_slug=list_slug, include_all=include_all)
    columns = [*roster.CSV_COLUMNS, "status"]
    safe = [safe_record(row) for row in rows]  # names and sources come from outside (import reads them back)
    if output is None:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(safe)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(safe)
    err.print(f"Выгружено: {len(rows)} → {output}", highlight=False)


@subscribers_app.command("purge")
def purge_cmd() -> None:
    """Уничтожить персональные данные отозвавших согласие (или не подтвердивших) по истечении срока (152-ФЗ)."""
    settings = get_settings()
    with session_scope(settings) as session:
        count = upkeep.purge(session, settings, utcnow())
    typer.echo(f"Удалены персональные данные бывших подписчиков: {count}")


# --------------------------------------------------------------------------------------------------------------
# campaign
# --------------------------------------------------------------------------------------------------------------


@campaign_app.command("create")
def create_cmd(
    list_slug: Annotated[str, typer.Option("--list", help="Код списка")],
    subject: Annotated[str, typer.Option("--subject", help="Тема письма")],
    template: Annotated[Path, typer.Option("--template", help="Шаблон Jinja2 (текст); ссылка — {{ unsubscribe_url }}")],
    html: Annotated[Path | None, typer.Option("--html", help="Шаблон Jinja2 HTML-версии (иначе из текста)")] = None,
) -> None:
    """Создать черновик рассылки и вывести его номер; шаблон без ссылки отписки отклоняется."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            campaign = campaigns.create(
                session,
                settings,
                list_slug=list_slug,
                subject=subject,
                text=_read(template),
                html=_read(html) if html is not None else None,
                template_name=template.name,
            )
            campaign_id = campaign.id
    except (TemplateRefused, UnknownList) as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(campaign_id)


def _renderer(campaign_id: int, *, prefix: str = "") -> CampaignRenderer:
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            campaign = campaigns.get(session, campaign_id)
            source = campaigns.source_of(session, campaign)
            uid = campaign.uid
        return CampaignRenderer(
            settings,
            source,
            campaign_id=campaign_id,
            uid=uid,
            signer=signer_from_settings(settings),
            subject_prefix=prefix,
        )
    except (CampaignError, TemplateRefused) as exc:
        raise click.ClickException(str(exc)) from None


def _sample(address: str) -> Recipient:
    settings = get_settings()
    # A link that leads to the "invalid link" page: a test copy must not withdraw anybody.
    token = subscribers.unsubscribe_token(settings, 0, "test")
    return Recipient(
        subscription_id=0,
        address=address,
        name="",
        unsubscribe_url=subscribers.unsubscribe_url(settings, token),
        unsubscribe_mailto=subscribers.unsubscribe_mailto(settings, token),
    )


@campaign_app.command("preview")
def preview_cmd(
    campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")],
    html_out: Annotated[Path | None, typer.Option("--html-out", help="Записать HTML-версию в файл")] = None,
) -> None:
    """Показать письмо, как его получит подписчик: заголовки и текст (ссылка в нём условная)."""
    raw = _renderer(campaign_id).message(_sample("subscriber@example.invalid"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    for name in ("From", "To", "Subject", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Message-ID"):
        typer.echo(f"{name}: {parsed[name]}")
    text = parsed.get_body(preferencelist=("plain",))
    typer.echo("")
    typer.echo(text.get_content() if text is not None else "")
    if html_out is not None:
        part = parsed.get_body(preferencelist=("html",))
        html_out.write_text(part.get_content() if part is not None else "", encoding="utf-8")
        err.print(f"HTML-версия: {html_out}", highlight=False)


@campaign_app.command("test-send")
def test_send_cmd(
    campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")],
    to: Annotated[str, typer.Option("--to", help="Куда отправить пробное письмо")],
) -> None:
    """Send one test copy (subject marked [Тест]) to an address; subscribers get nothing."""
    settings = get_settings()
    address = parse_address(to)
    if address is None:
        raise click.BadParameter("некорректный адрес", param_hint="--to")
    raw = _renderer(campaign_id, prefix="[Тест] ").message(_sample(address.ascii))
    outcome = asyncio.run(smtp.send_batch(settings, [(0, settings.from_address, [address.ascii], raw)]))[0]
    if not outcome.ok:
        raise click.ClickException(f"письмо не отправлено: {outcome.error}")
    typer.echo(f"Пробное письмо отправлено на {address.normalized}.")


def _status_line(report: campaigns.CampaignStatusReport) -> str:
    status = CAMPAIGN_STATUS_NAMES[CampaignStatus(report.status)]
    return (
        f"Рассылка № {report.id} ({status}): всего {report.total}, в очереди {report.queued}, "
        f"отправлено {report.sent}, ошибок {report.failed}, пропущено (отписались) {report.skipped_withdrawn}, "
        f"возвраты {report.bounced}, неизвестно {report.ambiguous}"
    )


def _report(campaign_id: int) -> campaigns.CampaignStatusReport:
    with session_scope() as session:
        return campaigns.status(session, campaign_id)


@campaign_app.command("send")
def send_cmd(
    campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")],
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Только запустить: отправит mailservice worker")] = False,
) -> None:
    """Отправить рассылку с индикатором хода; завершается, когда каждое письмо обработано."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            campaign = campaigns.get(session, campaign_id)
            if campaign.status == "paused":
                raise CampaignError("рассылка приостановлена: продолжите её командой resume")
            campaigns.start(session, settings, campaign_id, utcnow())
    except (CampaignError, TemplateRefused) as exc:
        raise click.ClickException(str(exc)) from None
    if no_wait:
        typer.echo(_status_line(_report(campaign_id)))
        return

    async def run() -> str:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        summary = await send_campaign(settings, campaign_id, stop=stop)
        return summary.status

    done = threading.Event()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as progress:
        first = _report(campaign_id)
        task = progress.add_task(f"Рассылка № {campaign_id}", total=first.total, detail="")

        def watch() -> None:
            # Counts come from the database, so the bar shows every worker's copies, not only this process's.
            while not done.wait(0.5):
                report = _report(campaign_id)
                progress.update(
                    task,
                    completed=report.handled,
                    detail=f"ошибок {report.failed}, отписались {report.skipped_withdrawn}",
                )

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            status = asyncio.run(run())
        finally:
            done.set()
            watcher.join(timeout=2)
        final = _report(campaign_id)
        progress.update(task, completed=final.handled)
    typer.echo(_status_line(final))
    if status == "paused":
        typer.echo("Рассылка приостановлена; продолжить: mailservice campaign resume " + str(campaign_id))
    elif status != "done":
        raise typer.Exit(1)


@campaign_app.command("pause")
def pause_cmd(campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")]) -> None:
    """Приостановить рассылку; уже отправляемые письма уйдут."""
    try:
        with session_scope() as session:
            campaigns.pause(session, campaign_id)
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Рассылка № {campaign_id} приостановлена.")


@campaign_app.command("resume")
def resume_cmd(campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")]) -> None:
    """Возобновить рассылку (её продолжит worker или `campaign send`)."""
    try:
        with session_scope() as session:
            campaigns.resume(session, campaign_id)
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Рассылка № {campaign_id} продолжается.")


@campaign_app.command("status")
def status_cmd(
    campaign_id: Annotated[int, typer.Argument(help="Номер рассылки")],
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Счётчики: в очереди, отправлено, ошибки, пропущено (отзыв), возвраты, неизвестно."""
    try:
        report = _report(campaign_id)
    except CampaignError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        typer.echo(_status_line(report))


@campaign_app.command("list")
def list_cmd() -> None:
    """Все рассылки, новые сверху."""
    from mailservice.mailings.models import Campaign

    with session_scope() as session:
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id.desc())):
            status = CAMPAIGN_STATUS_NAMES[CampaignStatus(campaign.status)]
            typer.echo(f"{campaign.id:>5} {status:<14} {campaign.created_at:%Y-%m-%d %H:%M} {campaign.subject}")
