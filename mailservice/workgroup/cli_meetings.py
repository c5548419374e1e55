"""``mailservice wg meeting|poll|attendance|vote``: meetings and written polls, attendance and votes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.workgroup import groups, meetings, opinions, service, signing, voting
from mailservice.workgroup.cli_common import _actor, _choice, _date, _file, _meeting, _time, _work, app
from mailservice.workgroup.models import WgMeeting
from mailservice.workgroup.policy import FORM_NAMES
from mailservice.workgroup.tally import CHOICE_NAMES

meeting_app = typer.Typer(help="Заседания и письменные опросы.", no_args_is_help=True)
poll_app = typer.Typer(help="Письменный опрос (заочное голосование).", no_args_is_help=True)
app.add_typer(meeting_app, name="meeting")
app.add_typer(poll_app, name="poll")


# Meetings -------------------------------------------------------------------------------------------------------


@meeting_app.command("create")
def meeting_create(
    group_ref: Annotated[str, typer.Option("--group", help="Группа")],
    date: Annotated[str, typer.Option("--date", help="Дата ГГГГ-ММ-ДД (опрос: дата окончания)")],
    time: Annotated[str, typer.Option("--time", help="Время HH:MM по часовому поясу департамента")] = "10:00",
    form: Annotated[str, typer.Option("--form", help="in_person, remote, absentee")] = "in_person",
    place: Annotated[str, typer.Option("--place", help="Место или ссылка на видеосвязь")] = "",
    duration: Annotated[int, typer.Option("--duration", help="Продолжительность, минут")] = 90,
) -> None:
    """Назначить заседание (или письменный опрос) и рассчитать его сроки."""
    with _work() as (settings, session, now):
        group = groups.get_group(session, group_ref)
        starts = service.local_start(settings, _date(date, "--date"), _time(time, "--time"))
        meeting = meetings.create_meeting(
            session,
            settings,
            group,
            starts_at=starts,
            form=form,
            place=place,
            duration_min=duration,
            now=now,
            actor=_actor(),
        )
        typer.echo(f"Заседание № {meeting.number} запланировано (код {meeting.id}).")
        _print_deadlines(session, settings, meeting)


def _print_deadlines(session: Session, settings: Settings, meeting: WgMeeting) -> None:
    status_names = {"kept": "соблюдён", "missed": "ПРОПУЩЕН", "pending": "ожидается"}
    for row in meetings.deadlines_of(session, meeting):
        done = f", выполнено {row.done_on.strftime('%d.%m.%Y')}" if row.done_on else ""
        typer.echo(
            f"  {service.DEADLINE_TITLES[row.key]}: до {row.due.strftime('%d.%m.%Y')} — "
            f"{status_names.get(row.status, row.status)}{done}"
        )
    opinions_by = meetings.written_opinions_by(session, settings, meeting)
    if opinions_by:
        typer.echo(f"  Письменные мнения отсутствующих: до {opinions_by.strftime('%d.%m.%Y')}")


@meeting_app.command("list")
def meeting_list(group_ref: Annotated[str | None, typer.Option("--group", help="Группа")] = None) -> None:
    """Список заседаний с их состоянием."""
    with _work() as (settings, session, _now):
        query = select(WgMeeting).order_by(WgMeeting.starts_at)
        if group_ref:
            query = query.where(WgMeeting.group_id == groups.get_group(session, group_ref).id)
        for m in session.scalars(query):
            missed = sum(1 for d in meetings.deadlines_of(session, m) if d.status == "missed")
            flag = f"\tпропущено сроков: {missed}" if missed else ""
            typer.echo(
                f"{m.id}\t№ {m.number}\t{service.fmt_local(settings, m.starts_at)}\t{FORM_NAMES[m.form]}\t"
                f"{service.STATUS_NAMES[m.status]}{flag}"
            )


@meeting_app.command("show")
def meeting_show(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Всё о заседании: сроки, повестка, голоса, мнения, ответы, протокол."""
    with _work() as (settings, session, _now):
        meeting, group = _meeting(session, meeting_id)
        members, taking_part, results = voting.tallies(session, meeting)
        if as_json:
            typer.echo(json.dumps(_meeting_json(session, settings, meeting, members, taking_part, results)))
            return
        typer.echo(
            f"Заседание № {meeting.number} «{group.title}»: {service.fmt_local(settings, meeting.starts_at)}, "
            f"{FORM_NAMES[meeting.form]}, {service.STATUS_NAMES[meeting.status]}"
        )
        _print_deadlines(session, settings, meeting)
        typer.echo(f"Членов: {members}, приняли участие: {taking_part}")
        for r in results:
            typer.echo(
                f"  {r.number}. {r.item.title}: за {r.votes.for_}, против {r.votes.against}, "
                f"воздержались {r.votes.abstain} — {r.result.text}"
            )
        for opinion in opinions.opinions_of(session, meeting):
            kind = "особое мнение" if opinion.kind == "dissent" else "письменное мнение"
            late = " (с опозданием)" if opinion.late else ""
            typer.echo(f"  {kind}{late}: {opinion.text[:80]}")
        for reply in opinions.held_items(session, meeting):
            typer.echo(
                f"  ожидает решения: письмо {reply.id} ({service.REPLY_KIND_NAMES[reply.kind]}) от {reply.from_addr}"
            )
        for version in signing.minutes_versions(session, meeting):
            typer.echo(f"  протокол, версия {version.version}: {version.status}")


def _meeting_json(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    members: int,
    taking_part: int,
    results: list[voting.ItemTally],
) -> dict[str, Any]:
    return {
        "id": meeting.id,
        "number": meeting.number,
        "status": meeting.status,
        "starts_at": meeting.starts_at.astimezone(settings.tz).isoformat(),
        "deadlines": {
            d.key: {
                "due": d.due.isoformat(),
                "done_on": d.done_on.isoformat() if d.done_on else None,
                "status": d.status,
            }
            for d in meetings.deadlines_of(session, meeting)
        },
        "members": members,
        "taking_part": taking_part,
        "items": [
            {
                "number": r.number,
                "title": r.item.title,
                "for": r.votes.for_,
                "against": r.votes.against,
                "abstain": r.votes.abstain,
                **r.result.as_dict(),
            }
            for r in results
        ],
        "held_replies": [r.id for r in opinions.held_items(session, meeting)],
    }


@meeting_app.command("move")
def meeting_move(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    date: Annotated[str, typer.Option("--date", help="Новая дата ГГГГ-ММ-ДД")],
    time: Annotated[str, typer.Option("--time", help="Новое время HH:MM")] = "10:00",
    place: Annotated[str | None, typer.Option("--place", help="Новое место")] = None,
) -> None:
    """Перенести заседание; сроки сдвигаются, а если повестка разослана, участники получат новое приглашение."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        starts = service.local_start(settings, _date(date, "--date"), _time(time, "--time"))
        meetings.move_meeting(session, settings, meeting, starts_at=starts, place=place, now=now, actor=_actor())
        typer.echo(f"Заседание перенесено на {service.fmt_local(settings, starts)}.")
        _print_deadlines(session, settings, meeting)


@meeting_app.command("cancel")
def meeting_cancel(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    reason: Annotated[str, typer.Option("--reason", help="Причина")] = "",
) -> None:
    """Отменить заседание (получившие приглашение получат отмену)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        meetings.cancel_meeting(session, settings, meeting, reason=reason, now=now, actor=_actor())
        typer.echo("Заседание отменено.")


@meeting_app.command("invite")
def meeting_invite(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    people: Annotated[list[str], typer.Argument(help="Адреса или номера приглашённых")],
) -> None:
    """Пригласить людей на одно заседание."""
    with _work() as (_settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        for ref in people:
            meetings.invite(session, meeting, groups.find_member(session, group, ref), now=now, actor=_actor())
        typer.echo(f"Приглашено: {len(people)}.")


@meeting_app.command("presiding")
def meeting_presiding(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Argument(help="Адрес или номер председательствующего")],
) -> None:
    """Назначить председательствующего."""
    with _work() as (_settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = groups.find_member(session, group, member_ref)
        voting.set_presiding(session, meeting, member, now=now, actor=_actor())
        typer.echo(f"Председательствующий: {member.name}.")


@meeting_app.command("audio")
def meeting_audio(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    path: Annotated[Path, typer.Argument(help="Файл аудиозаписи")],
) -> None:
    """Приложить аудиозапись заседания."""
    filename, content_type, data = _file(path)
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        voting.attach_audio(
            session,
            settings,
            meeting,
            filename=filename,
            content_type=content_type,
            data=data,
            now=now,
            actor=_actor(),
        )
        typer.echo("Аудиозапись приложена.")


@meeting_app.command("finish")
def meeting_finish(meeting_id: Annotated[int, typer.Argument(help="Код заседания")]) -> None:
    """Закрыть состоявшееся заседание (после этого считаются присутствие и голоса)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        voting.finish_meeting(session, settings, meeting, now=now, actor=_actor())
        typer.echo("Заседание проведено.")


@app.command("attendance")
def attendance_cmd(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Argument(help="Адрес или номер")],
    mode: Annotated[str, typer.Option("--mode", help="in_person, remote, absent")] = "in_person",
) -> None:
    """Отметить, как участник присутствовал."""
    with _work() as (_settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = groups.find_member(session, group, member_ref)
        voting.record_attendance(session, meeting, member, mode, now=now, actor=_actor())
        typer.echo(f"{member.name}: {service.MODE_NAMES.get(mode, mode)}.")


@app.command("vote")
def vote_cmd(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    item: Annotated[int, typer.Option("--item", help="Номер вопроса повестки")],
    member_ref: Annotated[str, typer.Option("--member", help="Адрес или номер")],
    choice: Annotated[str, typer.Option("--choice", help="for, against, abstain")],
    replace: Annotated[bool, typer.Option("--replace", help="Исправить ранее записанный голос")] = False,
) -> None:
    """Записать голос на заседании (кто, как и когда)."""
    vote = _choice(choice, "--choice")
    with _work() as (settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = groups.find_member(session, group, member_ref)
        agenda_item = meetings.item_by_number(session, meeting, item)
        voting.record_vote(
            session, settings, meeting, agenda_item, member, vote, now=now, actor=_actor(), replace=replace
        )
        typer.echo(f"{member.name}, вопрос {item}: {CHOICE_NAMES[vote]}.")


# Polls ----------------------------------------------------------------------------------------------------------


@poll_app.command("open")
def poll_open(meeting_id: Annotated[int, typer.Argument(help="Код опроса")]) -> None:
    """Разослать бюллетени (вопросы должен утвердить председатель)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        count = voting.open_poll(session, settings, meeting, now=now, actor=_actor())
        typer.echo(f"Бюллетени разосланы: {count}.")


@poll_app.command("close")
def poll_close(meeting_id: Annotated[int, typer.Argument(help="Код опроса")]) -> None:
    """Закрыть опрос сейчас (периодический проход и так закроет его в срок)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        voting.close_poll(session, settings, meeting, now=now, actor=_actor())
        typer.echo("Опрос закрыт.")
