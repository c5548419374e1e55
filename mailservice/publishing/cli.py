"""`mailservice site ...`: scaffold a document, check, build, serve and publish the disclosure site, QR codes."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
import yaml

from mailservice.config import get_settings
from mailservice.db import utcnow

if TYPE_CHECKING:
    from mailservice.publishing.schema import SiteSchema
    from mailservice.publishing.stats import SiteData

app = typer.Typer(help="Сайт раскрытия информации: документы, проверка, сборка, публикация.", no_args_is_help=True)

SiteOption = Annotated[
    Path | None,
    typer.Option(
        "--site",
        help="Папка сайта (mkdocs.yml, sections.yml, docs/); по умолчанию MAILSERVICE_SITE_DIR или DATA_DIR/site",
        show_default=False,
    ),
]


def _site(site: Path | None) -> Path:
    """The site folder given, or the configured one (created from the packaged skeleton on first use)."""
    if site is None:
        from mailservice.publishing.scaffold import ScaffoldError, init_site

        site = get_settings().effective_site_dir
        try:
            if init_site(site):
                typer.echo(f"Папка сайта создана из образца: {site}", err=True)
        except ScaffoldError as exc:
            raise click.ClickException(str(exc)) from None
    if not (site / "mkdocs.yml").is_file():
        raise click.ClickException(f"в папке {site} нет mkdocs.yml: укажите папку сайта (--site)")
    return site


def _today() -> dt.date:
    return utcnow().astimezone(get_settings().tz).date()


def _schema(site: Path) -> SiteSchema:
    from mailservice.publishing.schema import SchemaError, load_schema

    try:
        return load_schema(site)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None


def _data() -> SiteData:
    from mailservice.publishing.stats import StatisticsUnavailable, load_site_data

    try:
        return load_site_data(get_settings(), now=utcnow())
    except StatisticsUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _docs_dir(site: Path) -> Path:
    from mailservice.publishing.mkdocs_config import read_mkdocs_yml

    return site / str(read_mkdocs_yml(site / "mkdocs.yml").get("docs_dir") or "docs")


@app.command("init")
def init_cmd(site: SiteOption = None) -> None:
    """Создать папку сайта из образца; существующий сайт не меняется."""
    from mailservice.publishing.scaffold import ScaffoldError, init_site

    target = site or get_settings().effective_site_dir
    try:
        created = init_site(target)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    if created:
        typer.echo(f"Папка сайта создана: {target}. Заполните поля с пометкой ЗАПОЛНИТЬ: mailservice site check")
    else:
        typer.echo(f"Сайт уже есть в {target}: ничего не изменено")


@app.command("new")
def new_cmd(
    category: Annotated[str, typer.Option("--category", help="Раздел (category из sections.yml)")],
    title: Annotated[str, typer.Option("--title", help="Заголовок документа")],
    attach: Annotated[list[Path] | None, typer.Option("--attach", help="Файл приложения (можно несколько)")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Поле заголовка: поле=значение (можно несколько)")
    ] = None,
    site: SiteOption = None,
) -> None:
    """Создать страницу документа в разделе, с заголовком и приложениями."""
    from mailservice.publishing.scaffold import ScaffoldError, create_document

    site = _site(site)
    schema = _schema(site)
    section = schema.by_key(category)
    if section is None:
        known = ", ".join(s.key for s in schema.sections if s.documents)
        raise click.BadParameter(f"нет раздела {category!r}; разделы с документами: {known}", param_hint="--category")
    if not section.documents:
        raise click.BadParameter(
            f"в раздел {category!r} документы не добавляются: это одна страница", param_hint="--category"
        )
    values: dict[str, object] = {}
    for item in set_ or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"ожидалось поле=значение, а не {item!r}", param_hint="--set")
        try:
            values[name.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[name.strip()] = raw
    try:
        created = create_document(_docs_dir(site), section, title, today=_today(), values=values, attach=attach or [])
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Создан документ: {created.page}")
    for path in created.attachments:
        typer.echo(f"Приложение: {path}")
    typer.echo("Заполните поля с пометкой ЗАПОЛНИТЬ и запустите: mailservice site check")


@app.command("check")
def check_cmd(
    site: SiteOption = None,
    today: Annotated[
        str | None, typer.Option("--today", help="Дата проверки ГГГГ-ММ-ДД (по умолчанию сегодня)")
    ] = None,
) -> None:
    """Проверить разделы, заголовки, ссылки, приложения и даты пересмотра; код 1 при любой проблеме."""
    from mailservice.publishing.checks import check_site
    from mailservice.publishing.schema import SchemaError

    site = _site(site)
    try:
        day = dt.date.fromisoformat(today) if today else _today()
    except ValueError:
        raise click.BadParameter("ожидалась дата ГГГГ-ММ-ДД", param_hint="--today") from None
    try:
        problems = check_site(site, today=day)
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise click.ClickException(f"найдено проблем: {len(problems)}; сайт нельзя публиковать, пока они не исправлены")
    typer.echo("Проверка пройдена: проблем не найдено.")


@app.command("build")
def build_cmd(
    output: Annotated[Path, typer.Option("--output", help="Папка для собранного сайта")],
    site: SiteOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Предупреждения MkDocs считать ошибками")] = False,
) -> None:
    """Собрать сайт в папку (без базы данных страницы статистики скажут «Нет данных»)."""
    from mailservice.publishing.build import BuildError, build_site, register_consent_text

    site = _site(site)
    data = _data()
    register_consent_text(get_settings())
    try:
        build_site(site, output, data=data, strict=strict)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
    note = "" if data.has_requests else " (статистики нет: база данных не подключена)"
    typer.echo(f"Сайт собран в {output}{note}")


@app.command("serve")
def serve_cmd(
    site: SiteOption = None,
    dev_addr: Annotated[str | None, typer.Option("--dev-addr", help="Адрес и порт, например 127.0.0.1:8001")] = None,
) -> None:
    """Показать сайт с обновлением на лету для правки (сервер разработки MkDocs, не для публики)."""
    from mkdocs.commands.serve import serve

    site = _site(site)
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    serve(config_file=str(site / "mkdocs.yml"), dev_addr=dev_addr)


@app.command("publish")
def publish_cmd(
    target: Annotated[Path, typer.Option("--target", help="Публикуемая папка (символическая ссылка на сборку)")],
    site: SiteOption = None,
    notify: Annotated[
        bool, typer.Option("--notify", help="Сообщить подписчикам (только давшим согласие) о новых документах")
    ] = False,
    keep: Annotated[int, typer.Option("--keep", min=1, help="Сколько сборок хранить для отката")] = 3,
    actor: Annotated[str, typer.Option("--actor", help="Кто публикует (для журнала рассылок)")] = "",
) -> None:
    """Проверить, собрать новый выпуск и атомарно переключить на него; по желанию уведомить подписчиков."""
    from mailservice.publishing.build import BuildError, publish_site, register_consent_text
    from mailservice.publishing.checks import check_site
    from mailservice.publishing.mkdocs_config import read_mkdocs_yml
    from mailservice.publishing.notify import NotifyError, draft_campaigns, start_campaigns

    site = _site(site)
    problems = check_site(site, today=_today())
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        raise click.ClickException(f"публикация отменена: найдено проблем: {len(problems)} (mailservice site check)")
    schema = _schema(site)
    data = _data()
    register_consent_text(get_settings())
    try:
        result = publish_site(site, target, data=data, schema=schema, docs_dir=_docs_dir(site), keep=keep)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None
    typer.echo(f"Опубликовано: {target} -> {result.release}")
    typer.echo(f"Новых документов: {len(result.new_documents)}")
    if not notify or not result.new_documents:
        return
    site_url = str(read_mkdocs_yml(site / "mkdocs.yml").get("site_url") or "")
    drafts = draft_campaigns(result.new_documents, schema, site_url=site_url)
    try:
        ids = start_campaigns(get_settings(), drafts, now=utcnow(), actor=actor or "site publish")
    except NotifyError as exc:
        raise click.ClickException(str(exc)) from None
    for draft, campaign_id in zip(drafts, ids, strict=True):
        typer.echo(f"Рассылка № {campaign_id} по списку «{draft.list_slug}» запущена (только подписчикам с согласием)")


@app.command("qr")
def qr_cmd(
    output: Annotated[Path, typer.Option("--output", help="Папка для файлов QR-кода")],
    site: SiteOption = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Адрес (по умолчанию форма отзыва с отметкой QR-кода)")
    ] = None,
    site_page: Annotated[
        bool, typer.Option("--site-page", help="Вести на страницу отзыва сайта (ответы не отличить от сайта)")
    ] = False,
) -> None:
    """Записать QR-код формы отзыва (PNG и SVG) для печатных материалов; ответы по нему учитываются отдельно."""
    from mailservice.publishing.generated import QR_NAME, feedback_url
    from mailservice.publishing.mkdocs_config import read_mkdocs_yml
    from mailservice.publishing.qr import qr_png, qr_svg

    site = _site(site)
    if url or site_page:
        target = url or feedback_url(_schema(site), str(read_mkdocs_yml(site / "mkdocs.yml").get("site_url") or ""))
    else:  # issue 17: the service's own form, marked, so that the QR code's answers are told apart from the site's
        target = f"{get_settings().public_url.rstrip('/')}/feedback?from=qr"
    if not target:
        raise click.ClickException("не задан адрес сайта (MAILSERVICE_SITE_URL) и не указан --url")
    try:
        png, svg = qr_png(target), qr_svg(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{QR_NAME}.png").write_bytes(png)
    (output / f"{QR_NAME}.svg").write_bytes(svg)
    typer.echo(f"QR-код ({target}) записан в {output}")
