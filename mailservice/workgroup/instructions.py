"""Instructions (поручения) given by the group's decisions, and their follow-up until they are carried out.

Seed 000 p. 6.4: the chair gives instructions to members; p. 7.4: members ensure decisions are carried out. Here:

* an instruction belongs to an adopted decision (an agenda item), names one assignee (a member of the group or a
  member of staff), the expected result and a term in working days counted from the meeting day the way
  RULES.md reads "within N working days after D" (or a date);
* the minutes carry it under its decision; when the minutes are signed the assignee gets it by e-mail with a signed
  link (salt ``wg_instruction``; the payload holds opaque ids and a nonce) to report it done (a comment and files)
  or to ask for more time (a reason and a date), which the chair or the secretary approves or refuses;
* the worker's pass reminds the assignee before the term and once after it (copy to the secretary);
* the next meeting's agenda gets an automatic item «Об исполнении ранее данных поручений» listing each one's state
  as of the agenda's submission to the chair.

Each function takes the caller's session, ``now`` and the actor, and never commits; a refusal raises
:class:`~mailservice.workgroup.service.WorkgroupError` with a Russian message.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.parse import sanitize_filename
from mailservice.tokens import Purpose, TokenError, load, sign
from mailservice.web.staff.models import StaffUser
from mailservice.workdays import Calendar, default_calendar
from mailservice.workgroup import groups, mail, meetings, service, voting
from mailservice.workgroup.minutes import term_text
from mailservice.workgroup.models import WgAgendaItem, WgGroup, WgInstruction, WgInstructionReport, WgMeeting, WgMember
from mailservice.workgroup.service import WorkgroupError

OPEN = ("assigned", "extension_requested")
STATES = (*OPEN, "done", "cancelled")
STATE_NAMES = {
    "assigned": "на исполнении",
    "extension_requested": "запрошено продление срока",
    "done": "исполнено",
    "cancelled": "снято с контроля",
    "overdue": "просрочено",
}
FOLLOWUP_KIND = "instructions"
FOLLOWUP_TITLE = "Об исполнении ранее данных поручений"
FOLLOWUP_PROPOSAL = "Принять к сведению информацию об исполнении ранее данных поручений."
MAX_FILES = 10
# While the meeting's records may still change (before the minutes are signed).
GIVING = ("agenda_approved", "agenda_sent", "held", "minutes_draft", "minutes_signing")


# Pure rules ---------------------------------------------------------------------------------------------------


def status(state: str, due: dt.date, today: dt.date) -> str:
    """The state shown to people: an open instruction past its term is ``overdue``."""
    return "overdue" if state in OPEN and today > due else state


def due_after(calendar: Calendar, day: dt.date, working_days: int) -> dt.date:
    """The last day of a term of ``working_days`` after ``day`` (``day`` not counted)."""
    if working_days < 1:
        raise WorkgroupError("Срок поручения — не меньше одного рабочего дня")
    return calendar.add_working_days(day, working_days)


def reminder_due(state: str, due: dt.date, today: dt.date, calendar: Calendar, lead: int) -> str | None:
    """``before`` when a reminder is due (``lead`` working days or fewer left), ``after`` once the term is past,
    None otherwise."""
    if state not in OPEN:
        return None
    if today > due:
        return "after"
    if calendar.working_days_between(today, due) <= lead:
        return "before"
    return None


# Records ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """An assignee as the e-mail and the records see them."""

    name: str
    email: str


def _calendar(settings: Settings) -> Calendar:
    return default_calendar(settings)


def group_of(session: Session, instruction: WgInstruction) -> WgGroup:
    """The group that gave the instruction."""
    group = session.get(WgGroup, instruction.group_id)
    assert group is not None
    return group


def get(session: Session, instruction_id: int) -> WgInstruction:
    """An instruction by id."""
    found = session.get(WgInstruction, instruction_id)
    if found is None:
        raise WorkgroupError(f"Поручение {instruction_id} не найдено")
    return found


def of_meeting(session: Session, meeting: WgMeeting) -> list[WgInstruction]:
    """The instructions given at a meeting, in the order given."""
    query = select(WgInstruction).where(WgInstruction.meeting_id == meeting.id).order_by(WgInstruction.id)
    return list(session.scalars(query))


def give(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    item: WgAgendaItem,
    *,
    text: str,
    expected_result: str,
    member: WgMember | None = None,
    staff: StaffUser | None = None,
    due_wd: int | None = None,
    due: dt.date | None = None,
    now: dt.datetime,
    actor: str,
) -> WgInstruction:
    """Record an instruction of an adopted decision (it goes out when the minutes are signed)."""
    service.refuse_after_signing(meeting)
    if meeting.status not in GIVING:
        raise WorkgroupError("Поручения даются решениями заседания: сначала утвердите повестку и проведите заседание")
    numbers = {r.item.id: r for r in voting.tallies(session, meeting)[2]}
    if item.id not in numbers:
        raise WorkgroupError("Этого вопроса нет в повестке")
    if not numbers[item.id].result.adopted:
        raise WorkgroupError(
            f"По вопросу № {numbers[item.id].number} решение не принято: поручение даётся только принятым решением"
        )
    if (member is None) == (staff is None):
        raise WorkgroupError("Укажите одного исполнителя: члена рабочей группы или сотрудника")
    if member is not None:
        if member.group_id != meeting.group_id or not member.active or member.role == "invitee":
            raise WorkgroupError("Исполнитель должен быть членом рабочей группы")
        person = Person(member.name, member.email)
    else:
        assert staff is not None
        if not staff.active:
            raise WorkgroupError("Учётная запись сотрудника отключена")
        person = Person(staff.name or staff.email, staff.email)
    if not text.strip():
        raise WorkgroupError("Укажите, что поручено")
    if not expected_result.strip():
        raise WorkgroupError("Укажите ожидаемый результат")
    day = service.meeting_day(settings, meeting)
    if due_wd is not None:
        due = due_after(_calendar(settings), day, due_wd)
    elif due is None:
        raise WorkgroupError("Укажите срок: число рабочих дней или дату")
    elif due <= day:
        raise WorkgroupError("Срок поручения должен быть позже дня заседания")
    instruction = WgInstruction(
        group_id=meeting.group_id,
        meeting_id=meeting.id,
        item_id=item.id,
        assignee_member_id=member.id if member else None,
        assignee_staff_id=staff.id if staff else None,
        assignee_name=person.name,
        assignee_email=person.email,
        text=text.strip(),
        expected_result=expected_result.strip(),
        due_wd=due_wd,
        due=due,
        original_due=due,
        state="assigned",
        nonce=secrets.token_hex(8),
        created_at=now,
        created_by=actor,
    )
    session.add(instruction)
    session.flush()
    service.log(
        session,
        now=now,
        actor=actor,
        action="instruction_given",
        group_id=meeting.group_id,
        meeting_id=meeting.id,
        instruction=instruction.id,
        item=item.id,
    )
    return instruction


def cancel(session: Session, instruction: WgInstruction, *, reason: str, now: dt.datetime, actor: str) -> None:
    """Take an instruction off control (the group decided so); the reason is logged."""
    if instruction.state not in OPEN:
        raise WorkgroupError(f"Поручение уже {STATE_NAMES[instruction.state]}")
    if not reason.strip():
        raise WorkgroupError("Укажите, почему поручение снимается с контроля")
    instruction.state, instruction.done_at = "cancelled", now
    service.log(
        session,
        now=now,
        actor=actor,
        action="instruction_cancelled",
        group_id=instruction.group_id,
        meeting_id=instruction.meeting_id,
        instruction=instruction.id,
        reason=reason.strip(),
    )


# E-mail and the signed link -----------------------------------------------------------------------------------


def token(settings: Settings, instruction: WgInstruction) -> str:
    """The signed token of the assignee's report page (opaque ids and the nonce only)."""
    return sign(settings, Purpose.wg_instruction, {"i": instruction.id, "n": instruction.nonce})


def report_url(settings: Settings, instruction: WgInstruction) -> str:
    """The assignee's report page."""
    return mail.link(settings, f"/wg/instruction/{token(settings, instruction)}")


def by_token(session: Session, settings: Settings, value: str) -> WgInstruction | None:
    """The instruction behind a link, or None when the link is tampered, unknown or superseded."""
    try:
        payload = load(settings, Purpose.wg_instruction, value)
    except TokenError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), int) or not isinstance(payload.get("n"), str):
        return None
    found = session.get(WgInstruction, payload["i"])
    if found is None or not secrets.compare_digest(found.nonce, payload["n"]):
        return None
    return found


def _facts(session: Session, settings: Settings, instruction: WgInstruction) -> dict[str, object]:
    meeting = meetings.get_meeting(session, instruction.meeting_id)
    group = group_of(session, instruction)
    item = session.get(WgAgendaItem, instruction.item_id)
    assert item is not None
    numbers = {i.id: n for n, i in enumerate(meetings.items_of(session, meeting), 1)}
    return {
        **mail.meeting_facts(settings, meeting, group),
        "instruction": instruction,
        "item": item,
        "number": numbers.get(item.id),
        "term": term_text(instruction.due_wd if instruction.due == instruction.original_due else None, instruction.due),
        "due": instruction.due,
        "url": report_url(settings, instruction),
    }


def send(session: Session, settings: Settings, instruction: WgInstruction, *, now: dt.datetime, actor: str) -> None:
    """E-mail the instruction with its report link (again: a fresh nonce voids the earlier link)."""
    if instruction.state not in OPEN:
        raise WorkgroupError(f"Поручение уже {STATE_NAMES[instruction.state]}")
    if instruction.sent_at is not None:
        instruction.nonce = secrets.token_hex(8)
    mail.enqueue_to(
        session,
        settings,
        Person(instruction.assignee_name, instruction.assignee_email),
        subject=f"Поручение рабочей группы «{group_of(session, instruction).title}» (срок до "
        f"{instruction.due:%d.%m.%Y})",
        template="wg_instruction",
        context=_facts(session, settings, instruction),
        kind="wg_instruction",
        ref_type=mail.REF_MEETING,
        ref_id=instruction.meeting_id,
    )
    instruction.sent_at = now
    service.log(
        session,
        now=now,
        actor=actor,
        action="instruction_sent",
        group_id=instruction.group_id,
        meeting_id=instruction.meeting_id,
        instruction=instruction.id,
    )


def send_pending(session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str) -> int:
    """Send every open instruction of a meeting not sent yet (called when the minutes are signed)."""
    count = 0
    for instruction in of_meeting(session, meeting):
        if instruction.sent_at is None and instruction.state in OPEN:
            send(session, settings, instruction, now=now, actor=actor)
            count += 1
    return count


def _tell_officers(
    session: Session, settings: Settings, instruction: WgInstruction, report: WgInstructionReport, subject: str
) -> None:
    group = group_of(session, instruction)
    officers = [p for p in (groups.officer(session, group, "secretary"), groups.officer(session, group, "chair")) if p]
    for person in officers:
        mail.enqueue_to(
            session,
            settings,
            person,
            subject=f"{subject}: поручение рабочей группы «{group.title}»",
            template="wg_instruction_report",
            context={**_facts(session, settings, instruction), "report": report},
            kind="wg_instruction_report",
            ref_type=mail.REF_MEETING,
            ref_id=instruction.meeting_id,
        )


def _store_files(settings: Settings, files: Sequence[tuple[str, str, bytes]]) -> list[dict[str, object]]:
    if len(files) > MAX_FILES:
        raise WorkgroupError(f"Не больше {MAX_FILES} файлов")
    store = BlobStore(settings.blob_dir)
    stored = []
    for filename, content_type, data in files:
        if len(data) > settings.max_attachment_bytes:
            raise WorkgroupError(f"Файл «{filename}» больше {settings.max_attachment_bytes // (1024 * 1024)} МБ")
        if not data:
            continue
        content_type = content_type or "application/octet-stream"
        stored.append(
            {
                "filename": sanitize_filename(filename, content_type),
                "content_type": content_type,
                "size": len(data),
                "sha256": store.put(data),
            }
        )
    return stored


def _refuse_closed(instruction: WgInstruction) -> None:
    if instruction.state not in OPEN:
        raise WorkgroupError(f"Поручение уже {STATE_NAMES[instruction.state]}: отчёт не требуется")


def report_done(
    session: Session,
    settings: Settings,
    instruction: WgInstruction,
    *,
    text: str,
    files: Sequence[tuple[str, str, bytes]] = (),
    now: dt.datetime,
    via: str,
    ip: str = "",
) -> WgInstructionReport:
    """The assignee reports the instruction carried out (a comment and files); the secretary and chair are told."""
    _refuse_closed(instruction)
    if not text.strip():
        raise WorkgroupError("Опишите, что сделано")
    stored = _store_files(settings, files)
    for pending in reports_of(session, instruction):
        if pending.kind == "extension" and not pending.decision:
            pending.decision, pending.decided_at, pending.decision_note = "withdrawn", now, "поручение исполнено"
    report = WgInstructionReport(
        instruction_id=instruction.id, kind="done", text=text.strip(), files=stored, at=now, via=via, ip=ip[:64]
    )
    session.add(report)
    instruction.state, instruction.done_at = "done", now
    session.flush()
    service.log(
        session,
        now=now,
        actor=instruction.assignee_email,
        action="instruction_done",
        group_id=instruction.group_id,
        meeting_id=instruction.meeting_id,
        instruction=instruction.id,
        files=len(stored),
    )
    _tell_officers(session, settings, instruction, report, "Исполнено")
    return report


def request_extension(
    session: Session,
    settings: Settings,
    instruction: WgInstruction,
    *,
    reason: str,
    proposed_due: dt.date,
    now: dt.datetime,
    via: str,
    ip: str = "",
) -> WgInstructionReport:
    """The assignee asks for more time with a reason; the chair or the secretary decides."""
    _refuse_closed(instruction)
    if instruction.state == "extension_requested":
        raise WorkgroupError("Просьба о продлении срока уже направлена и ещё не рассмотрена")
    if not reason.strip():
        raise WorkgroupError("Укажите причину, по которой нужен больший срок")
    if proposed_due <= instruction.due:
        raise WorkgroupError(f"Новый срок должен быть позже действующего ({instruction.due:%d.%m.%Y})")
    report = WgInstructionReport(
        instruction_id=instruction.id,
        kind="extension",
        text=reason.strip(),
        proposed_due=proposed_due,
        at=now,
        via=via,
        ip=ip[:64],
    )
    session.add(report)
    instruction.state = "extension_requested"
    session.flush()
    service.log(
        session,
        now=now,
        actor=instruction.assignee_email,
        action="instruction_extension_requested",
        group_id=instruction.group_id,
        meeting_id=instruction.meeting_id,
        instruction=instruction.id,
        proposed_due=proposed_due.isoformat(),
    )
    _tell_officers(session, settings, instruction, report, "Просьба о продлении срока")
    return report


def reports_of(session: Session, instruction: WgInstruction) -> list[WgInstructionReport]:
    """Every report on an instruction, oldest first."""
    query = (
        select(WgInstructionReport)
        .where(WgInstructionReport.instruction_id == instruction.id)
        .order_by(WgInstructionReport.id)
    )
    return list(session.scalars(query))


def pending_extension(session: Session, instruction: WgInstruction) -> WgInstructionReport | None:
    """The request for more time awaiting a decision."""
    return next((r for r in reports_of(session, instruction) if r.kind == "extension" and not r.decision), None)


def decide_extension(
    session: Session,
    settings: Settings,
    instruction: WgInstruction,
    *,
    approve: bool,
    note: str = "",
    new_due: dt.date | None = None,
    now: dt.datetime,
    actor: str,
) -> WgInstructionReport:
    """The chair or the secretary approves (the new term: as asked, or ``new_due``) or refuses more time."""
    report = pending_extension(session, instruction)
    if report is None or instruction.state != "extension_requested":
        raise WorkgroupError("Просьбы о продлении срока нет")
    if approve:
        assert report.proposed_due is not None
        due = new_due or report.proposed_due
        if due <= instruction.due:
            raise WorkgroupError(f"Новый срок должен быть позже действующего ({instruction.due:%d.%m.%Y})")
        instruction.due = due  # original_due and due_wd keep the term as the decision gave it
        instruction.reminded_before_at = instruction.reminded_after_at = None
    elif not note.strip():
        raise WorkgroupError("Укажите причину отказа")
    report.decision = "approved" if approve else "refused"
    report.decided_at, report.decided_by, report.decision_note = now, actor, note.strip()
    instruction.state = "assigned"
    service.log(
        session,
        now=now,
        actor=actor,
        action="instruction_extension_" + report.decision,
        group_id=instruction.group_id,
        meeting_id=instruction.meeting_id,
        instruction=instruction.id,
        due=instruction.due.isoformat(),
    )
    mail.enqueue_to(
        session,
        settings,
        Person(instruction.assignee_name, instruction.assignee_email),
        subject=f"Срок поручения {'продлён' if approve else 'не продлён'}: рабочая группа "
        f"«{group_of(session, instruction).title}»",
        template="wg_instruction_decision",
        context={**_facts(session, settings, instruction), "report": report, "approved": approve},
        kind="wg_instruction_decision",
        ref_type=mail.REF_MEETING,
        ref_id=instruction.meeting_id,
    )
    return report


def remind(session: Session, settings: Settings, *, now: dt.datetime) -> int:
    """Remind assignees before the term and once after it (copy to the secretary); returns how many were sent.

    Idempotent: each reminder is recorded on the instruction and sent once per term (a new term resets them).
    """
    today = service.local_today(settings, now)
    calendar = _calendar(settings)
    sent = 0
    query = select(WgInstruction).where(WgInstruction.state.in_(OPEN), WgInstruction.sent_at.is_not(None))
    for instruction in session.scalars(query.order_by(WgInstruction.id)).all():
        group = group_of(session, instruction)
        which = reminder_due(
            instruction.state, instruction.due, today, calendar, service.rules_of(group).policy.reminder_wd
        )
        if which == "before" and instruction.reminded_before_at is None:
            instruction.reminded_before_at = now
        elif which == "after" and instruction.reminded_after_at is None:
            instruction.reminded_after_at = now
        else:
            continue
        recipients: list[mail.Addressee] = [Person(instruction.assignee_name, instruction.assignee_email)]
        secretary = groups.officer(session, group, "secretary")
        if which == "after" and secretary is not None and secretary.email != instruction.assignee_email:
            recipients.append(secretary)
        for person in recipients:
            mail.enqueue_to(
                session,
                settings,
                person,
                subject=("Срок поручения истёк" if which == "after" else "Напоминание о сроке поручения")
                + f": рабочая группа «{group.title}»",
                template="wg_instruction_reminder",
                context={
                    **_facts(session, settings, instruction),
                    "overdue": which == "after",
                    "to_assignee": person.email == instruction.assignee_email,
                },
                kind="wg_instruction_reminder",
                ref_type=mail.REF_MEETING,
                ref_id=instruction.meeting_id,
            )
            sent += 1
    return sent


# The follow-up item of the next agenda ------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowupLine:
    """One earlier instruction as the follow-up item lists it."""

    meeting_number: int
    item_number: int | None
    assignee: str
    text: str
    due: dt.date
    status: str  # a key of STATE_NAMES
    closed: dt.date | None = None
    report: str = ""

    def as_text(self) -> str:
        """The line printed in the agenda and the minutes."""
        where = f"заседание № {self.meeting_number}" + (f", вопрос № {self.item_number}" if self.item_number else "")
        state = STATE_NAMES[self.status]
        if self.closed is not None:
            state += f" {self.closed:%d.%m.%Y}"
        tail = f": {self.report}" if self.report else ""
        return f"{self.text} ({where}) — {self.assignee}; срок до {self.due:%d.%m.%Y}; {state}{tail}"


def followup_lines(session: Session, settings: Settings, meeting: WgMeeting, now: dt.datetime) -> list[FollowupLine]:
    """Instructions of the group's earlier meetings still open, or closed since the previous meeting (states as of
    ``now``)."""
    earlier = {
        m.id: m
        for m in session.scalars(
            select(WgMeeting).where(
                WgMeeting.group_id == meeting.group_id,
                WgMeeting.number < meeting.number,
                WgMeeting.status != "cancelled",
            )
        )
    }
    if not earlier:
        return []
    previous = max(earlier.values(), key=lambda m: m.number)
    since = previous.starts_at
    today = service.local_today(settings, now)
    lines = []
    query = select(WgInstruction).where(WgInstruction.meeting_id.in_(earlier)).order_by(WgInstruction.id)
    for instruction in session.scalars(query):
        closed = instruction.done_at
        if instruction.state not in OPEN and (closed is None or closed < since):
            continue  # reported at an earlier meeting already
        given_at = earlier[instruction.meeting_id]
        numbers = {i.id: n for n, i in enumerate(meetings.items_of(session, given_at), 1)}
        done = next((r for r in reversed(reports_of(session, instruction)) if r.kind == "done"), None)
        lines.append(
            FollowupLine(
                meeting_number=given_at.number,
                item_number=numbers.get(instruction.item_id),
                assignee=instruction.assignee_name,
                text=instruction.text,
                due=instruction.due,
                status=status(instruction.state, instruction.due, today),
                closed=closed.astimezone(settings.tz).date() if closed and instruction.state not in OPEN else None,
                report=done.text if done is not None and instruction.state == "done" else "",
            )
        )
    return lines


def followup_item(session: Session, meeting: WgMeeting) -> WgAgendaItem | None:
    """The meeting's automatic follow-up item, if it has one."""
    query = select(WgAgendaItem).where(WgAgendaItem.meeting_id == meeting.id, WgAgendaItem.kind == FOLLOWUP_KIND)
    return session.scalars(query).first()


def refresh_followup_item(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str
) -> WgAgendaItem | None:
    """Put (or bring up to date) the item «Об исполнении ранее данных поручений» first in the agenda.

    A changed listing is a change of the agenda: the chair approves it again. Written polls get no such item.
    """
    if meeting.form == "absentee" or meeting.status not in ("planned", "agenda_submitted"):
        return followup_item(session, meeting)
    lines = followup_lines(session, settings, meeting, now)
    item = followup_item(session, meeting)
    details = "\n".join(f"{n}. {line.as_text()}" for n, line in enumerate(lines, 1))
    if item is None:
        if not lines:
            return None
        group = session.get(WgGroup, meeting.group_id)
        assert group is not None
        secretary = groups.officer(session, group, "secretary")
        item = meetings.add_item(
            session,
            meeting,
            title=FOLLOWUP_TITLE,
            speaker=secretary.name if secretary else "",
            proposal=FOLLOWUP_PROPOSAL,
            now=now,
            actor=actor,
        )
        item.position, item.kind, item.details = 0, FOLLOWUP_KIND, details
    elif item.details != details and item.status == "included":
        item.details = details
        meetings.agenda_changed(session, meeting, now, actor)
        service.log(session, now=now, actor=actor, action="followup_refreshed", meeting_id=meeting.id, item=item.id)
    session.flush()
    return item


# The console's list ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the console's list of instructions is narrowed to."""

    state: str = ""  # a key of STATE_NAMES, "open" or "" (all)
    assignee: str = ""  # part of the name or address
    overdue: bool = False
    meeting_id: int | None = None
    group_ids: tuple[int, ...] = ()


def matching(session: Session, settings: Settings, filters: Filters, *, now: dt.datetime) -> list[WgInstruction]:
    """Instructions matching the filters, nearest term first."""
    query = select(WgInstruction)
    if filters.group_ids:
        query = query.where(WgInstruction.group_id.in_(filters.group_ids))
    if filters.meeting_id is not None:
        query = query.where(WgInstruction.meeting_id == filters.meeting_id)
    if filters.state == "open":
        query = query.where(WgInstruction.state.in_(OPEN))
    elif filters.state in STATES:
        query = query.where(WgInstruction.state == filters.state)
    today = service.local_today(settings, now)
    if filters.overdue or filters.state == "overdue":
        query = query.where(WgInstruction.state.in_(OPEN), WgInstruction.due < today)
    found = list(session.scalars(query.order_by(WgInstruction.due, WgInstruction.id)))
    wanted = filters.assignee.strip().lower()
    if wanted:
        found = [i for i in found if wanted in i.assignee_name.lower() or wanted in i.assignee_email.lower()]
    return found
