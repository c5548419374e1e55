"""Typed addresses that belong to another client (defect F12): a request stays on its own record until the
address's owner joins it by a signed link.

An address typed into the site's form, or by staff for a call or a visit, is only claimed (README, "Security
model"). When it is the contact of an existing client, the request is registered at once on a record of its own
(the name, organisation and postal address given), with the typed address as its reply address; staff see a note
and a suggested merge; the acknowledgement to that address carries a link «Это моё обращение — присоединить к моей
истории обращений». Following it (a GET shows a page, only a POST acts) proves control of the mailbox: the request
moves to the address's owner, the address becomes proven for the owner (by ``link``), and the claim record, left
empty, points at the owner like a merged record. Until then the request is in nobody's history but its own
record's. Functions take the caller's session and ``now`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.inforequests import identity
from mailservice.inforequests.lifecycle import EventKind
from mailservice.inforequests.models import Client, Event, IdentityCheck, MergeSuggestion, Proof, Request
from mailservice.tokens import Purpose, TokenError, load_timed, sign_timed

LINK_VALID = dt.timedelta(days=30)  # README: the link joins for 30 days (the answer's own term)
JOINED_BY = "заявитель (переход по подписанной ссылке)"


class ClaimLinkError(ValueError):
    """A link that does not open: ``kind`` is invalid (tampered, another purpose, gone) or expired."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Claim:
    """What a valid link names: the request, the record it was registered on, the address's owner now, and whether
    the request has already been joined (a second use)."""

    request: Request
    record_id: int
    owner: Client
    joined: bool


def token(settings: Settings, request: Request) -> str:
    """The signed token of the link: opaque ids only (the request and the record it was registered on)."""
    return sign_timed(settings, Purpose.request_claim, {"r": request.id, "c": request.client_id})


def url(settings: Settings, request: Request) -> str:
    """The absolute address of the joining page."""
    return f"{settings.public_url.rstrip('/')}/request/claim/{token(settings, request)}"


def note(session: Session, request: Request, owner: Client, now: dt.datetime) -> None:
    """Tell staff, on the request's own record, that its reply address is claimed and whose it is; offer a merge."""
    text = (
        f"Адрес {request.reply_email}, указанный при обращении, записан за клиентом № {owner.id}. Он не подтверждён "
        "для этой записи: запрос зарегистрирован отдельно и в историю владельца адреса не входит, пока владелец не "
        "перейдёт по ссылке из подтверждения регистрации. Объединяйте записи только после проверки личности."
    )
    session.add(
        Event(
            client=request.client,
            request=request,
            at=now,
            kind=EventKind.note,
            comment=text,
            data={"internal": True, "claimed_address": request.reply_email, "owner": owner.id},
        )
    )
    identity.suggest_merge(session, request.client, owner, text, now)


def _owner(session: Session, address: str) -> Client | None:
    from mailservice.inforequests.service import find_client_by_email

    owner = find_client_by_email(session, address)
    return owner if owner is not None and owner.anonymised_at is None else None


def find(session: Session, settings: Settings, raw: str, *, lock: bool = False) -> Claim:
    """The claim a link names, or :class:`ClaimLinkError`; changes nothing (the GET of the page). ``lock`` holds the
    request's row for the caller's transaction (PostgreSQL), so that two clicks at once join once."""
    try:
        payload = load_timed(settings, Purpose.request_claim, raw, int(LINK_VALID.total_seconds()))
    except TokenError as exc:
        raise ClaimLinkError("expired" if exc.expired else "invalid") from exc
    request_id, record_id = (payload.get("r"), payload.get("c")) if isinstance(payload, dict) else (None, None)
    if type(request_id) is not int or type(record_id) is not int:
        raise ClaimLinkError("invalid")
    request = session.get(Request, request_id, with_for_update=lock, populate_existing=lock)
    if request is None or not request.reply_email:
        raise ClaimLinkError("invalid")
    owner = _owner(session, request.reply_email)
    if owner is None:  # the address is nobody's now (anonymised, corrected): nothing to join
        raise ClaimLinkError("invalid")
    if request.client_id == owner.id:
        return Claim(request, record_id, owner, joined=True)
    if request.client_id != record_id:  # staff moved it elsewhere since (a merge after an identity check)
        raise ClaimLinkError("invalid")
    return Claim(request, request.client_id, owner, joined=False)


def join(session: Session, settings: Settings, raw: str, now: dt.datetime) -> Claim:
    """Follow the link (the POST): move the request to the address's owner and prove the address for the owner.
    A second use finds it joined and does nothing (the result says ``joined``: it was joined before)."""
    claim = find(session, settings, raw, lock=True)
    if claim.joined:
        return claim
    request, owner, address = claim.request, claim.owner, claim.request.reply_email
    assert address is not None  # find() refused a request without one
    record = request.client
    move_request(session, request, owner)
    # Following a signed link sent to an address the owner wrote from proves it (README, "Security model").
    identity.prove(session, owner, address, Proof.link, now)
    merged = _absorb_if_empty(session, record, owner, now)
    session.add(
        Event(
            client=owner,
            request=request,
            at=now,
            kind=EventKind.note,
            channel="web",
            comment=f"Запрос № {request.number} присоединён к истории клиента: владелец адреса {address} "
            "подтвердил его переходом по подписанной ссылке из подтверждения регистрации"
            + (f"; запись клиента № {record.id} объединена с этой" if merged else f" (из записи № {record.id})"),
            data={"internal": True, "claim_joined": record.id},
        )
    )
    owner.last_interaction_at = now
    return Claim(request, record.id, owner, joined=False)


def move_request(session: Session, request: Request, client: Client) -> None:
    """Move a request, with its history events and its survey and ratings, to another client's record."""
    from mailservice.feedback.models import FeedbackResponse, FeedbackSurvey  # the console's and the web's sessions

    session.flush()  # the client's id, when the record is new
    request.client = client
    for event in request.events:
        event.client = client
    for model in (FeedbackSurvey, FeedbackResponse):
        session.execute(
            update(model).where(model.request_id == request.id).values(client_id=client.id),
            execution_options={"synchronize_session": False},
        )


def _absorb_if_empty(session: Session, record: Client, owner: Client, now: dt.datetime) -> bool:
    """The claim record, once its request left, points at the owner when nothing else is on it (no other request,
    contact or identity check): its notes follow, and the suggestion between the two is settled. A record staff
    used for more stays as it is."""
    session.flush()
    others = select(Request.id).where(Request.client_id == record.id).limit(1)
    checks = select(IdentityCheck.id).where(IdentityCheck.client_id == record.id).limit(1)
    if record.contacts or session.scalar(others) is not None or session.scalar(checks) is not None:
        return False
    for event in session.scalars(select(Event).where(Event.client_id == record.id)):
        event.client = owner
    record.merged_into_id = owner.id
    pair = select(MergeSuggestion).where(
        MergeSuggestion.status == "open",
        MergeSuggestion.client_id.in_((record.id, owner.id)),
        MergeSuggestion.other_id.in_((record.id, owner.id)),
    )
    for suggestion in session.scalars(pair):
        suggestion.status, suggestion.decided_by, suggestion.decided_at = "accepted", JOINED_BY, now
    return True


__all__ = ["LINK_VALID", "Claim", "ClaimLinkError", "find", "join", "move_request", "note", "token", "url"]
