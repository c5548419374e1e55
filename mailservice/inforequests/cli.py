"""``mailservice requests``: register from any channel, list, show, change status, export the register."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click import exceptions as tclick

from mailservice.cli_options import StaffOption
from mailservice.config import get_settings
from mailservice.engine import utcnow
from mailservice.inforequests.identity_documents import DOCUMENTS
from mailservice.inforequests.lifecycle import (
    CHANNEL_NAMES,
    REFUSAL_GROUNDS,
    STAFF_SETTABLE,
    STATUS_NAMES,
    Channel,
    RefusedAction,
    Status,
)
from mailservice.termtext import inert

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy.orm import Session

    from mailservice.config import Settings
    from mailservice.inforequests.listing import Listed
    from mailservice.inforequests.models import Request
    from mailservice.termtable import Cell, Column

    Layout = tuple[list[Column], list[list[Cell]]]

EARLIEST_RECEIVED_YEAR = 2000  # a date of receipt before this is a typing error (README)
app = typer.Typer(help="Реестр запросов и обращений.", no_args_is_help=True)
# The models `list` and `show` read: the register's domain only, not every domain's (see model_domains).
REGISTER = ("requests",)  # (`list` reads without them: inforequests/listing.py)


# The service layer (notifications, templates, the classifier's labels) is imported by the commands that change
# something and the export by `export`, not by `list` and `show`; `list` reads without the ORM and the models
# (inforequests/listing.py), and the other commands import the session and the models when they run: a start of
# the CLI stays short.


def _session(settings: Settings, *, domains: tuple[str, ...] | None = None) -> AbstractContextManager[Session]:
    """A transaction of :func:`mailservice.db.session_scope` (the ORM is imported by the commands that use it)."""
    from mailservice.db import session_scope

    return session_scope(settings, domains=domains)


def _load(session: Session, number: str) -> Request:
    from mailservice.inforequests.models import get_by_number

    request = get_by_number(session, number)
    if request is None:
        raise tclick.ClickException(f"Запрос № {number} не найден")
    return request


def _email_option(email: str) -> str | None:
    """The normalised ``--email`` value, None when not given; a usage error when it is no address."""
    from mailservice.mail.headers import normalise_address

    if not email:
        return None
    address = normalise_address(email)
    if address is None:
        raise tclick.BadParameter(f"это не адрес электронной почты: {email!r}", param_hint="--email")
    return address


@app.command("register")
def register_cmd(
    channel: Annotated[Channel, typer.Option(help="Канал: phone, visit, post, social, web, email")],
    subject: Annotated[str, typer.Option(help="Тема")],
    text: Annotated[str, typer.Option(help="Текст запроса (для устного: краткое содержание)")],
    name: Annotated[str, typer.Option(help="ФИО или наименование организации")] = "",
    email: Annotated[str, typer.Option(help="Адрес эл. почты для уведомлений")] = "",
    phone: Annotated[str, typer.Option(help="Телефон")] = "",
    postal_address: Annotated[str, typer.Option("--address", help="Почтовый адрес")] = "",
    received: Annotated[
        str, typer.Option(help="Когда получен (ГГГГ-ММ-ДДTЧЧ:ММ, время департамента); по умолчанию сейчас")
    ] = "",
    actor: Annotated[str, typer.Option(help="Кто регистрирует")] = "cli",
) -> None:
    """Зарегистрировать запрос, поступивший по телефону, на приёме, почтой, через соцсети или веб-форму."""
    from mailservice.inforequests import service
    from mailservice.inforequests.classification import labels_for

    settings = get_settings()
    address = _email_option(email)
    now = utcnow()
    received_at = now
    if received:
        try:
            local = dt.datetime.fromisoformat(received)
        except ValueError:
            raise tclick.BadParameter("ожидалось ГГГГ-ММ-ДДTЧЧ:ММ", param_hint="--received") from None
        if local.year < EARLIEST_RECEIVED_YEAR:  # as the console's form (README: before 2000 is a typing error)
            raise tclick.BadParameter(
                f"дата поступления раньше {EARLIEST_RECEIVED_YEAR} года: проверьте год", param_hint="--received"
            )
        received_at = (local if local.tzinfo else local.replace(tzinfo=settings.tz)).astimezone(dt.UTC)
        if received_at > now:
            raise tclick.BadParameter("момент получения ещё не наступил", param_hint="--received")
    with _session(settings) as session:
        client = service.find_or_create_client(
            session, now=now, name=name, email=address, phone=phone or None, postal_address=postal_address
        )
        request = service.create_request(
            session,
            settings,
            now=now,
            client=client,
            channel=channel,
            subject=subject,
            text=text,
            labels=labels_for(subject, text),
            received_at=received_at,
            reply_email=address,  # this request's reply address only: typing it proves nothing
            reply_name=name,
            actor=actor,
        )
        if request.number:
            typer.echo(f"Зарегистрирован № {request.number}, срок ответа {request.due_date}")
        else:
            typer.echo(f"Запрос сохранён без регистрации (id {request.id}): {request.events[-1].comment}")


@app.command("identity-check")
def identity_check_cmd(
    client_id: Annotated[int, typer.Option("--client", help="Номер записи клиента")],
    document: Annotated[str, typer.Option(help="Предъявленный документ: " + ", ".join(DOCUMENTS))],
    staff: StaffOption,
    email: Annotated[str, typer.Option(help="Адрес эл. почты, названный при проверке")] = "",
    phone: Annotated[str, typer.Option(help="Телефон, названный при проверке")] = "",
    note: Annotated[str, typer.Option(help="Примечание")] = "",
) -> None:
    """Записать проверку личности при личном приёме: названные тогда адрес и телефон становятся
    подтверждёнными (в журнал аудита). Проверивший входит своей учётной записью оператора или администратора."""
    from mailservice.inforequests import identity
    from mailservice.inforequests.models import Client
    from mailservice.staff_cli import signed_in_staff
    from mailservice.web.staff import audit
    from mailservice.web.staff.auth import OPERATE

    if document not in DOCUMENTS:
        raise tclick.BadParameter(f"ожидается одно из: {', '.join(DOCUMENTS)}", param_hint="--document")
    address = _email_option(email)
    # As in the console (web/staff/identity.py): who checked is an account that may operate, never a name typed in.
    by = signed_in_staff(staff, OPERATE)
    now = utcnow()
    try:
        with _session(get_settings()) as session:
            client = session.get(Client, client_id)
            if client is None:
                raise tclick.ClickException(f"Клиент № {client_id} не найден")
            check = identity.record_check(
                session,
                client,
                document=document,
                checked_by=by,
                now=now,
                email=address,
                phone=phone.strip()[:40] or None,
                note=note,
            )
            session.flush()
            audit.record(
                session,
                now=now,
                actor=by,
                action="identity_check",
                object_type="client",
                object_id=client.id,
                details={"check": check.id, "document": document, "email": address, "via": "cli"},
            )
    except identity.IdentityError as exc:
        raise tclick.ClickException(str(exc)) from None
    typer.echo(f"Проверка записана: клиент № {client_id}, {DOCUMENTS[document]}")


@app.command("list")
def list_cmd(
    status: Annotated[Status | None, typer.Option(help="Только с этим статусом")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Только просроченные")] = False,
    held: Annotated[bool, typer.Option("--held", help="Только ждущие регистрации (задержаны как реклама)")] = False,
    to_forward: Annotated[
        bool,
        typer.Option(
            "--to-forward",
            help="Только не относящиеся к компетенции, ждущие перенаправления; первыми — ближайшие по сроку",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести в формате JSON")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Сколько строк показать")] = 100,
) -> None:
    """Список запросов, новые сверху."""
    from mailservice.engine import get_engine
    from mailservice.inforequests import queues
    from mailservice.inforequests.listing import list_requests
    from mailservice.workdays import default_calendar

    settings = get_settings()
    today = utcnow().astimezone(settings.tz).date()
    calendar = default_calendar(settings)
    found = list_requests(
        get_engine(settings), limit=limit, status=status, held=held, to_forward=to_forward, tz=settings.tz
    )
    rows = [r for r in found if not overdue or queues.is_overdue(r, today)]

    def iso(day: dt.date | None) -> str | None:
        return day.isoformat() if day else None

    def flag(r: Listed) -> str:
        if queues.is_overdue(r, today):
            return "ПРОСРОЧЕН"
        if queues.is_due_soon(r, today, calendar, settings.due_soon_working_days):
            return "скоро срок"
        return "СРОЧНО" if r.urgency == "urgent" else ""

    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "number": r.number,
                        "status": r.status,
                        "channel": r.channel,
                        "subject": r.subject,
                        "type": r.type,
                        "topic": r.topic,
                        "urgency": r.urgency,
                        "received_at": r.received_at.isoformat(),
                        "register_by": iso(queues.registration_date(settings, r)),
                        "forward_by": iso(queues.forwarding_date(r, settings.tz)),
                        "due_date": iso(r.due_date),
                        "overdue": queues.is_overdue(r, today),
                        "due_soon": queues.is_due_soon(r, today, calendar, settings.due_soon_working_days),
                    }
                    for r in rows
                ],
                ensure_ascii=False,
            )
        )
        return
    if not rows:
        typer.echo("Запросов нет.")
        return
    terms = {r.id: (queues.registration_date(settings, r), queues.forwarding_date(r, settings.tz)) for r in rows}
    typer.echo(_register_table(rows, terms, flag))


def _register_table(
    rows: list[Listed], terms: dict[int, tuple[dt.date | None, dt.date | None]], flag: Callable[[Listed], str]
) -> str:
    """The list as a table that fits the terminal: a registration number and a date are never cut (issue 15).

    As wide as it needs, one column a field; narrower, the status and channel go under the number and the subject
    under the client. What gives way: the dates' notes fold first, then the statuses and channels (at spaces), then
    the subject (shortened with «…» to two lines) and the client's name; statuses, channels and notes are never
    broken inside a word.
    """
    from mailservice.termtable import Column, Keep, Short, first_fitting, render

    def term(r: Listed) -> list[str | Keep | Short]:
        register_by, forward_by = terms[r.id]
        cell: list[str | Keep | Short] = [Keep(r.due_date.isoformat() if r.due_date else "")]
        cell += [Keep(f"зарегистрировать до {register_by}")] if register_by else []
        cell += [Keep(f"перенаправить до {forward_by}")] if forward_by else []
        return cell

    def number(r: Listed) -> Keep:
        return Keep(r.number or f"(id {r.id})")

    flags = {r.id: flag(r) for r in rows}

    def flag_line(r: Listed) -> list[str | Keep | Short]:
        return [Keep(flags[r.id])] if flags[r.id] else []

    status = {r.id: Keep(STATUS_NAMES[Status(r.status)]) for r in rows}  # words of their own: never broken
    channel = {r.id: Keep(CHANNEL_NAMES[Channel(r.channel)]) for r in rows}
    wide: Layout = (
        [Column("№"), Column("Статус", 9, 4), Column("Канал", 7, 3), Column("Клиент", 16, 2), Column("Тема", 20, 1),
         Column("Срок", 10, 0), Column("", 6, 6)],
        [[[number(r)], [status[r.id]], [channel[r.id]], [r.client], [Short(r.subject, 2)], term(r), [Keep(flags[r.id])]]
         for r in rows],
    )  # fmt: skip
    folded: Layout = (
        [Column("№, статус, канал", 11, 1), Column("Клиент, тема", 12, 2), Column("Срок", 10, 0)],
        [[[number(r), status[r.id], channel[r.id]], [r.client, Short(r.subject, 2)], term(r) + flag_line(r)]
         for r in rows],
    )  # fmt: skip
    columns, cells = first_fitting([wide, folded], shutil.get_terminal_size().columns)
    return render(columns, cells, shutil.get_terminal_size().columns)


@app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="Слова для поиска, номер, телефон или адрес эл. почты")],
    page: Annotated[int, typer.Option(min=1, help="Страница результатов")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести в формате JSON")] = False,
) -> None:
    """Найти запросы по номеру, теме, тексту писем и записей, имени, организации, адресу, эл. почте и телефону
    клиента (с учётом словоформ), лучшие совпадения сверху; те же результаты, что и поиск в консоли."""
    from mailservice.inforequests import search

    settings = get_settings()
    with _session(settings) as session:
        found = search.search_requests(session, query, page=page)
        if as_json:
            hits = [
                {
                    "id": h.request.id,
                    "number": h.request.number,
                    "status": h.request.status,
                    "subject": h.request.subject,
                    "client": h.request.client.display_name,
                    "field": h.fragment.field if h.fragment else None,
                    "fragment": h.fragment.html.striptags() if h.fragment else None,
                }
                for h in found.hits
            ]
            payload = {
                "query": query,
                "total": found.total,
                "more": found.more,  # more than "total" - 1 match: only the newest of them are ranked
                "page": found.page,
                "pages": found.pages,
                "hits": hits,
            }
            typer.echo(json.dumps(payload, ensure_ascii=False))
            return
        if not found.hits:
            typer.echo("Ничего не найдено." if found.terms else "Ничего не найдено: в запросе нет слов для поиска.")
            return
        from mailservice.termtable import Column, Keep, Short, render

        columns = [
            Column("№"),
            Column("Статус", 9, 4),
            Column("Клиент", 10, 2),
            Column("Тема", 10, 1),
            Column("Совпадение", 12, 3),
        ]
        cells: list[list[Cell]] = [
            [
                [Keep(h.request.number or f"(id {h.request.id})")],
                [STATUS_NAMES[Status(h.request.status)]],
                [h.request.client.display_name],
                [Short(h.request.subject, 2)],
                [Short(f"{h.fragment.field}: {h.fragment.html.striptags()}", 3) if h.fragment else ""],
            ]
            for h in found.hits
        ]
        typer.echo(render(columns, cells, shutil.get_terminal_size().columns))
        count = f"более {search.RANKED_AMONG}" if found.more else str(found.total)
        typer.echo(f"Найдено: {count}; страница {found.page} из {found.pages}.")


def _status_name(status: str | None) -> str:
    return STATUS_NAMES[Status(status)] if status else "—"


@app.command("show")
def show_cmd(number: Annotated[str, typer.Argument(help="Регистрационный номер, например 2026-000042")]) -> None:
    """Показать запрос со всей историей."""
    from mailservice.classify.taxonomy import load_taxonomy
    from mailservice.inforequests.deadlines import Law
    from mailservice.inforequests.lifecycle import EVENT_NAMES, review_note

    settings = get_settings()
    tax = load_taxonomy()
    with _session(settings, domains=REGISTER) as session:
        r = _load(session, number)
        out = [
            f"№ {r.number}  [{STATUS_NAMES[Status(r.status)]}]  {CHANNEL_NAMES[Channel(r.channel)]}",
            f"Клиент: {inert(r.client.display_name)} <{inert(r.reply_email or '-')}>",
            f"Тема: {inert(r.subject)}",
            f"Закон: {Law(r.law).label}; тип: {tax['type'].display_name(r.type)}; "
            f"тема: {tax['topic'].display_name(r.topic)}; срочность: {tax['urgency'].display_name(r.urgency)}"
            + (f"; {review_note(r.needs_review, r.classification)}" if r.needs_review else ""),
            f"Зарегистрирован: {r.registered_at.astimezone(settings.tz):%Y-%m-%d %H:%M}" if r.registered_at else "",
            f"Срок ответа: {r.due_date}; контрольная дата: {r.control_date}",
            "",
            inert(r.text, multiline=True),
            "",
            "История:",
        ]
        for e in r.events:
            change = f" {_status_name(e.from_status)} -> {_status_name(e.to_status)}" if e.to_status else ""
            ground = f" [{e.ground}]" if e.ground else ""
            comment = inert(e.comment[:200])
            kind = EVENT_NAMES.get(e.kind, e.kind)  # the console's names for the same events (defect U7)
            out.append(f"  {e.at.astimezone(settings.tz):%Y-%m-%d %H:%M} {kind}{change}{ground} {comment}")
        for a in r.attachments:
            out.append(f"  вложение: {inert(a.filename)} ({a.size} байт, {a.sha256[:12]})")
        typer.echo("\n".join(line for line in out if line is not None))


# The statuses `status --to` offers: those staff may set (received/registered come from registration only).
SETTABLE = [s.value for s in Status if s in STAFF_SETTABLE]


def _settable_status(value: str) -> Status:
    if value not in SETTABLE:
        raise typer.BadParameter(f"ожидается одно из: {', '.join(SETTABLE)}")
    return Status(value)


@app.command("status")
def status_cmd(
    number: Annotated[str, typer.Argument(help="Регистрационный номер")],
    to: Annotated[
        Status,
        typer.Option("--to", help="Новый статус", metavar=f"[{'|'.join(SETTABLE)}]", parser=_settable_status),
    ],
    comment: Annotated[str, typer.Option(help="Комментарий, причина или текст ответа")] = "",
    ground: Annotated[str | None, typer.Option(help="Основание отказа: " + ", ".join(REFUSAL_GROUNDS))] = None,
    days: Annotated[int | None, typer.Option(help="На сколько дней продлить (при --to extended)")] = None,
    forwarded_to: Annotated[str, typer.Option(help="Куда перенаправлен (при --to forwarded)")] = "",
    actor: Annotated[str, typer.Option(help="Кто меняет статус")] = "cli",
) -> None:
    """Изменить статус запроса; клиент получит уведомление по почте."""
    from mailservice.inforequests import service

    settings = get_settings()
    try:
        with _session(settings) as session:
            request = _load(session, number)
            service.change_status(
                session,
                settings,
                request,
                to,
                now=utcnow(),
                actor=actor,
                comment=comment,
                ground=ground,
                extension_days=days,
                forwarded_to=forwarded_to,
            )
            typer.echo(f"№ {number}: {STATUS_NAMES[to]}; срок ответа {request.due_date}")
    except RefusedAction as exc:
        raise tclick.ClickException(f"{exc} (--{exc.field})" if exc.field else str(exc)) from None


@app.command("report")
def report_cmd(
    output: Annotated[Path, typer.Option("--output", help="Файл отчёта: .pdf или .html")],
    month: Annotated[str, typer.Option("--month", help="Месяц ГГГГ-ММ (по умолчанию предыдущий)")] = "",
) -> None:
    """Ежемесячный отчёт (диаграммы и таблицы) в PDF или HTML, как его получает руководитель департамента."""
    from mailservice.reports import monthly
    from mailservice.reports.figures import add_months, report_month

    if output.suffix.lower() not in (".pdf", ".html"):
        raise tclick.BadParameter("ожидался файл .pdf или .html", param_hint="--output")
    settings = get_settings()
    today = utcnow().astimezone(settings.tz).date()
    try:
        first = report_month(month, today) if month else add_months(today, -1)
    except ValueError as exc:
        raise tclick.BadParameter(str(exc), param_hint="--month") from None
    with _session(settings) as session:
        report = monthly.build(session, settings, first, today)
    if output.suffix.lower() == ".pdf":
        output.write_bytes(monthly.to_pdf(report, settings))
    else:
        output.write_text(monthly.to_html(report, settings), encoding="utf-8")
    typer.echo(f"{report.title}: {output}")


@app.command("notify-address")
def notify_address_cmd(
    number: Annotated[str, typer.Argument(help="Регистрационный номер")],
    email: Annotated[str, typer.Option("--email", help="Подтверждённый адрес клиента")],
    actor: Annotated[str, typer.Option(help="Кто меняет адрес")] = "cli",
) -> None:
    """Направлять уведомления по запросу на другой адрес клиента (только подтверждённый)."""
    from mailservice.inforequests import service

    address = _email_option(email)
    assert address is not None
    settings = get_settings()
    try:
        with _session(settings) as session:
            request = _load(session, number)
            service.set_notification_address(session, request, address, actor=actor, now=utcnow())
    except service.RequestError as exc:
        raise tclick.ClickException(str(exc)) from None
    typer.echo(f"№ {number}: уведомления направляются на {address}")


@app.command("convert")
def convert_cmd(
    number: Annotated[str, typer.Argument(help="Регистрационный номер")],
    to: Annotated[str, typer.Option("--to", help="Команда: subscribe, unsubscribe или history")],
    actor: Annotated[str, typer.Option(help="Кто преобразует")] = "cli",
) -> None:
    """Исполнить зарегистрированное письмо как команду, которой оно было (подписка, отписка, история)."""
    from mailservice.intake import actions
    from mailservice.intake.commands import Command

    try:
        command = Command(to)
    except ValueError:
        raise tclick.BadParameter("ожидалось subscribe, unsubscribe или history", param_hint="--to") from None
    settings = get_settings()
    try:
        with _session(settings) as session:
            request = _load(session, number)
            outcome = actions.convert_to_command(session, settings, request, command, actor=actor, now=utcnow())
    except actions.ActionError as exc:
        raise tclick.ClickException(str(exc)) from None
    typer.echo(f"№ {number}: исполнено как команда {command.value} ({outcome}); запрос отмечен как отвеченный")


@app.command("reregister-forwarded")
def reregister_forwarded_cmd(
    number: Annotated[str, typer.Argument(help="Регистрационный номер")],
    actor: Annotated[str, typer.Option(help="Кто перерегистрирует")] = "cli",
) -> None:
    """Перерегистрировать запрос на автора пересланного письма (письмо переслал орган, не подтверждённый как
    пересылающий обращения): автору — подтверждение регистрации, отправителю — короткое уведомление."""
    from mailservice.intake import forwarded_register

    settings = get_settings()
    try:
        with _session(settings) as session:
            request = _load(session, number)
            record = forwarded_register.reregister(session, settings, request, actor=actor, now=utcnow())
            address, record_id = request.reply_email, record.id
    except forwarded_register.ForwardError as exc:
        raise tclick.ClickException(str(exc)) from None
    typer.echo(f"№ {number}: перерегистрирован на автора пересланного письма {address} (клиент № {record_id})")


@app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", help="Файл; '-' для стандартного вывода (только csv)")],
    fmt: Annotated[str, typer.Option("--format", help="csv или xlsx")] = "csv",
    status: Annotated[str, typer.Option(help="Только запросы в этом статусе (код, например answered)")] = "",
    channel: Annotated[str, typer.Option(help="Только поступившие по этому каналу (email, phone, ...)")] = "",
    type_: Annotated[str, typer.Option("--type", help="Только этого типа (код классификатора)")] = "",
    topic: Annotated[str, typer.Option(help="Только этой тематики (код классификатора)")] = "",
    overdue: Annotated[bool, typer.Option("--overdue", help="Только просроченные")] = False,
) -> None:
    """Выгрузить реестр запросов (п. 8 Порядка) в CSV или XLSX с русскими столбцами."""
    from mailservice.inforequests import export
    from mailservice.web.staff.queue import QueueFilters, build_query

    if fmt not in ("csv", "xlsx"):
        raise tclick.BadParameter("ожидалось csv или xlsx", param_hint="--format")
    if fmt == "xlsx" and str(output) == "-":
        raise tclick.BadParameter("для xlsx нужно имя файла", param_hint="--output")
    params = {"status": status or "all", "channel": channel, "type": type_, "topic": topic}
    filters = QueueFilters.parse({**params, "overdue": "1" if overdue else ""})
    for key, value in params.items():
        if value and getattr(filters, key) != value:
            raise tclick.BadParameter(f"неизвестное значение {value!r}", param_hint=f"--{key}")
    settings = get_settings()
    today = utcnow().astimezone(settings.tz).date()
    with _session(settings) as session:
        rows = export.register_rows(session, settings, today, build_query(filters, today))
        if fmt == "xlsx":
            count = export.write_xlsx(rows, output)
        elif str(output) == "-":
            count = export.write_csv(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8-sig", newline="") as handle:
                count = export.write_csv(rows, handle)
    typer.echo(f"Выгружено запросов: {count}", err=True)
