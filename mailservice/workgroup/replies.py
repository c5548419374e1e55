"""Replies to the working group's e-mails, taken over from intake and held for the secretary.

Intake finds the message we sent (our Message-ID in In-Reply-To/References) and calls the route registered for its
``ref_type``. Here the reply is recognised (a written opinion, a dissent, an agenda proposal, a ballot "1. за",
or something else) and kept as a held item: nothing becomes an opinion or a vote until the secretary confirms it,
and nothing is dropped: a reply from an address that is not a member's is held too, marked as such (the From
header can be forged, so such a reply never counts by itself).

:func:`recognise` is pure; the handlers run inside intake's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from mailservice.config import get_settings
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import register_route
from mailservice.mail.compose import wire_address
from mailservice.mail.parse import ParsedMessage
from mailservice.outbox import OutboxMessage
from mailservice.workgroup import mail
from mailservice.workgroup.groups import member_by_address, members_of
from mailservice.workgroup.meetings import items_of
from mailservice.workgroup.models import WgBallot, WgGroup, WgInboxItem, WgMeeting, WgMember, WgReport
from mailservice.workgroup.service import REPLY_KIND_NAMES, log
from mailservice.workgroup.tally import Choice

_LETTER = "а-яёА-ЯЁa-zA-Z"
# "1. за", "Вопрос 2: против", "по вопросу № 3 — воздержался", "4) «За»"
_BALLOT_LINE = re.compile(
    rf"^\s*(?:по\s+)?(?:вопрос[{_LETTER}]*\s*)?(?:№\s*)?(\d{{1,3}})\s*[.):]?\s*[-–—:]?\s*[«\"']?"
    rf"(за|против|воздерж[{_LETTER}]*)(?![{_LETTER}])",
    re.IGNORECASE | re.MULTILINE,
)
_DISSENT = re.compile(r"особ\w*\s+мнени|не\s+соглас|несоглас|возража", re.IGNORECASE)
_PROPOSAL = re.compile(
    r"в\s+повестк|повестк\w*\s+дня|предлага\w*\s+(?:включить|рассмотреть|добавить|внести)|дополнительн\w*\s+вопрос",
    re.IGNORECASE,
)
_OPINION = re.compile(
    r"мнени|позици|не\s+смогу|не\s+буду\s+присутств|отсутств|в\s+командировк|в\s+отпуск", re.IGNORECASE
)
_ITEM_REF = re.compile(r"вопрос\w*\s*(?:№\s*)?(\d{1,3})", re.IGNORECASE)


def parse_choice(word: str) -> Choice | None:
    """«за», «против», «воздержался» (any ending) as a :class:`Choice`."""
    lowered = word.strip().lower()
    if lowered == "за":
        return Choice.for_
    if lowered == "против":
        return Choice.against
    if lowered.startswith("воздерж"):
        return Choice.abstain
    return None


def parse_ballot(text: str) -> dict[int, Choice]:
    """Numbered answers in a reply: question number -> choice. A question answered twice differently is left
    out (the secretary sees the text and decides)."""
    found: dict[int, Choice] = {}
    conflicting: set[int] = set()
    for match in _BALLOT_LINE.finditer(text):
        number, choice = int(match.group(1)), parse_choice(match.group(2))
        if choice is None:
            continue
        if number in found and found[number] is not choice:
            conflicting.add(number)
        found[number] = choice
    return {n: c for n, c in found.items() if n not in conflicting}


@dataclass(frozen=True)
class Recognised:
    """What a reply seems to be."""

    kind: str  # written_opinion | dissent | agenda_proposal | ballot | other
    choices: dict[int, Choice] = field(default_factory=dict)
    item_number: int | None = None


def recognise(subject: str, text: str, *, ballot_expected: bool) -> Recognised:
    """Guess the kind of a reply; ``ballot_expected`` when it answers a poll ballot.

    Numbered "за/против/воздержался" answers are a ballot only in a written poll: at a meeting an absent member's
    views are a written opinion, which counts toward neither quorum nor votes (RULES.md).
    """
    body = text.strip()
    choices = parse_ballot(body)
    ref = _ITEM_REF.search(body)
    item_number = int(ref.group(1)) if ref else None
    if ballot_expected and choices:
        return Recognised("ballot", choices)
    both = f"{subject}\n{body}"
    if _DISSENT.search(both):
        return Recognised("dissent", choices, item_number)
    if _PROPOSAL.search(both):
        return Recognised("agenda_proposal", choices, item_number)
    if _OPINION.search(both) or (choices and not ballot_expected):
        return Recognised("written_opinion", choices, item_number)
    return Recognised("other", choices, item_number)


# Handlers --------------------------------------------------------------------------------------------------------


def _hold(
    session: Session,
    parsed: ParsedMessage,
    entry: IntakeEntry,
    *,
    group: WgGroup | None,
    meeting: WgMeeting | None,
    ballot: WgBallot | None = None,
    expected_member: WgMember | None = None,
    answered: OutboxMessage | None = None,
) -> str:
    """Keep a reply as a held item for the secretary; returns intake's reason.

    ``answered`` is our letter it replies to: when it went to other addresses than the reply's From, the secretary
    is told (a From is forged easily: a member answering her own agenda as another member would put a dissent in
    that member's name into the minutes)."""
    text = (parsed.new_text or parsed.text or "").strip()
    member = member_by_address(session, group, parsed.from_addr) if group else None
    notes = []
    if member is None:
        notes.append("Отправитель не входит в состав рабочей группы: письмо не учитывается без решения секретаря.")
    elif expected_member is not None and member.id != expected_member.id:
        notes.append(f"Письмо отвечает на бюллетень другого члена группы ({expected_member.name}).")
    elif answered is not None and group is not None and not _went_to(answered, member.email):
        notes.append(_answered_elsewhere(session, group, answered))
    is_poll = meeting is not None and meeting.form == "absentee"
    found = recognise(parsed.subject, text, ballot_expected=is_poll)
    payload: dict[str, object] = {
        "numbers": {str(n): c.value for n, c in sorted(found.choices.items())},
        "attachments": [a.filename for a in parsed.attachments],
        "raw_sha256": entry.raw_sha256,
        "message_id": parsed.message_id or "",
    }
    if found.item_number:
        payload["item_number"] = found.item_number
    if found.kind == "ballot" and meeting is not None:
        items = items_of(session, meeting)
        payload["choices"] = {
            str(items[n - 1].id): c.value for n, c in sorted(found.choices.items()) if 1 <= n <= len(items)
        }
        unknown = [n for n in found.choices if not 1 <= n <= len(items)]
        if unknown:
            notes.append(f"В бюллетене нет вопросов № {', '.join(map(str, sorted(unknown)))}.")
    if parsed.oversized_attachments:
        notes.append(f"Слишком большие вложения не сохранены: {', '.join(parsed.oversized_attachments)}.")
    item = WgInboxItem(
        meeting_id=meeting.id if meeting else None,
        group_id=group.id if group else None,
        ballot_id=ballot.id if ballot else None,
        member_id=member.id if member else None,
        intake_id=entry.id,
        from_addr=parsed.from_addr or "",
        from_name=parsed.from_name[:300],
        subject=parsed.subject[:500],
        text=text,
        kind=found.kind,
        payload=payload,
        status="held",
        received_at=entry.received_at,
        note=" ".join(notes),
    )
    session.add(item)
    session.flush()
    log(
        session,
        now=entry.received_at,
        actor=parsed.from_addr or "",
        action="reply_held",
        group_id=group.id if group else None,
        meeting_id=meeting.id if meeting else None,
        reply=item.id,
        kind=found.kind,
        member=member.id if member else None,
    )
    if member is not None and group is not None:
        # Only a member is answered: a From header can be forged, and an answer to a stranger would be backscatter.
        mail.send_reply_ack(
            session,
            get_settings(),
            member,
            group,
            meeting,
            kind_name=REPLY_KIND_NAMES[found.kind],
            subject=parsed.subject[:200],
            message_id=parsed.message_id or "",
            received=entry.received_at,
        )
    who = "member" if member else "non-member"
    return f"working group: {REPLY_KIND_NAMES[found.kind]} from a {who} held for the secretary (reply {item.id})"


def _went_to(row: OutboxMessage, address: str) -> bool:
    """Whether our letter went to ``address`` (case-insensitive; an internationalised domain as sent)."""
    recipients = {r.strip().lower() for r in row.recipients.split(",") if r.strip()}
    return address.lower() in recipients or wire_address(address).lower() in recipients


def _answered_elsewhere(session: Session, group: WgGroup, row: OutboxMessage) -> str:
    """The note for a member's reply to a letter that went to someone else: whom, when it was one member."""
    others = [m for m in members_of(session, group) if _went_to(row, m.email)]
    if len(others) == 1:
        return f"Письмо отвечает на письмо для другого члена группы ({others[0].name})."
    return "Письмо отвечает на письмо, направленное не на адрес отправителя."


def handle_meeting_reply(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str:
    """A reply to an agenda, approval or signature request, reminder or minutes."""
    meeting = session.get(WgMeeting, row.ref_id) if row.ref_id is not None else None
    group = session.get(WgGroup, meeting.group_id) if meeting else None
    return _hold(session, parsed, entry, group=group, meeting=meeting, answered=row)


def handle_ballot_reply(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str:
    """A reply to a poll ballot ("1. за", "2. против" ...)."""
    ballot = session.get(WgBallot, row.ref_id) if row.ref_id is not None else None
    meeting = session.get(WgMeeting, ballot.meeting_id) if ballot else None
    group = session.get(WgGroup, meeting.group_id) if meeting else None
    expected = session.get(WgMember, ballot.member_id) if ballot else None
    return _hold(
        session, parsed, entry, group=group, meeting=meeting, ballot=ballot, expected_member=expected, answered=row
    )


def handle_member_reply(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str:
    """A reply to the address check: kept for the secretary (the check itself is the link)."""
    member = session.get(WgMember, row.ref_id) if row.ref_id is not None else None
    group = session.get(WgGroup, member.group_id) if member else None
    return _hold(session, parsed, entry, group=group, meeting=None, answered=row)


def handle_report_reply(session: Session, parsed: ParsedMessage, row: OutboxMessage, entry: IntakeEntry) -> str:
    """A reply of the head of the department to a report: kept for the secretary."""
    report = session.get(WgReport, row.ref_id) if row.ref_id is not None else None
    group = session.get(WgGroup, report.group_id) if report else None
    return _hold(session, parsed, entry, group=group, meeting=None, answered=row)


def register() -> None:
    """Register the working group's reply routes with intake."""
    register_route(mail.REF_MEETING, handle_meeting_reply)
    register_route(mail.REF_REPORT, handle_report_reply)
    register_route(mail.REF_BALLOT, handle_ballot_reply)
    register_route(mail.REF_MEMBER, handle_member_reply)
