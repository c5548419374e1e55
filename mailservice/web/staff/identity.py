"""Console pages of identity: the check in person on the client page and the suggested merges (issue 14).

Typing an address proves nothing; a check in person does (README, "Security model"). Both actions are audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.db import session_scope, utcnow
from mailservice.inforequests.identity import CONTACT_KINDS, DOCUMENTS, PROOF_NAMES, open_suggestions
from mailservice.inforequests.models import Client, IdentityCheck, MergeSuggestion
from mailservice.mail.headers import normalise_address
from mailservice.web.security import DbId, parse_db_id
from mailservice.web.staff import actions
from mailservice.web.staff.actions import ConsoleError
from mailservice.web.staff.deps import Refused, redirect, settings_of
from mailservice.web.staff.routes import Operator, Text, _audit, _client_page

router = APIRouter(prefix="/staff", include_in_schema=False)


def page_context(session: Session, client_id: int) -> dict[str, Any]:
    """What the client page shows of identity: checks made, suggested merges waiting, the documents list."""
    checks = session.scalars(
        select(IdentityCheck).where(IdentityCheck.client_id == client_id).order_by(IdentityCheck.id)
    ).all()
    return {
        "identity_checks": checks,
        "suggestions": open_suggestions(session, client_id),
        "documents": DOCUMENTS,
        "proof_names": PROOF_NAMES,
        "contact_kinds": CONTACT_KINDS,
    }


@router.post("/clients/{client_id}/identity")
def identity_check(
    request: Request,
    ctx: Operator,
    client_id: DbId,
    document: Text = "",
    email: Text = "",
    phone: Text = "",
    note: Text = "",
) -> Response:
    """Record an identity check in person: the document's type, who, when, and the address and phone given."""
    typed = {"form": "identity", "document": document, "email": email, "phone": phone, "note": note}
    try:
        address, telephone = _given_contacts(email, phone)
        with session_scope(settings_of(request)) as session:
            client = session.get(Client, client_id)
            if client is None:
                raise Refused(404, "Клиент не найден")
            check = actions.record_identity_check(
                session,
                client,
                document=document,
                email=address,
                phone=telephone,
                note=note,
                actor=ctx.email,
                now=utcnow(),
            )
            session.flush()
            _audit(
                session, ctx, "identity_check", "client", client.id, check=check.id, document=document, email=address
            )
    except ConsoleError as exc:
        return _client_page(request, ctx, client_id, error=str(exc), status_code=400, client_form=typed)
    return redirect(f"/staff/clients/{client_id}?done=identity")


def _given_contacts(email: str, phone: str) -> tuple[str | None, str | None]:
    """The address and phone the person gave at a check, as typed in a form (the address normalised)."""
    address = None
    if email.strip():
        address = normalise_address(email.strip())
        if address is None:
            raise ConsoleError("Неверный адрес электронной почты")
    return address, phone.strip()[:40] or None


@router.post("/clients/{client_id}/merge")
def client_merge(
    request: Request,
    ctx: Operator,
    client_id: DbId,
    other_id: Text = "",
    document: Text = "",
    email: Text = "",
    phone: Text = "",
) -> Response:
    """Merge another record of the same person into this one, after an identity check in person."""
    # README "Staff console": a refused action loses nothing typed; the merge form comes back filled in.
    typed = {"form": "m", "other_id": other_id, "document": document, "email": email, "phone": phone}
    other = parse_db_id(other_id)
    if other is None:
        return _client_page(
            request, ctx, client_id, error="Укажите номер записи клиента", status_code=400, client_form=typed
        )
    try:
        address, telephone = _given_contacts(email, phone)
        with session_scope(settings_of(request)) as session:
            survivor = session.get(Client, client_id)
            duplicate = session.get(Client, other)
            if survivor is None:
                raise Refused(404, "Клиент не найден")
            if duplicate is None:
                raise ConsoleError(f"Клиент № {other} не найден")
            check = actions.merge_clients(
                session,
                survivor,
                duplicate,
                actor=ctx.email,
                now=utcnow(),
                document=document,
                email=address,
                phone=telephone,
            )
            _audit(session, ctx, "client_merge", "client", client_id, merged=other, check=check.id, document=document)
    except ConsoleError as exc:
        return _client_page(request, ctx, client_id, error=str(exc), status_code=400, client_form=typed)
    return redirect(f"/staff/clients/{client_id}?done=merge")


@router.post("/merge-suggestions/{suggestion_id}")
def decide_suggestion(
    request: Request,
    ctx: Operator,
    suggestion_id: DbId,
    decision: Text = "",
    document: Text = "",
    email: Text = "",
    phone: Text = "",
) -> Response:
    """Accept (merge the newer record into the other, after an identity check) or reject a suggested merge."""
    if decision not in ("accept", "reject"):
        raise Refused(400, "Неизвестное решение")
    page = None
    try:
        with session_scope(settings_of(request)) as session:
            suggestion = session.get(MergeSuggestion, suggestion_id)
            if suggestion is None:
                raise Refused(404, "Предложение не найдено")
            page = suggestion.other_id
            address, telephone = _given_contacts(email, phone)  # a typo comes back on the page, not a bare error
            target = suggestion.other_id if decision == "accept" else suggestion.client_id
            pair = {"client": suggestion.client_id, "other": suggestion.other_id}
            actions.decide_suggestion(
                session,
                suggestion,
                accept=decision == "accept",
                actor=ctx.email,
                now=utcnow(),
                document=document,
                email=address,
                phone=telephone,
            )
            _audit(session, ctx, f"merge_{decision}", "merge_suggestion", suggestion_id, **pair)
    except ConsoleError as exc:
        if page is None:
            raise Refused(400, "Решение не принято", str(exc)) from exc
        typed = {"form": f"s{suggestion_id}", "document": document, "email": email, "phone": phone}
        return _client_page(request, ctx, page, error=str(exc), status_code=400, client_form=typed)
    return redirect(f"/staff/clients/{target}?done=suggestion")
