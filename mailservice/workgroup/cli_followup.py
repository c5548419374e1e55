"""``mailservice wg instruction|plan|roadmap|report|disagreement|subgroup|head``: following decisions up (issue 18).

The same service calls as the console; a refusal is one line and exit status 1 (see :mod:`.cli_common`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import click
import typer
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.mail.addresses import address_key
from mailservice.web.staff.models import StaffUser
from mailservice.workgroup import groups, instructions, meetings, plans, reports, service
from mailservice.workgroup.cli_common import _actor, _date, _work, app
from mailservice.workgroup.models import WgPlanItem, WgReport
from mailservice.workgroup.service import WorkgroupError

instruction_app = typer.Typer(help="Поручения по решениям рабочей группы.", no_args_is_help=True)
plan_app = typer.Typer(help="Планы работ рабочей группы.", no_args_is_help=True)
roadmap_app = typer.Typer(help="Мероприятия дорожной карты, которые отслеживает группа.", no_args_is_help=True)
report_app = typer.Typer(help="Доклады и протоколы разногласий руководителю департамента.", no_args_is_help=True)
for _sub, _name in (
    (instruction_app, "instruction"),
    (plan_app, "plan"),
    (roadmap_app, "roadmap"),
    (report_app, "report"),
):
    app.add_typer(_sub, name=_name)

GroupArg = Annotated[str, typer.Argument(help="Группа (краткое имя или код)")]


# Instructions ---------------------------------------------------------------------------------------------------


@instruction_app.command(
    "give", help="Записать поручение по принятому решению (уходит исполнителю после подписания протокола)."
)
def instruction_give(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    item: Annotated[int, typer.Option("--item", help="Номер вопроса повестки")],
    text: Annotated[str, typer.Option("--text", help="Что поручено")],
    result: Annotated[str, typer.Option("--result", help="Ожидаемый результат")],
    member: Annotated[str, typer.Option("--member", help="Исполнитель — член группы (адрес или код)")] = "",
    staff: Annotated[str, typer.Option("--staff", help="Исполнитель — сотрудник (адрес учётной записи)")] = "",
    days: Annotated[int | None, typer.Option("--days", help="Срок в рабочих днях со дня заседания")] = None,
    due: Annotated[str | None, typer.Option("--due", help="Срок датой ГГГГ-ММ-ДД")] = None,
) -> None:
    """Record an instruction of an adopted decision; it goes out when the minutes are signed."""
    with _work() as (settings, session, now):
        meeting = meetings.get_meeting(session, meeting_id)
        group = session.get(service.WgGroup, meeting.group_id)
        assert group is not None
        person = groups.find_member(session, group, member) if member else None
        account = None
        if staff:
            account = session.scalar(select(StaffUser).where(StaffUser.email == address_key(staff)))
            if account is None:
                raise WorkgroupError(f"Сотрудника с адресом {staff} нет")
        given = instructions.give(
            session,
            settings,
            meeting,
            meetings.item_by_number(session, meeting, item),
            text=text,
            expected_result=result,
            member=person,
            staff=account,
            due_wd=days,
            due=_date(due, "--due") if due else None,
            now=now,
            actor=_actor(),
        )
        typer.echo(f"Поручение {given.id} записано: {given.assignee_name}, срок до {given.due:%d.%m.%Y}.")


@instruction_app.command("list", help="Поручения с фильтрами, ближайший срок сверху.")
def instruction_list(
    state: Annotated[str, typer.Option("--state", help="assigned, extension_requested, done, cancelled, open")] = "",
    assignee: Annotated[str, typer.Option("--assignee", help="Часть имени или адреса исполнителя")] = "",
    overdue: Annotated[bool, typer.Option("--overdue", help="Только просроченные")] = False,
    meeting: Annotated[int | None, typer.Option("--meeting", help="Код заседания")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Вывести JSON")] = False,
) -> None:
    """Instructions, nearest term first."""
    if state and state not in (*instructions.STATE_NAMES, "open"):
        raise click.BadParameter(
            "assigned, extension_requested, done, cancelled, overdue или open", param_hint="--state"
        )
    with _work() as (settings, session, now):
        found = instructions.matching(
            session,
            settings,
            instructions.Filters(state=state, assignee=assignee, overdue=overdue, meeting_id=meeting),
            now=now,
        )
        today = service.local_today(settings, now)
        rows = [
            {
                "id": i.id,
                "meeting_id": i.meeting_id,
                "assignee": i.assignee_name,
                "email": i.assignee_email,
                "text": i.text,
                "expected_result": i.expected_result,
                "due": i.due.isoformat(),
                "state": instructions.status(i.state, i.due, today),
                "sent": i.sent_at is not None,
            }
            for i in found
        ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        name = instructions.STATE_NAMES[str(row["state"])]
        typer.echo(f"{row['id']}\t{row['due']}\t{name}\t{row['assignee']}\t{row['text']}")


@instruction_app.command("extension", help="Продлить срок поручения по просьбе исполнителя или отказать.")
def instruction_extension(
    instruction_id: Annotated[int, typer.Argument(help="Код поручения")],
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Продлить или отказать")],
    due: Annotated[str | None, typer.Option("--due", help="Новый срок (по умолчанию — как просили)")] = None,
    note: Annotated[str, typer.Option("--note", help="Комментарий (при отказе обязателен)")] = "",
) -> None:
    """Approve or refuse a request for more time (the chair or the secretary decides)."""
    with _work() as (settings, session, now):
        report = instructions.decide_extension(
            session,
            settings,
            instructions.get(session, instruction_id),
            approve=approve,
            note=note,
            new_due=_date(due, "--due") if due else None,
            now=now,
            actor=_actor(),
        )
        typer.echo("Срок продлён." if report.decision == "approved" else "В продлении отказано.")


@instruction_app.command("cancel", help="Снять поручение с контроля.")
def instruction_cancel(
    instruction_id: Annotated[int, typer.Argument(help="Код поручения")],
    reason: Annotated[str, typer.Option("--reason", help="Основание (решение группы)")],
) -> None:
    """Take an instruction off control."""
    with _work() as (_settings, session, now):
        instructions.cancel(session, instructions.get(session, instruction_id), reason=reason, now=now, actor=_actor())
        typer.echo("Поручение снято с контроля.")


@instruction_app.command(
    "send", help="Направить поручение исполнителю (повторно: прежняя ссылка перестаёт действовать)."
)
def instruction_send(instruction_id: Annotated[int, typer.Argument(help="Код поручения")]) -> None:
    """Send an instruction to its assignee (again: the earlier link stops working)."""
    with _work() as (settings, session, now):
        instructions.send(session, settings, instructions.get(session, instruction_id), now=now, actor=_actor())
        typer.echo("Поручение направлено исполнителю.")


# Plans and the road map -----------------------------------------------------------------------------------------


@plan_app.command("create", help="Создать проект плана работ.")
def plan_create(
    group_ref: GroupArg,
    title: Annotated[str, typer.Option("--title", help="Название плана")],
    start: Annotated[str, typer.Option("--start", help="Начало периода ГГГГ-ММ-ДД")],
    end: Annotated[str, typer.Option("--end", help="Конец периода ГГГГ-ММ-ДД")],
) -> None:
    """A draft work plan."""
    with _work() as (_settings, session, now):
        plan = plans.create_plan(
            session,
            groups.get_group(session, group_ref),
            title=title,
            period_start=_date(start, "--start"),
            period_end=_date(end, "--end"),
            now=now,
            actor=_actor(),
        )
        typer.echo(f"План {plan.id} создан.")


@plan_app.command("item", help="Добавить пункт в проект плана.")
def plan_item(
    plan_id: Annotated[int, typer.Argument(help="Код плана")],
    title: Annotated[str, typer.Option("--title", help="Мероприятие")],
    owner: Annotated[str, typer.Option("--owner", help="Ответственный")],
    due: Annotated[str, typer.Option("--due", help="Срок ГГГГ-ММ-ДД")],
    roadmap: Annotated[str, typer.Option("--roadmap", help="Номер мероприятия дорожной карты")] = "",
) -> None:
    """An item of a draft plan."""
    with _work() as (_settings, session, now):
        plan = plans.get_plan(session, plan_id)
        group = session.get(service.WgGroup, plan.group_id)
        assert group is not None
        item = plans.add_plan_item(
            session,
            plan,
            title=title,
            owner=owner,
            due=_date(due, "--due"),
            roadmap=plans.roadmap_item(session, group, roadmap) if roadmap else None,
            now=now,
            actor=_actor(),
        )
        typer.echo(f"Пункт {item.id} добавлен.")


@plan_app.command("approve", help="Записать решение группы, утвердившее план (решение принято, протокол подписан).")
def plan_approve(
    plan_id: Annotated[int, typer.Argument(help="Код плана")],
    meeting: Annotated[int, typer.Option("--meeting", help="Номер заседания группы")],
    item: Annotated[int, typer.Option("--item", help="Номер вопроса")],
) -> None:
    """Record the decision that approved the plan (adopted, minutes signed)."""
    with _work() as (_settings, session, now):
        plan = plans.get_plan(session, plan_id)
        group = session.get(service.WgGroup, plan.group_id)
        assert group is not None
        decision = plans.decision_by_number(session, group, meeting, item)
        plans.approve_plan(session, plan, decision.item, now=now, actor=_actor())
        typer.echo(f"План утверждён: {decision.reference}.")


@plan_app.command("state", help="Записать состояние пункта плана.")
def plan_state(
    item_id: Annotated[int, typer.Argument(help="Код пункта плана")],
    to: Annotated[str, typer.Option("--to", help="planned, in_progress, done, cancelled")],
    note: Annotated[str | None, typer.Option("--note", help="Примечание")] = None,
) -> None:
    """Progress of a plan item."""
    with _work() as (_settings, session, now):
        item = session.get(WgPlanItem, item_id)
        if item is None:
            raise WorkgroupError(f"Пункта плана {item_id} нет")
        plans.update_plan_item(session, item, state=to, note=note, now=now, actor=_actor())
        typer.echo("Записано.")


@roadmap_app.command("add", help="Внести мероприятие дорожной карты.")
def roadmap_add(
    group_ref: GroupArg,
    code: Annotated[str, typer.Option("--code", help="Номер мероприятия")],
    title: Annotated[str, typer.Option("--title", help="Мероприятие")],
    act: Annotated[str, typer.Option("--act", help="Акт, утвердивший дорожную карту")] = "",
    due: Annotated[str | None, typer.Option("--due", help="Срок ГГГГ-ММ-ДД")] = None,
) -> None:
    """An item of the department's road map the group tracks."""
    with _work() as (_settings, session, now):
        plans.add_roadmap_item(
            session,
            groups.get_group(session, group_ref),
            code=code,
            title=title,
            act=act,
            due=_date(due, "--due") if due else None,
            now=now,
            actor=_actor(),
        )
        typer.echo(f"Мероприятие {code} внесено.")


@roadmap_app.command("set", help="Записать ход мероприятия дорожной карты и решение, согласовавшее его результат.")
def roadmap_set(
    group_ref: GroupArg,
    code: Annotated[str, typer.Argument(help="Номер мероприятия")],
    state: Annotated[str | None, typer.Option("--state", help="planned, in_progress, done")] = None,
    result: Annotated[str | None, typer.Option("--result", help="Результат")] = None,
    meeting: Annotated[int | None, typer.Option("--agreed-meeting", help="Заседание, согласовавшее результат")] = None,
    item: Annotated[int | None, typer.Option("--agreed-item", help="Вопрос того заседания")] = None,
) -> None:
    """Progress of a road-map item and the decision that agreed its result."""
    with _work() as (_settings, session, now):
        group = groups.get_group(session, group_ref)
        agreed = plans.decision_by_number(session, group, meeting, item).item if meeting and item else None
        plans.update_roadmap_item(
            session,
            group,
            plans.roadmap_item(session, group, code),
            state=state,
            result=result,
            agreed_by=agreed,
            now=now,
            actor=_actor(),
        )
        typer.echo("Записано.")


# Reports, disagreements, sub-groups, the head ----------------------------------------------------------------------


OutputOpt = Annotated[
    Path | None, typer.Option("--output", help="Записать в файл: PDF, если имя оканчивается на .pdf, иначе DOCX")
]


def _write(report: WgReport, output: Path | None, store: BlobStore) -> None:
    """The report into ``output``: PDF when the name ends in .pdf, DOCX otherwise."""
    if output is not None:
        pdf = output.suffix.lower() == ".pdf"
        output.write_bytes(store.get(report.pdf_sha256 if pdf else report.docx_sha256))
        typer.echo(f"Записано {output}")


@report_app.command("progress", help="Подготовить доклад о ходе внедрения клиентоцентричности за период (DOCX и PDF).")
def report_progress(
    group_ref: GroupArg,
    start: Annotated[str, typer.Option("--start", help="Начало периода ГГГГ-ММ-ДД")],
    end: Annotated[str, typer.Option("--end", help="Конец периода ГГГГ-ММ-ДД")],
    output: OutputOpt = None,
) -> None:
    """Generate the progress report for a period (kept; sent with `wg report send`)."""
    with _work() as (settings, session, now):
        report = reports.progress_report(
            session,
            settings,
            groups.get_group(session, group_ref),
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            now=now,
            actor=_actor(),
        )
        typer.echo(f"Доклад {report.id} подготовлен.")
        _write(report, output, BlobStore(settings.blob_dir))


@report_app.command("disagreements", help="Записать разногласия и подготовить протокол разногласий (DOCX и PDF).")
def report_disagreements(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    subject: Annotated[str, typer.Option("--subject", help="Предмет разногласий")],
    party: Annotated[list[str], typer.Option("--party", help="«Сторона=позиция» (не меньше двух)")],
    item: Annotated[int | None, typer.Option("--item", help="Номер вопроса")] = None,
    proposal: Annotated[str, typer.Option("--proposal", help="Предложение рабочей группы")] = "",
    output: OutputOpt = None,
) -> None:
    """Record disagreements the meeting could not resolve and prepare the protocol of disagreements."""
    positions = []
    for value in party:
        side, sep, position = value.partition("=")
        if not sep:
            raise click.BadParameter("ожидается «сторона=позиция»", param_hint="--party")
        positions.append((side, position))
    with _work() as (settings, session, now):
        meeting = meetings.get_meeting(session, meeting_id)
        row = reports.record_disagreement(
            session,
            meeting,
            subject=subject,
            positions=positions,
            proposal=proposal,
            item=meetings.item_by_number(session, meeting, item) if item else None,
            now=now,
            actor=_actor(),
        )
        report = reports.disagreements_protocol(session, settings, row, now=now, actor=_actor())
        typer.echo(f"Протокол разногласий {report.id} подготовлен.")
        _write(report, output, BlobStore(settings.blob_dir))


@report_app.command("send", help="Направить доклад или протокол разногласий руководителю департамента.")
def report_send(
    report_id: Annotated[int, typer.Argument(help="Код документа")],
    again: Annotated[bool, typer.Option("--again", help="Направить повторно")] = False,
) -> None:
    """Send a report or a protocol of disagreements to the head of the department."""
    with _work() as (settings, session, now):
        report = session.get(WgReport, report_id)
        if report is None:
            raise WorkgroupError(f"Документа {report_id} нет")
        reports.send_report(session, settings, report, now=now, actor=_actor(), again=again)
        typer.echo(f"Направлено: {report.sent_to}")


@report_app.command("head", help="Указать руководителя департамента, которому направляются доклады.")
def report_head(
    group_ref: GroupArg,
    name: Annotated[str, typer.Option("--name", help="Руководитель департамента (ФИО, должность)")],
    email: Annotated[str, typer.Option("--email", help="Адрес")],
) -> None:
    """Whom the group's reports go to."""
    with _work() as (_settings, session, now):
        reports.set_head(
            groups.get_group(session, group_ref), name=name, email=email, session=session, now=now, actor=_actor()
        )
        typer.echo("Записано.")


@app.command("subgroup", help="Сформировать экспертную группу или проектный комитет по решению рабочей группы.")
def subgroup_add(
    group_ref: GroupArg,
    slug: Annotated[str, typer.Option("--slug", help="Краткое имя подгруппы (латиницей)")],
    title: Annotated[str, typer.Option("--title", help="Наименование")],
    kind: Annotated[str, typer.Option("--kind", help="expert_group или project_committee")],
    meeting: Annotated[int, typer.Option("--meeting", help="Номер заседания, принявшего решение")],
    item: Annotated[int, typer.Option("--item", help="Номер вопроса")],
) -> None:
    """Form an expert group or a project committee by the group's decision (seed 002 p. 10)."""
    with _work() as (_settings, session, now):
        parent = groups.get_group(session, group_ref)
        decision = plans.decision_by_number(session, parent, meeting, item)
        group = reports.create_subgroup(
            session, parent, slug=slug, title=title, kind=kind, formed_by=decision.item, now=now, actor=_actor()
        )
        typer.echo(f"Сформирована {reports.KIND_NAMES[group.kind]} «{group.title}» ({group.slug}).")
