"""``mailservice wg group|member``: working groups, their regulations' settings and their members."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from sqlalchemy import select

from mailservice.workgroup import groups, periodic, service
from mailservice.workgroup.cli_common import _actor, _settings_pairs, _work, app
from mailservice.workgroup.deadlines import PROFILES
from mailservice.workgroup.models import WgGroup
from mailservice.workgroup.policy import ROLE_NAMES

group_app = typer.Typer(help="Рабочие группы и их положения.", no_args_is_help=True)
member_app = typer.Typer(help="Состав рабочей группы.", no_args_is_help=True)
app.add_typer(group_app, name="group")
app.add_typer(member_app, name="member")


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
        group = groups.create_group(
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
        group = groups.get_group(session, slug)
        groups.change_group_settings(session, group, changes, now=now, actor=_actor())
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
        group = groups.get_group(session, slug)
        rules = service.rules_of(group)
        typer.echo(f"{group.title} ({group.slug}), профиль {group.profile}")
        values = {**dataclasses.asdict(rules.terms), **dataclasses.asdict(rules.policy)}
        values.pop("name", None)
        own = set(group.settings or {})
        typer.echo("Настройки (* — свои значения группы):")
        for key in sorted(values):
            typer.echo(f"  {key} = {values[key]}{' *' if key in own else ''}")
        for member in groups.members_of(session, group):
            verified = "адрес подтверждён" if member.verified_at else "адрес НЕ подтверждён"
            vote = "" if member.voting else ", без права голоса"
            typer.echo(f"  {member.id}\t{member.name} <{member.email}>\t{ROLE_NAMES[member.role]}{vote}; {verified}")
        for warning in periodic.monthly_warnings(session, settings, group, now=now):
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
        group = groups.get_group(session, group_ref)
        member = groups.add_member(
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
        group = groups.get_group(session, group_ref)
        member = groups.find_member(session, group, member_ref)
        groups.remove_member(session, member, now=now, actor=_actor())
        typer.echo(f"{member.name} исключен(а) из состава.")


@member_app.command("list")
def member_list(group_ref: Annotated[str, typer.Option("--group", help="Группа")]) -> None:
    """Состав группы."""
    with _work() as (_settings, session, _now):
        group = groups.get_group(session, group_ref)
        for m in groups.members_of(session, group):
            typer.echo(f"{m.id}\t{m.email}\t{m.role}\t{'voting' if m.voting else '-'}\t{m.name}")
