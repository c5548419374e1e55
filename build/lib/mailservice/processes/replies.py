"""Replies to the register's e-mails (approval requests, decisions), taken over from intake.

A unit may answer the approval e-mail in words instead of following a link. The From header can be forged, so a
reply never counts as a decision: it is passed on to the officers (who can ask the unit to use its link) and is not
registered as a citizen's request. Registered by :func:`mailservice.intake.routes.load_routes`.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import register_route
from mailservice.mail.compose import build_message
from mailservice.mail.parse import ParsedMessage
from mailservice.outbox import OutboxMessage, enqueue
from mailservice.processes.models import ChangeRequest
from mailservice.processes.service import REF_TYPE, officers

EXCERPT_CHARS = 4000


def handle_reply(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str:
    """Pass a reply on to the officers; returns intake's reason."""
    request = session.get(ChangeRequest, row.ref_id) if row.ref_id is not None else None
    if request is None:
        return "ответ на письмо реестра процессов: запрос на изменение не найден"
    settings = get_settings()
    text = (parsed.new_text or parsed.text).strip()[:EXCERPT_CHARS]
    for officer in officers(settings):
        message = build_message(
            settings,
            to=officer,
            subject=f"Реестр процессов, запрос № {request.id}: ответ по почте от {parsed.from_addr}",
            template="process_reply",
            context={"request": request, "sender": parsed.from_addr or "", "text": text, "entry_id": entry.id},
        )
        enqueue(session, message, kind="process_reply", ref_type=REF_TYPE, ref_id=request.id)
    return f"ответ на письмо о запросе № {request.id} на изменение реестра процессов: передан ответственному"


def register() -> None:
    """Receive replies to every e-mail of the register."""
    register_route(REF_TYPE, handle_reply)
