"""``mailservice wg agenda|send``: the agenda, its materials, the chair's approval and sending."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from mailservice.workgroup import groups, meetings, signing
from mailservice.workgroup.cli_common import _actor, _file, _meeting, _work, app
from mailservice.workgroup.service import WorkgroupError

agenda_app = typer.Typer(help="Повестка и материалы.", no_args_is_help=True)
app.add_typer(agenda_app, name="agenda")


# Agenda ---------------------------------------------------------------------------------------------------------


@agenda_app.command("add")
def agenda_add(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    title: Annotated[str, typer.Option("--title", help="Формулировка вопроса")],
    speaker: Annotated[str, typer.Option("--speaker", help="Докладчик")] = "",
    proposal: Annotated[str, typer.Option("--proposal", help="Проект решения")] = "",
    material: Annotated[list[Path] | None, typer.Option("--material", help="Файл материалов")] = None,
) -> None:
    """Добавить вопрос (с материалами)."""
    files = [_file(p) for p in material or []]
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        item = meetings.add_item(
            session, meeting, title=title, speaker=speaker, proposal=proposal, now=now, actor=_actor()
        )
        for filename, content_type, data in files:
            meetings.add_material(
                session,
                settings,
                meeting,
                filename=filename,
                content_type=content_type,
                data=data,
                item=item,
                now=now,
                actor=_actor(),
            )
        typer.echo(f"Вопрос добавлен (№ {len(meetings.items_of(session, meeting))}).")


@agenda_app.command("material")
def agenda_material(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    path: Annotated[Path, typer.Argument(help="Файл")],
) -> None:
    """Приложить файл к повестке."""
    filename, content_type, data = _file(path)
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        meetings.add_material(
            session, settings, meeting, filename=filename, content_type=content_type, data=data, now=now, actor=_actor()
        )
        typer.echo("Материал приложен.")


@agenda_app.command("list")
def agenda_list(meeting_id: Annotated[int, typer.Argument(help="Код заседания")]) -> None:
    """Повестка с предложенными и снятыми вопросами."""
    with _work() as (_settings, session, _now):
        meeting, _group = _meeting(session, meeting_id)
        number = 0
        for item in meetings.items_of(session, meeting, status=None):
            label = ""
            if item.status == "included":
                number += 1
                label = f"{number}."
            typer.echo(f"{label}\t[{item.id}, {item.status}]\t{item.title}")


@agenda_app.command("include")
def agenda_include(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    item_id: Annotated[int, typer.Argument(help="Код предложенного вопроса (wg agenda list)")],
) -> None:
    """Включить предложение участника в повестку (председатель утверждает её заново)."""
    with _work() as (_settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        item = next((i for i in meetings.items_of(session, meeting, status=None) if i.id == item_id), None)
        if item is None:
            raise WorkgroupError(f"Вопроса {item_id} нет в этом заседании")
        meetings.include_item(session, meeting, item, now=now, actor=_actor())
        typer.echo("Вопрос включён в повестку; её нужно снова утвердить.")


@agenda_app.command("outcome")
def agenda_outcome(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    item: Annotated[int, typer.Option("--item", help="Номер вопроса")],
    heard: Annotated[str | None, typer.Option("--heard", help="СЛУШАЛИ")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="РЕШИЛИ")] = None,
) -> None:
    """Записать, что слушали и что решили по вопросу."""
    with _work() as (_settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        agenda_item = meetings.item_by_number(session, meeting, item)
        meetings.record_item_outcome(
            session, meeting, agenda_item, heard=heard, decision=decision, now=now, actor=_actor()
        )
        typer.echo("Записано.")


@agenda_app.command("approve")
def agenda_approve(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    by: Annotated[str, typer.Option("--by", help="Адрес или номер председателя (заместителя)")],
) -> None:
    """Отметить утверждение председателем не по ссылке (на бумаге, лично)."""
    with _work() as (settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        approver = groups.find_member(session, group, by)
        changed = meetings.approve_agenda(session, settings, meeting, approver, now=now, how=_actor())
        typer.echo("Повестка утверждена." if changed else "Повестка уже была утверждена.")


@app.command("send")
def send_cmd(
    what: Annotated[str, typer.Argument(help="approval (председателю), agenda, signatures, minutes")],
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
) -> None:
    """Разослать: повестку на утверждение, повестку всем, протокол на подпись, копии."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        if what == "approval":
            meetings.submit_agenda(session, settings, meeting, now=now, actor=_actor())
            typer.echo("Повестка направлена председателю на утверждение.")
        elif what == "agenda":
            count = meetings.send_agenda(session, settings, meeting, now=now, actor=_actor())
            typer.echo(f"Повестка разослана: {count} адресатов.")
        elif what == "signatures":
            rows = signing.request_signatures(session, settings, meeting, now=now, actor=_actor())
            typer.echo(f"Протокол направлен на подписание: {len(rows)}.")
        elif what == "minutes":
            count = signing.distribute_minutes(session, settings, meeting, now=now, actor=_actor(), again=True)
            typer.echo(f"Копии протокола направлены: {count} адресатов.")
        else:
            raise click.BadParameter("ожидалось approval, agenda, signatures или minutes", param_hint="WHAT")
