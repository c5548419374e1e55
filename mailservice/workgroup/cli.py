"""``mailservice wg``: the working group's paperwork from the command line.

Pure calculators (``deadlines``, ``tally``) need no database; everything else works on the configured one and
sends its e-mail through the outbox (``mailservice worker`` delivers it). ``tick`` is the periodic pass
(reminders, missed deadlines, polls closing, monthly warnings): run it from cron or a timer, e.g. hourly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings, get_settings
from mailservice.db import session_scope, utcnow
from mailservice.workdays import default_calendar
from mailservice.workgroup import service
from mailservice.workgroup.deadlines import DEADLINE_KEYS, PROFILES, get_profile, meeting_deadlines
from mailservice.workgroup.models import WgGroup, WgMeeting
from mailservice.workgroup.policy import FORM_NAMES, ROLE_NAMES, parse_setting
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import CHOICE_NAMES, Choice, Votes, tally

app = typer.Typer(help="Рабочая группа: заседания, повестки, голосования, протоколы.", no_args_is_help=True)
group_app = typer.Typer(help="Рабочие группы и их положения.", no_args_is_help=True)
member_app = typer.Typer(help="Состав рабочей группы.", no_args_is_help=True)
meeting_app = typer.Typer(help="Заседания и письменные опросы.", no_args_is_help=True)
agenda_app = typer.Typer(help="Повестка и материалы.", no_args_is_help=True)
poll_app = typer.Typer(help="Письменный опрос (заочное голосование).", no_args_is_help=True)
inbox_app = typer.Typer(help="Ответы членов группы, ожидающие решения секретаря.", no_args_is_help=True)
opinion_app = typer.Typer(help="Письменные и особые мнения.", no_args_is_help=True)
minutes_app = typer.Typer(help="Протоколы: проекты, подписи, экспорт.", no_args_is_help=True)
for _sub, _name in (
    (group_app, "group"),
    (member_app, "member"),
    (meeting_app, "meeting"),
    (agenda_app, "agenda"),
    (poll_app, "poll"),
    (inbox_app, "inbox"),
    (opinion_app, "opinion"),
    (minutes_app, "minutes"),
):
    app.add_typer(_sub, name=_name)


class WgCLIError(click.ClickException):
    """A refused operation: one line, exit status 1."""

    exit_code = 1


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _work() -> Iterator[tuple[Settings, Session, dt.datetime]]:
    """Settings, a transaction and the time; a refused operation becomes one line and rolls back."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            yield settings, session, utcnow()
    except WorkgroupError as exc:
        raise WgCLIError(str(exc)) from None


def _date(value: str, hint: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("ожидалась дата ГГГГ-ММ-ДД", param_hint=hint) from None


def _time(value: str, hint: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("ожидалось время ЧЧ:ММ", param_hint=hint) from None


def _choice(value: str, hint: str) -> Choice:
    try:
        return Choice(value.lower())
    except ValueError:
        expected = "ожидалось for (за), against (против) или abstain (воздержался)"
        raise click.BadParameter(expected, param_hint=hint) from None


def _file(path: Path) -> tuple[str, str, bytes]:
    if not path.is_file():
        raise click.BadParameter(f"нет такого файла: {path}", param_hint="FILE")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, content_type, path.read_bytes()


def _meeting(session: Session, meeting_id: int) -> tuple[WgMeeting, WgGroup]:
    meeting = service.get_meeting(session, meeting_id)
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    return meeting, group


def _settings_pairs(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"ожидалось ключ=значение, а не {pair!r}", param_hint="--set")
        try:
            values[key.strip()] = parse_setting(key.strip(), value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--set") from None
    return values


# Pure calculators -----------------------------------------------------------------------------------------------


@app.command("deadlines")
def deadlines_cmd(
    profile: Annotated[str, typer.Option("--profile", help=f"Профиль положения: {', '.join(PROFILES)}")],
    meeting: Annotated[str, typer.Option("--meeting", help="Дата заседания YYYY-MM-DD")],
    signed: Annotated[str | None, typer.Option("--signed", help="Дата подписания протокола YYYY-MM-DD")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Все сроки профиля вокруг заседания по производственному календарю."""
    try:
        rules = get_profile(profile)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--profile") from None
    day = _date(meeting, "--meeting")
    signed_day = _date(signed, "--signed") if signed else None
    settings = get_settings()
    calendar = default_calendar(settings)
    result = meeting_deadlines(rules, day, calendar, signed=signed_day)
    years = {day.year} | {d.year for d in result.values() if d is not None}
    for warning in calendar.warnings(years):
        typer.echo(f"Внимание: {warning}", err=True)
    if as_json:
        typer.echo(json.dumps({k: (v.isoformat() if v else None) for k, v in result.items()}))
        return
    for key in DEADLINE_KEYS:
        value = result[key]
        typer.echo(f"{service.DEADLINE_TITLES[key]}: {value.strftime('%d.%m.%Y') if value else '—'}")


@app.command("tally")
def tally_cmd(
    members: Annotated[int, typer.Option("--members", help="Членов рабочей группы")],
    present: Annotated[int, typer.Option("--present", help="Приняли участие (при --poll: вернули бюллетени)")],
    votes_for: Annotated[int, typer.Option("--for", help="Голосов «за»")],
    against: Annotated[int, typer.Option("--against", help="Голосов «против»")],
    abstain: Annotated[int, typer.Option("--abstain", help="Воздержались")],
    presiding: Annotated[
        str | None, typer.Option("--presiding", help="Голос председательствующего: for, against, abstain")
    ] = None,
    poll: Annotated[bool, typer.Option("--poll", help="Письменный опрос")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Кворум и принятие одного решения (с --poll: письменный опрос)."""
    choice = _choice(presiding, "--presiding") if presiding else None
    try:
        result = tally(members, present, Votes(votes_for, against, abstain), choice)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    what = "бюллетеней" if poll else "участников"
    typer.echo(f"Кворум ({present} {what} из {members}): {'есть' if result.quorum else 'нет'}")
    typer.echo(f"Итог: {result.text}")


# Groups and members ---------------------------------------------------------------------------------------------


@group_app.command("add")
def group_add(
    slug: Annotated[str, typer.Argument(help="Краткое имя (латиницей)")],
    title: Annotated[str, typer.Option("--title", help="Название группы")],
    profile: Annotated[str, typer.Option("--profile", help=f"Профиль положения: {', '.join(PROFILES)}")],
    values: Annotated[list[str] | None, typer.Option("--set", help="Свои значения: ключ=значение")] = None,
) -> None:
    """Создать рабочую группу по профилю положения."""
    overrides = _settings_pairs(values or [])
    with _work() as (_settings, session, now):
        group = service.create_group(
            session, slug=slug, title=title, profile=profile, overrides=overrides, now=now, actor=_actor()
        )
        typer.echo(f"Рабочая группа «{group.title}» создана ({group.slug}, профиль {group.profile}).")


@group_app.command("set")
def group_set(
    slug: Annotated[str, typer.Argument(help="Группа")],
    values: Annotated[list[str], typer.Argument(help="ключ=значение ...")],
) -> None:
    """Изменить параметры группы (сроки в днях, формы, ежемесячность, кворум, напоминания)."""
    changes = _settings_pairs(values)
    with _work() as (_settings, session, now):
        group = service.get_group(session, slug)
        service.change_group_settings(session, group, changes, now=now, actor=_actor())
        typer.echo(f"Настройки группы «{group.title}» изменены.")


@group_app.command("list")
def group_list() -> None:
    """Список рабочих групп."""
    with _work() as (_settings, session, _now):
        for group in session.scalars(select(WgGroup).order_by(WgGroup.id)):
            typer.echo(f"{group.slug}\t{group.profile}\t{group.title}")


@group_app.command("show")
def group_show(slug: Annotated[str, typer.Argument(help="Группа")]) -> None:
    """Правила, состав и предупреждения группы."""
    with _work() as (settings, session, now):
        group = service.get_group(session, slug)
        rules = service.rules_of(group)
        typer.echo(f"{group.title} ({group.slug}), профиль {group.profile}")
        values = {**dataclasses.asdict(rules.terms), **dataclasses.asdict(rules.policy)}
        values.pop("name", None)
        own = set(group.settings or {})
        typer.echo("Настройки (* — свои значения группы):")
        for key in sorted(values):
            typer.echo(f"  {key} = {values[key]}{' *' if key in own else ''}")
        for member in service.members_of(session, group):
            verified = "адрес подтверждён" if member.verified_at else "адрес НЕ подтверждён"
            vote = "" if member.voting else ", без права голоса"
            typer.echo(f"  {member.id}\t{member.name} <{member.email}>\t{ROLE_NAMES[member.role]}{vote}; {verified}")
        for warning in service.monthly_warnings(session, settings, group, now=now):
            typer.echo(f"Внимание: {warning}")


@member_app.command("add")
def member_add(
    group_ref: Annotated[str, typer.Option("--group", help="Группа")],
    name: Annotated[str, typer.Option("--name", help="Фамилия, имя, отчество")],
    email: Annotated[str, typer.Option("--email", help="Адрес электронной почты")],
    role: Annotated[str, typer.Option("--role", help="chair, deputy_chair, secretary, member, invitee")] = "member",
    position: Annotated[str, typer.Option("--position", help="Должность")] = "",
    no_vote: Annotated[bool, typer.Option("--no-vote", help="Без права голоса")] = False,
    verified: Annotated[bool, typer.Option("--verified", help="Адрес подтверждён лично, письмо не нужно")] = False,
) -> None:
    """Добавить участника; на неподтверждённый адрес уйдёт ссылка для подтверждения."""
    with _work() as (settings, session, now):
        group = service.get_group(session, group_ref)
        member = service.add_member(
            session,
            settings,
            group,
            name=name,
            email=email,
            role=role,
            position=position,
            voting=False if no_vote else None,
            verified=verified,
            now=now,
            actor=_actor(),
        )
        note = "" if member.verified_at else "; отправлена ссылка для подтверждения адреса"
        typer.echo(f"Добавлен(а) {member.name} ({ROLE_NAMES[member.role]}), № {member.id}{note}.")


@member_app.command("remove")
def member_remove(
    group_ref: Annotated[str, typer.Option("--group", help="Группа")],
    member_ref: Annotated[str, typer.Argument(help="Адрес или номер")],
) -> None:
    """Исключить участника из группы (его записи сохраняются)."""
    with _work() as (_settings, session, now):
        group = service.get_group(session, group_ref)
        member = service.find_member(session, group, member_ref)
        service.remove_member(session, member, now=now, actor=_actor())
        typer.echo(f"{member.name} исключен(а) из состава.")


@member_app.command("list")
def member_list(group_ref: Annotated[str, typer.Option("--group", help="Группа")]) -> None:
    """Состав группы."""
    with _work() as (_settings, session, _now):
        group = service.get_group(session, group_ref)
        for m in service.members_of(session, group):
            typer.echo(f"{m.id}\t{m.email}\t{m.role}\t{'voting' if m.voting else '-'}\t{m.name}")


# Meetings -------------------------------------------------------------------------------------------------------


@meeting_app.command("create")
def meeting_create(
    group_ref: Annotated[str, typer.Option("--group", help="Группа")],
    date: Annotated[str, typer.Option("--date", help="Дата YYYY-MM-DD (опрос: дата окончания)")],
    time: Annotated[str, typer.Option("--time", help="Время HH:MM по часовому поясу департамента")] = "10:00",
    form: Annotated[str, typer.Option("--form", help="in_person, remote, absentee")] = "in_person",
    place: Annotated[str, typer.Option("--place", help="Место или ссылка на видеосвязь")] = "",
    duration: Annotated[int, typer.Option("--duration", help="Продолжительность, минут")] = 90,
) -> None:
    """Назначить заседание (или письменный опрос) и рассчитать его сроки."""
    with _work() as (settings, session, now):
        group = service.get_group(session, group_ref)
        starts = service.local_start(settings, _date(date, "--date"), _time(time, "--time"))
        meeting = service.create_meeting(
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
    for row in service.deadlines_of(session, meeting):
        done = f", выполнено {row.done_on.strftime('%d.%m.%Y')}" if row.done_on else ""
        typer.echo(
            f"  {service.DEADLINE_TITLES[row.key]}: до {row.due.strftime('%d.%m.%Y')} — "
            f"{status_names.get(row.status, row.status)}{done}"
        )
    opinions = service.written_opinions_by(session, settings, meeting)
    if opinions:
        typer.echo(f"  Письменные мнения отсутствующих: до {opinions.strftime('%d.%m.%Y')}")


@meeting_app.command("list")
def meeting_list(group_ref: Annotated[str | None, typer.Option("--group", help="Группа")] = None) -> None:
    """Список заседаний с их состоянием."""
    with _work() as (settings, session, _now):
        query = select(WgMeeting).order_by(WgMeeting.starts_at)
        if group_ref:
            query = query.where(WgMeeting.group_id == service.get_group(session, group_ref).id)
        for m in session.scalars(query):
            missed = sum(1 for d in service.deadlines_of(session, m) if d.status == "missed")
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
        members, taking_part, results = service.tallies(session, meeting)
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
        for opinion in service.opinions_of(session, meeting):
            kind = "особое мнение" if opinion.kind == "dissent" else "письменное мнение"
            late = " (с опозданием)" if opinion.late else ""
            typer.echo(f"  {kind}{late}: {opinion.text[:80]}")
        for reply in service.held_items(session, meeting):
            typer.echo(
                f"  ожидает решения: письмо {reply.id} ({service.REPLY_KIND_NAMES[reply.kind]}) от {reply.from_addr}"
            )
        for version in service.minutes_versions(session, meeting):
            typer.echo(f"  протокол, версия {version.version}: {version.status}")


def _meeting_json(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    members: int,
    taking_part: int,
    results: list[service.ItemTally],
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
            for d in service.deadlines_of(session, meeting)
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
        "held_replies": [r.id for r in service.held_items(session, meeting)],
    }


@meeting_app.command("move")
def meeting_move(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    date: Annotated[str, typer.Option("--date", help="Новая дата YYYY-MM-DD")],
    time: Annotated[str, typer.Option("--time", help="Новое время HH:MM")] = "10:00",
    place: Annotated[str | None, typer.Option("--place", help="Новое место")] = None,
) -> None:
    """Перенести заседание; сроки сдвигаются, а если повестка разослана, участники получат новое приглашение."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        starts = service.local_start(settings, _date(date, "--date"), _time(time, "--time"))
        service.move_meeting(session, settings, meeting, starts_at=starts, place=place, now=now, actor=_actor())
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
        service.cancel_meeting(session, settings, meeting, reason=reason, now=now, actor=_actor())
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
            service.invite(session, meeting, service.find_member(session, group, ref), now=now, actor=_actor())
        typer.echo(f"Приглашено: {len(people)}.")


@meeting_app.command("presiding")
def meeting_presiding(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Argument(help="Адрес или номер председательствующего")],
) -> None:
    """Назначить председательствующего."""
    with _work() as (_settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = service.find_member(session, group, member_ref)
        service.set_presiding(session, meeting, member, now=now, actor=_actor())
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
        service.attach_audio(
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
        service.finish_meeting(session, settings, meeting, now=now, actor=_actor())
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
        member = service.find_member(session, group, member_ref)
        service.record_attendance(session, meeting, member, mode, now=now, actor=_actor())
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
        member = service.find_member(session, group, member_ref)
        agenda_item = service.item_by_number(session, meeting, item)
        service.record_vote(
            session, settings, meeting, agenda_item, member, vote, now=now, actor=_actor(), replace=replace
        )
        typer.echo(f"{member.name}, вопрос {item}: {CHOICE_NAMES[vote]}.")


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
        item = service.add_item(
            session, meeting, title=title, speaker=speaker, proposal=proposal, now=now, actor=_actor()
        )
        for filename, content_type, data in files:
            service.add_material(
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
        typer.echo(f"Вопрос добавлен (№ {len(service.items_of(session, meeting))}).")


@agenda_app.command("material")
def agenda_material(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    path: Annotated[Path, typer.Argument(help="Файл")],
) -> None:
    """Приложить файл к повестке."""
    filename, content_type, data = _file(path)
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        service.add_material(
            session, settings, meeting, filename=filename, content_type=content_type, data=data, now=now, actor=_actor()
        )
        typer.echo("Материал приложен.")


@agenda_app.command("list")
def agenda_list(meeting_id: Annotated[int, typer.Argument(help="Код заседания")]) -> None:
    """Повестка с предложенными и снятыми вопросами."""
    with _work() as (_settings, session, _now):
        meeting, _group = _meeting(session, meeting_id)
        number = 0
        for item in service.items_of(session, meeting, status=None):
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
        item = next((i for i in service.items_of(session, meeting, status=None) if i.id == item_id), None)
        if item is None:
            raise WorkgroupError(f"Вопроса {item_id} нет в этом заседании")
        service.include_item(session, meeting, item, now=now, actor=_actor())
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
        agenda_item = service.item_by_number(session, meeting, item)
        service.record_item_outcome(
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
        approver = service.find_member(session, group, by)
        changed = service.approve_agenda(session, settings, meeting, approver, now=now, how=_actor())
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
            service.submit_agenda(session, settings, meeting, now=now, actor=_actor())
            typer.echo("Повестка направлена председателю на утверждение.")
        elif what == "agenda":
            count = service.send_agenda(session, settings, meeting, now=now, actor=_actor())
            typer.echo(f"Повестка разослана: {count} адресатов.")
        elif what == "signatures":
            rows = service.request_signatures(session, settings, meeting, now=now, actor=_actor())
            typer.echo(f"Протокол направлен на подписание: {len(rows)}.")
        elif what == "minutes":
            count = service.distribute_minutes(session, settings, meeting, now=now, actor=_actor(), again=True)
            typer.echo(f"Копии протокола направлены: {count} адресатов.")
        else:
            raise click.BadParameter("ожидалось approval, agenda, signatures или minutes", param_hint="WHAT")


# Polls ----------------------------------------------------------------------------------------------------------


@poll_app.command("open")
def poll_open(meeting_id: Annotated[int, typer.Argument(help="Код опроса")]) -> None:
    """Разослать бюллетени (вопросы должен утвердить председатель)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        count = service.open_poll(session, settings, meeting, now=now, actor=_actor())
        typer.echo(f"Бюллетени разосланы: {count}.")


@poll_app.command("close")
def poll_close(meeting_id: Annotated[int, typer.Argument(help="Код опроса")]) -> None:
    """Закрыть опрос сейчас (периодический проход и так закроет его в срок)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        service.close_poll(session, settings, meeting, now=now, actor=_actor())
        typer.echo("Опрос закрыт.")


# Replies and opinions -------------------------------------------------------------------------------------------


@inbox_app.command("list")
def inbox_list(meeting_id: Annotated[int | None, typer.Option("--meeting", help="Код заседания")] = None) -> None:
    """Ответы, ожидающие секретаря."""
    with _work() as (settings, session, _now):
        meeting = service.get_meeting(session, meeting_id) if meeting_id else None
        for reply in service.held_items(session, meeting):
            who = "член группы" if reply.member_id else "НЕ член группы"
            typer.echo(
                f"{reply.id}\t{service.fmt_local(settings, reply.received_at)}\t{reply.from_addr} ({who})\t"
                f"{service.REPLY_KIND_NAMES[reply.kind]}\t{reply.text[:60]!r}"
            )
            if reply.note:
                typer.echo(f"\t{reply.note}")


@inbox_app.command("confirm")
def inbox_confirm(
    reply_id: Annotated[int, typer.Argument(help="Номер письма")],
    kind: Annotated[str | None, typer.Option("--as", help="written_opinion, dissent, agenda_proposal, ballot")] = None,
    member_ref: Annotated[str | None, typer.Option("--member", help="От чьего имени (писал с другого адреса)")] = None,
    item: Annotated[int | None, typer.Option("--item", help="Номер вопроса, к которому относится мнение")] = None,
) -> None:
    """Подтвердить ответ: он станет мнением, предложением или голосами бюллетеня."""
    with _work() as (settings, session, now):
        reply = service.get_inbox_item(session, reply_id)
        member = None
        if member_ref and reply.group_id:
            group = session.get(WgGroup, reply.group_id)
            assert group is not None
            member = service.find_member(session, group, member_ref)
        done = service.confirm_reply(
            session, settings, reply, now=now, actor=_actor(), kind=kind, member=member, item_number=item
        )
        typer.echo(f"Письмо {reply.id}: {done}.")


@inbox_app.command("reject")
def inbox_reject(
    reply_id: Annotated[int, typer.Argument(help="Номер письма")],
    note: Annotated[str, typer.Option("--note", help="Причина")] = "",
) -> None:
    """Отклонить ответ (он остаётся в списке с причиной)."""
    with _work() as (_settings, session, now):
        reply = service.get_inbox_item(session, reply_id)
        service.reject_reply(session, reply, note=note, now=now, actor=_actor())
        typer.echo(f"Письмо {reply.id} отклонено.")


@opinion_app.command("add")
def opinion_add(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Option("--member", help="Адрес или номер")],
    kind: Annotated[str, typer.Option("--kind", help="written (отсутствующего) или dissent (особое)")],
    text: Annotated[str | None, typer.Option("--text", help="Текст")] = None,
    path: Annotated[Path | None, typer.Option("--file", help="Файл с текстом (UTF-8)")] = None,
    item: Annotated[int | None, typer.Option("--item", help="Номер вопроса")] = None,
) -> None:
    """Приложить мнение, полученное на бумаге."""
    body = text if text is not None else (path.read_text(encoding="utf-8") if path else "")
    with _work() as (settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = service.find_member(session, group, member_ref)
        agenda_item = service.item_by_number(session, meeting, item) if item else None
        service.add_opinion(
            session,
            settings,
            meeting,
            member,
            kind=kind,
            text=body,
            via="cli",
            received_at=now,
            now=now,
            actor=_actor(),
            item=agenda_item,
        )
        typer.echo("Мнение приобщено.")


# Minutes --------------------------------------------------------------------------------------------------------


@minutes_app.command("draft")
def minutes_draft(meeting_id: Annotated[int, typer.Argument(help="Код заседания")]) -> None:
    """Составить проект протокола по записям (новая версия, если что-то изменилось)."""
    with _work() as (settings, session, now):
        meeting, _group = _meeting(session, meeting_id)
        minutes = service.draft_minutes(session, settings, meeting, now=now, actor=_actor())
        typer.echo(f"Проект протокола, версия {minutes.version}.")


@minutes_app.command("sign")
def minutes_sign(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Option("--member", help="Кто подписал (на бумаге)")],
) -> None:
    """Отметить подпись, поставленную на бумаге."""
    with _work() as (settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = service.find_member(session, group, member_ref)
        minutes = service.latest_minutes(session, meeting)
        signature = next(
            (s for s in (service.signatures_of(session, minutes) if minutes else []) if s.member_id == member.id), None
        )
        if signature is None:
            raise WorkgroupError("Подпись этого человека не запрашивалась (wg send signatures)")
        service.sign_minutes(session, settings, signature, now=now, method="cli")
        typer.echo(f"Подпись {member.name} записана; протокол: {service.STATUS_NAMES[meeting.status]}.")


@minutes_app.command("export")
def minutes_export(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    out: Annotated[Path, typer.Option("--out", help="Файл .docx или .html")],
    version: Annotated[int | None, typer.Option("--version", help="Версия (по умолчанию последняя)")] = None,
) -> None:
    """Записать версию протокола в файл DOCX или HTML."""
    from mailservice.blobs import BlobStore
    from mailservice.workgroup.minutes import render_document

    with _work() as (settings, session, _now):
        meeting, group = _meeting(session, meeting_id)
        versions = service.minutes_versions(session, meeting)
        chosen = next((v for v in versions if v.version == version), None) if version else None
        if version is None and versions:
            chosen = versions[-1]
        if chosen is None:
            raise WorkgroupError("Такой версии протокола нет")
        if out.suffix.lower() == ".html":
            out.write_text(
                render_document(chosen.html, title=f"Протокол № {meeting.number} — {group.title}"), encoding="utf-8"
            )
        else:
            out.write_bytes(BlobStore(settings.blob_dir).get(chosen.docx_sha256))
        typer.echo(f"Протокол (версия {chosen.version}, {chosen.status}) записан в {out}.")


# The periodic pass ----------------------------------------------------------------------------------------------


@app.command("tick")
def tick_cmd() -> None:
    """Напоминания о сроках и о поручениях (до и после срока), учёт пропущенных сроков, закрытие опросов в срок."""
    with _work() as (settings, session, now):
        report = service.tick(session, settings, now=now)
        typer.echo(
            f"Напоминаний: {report.reminders}, пропущенных сроков: {report.missed}, "
            f"закрыто опросов: {report.polls_closed}, напоминаний о поручениях: {report.instruction_reminders}"
        )
        for warning in report.warnings:
            typer.echo(f"Внимание: {warning}", err=True)


# Instructions, plans, the road map, reports and sub-groups (issue 18) add their commands to ``app``.
from mailservice.workgroup import cli_followup as _followup  # noqa: E402, F401
