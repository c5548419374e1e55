"""``mailservice wg inbox|opinion|minutes``: members' held replies, written and dissenting opinions, the minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mailservice.workgroup import groups, meetings, opinions, service, signing
from mailservice.workgroup.cli_common import _actor, _meeting, _work, app
from mailservice.workgroup.models import WgGroup
from mailservice.workgroup.service import WorkgroupError

inbox_app = typer.Typer(help="Ответы членов группы, ожидающие решения секретаря.", no_args_is_help=True)
opinion_app = typer.Typer(help="Письменные и особые мнения.", no_args_is_help=True)
minutes_app = typer.Typer(help="Протоколы: проекты, подписи, экспорт.", no_args_is_help=True)
app.add_typer(inbox_app, name="inbox")
app.add_typer(opinion_app, name="opinion")
app.add_typer(minutes_app, name="minutes")


# Replies and opinions -------------------------------------------------------------------------------------------


@inbox_app.command("list")
def inbox_list(meeting_id: Annotated[int | None, typer.Option("--meeting", help="Код заседания")] = None) -> None:
    """Ответы, ожидающие секретаря."""
    with _work() as (settings, session, _now):
        meeting = meetings.get_meeting(session, meeting_id) if meeting_id else None
        for reply in opinions.held_items(session, meeting):
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
        reply = opinions.get_inbox_item(session, reply_id)
        member = None
        if member_ref and reply.group_id:
            group = session.get(WgGroup, reply.group_id)
            assert group is not None
            member = groups.find_member(session, group, member_ref)
        done = opinions.confirm_reply(
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
        reply = opinions.get_inbox_item(session, reply_id)
        opinions.reject_reply(session, reply, note=note, now=now, actor=_actor())
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
        member = groups.find_member(session, group, member_ref)
        agenda_item = meetings.item_by_number(session, meeting, item) if item else None
        opinions.add_opinion(
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
        minutes = signing.draft_minutes(session, settings, meeting, now=now, actor=_actor())
        typer.echo(f"Проект протокола, версия {minutes.version}.")


@minutes_app.command("sign")
def minutes_sign(
    meeting_id: Annotated[int, typer.Argument(help="Код заседания")],
    member_ref: Annotated[str, typer.Option("--member", help="Кто подписал (на бумаге)")],
) -> None:
    """Отметить подпись, поставленную на бумаге."""
    with _work() as (settings, session, now):
        meeting, group = _meeting(session, meeting_id)
        member = groups.find_member(session, group, member_ref)
        minutes = signing.latest_minutes(session, meeting)
        signature = next(
            (s for s in (signing.signatures_of(session, minutes) if minutes else []) if s.member_id == member.id), None
        )
        if signature is None:
            raise WorkgroupError("Подпись этого человека не запрашивалась (wg send signatures)")
        signing.sign_minutes(session, settings, signature, now=now, method="cli")
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
        versions = signing.minutes_versions(session, meeting)
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
