"""Console page of the quarantine: letters intake could not take, and letting one through with the author's
address staff read in it (tryout F2: a whole "Name <addr>" in one encoded word left a letter there for good), or
setting junk aside as no appeal (tryout W5); a page at a time, as the other console lists."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mailservice.blobs import BlobStore
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.service import get_by_number
from mailservice.intake import quarantine
from mailservice.intake.actions import ActionError
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.russian import outcome_ru, reason_ru
from mailservice.mail.headers import decode_encoded_words
from mailservice.mail.quotes import html_to_text
from mailservice.web.security import DbId
from mailservice.web.staff import audit
from mailservice.web.staff.actions import LIST_PAGE, Paged, _clamp_page
from mailservice.web.staff.auth import OPERATE
from mailservice.web.staff.deps import StaffContext, page, redirect, require, settings_of
from mailservice.web.staff.routes import _page_param

router = APIRouter(prefix="/staff", include_in_schema=False)

Operator = Annotated[StaffContext, Depends(require(OPERATE))]
Text = Annotated[str, Form()]
PREVIEW = 4000  # characters of the raw letter shown to staff


READ_LIMIT = 256 * 1024  # bytes of a quarantined letter parsed for its text: a page shows up to LIST_PAGE letters


def _preview(store: BlobStore, entry: IntakeEntry) -> tuple[str, str, str]:
    """The letter's From as text (encoded words decoded, only to be read), its text as a reader sees it (the first
    text part, decoded; empty when none can be read) and its first characters as received."""
    try:
        raw = store.get(entry.raw_sha256)
    except (FileNotFoundError, ValueError):
        return "", "", "(исходное письмо не сохранилось)"
    text = raw[: PREVIEW * 4].decode("utf-8", errors="replace").replace("\x00", " ")
    head = text.split("\n\n", 1)[0].split("\r\n\r\n", 1)[0]
    sender = ""
    for line in head.splitlines():
        if line.lower().startswith("from:"):
            sender = " ".join(decode_encoded_words(line[5:].strip()).split())
            break
    return sender, _readable(raw[:READ_LIMIT]), text[:PREVIEW]


def _readable(raw: bytes) -> str:
    """The first text part of a letter, transfer encoding and charset decoded (HTML as text), for staff to read
    (staff-day tryout of 7 December: the page showed base64). Read leniently with the standard library's old
    parser: whatever made intake quarantine the letter must not hide its text too."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        for part in message.walk():
            if part.get_content_maintype() != "text" or part.get_filename():
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            charset = part.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, errors="replace")
            except LookupError:  # an unknown charset name
                text = payload.decode("utf-8", errors="replace")
            if part.get_content_subtype() == "html":
                text = html_to_text(text)
            return text.replace("\x00", " ").strip()[:PREVIEW]
    except Exception:
        return ""
    return ""


DONE_ASIDE = "aside"  # ?done= after a letter was set aside (a release puts its number or outcome there)
_NUMBER = re.compile(r"\d{4}-\d{6}")


def _released(session: Session, done: str) -> tuple[str, int | None] | None:
    """What ``?done=`` after a release may say: a registration number that exists (with its request's id, for a
    link) or an outcome, in Russian; anything else in the address is not shown (tryout of 7 December: any text put
    there appeared in the page's status line as the console's own words)."""
    if _NUMBER.fullmatch(done):
        found = get_by_number(session, done)
        return (done, found.id) if found is not None else None
    if done in Outcome.__members__:
        return outcome_ru(done), None
    return None


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request, ctx: Operator) -> Response:
    """Quarantined letters not dealt with yet, a page at a time, each with a way to register it with an address
    staff type or to set it aside as no appeal; ``?show=not_appeal`` lists those set aside."""
    return _page(request, ctx, error="", done=request.query_params.get("done", "")[:40])


@router.post("/quarantine/{entry_id}/set-aside")
def quarantine_set_aside(request: Request, ctx: Operator, entry_id: DbId) -> Response:
    """Set the letter aside as no appeal (junk without a sender): kept, no number; it can still be released."""
    settings = settings_of(request)
    try:
        with session_scope(settings) as session:
            quarantine.set_aside(session, entry_id, actor=ctx.email, now=utcnow())
            audit.by_staff(session, ctx, "quarantine_set_aside", "intake", entry_id)
    except ActionError as exc:
        return _page(request, ctx, error=str(exc))
    return redirect(f"/staff/quarantine?done={DONE_ASIDE}")


@router.post("/quarantine/{entry_id}/release")
async def quarantine_release(request: Request, ctx: Operator, entry_id: DbId, sender: Text = "") -> Response:
    """Take the letter through intake again, with the author's address typed by staff when it has none."""
    settings = settings_of(request)
    try:
        result = await run_in_threadpool(
            quarantine.release, settings, entry_id, actor=ctx.email, sender=sender.strip() or None
        )
    except ActionError as exc:
        return _page(request, ctx, error=str(exc))
    with session_scope(settings) as session:
        audit.record(
            session,
            now=utcnow(),
            actor=ctx.email,
            actor_id=ctx.user_id,
            action="quarantine_release",
            object_type="intake",
            object_id=entry_id,
            details={"sender": sender.strip()[:320], "outcome": str(result.outcome)},
            ip=ctx.ip,
        )
    if result.outcome == "quarantined":
        return _page(request, ctx, error=f"Письмо снова не принято: {reason_ru(result.reason)}. Укажите адрес автора.")
    return redirect(f"/staff/quarantine?done={result.request_number or result.outcome}")


def _view(request: Request) -> quarantine.View:
    try:
        return quarantine.View(request.query_params.get("show", quarantine.View.waiting))
    except ValueError:
        return quarantine.View.waiting


def _page(request: Request, ctx: StaffContext, *, error: str, done: str = "") -> Response:
    settings = settings_of(request)
    store = BlobStore(settings.blob_dir)
    view = _view(request)
    with session_scope(settings) as session:
        total = quarantine.count(session, view)
        number, pages = _clamp_page(_page_param(request, "page"), total, LIST_PAGE)
        # Only this page's letters are loaded and read from the blob store.
        entries = quarantine.listed(session, view, offset=(number - 1) * LIST_PAGE, limit=LIST_PAGE)
        rows = [(entry, *_preview(store, entry)) for entry in entries]
        return page(
            request,
            "web/staff/quarantine.html",
            ctx=ctx,
            rows=rows,
            shown=Paged(rows, number, pages, total),
            view=view.value,
            aside_count=quarantine.count(session, quarantine.View.not_appeal) if view is quarantine.View.waiting else 0,
            error=error,
            released=_released(session, done),
            set_aside=done == DONE_ASIDE,
            status_code=400 if error else 200,
            reason_ru=reason_ru,
            local=lambda moment: moment.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M") if moment else "",
        )
