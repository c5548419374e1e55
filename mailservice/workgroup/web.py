"""Web pages of the working group.

Public signed pages (no login; the link itself, signed with a salt per purpose, is the credential):

* ``/wg/approve/{token}`` the chair approves the agenda; ``/wg/sign/{token}`` a signer signs one version of the
  minutes; ``/wg/ballot/{token}`` a member votes on one question of a poll; ``/wg/verify/{token}`` a member
  confirms their address.
* Mail scanners fetch every link, so a GET only shows the page and a POST (a button) acts. A tampered token gets
  400, a stale one (the agenda changed, a newer version of the minutes, the poll closed) 410, a replayed one
  (already voted or signed) 409 with what was recorded; nothing is changed by any of them.

Console pages under ``/staff/wg/`` use the staff console's login, roles and CSRF checks
(:func:`mailservice.web.staff.deps.require`); within them a user acts in the working group by the role of the
member whose address is the user's own (the secretary keeps the records, the chair or deputy approves the
agenda, each signer signs for themselves); an administrator may view and act for the secretary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.templating import render
from mailservice.tokens import Purpose, TokenError, load, load_timed
from mailservice.web.security import DbId, parse_db_id
from mailservice.web.staff import audit
from mailservice.web.staff.auth import ANY_ROLE, Role
from mailservice.web.staff.deps import Refused, StaffContext, client_ip, page, redirect, require
from mailservice.workgroup import groups, meetings, opinions, periodic, service, signing, voting
from mailservice.workgroup.mail import DEADLINE_NAMES, DOCX_TYPE
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgBallot,
    WgGroup,
    WgInboxItem,
    WgMeeting,
    WgMember,
    WgMinutes,
    WgSignature,
    WgVote,
)
from mailservice.workgroup.policy import FORM_NAMES, ROLE_NAMES
from mailservice.workgroup.service import WorkgroupError
from mailservice.workgroup.tally import CHOICE_NAMES, Choice

router = APIRouter(include_in_schema=False)

VERIFY_MAX_AGE = 30 * 24 * 3600  # the address check link lives 30 days
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _now(request: Request) -> dt.datetime:
    """The current time; ``app.state.wg_clock`` (a callable) replaces the clock where time must be simulated."""
    clock = getattr(request.app.state, "wg_clock", None)
    return clock() if callable(clock) else utcnow()


def _page(settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = render(f"web/wg/{template}", settings=settings, **context)
    return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS)


def _message(settings: Settings, status: int, title: str, text: str) -> HTMLResponse:
    return _page(settings, "message.html", status, title=title, text=text)


def _bad_link(settings: Settings) -> HTMLResponse:
    return _message(
        settings,
        400,
        "Ссылка недействительна",
        "Ссылка повреждена или неполна. Откройте её из письма целиком или обратитесь к секретарю рабочей группы.",
    )


def _payload(settings: Settings, purpose: Purpose, token: str) -> dict[str, Any] | None:
    try:
        value = load(settings, purpose, token)
    except TokenError:
        return None
    return value if isinstance(value, dict) else None


async def _choice_field(request: Request) -> str:
    try:
        form = await request.form()
    except Exception:  # a malformed body is a bad request, not a 500
        return ""
    value = form.get("choice")
    return value if isinstance(value, str) else ""


# Agenda approval ------------------------------------------------------------------------------------------------


def _approval(session: Session, settings: Settings, token: str) -> tuple[WgMeeting, WgMember, str] | HTMLResponse:
    payload = _payload(settings, Purpose.wg_approve, token)
    if payload is None:
        return _bad_link(settings)
    meeting = session.get(WgMeeting, payload.get("m"))
    approver = session.get(WgMember, payload.get("a"))
    if meeting is None or approver is None or approver.group_id != meeting.group_id:
        return _bad_link(settings)
    return meeting, approver, str(payload.get("n", ""))


def _approve_view(settings: Settings, token: str, act: bool, now: dt.datetime) -> HTMLResponse:
    with session_scope(settings) as session:
        found = _approval(session, settings, token)
        if isinstance(found, HTMLResponse):
            return found
        meeting, approver, nonce = found
        group = session.get(WgGroup, meeting.group_id)
        context = _meeting_context(session, settings, meeting, group)
        if meeting.status == "cancelled":
            return _message(settings, 410, "Заседание отменено", "Утверждать повестку не нужно.")
        if nonce != meeting.agenda_nonce:
            return _message(
                settings,
                410,
                "Повестка изменилась",
                "После отправки этой ссылки повестка была изменена. Утвердите новую редакцию по ссылке из "
                "последнего письма.",
            )
        if meeting.agenda_approved_at is not None:
            return _page(settings, "approve.html", 409 if act else 200, done=True, approver=approver, **context)
        if not act:
            return _page(settings, "approve.html", done=False, approver=approver, **context)
        try:
            meetings.approve_agenda(session, settings, meeting, approver, nonce=nonce, now=now, how="link")
        except WorkgroupError as exc:
            return _message(settings, 409, "Повестка не утверждена", str(exc))
        return _page(settings, "approve.html", done=True, just_now=True, approver=approver, **context)


@router.get("/wg/approve/{token}", response_class=HTMLResponse)
def approve_page(request: Request, token: str) -> HTMLResponse:
    """Show the agenda and the approval button (a GET approves nothing)."""
    return _approve_view(_settings(request), token, False, _now(request))


@router.post("/wg/approve/{token}", response_class=HTMLResponse)
async def approve_post(request: Request, token: str) -> HTMLResponse:
    """Approve the agenda."""
    return await run_in_threadpool(_approve_view, _settings(request), token, True, _now(request))


def _meeting_context(session: Session, settings: Settings, meeting: WgMeeting, group: WgGroup | None) -> dict[str, Any]:
    start = meeting.starts_at.astimezone(settings.tz)
    return {
        "meeting": meeting,
        "group": group,
        "date": start.date(),
        "time": start.strftime("%H:%M"),
        "form": FORM_NAMES.get(meeting.form, meeting.form),
        "items": meetings.items_of(session, meeting),
        "materials": meetings.materials_of(session, meeting),
    }


# Signatures -----------------------------------------------------------------------------------------------------


def _sign_view(settings: Settings, token: str, act: bool, now: dt.datetime, ip: str) -> HTMLResponse:
    payload = _payload(settings, Purpose.wg_sign, token)
    if payload is None:
        return _bad_link(settings)
    with session_scope(settings) as session:
        signature = session.get(WgSignature, payload.get("s"))
        if signature is None or signature.nonce != payload.get("n"):
            return _bad_link(settings)
        minutes = session.get(WgMinutes, signature.minutes_id)
        member = session.get(WgMember, signature.member_id)
        assert minutes is not None and member is not None
        meeting = meetings.get_meeting(session, minutes.meeting_id)
        group = session.get(WgGroup, meeting.group_id)
        context = {
            **_meeting_context(session, settings, meeting, group),
            "minutes": minutes,
            "member": member,
            "capacity": service.CAPACITY_NAMES.get(signature.capacity, signature.capacity),
            "signed_at": service.fmt_local(settings, signature.signed_at),
        }
        if signature.signed_at is not None:
            return _page(settings, "sign.html", 409 if act else 200, done=True, **context)
        if minutes.status != "draft":
            return _message(
                settings,
                410,
                "Версия протокола заменена",
                "Этот проект протокола заменён исправленным. Подпишите версию по ссылке из последнего письма.",
            )
        if not act:
            return _page(settings, "sign.html", done=False, **context)
        try:
            signing.sign_minutes(session, settings, signature, now=now, method="link", nonce=payload.get("n"), ip=ip)
        except WorkgroupError as exc:
            return _message(settings, 409, "Протокол не подписан", str(exc))
        context["signed_at"] = service.fmt_local(settings, signature.signed_at)
        return _page(settings, "sign.html", done=True, just_now=True, **context)


@router.get("/wg/sign/{token}", response_class=HTMLResponse)
def sign_page(request: Request, token: str) -> HTMLResponse:
    """Show the minutes and the signing button."""
    return _sign_view(_settings(request), token, False, _now(request), "")


@router.post("/wg/sign/{token}", response_class=HTMLResponse)
async def sign_post(request: Request, token: str) -> HTMLResponse:
    """Sign the minutes."""
    return await run_in_threadpool(_sign_view, _settings(request), token, True, _now(request), client_ip(request))


# Ballots --------------------------------------------------------------------------------------------------------


def _ballot_view(settings: Settings, token: str, choice: str | None, now: dt.datetime) -> HTMLResponse:
    payload = _payload(settings, Purpose.wg_ballot, token)
    if payload is None:
        return _bad_link(settings)
    with session_scope(settings) as session:
        ballot = session.get(WgBallot, payload.get("b"))
        item = session.get(WgAgendaItem, payload.get("i"))
        if ballot is None or item is None or ballot.nonce != payload.get("n") or item.meeting_id != ballot.meeting_id:
            return _bad_link(settings)
        meeting = meetings.get_meeting(session, ballot.meeting_id)
        member = session.get(WgMember, ballot.member_id)
        group = session.get(WgGroup, meeting.group_id)
        items = meetings.items_of(session, meeting)
        if item not in items:
            return _message(settings, 410, "Вопрос снят", "Этот вопрос исключён из опроса.")
        vote = session.scalar(select(WgVote).where(WgVote.item_id == item.id, WgVote.member_id == ballot.member_id))
        context = {
            **_meeting_context(session, settings, meeting, group),
            "member": member,
            "item": item,
            "number": items.index(item) + 1,
            "closes": service.fmt_local(settings, meeting.poll_closes_at),
            "choice_names": {c.value: n for c, n in CHOICE_NAMES.items()},
        }
        if vote is not None:
            return _page(
                settings,
                "ballot.html",
                409 if choice is not None else 200,
                vote=vote,
                vote_at=service.fmt_local(settings, vote.at),
                **context,
            )
        closed = meeting.status != "poll_open" or (meeting.poll_closes_at is not None and now >= meeting.poll_closes_at)
        if closed:
            return _message(
                settings,
                410,
                "Голосование завершено",
                f"Опрос завершён {context['closes']}; голоса больше не принимаются.",
            )
        if choice is None:
            return _page(settings, "ballot.html", vote=None, **context)
        try:
            chosen = Choice(choice)
        except ValueError:
            return _page(settings, "ballot.html", 400, vote=None, error="Выберите один из вариантов.", **context)
        try:
            vote = voting.ballot_vote(session, settings, ballot, item, chosen, method="ballot_link", now=now)
        except WorkgroupError as exc:
            return _message(settings, 409, "Голос не принят", str(exc))
        return _page(
            settings, "ballot.html", vote=vote, vote_at=service.fmt_local(settings, vote.at), just_now=True, **context
        )


@router.get("/wg/ballot/{token}", response_class=HTMLResponse)
def ballot_page(request: Request, token: str) -> HTMLResponse:
    """Show one question of the ballot with the three buttons."""
    return _ballot_view(_settings(request), token, None, _now(request))


@router.post("/wg/ballot/{token}", response_class=HTMLResponse)
async def ballot_post(request: Request, token: str) -> HTMLResponse:
    """Cast the vote on one question (once)."""
    choice = await _choice_field(request)
    return await run_in_threadpool(_ballot_view, _settings(request), token, choice, _now(request))


# Address check --------------------------------------------------------------------------------------------------


def _verify_view(settings: Settings, token: str, act: bool, now: dt.datetime) -> HTMLResponse:
    try:
        payload = load_timed(settings, Purpose.wg_verify, token, VERIFY_MAX_AGE)
    except TokenError as exc:
        if exc.expired:
            return _message(
                settings, 410, "Срок ссылки истёк", "Попросите секретаря рабочей группы выслать новую ссылку."
            )
        return _bad_link(settings)
    if not isinstance(payload, dict):
        return _bad_link(settings)
    with session_scope(settings) as session:
        member = session.get(WgMember, payload.get("m"))
        if member is None or member.verify_nonce != payload.get("n") or not member.active:
            return _bad_link(settings)
        group = session.get(WgGroup, member.group_id)
        context: dict[str, Any] = {"member": member, "group": group, "role": ROLE_NAMES.get(member.role, member.role)}
        if member.verified_at is not None:
            return _page(settings, "verify.html", done=True, **context)
        if not act:
            return _page(settings, "verify.html", done=False, **context)
        groups.verify_member(session, member, nonce=str(payload.get("n")), now=now)
        return _page(settings, "verify.html", done=True, just_now=True, **context)


@router.get("/wg/verify/{token}", response_class=HTMLResponse)
def verify_page(request: Request, token: str) -> HTMLResponse:
    """Show the confirmation button."""
    return _verify_view(_settings(request), token, False, _now(request))


@router.post("/wg/verify/{token}", response_class=HTMLResponse)
async def verify_post(request: Request, token: str) -> HTMLResponse:
    """Confirm the address."""
    return await run_in_threadpool(_verify_view, _settings(request), token, True, _now(request))


# Console --------------------------------------------------------------------------------------------------------

Staff = Annotated[StaffContext, Depends(require(ANY_ROLE))]
OFFICERS = frozenset({"chair", "deputy_chair", "secretary"})
DONE = {
    "submit": "Повестка направлена председателю на утверждение.",
    "approve": "Повестка утверждена.",
    "send_agenda": "Повестка, материалы и приглашение разосланы.",
    "finish": "Заседание проведено.",
    "close_poll": "Опрос закрыт.",
    "draft": "Проект протокола подготовлен.",
    "request_signatures": "Протокол направлен на подписание.",
    "sign": "Подпись записана.",
    "attendance": "Участие записано.",
    "vote": "Голос записан.",
    "reply": "Письмо разобрано.",
    "instruction": "Поручение записано; исполнитель получит его, когда протокол будет подписан.",
    "bulk": "Участие и голоса записаны.",
}


def _roles(session: Session, ctx: StaffContext, group: WgGroup) -> set[str]:
    """The user's roles in the group: the member's role whose address is the user's; administrators act for the
    secretary."""
    member = groups.member_by_address(session, group, ctx.email)
    roles = {member.role} if member else set()
    if ctx.role is Role.administrator:
        roles |= {"secretary", "admin"}
    return roles


def _group_or_refuse(session: Session, ctx: StaffContext, group_id: int, need: frozenset[str]) -> WgGroup:
    group = session.get(WgGroup, group_id)
    if group is None:
        raise Refused(404, "Не найдено")
    if not _roles(session, ctx, group) & need:
        raise Refused(403, "Доступ запрещён", "Эта страница доступна секретарю и председателю рабочей группы.")
    return group


@router.get("/staff/wg", response_class=HTMLResponse)
async def console_index(request: Request, ctx: Staff) -> HTMLResponse:
    """Groups the user serves, their meetings with the state of every term, and monthly warnings."""
    settings = _settings(request)

    def work() -> dict[str, Any]:
        now = _now(request)
        with session_scope(settings) as session:
            shown = []
            for group in session.scalars(select(WgGroup).order_by(WgGroup.id)):
                if not _roles(session, ctx, group) & (OFFICERS | {"admin"}):
                    continue
                listed = session.scalars(
                    select(WgMeeting).where(WgMeeting.group_id == group.id).order_by(WgMeeting.starts_at.desc())
                ).all()
                shown.append(
                    {
                        "group": group,
                        "meetings": [
                            {
                                "meeting": m,
                                "when": service.fmt_local(settings, m.starts_at),
                                "status": service.STATUS_NAMES[m.status],
                                "form": FORM_NAMES[m.form],
                                "missed": sum(d.status == "missed" for d in meetings.deadlines_of(session, m)),
                                "held": len(opinions.held_items(session, m)),
                            }
                            for m in listed
                        ],
                        "warnings": periodic.monthly_warnings(session, settings, group, now=now),
                        "unverified": [m for m in groups.members_of(session, group) if m.verified_at is None],
                    }
                )
            return {"groups": shown}

    data = await run_in_threadpool(work)
    return page(request, "web/wg/console_index.html", ctx=ctx, **data)


def _meeting_data(
    session: Session, settings: Settings, ctx: StaffContext, meeting: WgMeeting, now: dt.datetime
) -> dict[str, Any]:
    group = _group_or_refuse(session, ctx, meeting.group_id, OFFICERS | {"admin"})
    members, taking_part, results = voting.tallies(session, meeting)
    people = {m.id: m for m in groups.members_of(session, group, include_inactive=True)}
    attendance = voting.attendance_of(session, meeting)
    versions = signing.minutes_versions(session, meeting)
    me = groups.member_by_address(session, group, ctx.email)
    my_signature = None
    if versions and versions[-1].status == "draft" and me is not None:
        my_signature = next(
            (s for s in signing.signatures_of(session, versions[-1]) if s.member_id == me.id and not s.signed_at), None
        )
    return {
        "group": group,
        "meeting": meeting,
        "roles": _roles(session, ctx, group),
        "when": service.fmt_local(settings, meeting.starts_at),
        "status": service.STATUS_NAMES[meeting.status],
        "form": FORM_NAMES[meeting.form],
        "deadlines": [
            {"row": d, "title": service.DEADLINE_TITLES[d.key], "task": DEADLINE_NAMES[d.key]}
            for d in meetings.sync_deadlines(session, settings, meeting, now)
        ],
        "written_opinions_by": meetings.written_opinions_by(session, settings, meeting),
        "members_total": members,
        "taking_part": taking_part,
        "results": results,
        "votes": {r.item.id: voting.votes_on(session, r.item) for r in results},
        "people": people,
        "voters": groups.voting_members(session, group),
        "attendance": attendance,
        "mode_names": service.MODE_NAMES,
        "method_names": service.METHOD_NAMES,
        "choice_names": {c.value: n for c, n in CHOICE_NAMES.items()},
        "opinions": opinions.opinions_of(session, meeting),
        "held": opinions.held_items(session, meeting),
        "kind_names": service.REPLY_KIND_NAMES,
        "versions": versions,
        "signatures": {v.id: signing.signatures_of(session, v) for v in versions},
        "my_signature": my_signature,
        "presiding": voting.presiding_of(session, meeting),
        "local": lambda moment: service.fmt_local(settings, moment),
        "role_names": ROLE_NAMES,
        **_followup_data(session, settings, meeting, group, now),
    }


def _followup_data(
    session: Session, settings: Settings, meeting: WgMeeting, group: WgGroup, now: dt.datetime
) -> dict[str, Any]:
    """The meeting page's instructions: those given, and whom the secretary may give one to."""
    from mailservice.web.staff.models import StaffUser
    from mailservice.workgroup import instructions

    today = service.local_today(settings, now)
    given = instructions.of_meeting(session, meeting)
    return {
        "instructions": [(i, instructions.status(i.state, i.due, today)) for i in given],
        "instruction_states": instructions.STATE_NAMES,
        "assignable": [m for m in groups.members_of(session, group) if m.role != "invitee"],
        "staff_users": list(
            session.scalars(select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.name))
        ),
        "may_give": meeting.status in instructions.GIVING,
    }


async def _meeting_page(
    request: Request, ctx: StaffContext, meeting_id: DbId, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    settings = _settings(request)

    def work() -> dict[str, Any]:
        with session_scope(settings) as session:
            meeting = session.get(WgMeeting, meeting_id)
            if meeting is None:
                raise Refused(404, "Не найдено")
            return _meeting_data(session, settings, ctx, meeting, _now(request))

    data = await run_in_threadpool(work)
    done = DONE.get(request.query_params.get("done", ""), "")
    return page(
        request, "web/wg/console_meeting.html", ctx=ctx, status_code=status_code, error=error, done=done, **data
    )


@router.get("/staff/wg/meetings/{meeting_id}", response_class=HTMLResponse)
async def console_meeting(request: Request, meeting_id: DbId, ctx: Staff) -> HTMLResponse:
    """A meeting: terms kept or missed, agenda, attendance, votes and outcomes, opinions, held replies, minutes."""
    return await _meeting_page(request, ctx, meeting_id)


async def _transact(
    request: Request,
    ctx: StaffContext,
    model: type[Any],
    object_id: DbId,
    need: frozenset[str],
    step: Callable[[Session, Settings, Any, WgGroup, dict[str, str], dt.datetime], object],
) -> str:
    """Run one console change on a row of ``model`` (which has a ``group_id``) in one transaction, for a user with
    one of the group roles ``need``; returns the refusal's reason, or "" when it was done."""
    settings = _settings(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}

    def work() -> str:
        with session_scope(settings) as session:
            row = session.get(model, object_id)
            if row is None:
                raise Refused(404, "Не найдено")
            group = _group_or_refuse(session, ctx, row.group_id, need)
            try:
                step(session, settings, row, group, fields, _now(request))
            except WorkgroupError as exc:
                session.rollback()
                return str(exc)
        return ""

    return await run_in_threadpool(work)


async def _act(
    request: Request,
    ctx: StaffContext,
    meeting_id: DbId,
    done: str,
    need: frozenset[str],
    action: Callable[[Session, Settings, WgMeeting, WgGroup, dict[str, str], dt.datetime], object],
) -> Response:
    """Run one console action on a meeting in a transaction; a refusal shows the page with the reason."""
    error = await _transact(request, ctx, WgMeeting, meeting_id, need, action)
    if error:
        return await _meeting_page(request, ctx, meeting_id, error=error, status_code=409)
    return redirect(f"/staff/wg/meetings/{meeting_id}?done={done}")


def _member_field(session: Session, group: WgGroup, fields: dict[str, str], name: str = "member_id") -> WgMember:
    value = fields.get(name, "")
    member_id = parse_db_id(value)
    member = session.get(WgMember, member_id) if member_id is not None else None
    if member is None or member.group_id != group.id:
        raise WorkgroupError("Выберите участника")
    return member


def _actor(ctx: StaffContext) -> str:
    return f"staff:{ctx.email}"


@router.post("/staff/wg/meetings/{meeting_id}/action")
async def console_action(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """The secretary's and the chair's buttons: submit, approve, send, finish, close, draft, sign."""
    form = await request.form()
    name = str(form.get("action", ""))
    secretary = frozenset({"secretary"})
    chair = frozenset({"chair", "deputy_chair"})
    steps: dict[str, tuple[frozenset[str], Callable[..., object]]] = {
        "submit": (secretary, lambda s, st, m, g, f, now: meetings.submit_agenda(s, st, m, now=now, actor=_actor(ctx))),
        "approve": (chair, lambda s, st, m, g, f, now: _approve_as_me(s, st, m, g, ctx, now)),
        "send_agenda": (
            secretary,
            lambda s, st, m, g, f, now: meetings.send_agenda(s, st, m, now=now, actor=_actor(ctx)),
        ),
        "finish": (secretary, lambda s, st, m, g, f, now: voting.finish_meeting(s, st, m, now=now, actor=_actor(ctx))),
        "close_poll": (secretary, lambda s, st, m, g, f, now: voting.close_poll(s, st, m, now=now, actor=_actor(ctx))),
        "draft": (secretary, lambda s, st, m, g, f, now: signing.draft_minutes(s, st, m, now=now, actor=_actor(ctx))),
        "request_signatures": (
            secretary,
            lambda s, st, m, g, f, now: signing.request_signatures(s, st, m, now=now, actor=_actor(ctx)),
        ),
        "sign": (OFFICERS | {"member"}, lambda s, st, m, g, f, now: _sign_as_me(s, st, m, g, ctx, now, request)),
    }
    if name not in steps:
        raise Refused(400, "Неизвестное действие")
    need, step = steps[name]
    return await _act(request, ctx, meeting_id, name, need, step)


def _approve_as_me(
    session: Session, settings: Settings, meeting: WgMeeting, group: WgGroup, ctx: StaffContext, now: dt.datetime
) -> None:
    me = groups.member_by_address(session, group, ctx.email)
    if me is None:
        raise WorkgroupError("Повестку утверждает председатель рабочей группы")
    meetings.approve_agenda(session, settings, meeting, me, now=now, how="console")


def _sign_as_me(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    ctx: StaffContext,
    now: dt.datetime,
    request: Request,
) -> None:
    me = groups.member_by_address(session, group, ctx.email)
    minutes = signing.latest_minutes(session, meeting)
    signature = None
    if me is not None and minutes is not None:
        signature = next((s for s in signing.signatures_of(session, minutes) if s.member_id == me.id), None)
    if signature is None:
        raise WorkgroupError("Ваша подпись под этим протоколом не запрашивалась")
    signing.sign_minutes(session, settings, signature, now=now, method="console", ip=client_ip(request))


@router.post("/staff/wg/meetings/{meeting_id}/attendance")
async def console_attendance(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """Record how a member took part."""

    def step(s: Session, st: Settings, m: WgMeeting, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        voting.record_attendance(s, m, _member_field(s, g, f), f.get("mode", ""), now=now, actor=_actor(ctx))

    return await _act(request, ctx, meeting_id, "attendance", frozenset({"secretary"}), step)


@router.post("/staff/wg/meetings/{meeting_id}/vote")
async def console_vote(request: Request, meeting_id: DbId, ctx: Staff) -> Response:
    """Record a vote at the meeting."""

    def step(s: Session, st: Settings, m: WgMeeting, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        number = f.get("item", "")
        try:
            choice = Choice(f.get("choice", ""))
        except ValueError:
            raise WorkgroupError("Выберите «за», «против» или «воздержался»") from None
        item_number = parse_db_id(number)
        if item_number is None:
            raise WorkgroupError("Выберите вопрос")
        item = meetings.item_by_number(s, m, item_number)
        voting.record_vote(
            s, st, m, item, _member_field(s, g, f), choice, now=now, actor=_actor(ctx), replace=f.get("replace") == "1"
        )

    return await _act(request, ctx, meeting_id, "vote", frozenset({"secretary"}), step)


@router.post("/staff/wg/replies/{reply_id}")
async def console_reply(request: Request, reply_id: DbId, ctx: Staff) -> Response:
    """Confirm or reject a held reply."""
    settings = _settings(request)

    def find() -> int:
        with session_scope(settings) as session:
            reply = session.get(WgInboxItem, reply_id)
            if reply is None or reply.meeting_id is None:
                raise Refused(404, "Не найдено")
            return reply.meeting_id

    meeting_id = await run_in_threadpool(find)

    def step(s: Session, st: Settings, m: WgMeeting, g: WgGroup, f: dict[str, str], now: dt.datetime) -> None:
        reply = opinions.get_inbox_item(s, reply_id)
        if f.get("decision") == "reject":
            opinions.reject_reply(s, reply, note=f.get("note", ""), now=now, actor=_actor(ctx))
            return
        member = _member_field(s, g, f) if f.get("member_id") else None
        number = f.get("item", "")
        opinions.confirm_reply(
            s,
            st,
            reply,
            now=now,
            actor=_actor(ctx),
            kind=f.get("kind") or None,
            member=member,
            item_number=parse_db_id(number),
        )

    return await _act(request, ctx, meeting_id, "reply", frozenset({"secretary"}), step)


@router.get("/staff/wg/minutes/{minutes_id}.docx")
async def console_minutes_docx(request: Request, minutes_id: DbId, ctx: Staff) -> Response:
    """Download one version of the minutes."""
    settings = _settings(request)

    def work() -> tuple[bytes, str]:
        with session_scope(settings) as session:
            minutes = session.get(WgMinutes, minutes_id)
            if minutes is None:
                raise Refused(404, "Не найдено")
            meeting = meetings.get_meeting(session, minutes.meeting_id)
            _group_or_refuse(session, ctx, meeting.group_id, OFFICERS | {"admin"})
            data = BlobStore(settings.blob_dir).get(minutes.docx_sha256)
            audit.by_staff(session, ctx, "wg_minutes_download", "wg_minutes", minutes.id)  # README "What is logged"
            return data, f"protokol-{meeting.number}-v{minutes.version}.docx"

    data, filename = await run_in_threadpool(work)
    return Response(
        data,
        media_type=DOCX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# Pages of instructions, bulk entry, plans and reports live in their own modules; their routes join this router.
from mailservice.workgroup.web_instructions import router as _instructions_router  # noqa: E402
from mailservice.workgroup.web_plans import router as _plans_router  # noqa: E402
from mailservice.workgroup.web_sheet import router as _sheet_router  # noqa: E402

router.include_router(_instructions_router)
router.include_router(_sheet_router)
router.include_router(_plans_router)
