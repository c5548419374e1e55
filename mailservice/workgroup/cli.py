"""``mailservice wg``: the working group's paperwork from the command line.

Pure calculators (``deadlines``, ``tally``) need no database; everything else works on the configured one and
sends its e-mail through the outbox (``mailservice worker`` delivers it). ``tick`` is the periodic pass
(reminders, missed deadlines, polls closing, monthly warnings): run it from cron or a timer, e.g. hourly.

The commands live by the nouns they act on: ``cli_groups`` (groups, members), ``cli_meetings`` (meetings, polls,
attendance, votes), ``cli_agenda`` (the agenda and sending), ``cli_minutes`` (held replies, opinions, minutes),
``cli_followup`` (instructions, plans, the road map, reports, sub-groups); ``cli_common`` holds the ``wg`` app and
what they share.
"""

from __future__ import annotations

import importlib
import json
from typing import Annotated

import click
import typer

from mailservice.config import get_settings
from mailservice.workdays import default_calendar
from mailservice.workgroup import periodic, service
from mailservice.workgroup.cli_common import _choice, _date, _work, app
from mailservice.workgroup.deadlines import DEADLINE_KEYS, PROFILES, get_profile, meeting_deadlines
from mailservice.workgroup.tally import Votes, tally

__all__ = ["app"]


# Pure calculators -----------------------------------------------------------------------------------------------


@app.command("deadlines")
def deadlines_cmd(
    profile: Annotated[str, typer.Option("--profile", help=f"Профиль положения: {', '.join(PROFILES)}")],
    meeting: Annotated[str, typer.Option("--meeting", help="Дата заседания ГГГГ-ММ-ДД")],
    signed: Annotated[str | None, typer.Option("--signed", help="Дата подписания протокола ГГГГ-ММ-ДД")] = None,
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


# The periodic pass ----------------------------------------------------------------------------------------------


@app.command("tick")
def tick_cmd() -> None:
    """Напоминания о сроках и о поручениях (до и после срока), учёт пропущенных сроков, закрытие опросов в срок."""
    with _work() as (settings, session, now):
        report = periodic.tick(session, settings, now=now)
        typer.echo(
            f"Напоминаний: {report.reminders}, пропущенных сроков: {report.missed}, "
            f"закрыто опросов: {report.polls_closed}, напоминаний о поручениях: {report.instruction_reminders}"
        )
        for warning in report.warnings:
            typer.echo(f"Внимание: {warning}", err=True)


# Each noun's commands register themselves on ``app`` when their module is imported; this order is the order of
# ``mailservice wg --help``.
for _module in ("cli_groups", "cli_meetings", "cli_agenda", "cli_minutes", "cli_followup"):
    importlib.import_module(f"mailservice.workgroup.{_module}")
