"""The working group's e-mail: every message goes through the outbox in the caller's transaction.

Messages carry ``ref_type`` so that a member's reply finds its way back through intake's threading (our
Message-IDs in In-Reply-To/References): ``wg_meeting`` for the agenda, approval and signature requests, reminders
and minutes; ``wg_ballot`` for a poll ballot; ``wg_member`` for the address check. Links are signed (itsdangerous,
one salt per purpose) and carry opaque ids and a nonce, never an address. A GET on any of them only shows a page;
a POST acts (mail scanners fetch every link).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from email.message import Message

from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.compose import build_message
from mailservice.outbox import OutboxMessage, enqueue
from mailservice.tokens import Purpose, sign, sign_timed
from mailservice.workgroup.ics import Invitation, build_ics
from mailservice.workgroup.models import (
    WgAgendaItem,
    WgBallot,
    WgGroup,
    WgMaterial,
    WgMeeting,
    WgMember,
    WgMinutes,
    WgSignature,
)
from mailservice.workgroup.policy import FORM_NAMES, ROLE_NAMES

REF_MEETING = "wg_meeting"
REF_BALLOT = "wg_ballot"
REF_MEMBER = "wg_member"

DEADLINE_NAMES = {
    "agenda_to_chair_by": "передать повестку председателю на утверждение",
    "agenda_send_by": "разослать повестку и материалы членам рабочей группы и приглашённым",
    "written_opinions_by": "направить письменное мнение секретарю",
    "minutes_by": "оформить протокол и передать его на подписание",
    "copies_by": "направить копии протокола членам рабочей группы и приглашённым",
}


def link(settings: Settings, path: str) -> str:
    """An absolute URL of the public site."""
    return f"{settings.public_url.rstrip('/')}{path}"


def approve_link(settings: Settings, meeting: WgMeeting, approver: WgMember) -> str:
    """The chair's one-click agenda approval page (voided by any change of the agenda: new nonce)."""
    payload = {"m": meeting.id, "a": approver.id, "n": meeting.agenda_nonce}
    return link(settings, f"/wg/approve/{sign(settings, Purpose.wg_approve, payload)}")


def sign_link(settings: Settings, signature: WgSignature) -> str:
    """The signer's page for one version of the minutes."""
    return link(settings, f"/wg/sign/{sign(settings, Purpose.wg_sign, {'s': signature.id, 'n': signature.nonce})}")


def ballot_link(settings: Settings, ballot: WgBallot, item: WgAgendaItem) -> str:
    """The ballot page of one question for one member."""
    payload = {"b": ballot.id, "i": item.id, "n": ballot.nonce}
    return link(settings, f"/wg/ballot/{sign(settings, Purpose.wg_ballot, payload)}")


def verify_link(settings: Settings, member: WgMember) -> str:
    """The address confirmation page (a timed token: it expires, see web.VERIFY_MAX_AGE)."""
    payload = {"m": member.id, "n": member.verify_nonce}
    return link(settings, f"/wg/verify/{sign_timed(settings, Purpose.wg_verify, payload)}")


def local(settings: Settings, moment: dt.datetime) -> dt.datetime:
    """An aware instant in the department's time zone."""
    return moment.astimezone(settings.tz)


def meeting_facts(settings: Settings, meeting: WgMeeting, group: WgGroup) -> dict[str, object]:
    """What every message about a meeting says about it."""
    start = local(settings, meeting.starts_at)
    end = start + dt.timedelta(minutes=meeting.duration_min)
    return {
        "group": group,
        "meeting": meeting,
        "date": start.date(),
        "time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "tz": settings.timezone,
        "form": FORM_NAMES.get(meeting.form, meeting.form),
        "is_poll": meeting.form == "absentee",
        "role_names": ROLE_NAMES,
    }


def _enqueue(
    session: Session,
    settings: Settings,
    member: WgMember,
    *,
    subject: str,
    template: str,
    context: Mapping[str, object],
    kind: str,
    ref_type: str,
    ref_id: int,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    calendar_method: str | None = None,
) -> OutboxMessage:
    message: Message = build_message(
        settings,
        to=member.email,
        to_name=member.name,
        subject=subject,
        template=template,
        context={"member": member, **context},
        attachments=attachments,
    )
    if calendar_method:
        # iMIP (RFC 6047 2.4): the calendar part names its iTIP method, so clients offer "accept" or "remove".
        for part in message.walk():
            if part.get_content_type() == "text/calendar":
                part.set_param("method", calendar_method)
                part.set_param("charset", "utf-8")
    return enqueue(session, message, kind=kind, ref_type=ref_type, ref_id=ref_id)


def _subject(meeting: WgMeeting, group: WgGroup, what: str, settings: Settings) -> str:
    day = local(settings, meeting.starts_at).strftime("%d.%m.%Y")
    noun = "Письменный опрос" if meeting.form == "absentee" else "Заседание"
    return f"{what}: {noun} № {meeting.number} рабочей группы «{group.title}» ({day})"


def invitation(
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    recipients: Sequence[WgMember],
    items: Sequence[WgAgendaItem],
    secretary: WgMember | None,
    now: dt.datetime,
) -> Invitation:
    """The calendar event of a meeting as it stands now."""
    agenda = "\n".join(f"{n}. {item.title}" for n, item in enumerate(items, 1))
    return Invitation(
        uid=meeting.ics_uid,
        sequence=meeting.ics_sequence,
        starts_at=meeting.starts_at,
        duration=dt.timedelta(minutes=meeting.duration_min),
        summary=f"Заседание № {meeting.number} рабочей группы «{group.title}»",
        description=f"Форма: {FORM_NAMES.get(meeting.form, meeting.form)}.\nПовестка:\n{agenda}",
        location=meeting.place,
        organizer_email=settings.from_address,
        organizer_name=secretary.name if secretary else settings.from_name,
        attendees=[(m.name, m.email) for m in recipients],
        stamp=now,
    )


# The messages ---------------------------------------------------------------------------------------------------


def send_verification(session: Session, settings: Settings, member: WgMember, group: WgGroup) -> OutboxMessage:
    """Ask a new member to confirm their address once (a button on the page: scanners confirm nothing)."""
    return _enqueue(
        session,
        settings,
        member,
        subject=f"Подтвердите адрес для рабочей группы «{group.title}»",
        template="wg_verify",
        context={"group": group, "url": verify_link(settings, member), "role_names": ROLE_NAMES},
        kind="wg_verify",
        ref_type=REF_MEMBER,
        ref_id=member.id,
    )


def send_approval_request(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    approver: WgMember,
    items: Sequence[WgAgendaItem],
    materials: Sequence[WgMaterial],
) -> OutboxMessage:
    """The agenda to the chair with a one-click approval link (seed 000 p. 11: with its materials)."""
    return _enqueue(
        session,
        settings,
        approver,
        subject=_subject(meeting, group, "Повестка на утверждение", settings),
        template="wg_approval",
        context={
            **meeting_facts(settings, meeting, group),
            "items": items,
            "materials": materials,
            "url": approve_link(settings, meeting, approver),
        },
        kind="wg_approval",
        ref_type=REF_MEETING,
        ref_id=meeting.id,
        attachments=_material_files(settings, materials),
    )


def _material_files(settings: Settings, materials: Sequence[WgMaterial]) -> list[tuple[str, str, bytes]]:
    store = BlobStore(settings.blob_dir)
    return [(m.filename, m.content_type, store.get(m.sha256)) for m in materials]


def send_agenda(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    recipients: Sequence[WgMember],
    items: Sequence[WgAgendaItem],
    materials: Sequence[WgMaterial],
    secretary: WgMember | None,
    *,
    update: bool,
    written_opinions_by: dt.date | None,
    now: dt.datetime,
) -> list[OutboxMessage]:
    """The agenda, its materials and an iCalendar REQUEST to every member and invitee (an update: same UID)."""
    ics = build_ics(invitation(settings, meeting, group, recipients, items, secretary, now), settings.tz)
    files = [*_material_files(settings, materials), ("invite.ics", "text/calendar", ics)]
    what = "Изменение" if update else "Повестка"
    rows = []
    for member in recipients:
        rows.append(
            _enqueue(
                session,
                settings,
                member,
                subject=_subject(meeting, group, what, settings),
                template="wg_agenda",
                context={
                    **meeting_facts(settings, meeting, group),
                    "items": items,
                    "materials": materials,
                    "update": update,
                    "written_opinions_by": written_opinions_by,
                    "voting": member.voting and member.role != "invitee",
                },
                kind="wg_agenda",
                ref_type=REF_MEETING,
                ref_id=meeting.id,
                attachments=files,
                calendar_method="REQUEST",
            )
        )
    return rows


def send_cancellation(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    recipients: Sequence[WgMember],
    items: Sequence[WgAgendaItem],
    secretary: WgMember | None,
    reason: str,
    now: dt.datetime,
) -> list[OutboxMessage]:
    """An iCalendar CANCEL (same UID, next SEQUENCE) to everyone who had the invitation."""
    ics = build_ics(invitation(settings, meeting, group, recipients, items, secretary, now), settings.tz, cancel=True)
    return [
        _enqueue(
            session,
            settings,
            member,
            subject=_subject(meeting, group, "Отмена", settings),
            template="wg_cancel",
            context={**meeting_facts(settings, meeting, group), "reason": reason},
            kind="wg_cancel",
            ref_type=REF_MEETING,
            ref_id=meeting.id,
            attachments=[("cancel.ics", "text/calendar", ics)],
            calendar_method="CANCEL",
        )
        for member in recipients
    ]


def send_ballot(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    ballot: WgBallot,
    member: WgMember,
    items: Sequence[WgAgendaItem],
    materials: Sequence[WgMaterial],
) -> OutboxMessage:
    """A poll ballot: each question with its own signed link; a reply "1. за" per question works too."""
    assert meeting.poll_closes_at is not None
    questions = [(n, item, ballot_link(settings, ballot, item)) for n, item in enumerate(items, 1)]
    return _enqueue(
        session,
        settings,
        member,
        subject=_subject(meeting, group, "Бюллетень", settings),
        template="wg_ballot",
        context={
            **meeting_facts(settings, meeting, group),
            "questions": questions,
            "closes": local(settings, meeting.poll_closes_at),
        },
        kind="wg_ballot",
        ref_type=REF_BALLOT,
        ref_id=ballot.id,
        attachments=_material_files(settings, materials),
    )


def send_signature_request(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    minutes: WgMinutes,
    signature: WgSignature,
    member: WgMember,
    docx: bytes,
) -> OutboxMessage:
    """One version of the minutes to a signer, with the link that signs it."""
    return _enqueue(
        session,
        settings,
        member,
        subject=_subject(meeting, group, f"Протокол на подписание (версия {minutes.version})", settings),
        template="wg_sign",
        context={**meeting_facts(settings, meeting, group), "minutes": minutes, "url": sign_link(settings, signature)},
        kind="wg_sign",
        ref_type=REF_MEETING,
        ref_id=meeting.id,
        attachments=[(f"protokol-{meeting.number}-v{minutes.version}.docx", DOCX_TYPE, docx)],
    )


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def send_minutes(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    recipients: Sequence[WgMember],
    docx: bytes,
    html_document: str,
) -> list[OutboxMessage]:
    """Copies of the signed minutes (DOCX and HTML) to members and invitees."""
    files = [
        (f"protokol-{meeting.number}.docx", DOCX_TYPE, docx),
        (f"protokol-{meeting.number}.html", "text/html", html_document.encode("utf-8")),
    ]
    return [
        _enqueue(
            session,
            settings,
            member,
            subject=_subject(meeting, group, "Протокол", settings),
            template="wg_minutes",
            context=meeting_facts(settings, meeting, group),
            kind="wg_minutes",
            ref_type=REF_MEETING,
            ref_id=meeting.id,
            attachments=files,
        )
        for member in recipients
    ]


def send_deadline_notice(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    group: WgGroup,
    recipients: Sequence[WgMember],
    key: str,
    due: dt.date,
    *,
    missed: bool,
) -> list[OutboxMessage]:
    """A reminder before a deadline of the regulation, or the notice that it was missed."""
    what = "Срок пропущен" if missed else "Напоминание о сроке"
    return [
        _enqueue(
            session,
            settings,
            member,
            subject=_subject(meeting, group, what, settings),
            template="wg_reminder",
            context={
                **meeting_facts(settings, meeting, group),
                "task": DEADLINE_NAMES.get(key, key),
                "due": due,
                "missed": missed,
            },
            kind="wg_missed" if missed else "wg_reminder",
            ref_type=REF_MEETING,
            ref_id=meeting.id,
        )
        for member in recipients
    ]
