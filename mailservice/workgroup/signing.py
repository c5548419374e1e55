"""The minutes' versions: drafted from the records, sent for signature, signed, made final and distributed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.templating import ru_date
from mailservice.workgroup import mail
from mailservice.workgroup import minutes as minutes_doc
from mailservice.workgroup.groups import members_of, officer, voting_members
from mailservice.workgroup.meetings import get_meeting, mark_done, recipients_of, sync_deadlines
from mailservice.workgroup.models import (
    WgBallot,
    WgGroup,
    WgInstruction,
    WgMeeting,
    WgMember,
    WgMinutes,
    WgOpinion,
    WgSignature,
)
from mailservice.workgroup.opinions import opinions_of
from mailservice.workgroup.policy import FORM_NAMES, ROLE_NAMES
from mailservice.workgroup.service import (
    CAPACITY_NAMES,
    MODE_NAMES,
    WorkgroupError,
    fmt_local,
    local_today,
    log,
    meeting_day,
    new_nonce,
    require_status,
    rules_of,
)
from mailservice.workgroup.tally import CHOICE_NAMES, Choice
from mailservice.workgroup.voting import attendance_of, presiding_of, tallies, votes_on

# Minutes --------------------------------------------------------------------------------------------------------


def minutes_versions(session: Session, meeting: WgMeeting) -> list[WgMinutes]:
    """Every version of the minutes, oldest first."""
    query = select(WgMinutes).where(WgMinutes.meeting_id == meeting.id).order_by(WgMinutes.version)
    return list(session.scalars(query))


def latest_minutes(session: Session, meeting: WgMeeting) -> WgMinutes | None:
    """The newest version."""
    versions = minutes_versions(session, meeting)
    return versions[-1] if versions else None


def signatures_of(session: Session, minutes: WgMinutes) -> list[WgSignature]:
    """Signatures requested on one version."""
    query = select(WgSignature).where(WgSignature.minutes_id == minutes.id).order_by(WgSignature.id)
    return list(session.scalars(query))


def required_signers(session: Session, meeting: WgMeeting) -> list[tuple[str, WgMember]]:
    """Who signs, per profile: the presiding member; or chair, secretary and the members who took part."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    policy = rules_of(group).policy
    presiding = presiding_of(session, meeting)
    if policy.signers == "presiding":
        if presiding is None:
            raise WorkgroupError("Не определён председательствующий: протокол некому подписать")
        return [("presiding", presiding)]
    signers: list[tuple[str, WgMember]] = []
    for role, capacity in (("chair", "chair"), ("secretary", "secretary")):
        person = officer(session, group, role)
        if person is not None:
            signers.append((capacity, person))
    taken = {m.id for _c, m in signers}
    if meeting.form == "absentee":
        ballots = session.scalars(select(WgBallot).where(WgBallot.meeting_id == meeting.id))
        took_part = {b.member_id for b in ballots if b.returned_at is not None}
    else:
        took_part = {mid for mid, row in attendance_of(session, meeting).items() if row.mode != "absent"}
    for member in voting_members(session, group):
        if member.id in took_part and member.id not in taken:
            signers.append(("member", member))
    return signers


def minutes_data(
    session: Session,
    settings: Settings,
    meeting: WgMeeting,
    *,
    version: int,
    draft: bool,
    signatures: Sequence[WgSignature] = (),
) -> minutes_doc.MinutesData:
    """The snapshot of the meeting's records the minutes are rendered from."""
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    rules = rules_of(group)
    members_total, taking_part, results = tallies(session, meeting)
    people = {m.id: m for m in members_of(session, group, include_inactive=True)}
    presiding = presiding_of(session, meeting)
    secretary = officer(session, group, "secretary")
    attendance = attendance_of(session, meeting)
    is_poll = meeting.form == "absentee"
    voter_ids = {m.id for m in voting_members(session, group)}
    if is_poll:
        ballots = list(session.scalars(select(WgBallot).where(WgBallot.meeting_id == meeting.id)))
        returned = {b.member_id for b in ballots if b.returned_at is not None}
        present = [_person(people[i], "") for i in sorted(returned) if i in people]
        absent = [_person(people[b.member_id], "") for b in ballots if b.member_id not in returned]
        invitees: list[minutes_doc.Person] = []
    else:
        present = [
            _person(people[mid], MODE_NAMES[row.mode])
            for mid, row in sorted(attendance.items())
            if row.mode != "absent" and mid in voter_ids
        ]
        absent = [
            _person(people[mid], "")
            for mid, row in sorted(attendance.items())
            if row.mode == "absent" and mid in voter_ids
        ]
        invitees = [
            _person(people[mid], MODE_NAMES[row.mode])
            for mid, row in sorted(attendance.items())
            if row.mode != "absent" and mid not in voter_ids and mid in people
        ]
    dissents = opinions_of(session, meeting, "dissent")
    numbers = {r.item.id: r.number for r in results}
    given: dict[int, list[minutes_doc.InstructionLine]] = {}
    for instruction in session.scalars(
        select(WgInstruction)
        .where(WgInstruction.meeting_id == meeting.id, WgInstruction.state != "cancelled")
        .order_by(WgInstruction.id)
    ):
        given.setdefault(instruction.item_id, []).append(
            minutes_doc.InstructionLine(
                assignee=instruction.assignee_name,
                text=instruction.text,
                expected_result=instruction.expected_result,
                term=minutes_doc.term_text(instruction.due_wd, instruction.original_due),
            )
        )
    items = []
    for r in results:
        voters: tuple[tuple[str, str], ...] = ()
        if is_poll:
            voters = tuple(
                (people[v.member_id].name, CHOICE_NAMES[Choice(v.choice)])
                for v in votes_on(session, r.item)
                if v.member_id in people
            )
        item_dissents = [d for d in dissents if d.item_id == r.item.id]
        items.append(
            minutes_doc.ItemRecord(
                number=r.number,
                title=r.item.title,
                speaker=r.item.speaker,
                heard=r.item.heard,
                decision=r.item.decision or r.item.proposal,
                votes=r.votes,
                result=r.result,
                voters=voters,
                dissents=tuple(_opinion(settings, people, d, numbers) for d in item_dissents),
                details=r.item.details,
                instructions=tuple(given.get(r.item.id, ())),
            )
        )
    signed = {s.member_id: s for s in signatures}
    signers = []
    for capacity, person in required_signers(session, meeting):
        sig = signed.get(person.id)
        signers.append(
            minutes_doc.Signer(
                CAPACITY_NAMES[capacity],
                person.name,
                fmt_local(settings, sig.signed_at) if sig and sig.signed_at else "",
            )
        )
    start = meeting.starts_at.astimezone(settings.tz)
    return minutes_doc.MinutesData(
        department=settings.department_name,
        group_title=group.title,
        number=meeting.number,
        date=ru_date(meeting_day(settings, meeting)),
        time="" if is_poll else start.strftime("%H:%M"),
        place=meeting.place,
        form=FORM_NAMES[meeting.form],
        is_poll=is_poll,
        presiding=presiding.name if presiding else "",
        secretary=secretary.name if secretary else "",
        members_total=members_total,
        taking_part=taking_part,
        quorum=bool(results[0].result.quorum) if results else False,
        present=present,
        absent=absent,
        invitees=invitees,
        items=items,
        written_opinions=[_opinion(settings, people, o, numbers) for o in opinions_of(session, meeting, "written")],
        general_dissents=[_opinion(settings, people, d, numbers) for d in dissents if d.item_id is None],
        conciliation=rules.policy.dissent == "conciliation",
        oral_consent=rules.policy.oral_consent,
        audio=meeting.audio_filename,
        poll_closed=fmt_local(settings, meeting.poll_closed_at) if is_poll else "",
        signers=signers,
        version=version,
        draft=draft,
    )


def _person(member: WgMember, mode: str) -> minutes_doc.Person:
    return minutes_doc.Person(member.name, member.position, ROLE_NAMES.get(member.role, ""), mode)


def _opinion(
    settings: Settings, people: Mapping[int, WgMember], opinion: WgOpinion, numbers: Mapping[int, int]
) -> minutes_doc.Opinion:
    return minutes_doc.Opinion(
        member=people[opinion.member_id].name if opinion.member_id in people else "",
        text=opinion.text,
        received=fmt_local(settings, opinion.received_at),
        item_number=numbers.get(opinion.item_id) if opinion.item_id else None,
        late=opinion.late,
    )


def draft_minutes(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str
) -> WgMinutes:
    """Draft (or redraft) the minutes from the records; an unchanged text keeps its version."""
    require_status(meeting, ("held", "minutes_draft", "minutes_signing"), "Подготовка протокола")
    latest = latest_minutes(session, meeting)
    version = (latest.version + 1) if latest else 1
    data = minutes_data(session, settings, meeting, version=version, draft=True)
    digest = minutes_doc.content_hash(data)
    if latest is not None and latest.status == "draft" and latest.content_sha256 == digest:
        return latest
    docx = minutes_doc.render_docx(data)
    row = WgMinutes(
        meeting_id=meeting.id,
        version=version,
        status="draft",
        html=minutes_doc.render_html(data),
        docx_sha256=BlobStore(settings.blob_dir).put(docx),
        content_sha256=digest,
        created_at=now,
        created_by=actor,
    )
    if latest is not None and latest.status == "draft":
        latest.status = "superseded"  # its signature links stop working
    session.add(row)
    meeting.status = "minutes_draft"
    session.flush()
    log(session, now=now, actor=actor, action="minutes_drafted", meeting_id=meeting.id, version=version)
    return row


def request_signatures(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str
) -> list[WgSignature]:
    """Pass the newest draft for signature: each signer the profile requires gets a link (seed 000 p. 16)."""
    require_status(meeting, ("minutes_draft", "minutes_signing"), "Передача протокола на подписание")
    minutes = latest_minutes(session, meeting)
    if minutes is None or minutes.status != "draft":
        raise WorkgroupError("Нет проекта протокола: подготовьте его (wg minutes draft)")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    existing = {s.member_id: s for s in signatures_of(session, minutes)}
    docx = BlobStore(settings.blob_dir).get(minutes.docx_sha256)
    rows = []
    for capacity, person in required_signers(session, meeting):
        sig = existing.get(person.id)
        if sig is None:
            sig = WgSignature(minutes_id=minutes.id, member_id=person.id, capacity=capacity, nonce=new_nonce())
            session.add(sig)
            session.flush()
        if sig.signed_at is None:
            sig.requested_at = now
            mail.send_signature_request(session, settings, meeting, group, minutes, sig, person, docx)
        rows.append(sig)
    minutes.sent_for_signature_at = minutes.sent_for_signature_at or now
    meeting.status = "minutes_signing"
    mark_done(session, settings, meeting, "minutes_by", now)
    log(session, now=now, actor=actor, action="signatures_requested", meeting_id=meeting.id, version=minutes.version)
    return rows


def sign_minutes(
    session: Session,
    settings: Settings,
    signature: WgSignature,
    *,
    now: dt.datetime,
    method: str,
    nonce: str | None = None,
    ip: str = "",
) -> bool:
    """Give one signature; the last one makes the minutes final and sends the copies. False if already signed."""
    minutes = session.get(WgMinutes, signature.minutes_id)
    assert minutes is not None
    if nonce is not None and nonce != signature.nonce:
        raise WorkgroupError("Ссылка недействительна")
    if signature.signed_at is not None:
        return False
    if minutes.status != "draft":
        raise WorkgroupError(
            "Эта версия протокола заменена новой или уже подписана: подпишите версию из последнего письма"
        )
    meeting = get_meeting(session, minutes.meeting_id)
    signature.signed_at, signature.method, signature.ip = now, method, ip[:64]
    member = session.get(WgMember, signature.member_id)
    assert member is not None
    log(
        session,
        now=now,
        actor=member.email,
        action="minutes_signed_by",
        meeting_id=meeting.id,
        version=minutes.version,
        capacity=signature.capacity,
        method=method,
    )
    session.flush()
    if all(s.signed_at is not None for s in signatures_of(session, minutes)):
        _finalise(session, settings, meeting, minutes, now)
    return True


def _finalise(session: Session, settings: Settings, meeting: WgMeeting, minutes: WgMinutes, now: dt.datetime) -> None:
    """The signed version: signatures printed in it, its content proven unchanged; copies go out at once."""
    signatures = signatures_of(session, minutes)
    data = minutes_data(session, settings, meeting, version=minutes.version, draft=False, signatures=signatures)
    if minutes_doc.content_hash(data) != minutes.content_sha256:
        raise WorkgroupError("Записи заседания изменились после подготовки этой версии протокола: подготовьте новую")
    docx = minutes_doc.render_docx(data)
    minutes.html = minutes_doc.render_html(data)
    minutes.docx_sha256 = BlobStore(settings.blob_dir).put(docx)
    minutes.status, minutes.signed_at = "signed", now
    meeting.signed_on = local_today(settings, now)
    meeting.status = "minutes_signed"
    sync_deadlines(session, settings, meeting, now)  # copies_by counts from the signing day
    log(session, now=now, actor="", action="minutes_final", meeting_id=meeting.id, version=minutes.version)
    distribute_minutes(session, settings, meeting, now=now, actor="")
    from mailservice.workgroup.instructions import send_pending  # it builds on this module

    send_pending(session, settings, meeting, now=now, actor="")  # the decisions are final: assignees get them


def distribute_minutes(
    session: Session, settings: Settings, meeting: WgMeeting, *, now: dt.datetime, actor: str, again: bool = False
) -> int:
    """Send copies of the signed minutes to members and invitees (seed 000 p. 17); returns the count."""
    minutes = latest_minutes(session, meeting)
    if minutes is None or minutes.status != "signed":
        raise WorkgroupError("Протокол ещё не подписан")
    if meeting.distributed_at is not None and not again:
        raise WorkgroupError("Копии протокола уже направлены")
    group = session.get(WgGroup, meeting.group_id)
    assert group is not None
    docx = BlobStore(settings.blob_dir).get(minutes.docx_sha256)
    title = f"Протокол № {meeting.number} — {group.title}"
    data_html = minutes_doc.render_document(minutes.html, title=title)
    recipients = recipients_of(session, meeting)
    if group.parent_id is not None:
        # An expert group or a project committee reports to the group that formed it (seed 002 p. 10).
        parent = session.get(WgGroup, group.parent_id)
        assert parent is not None
        known = {m.email.lower() for m in recipients}
        for role in ("chair", "secretary"):
            person = officer(session, parent, role)
            if person is not None and person.email.lower() not in known:
                recipients.append(person)
                known.add(person.email.lower())
    mail.send_minutes(session, settings, meeting, group, recipients, docx, data_html)
    meeting.distributed_at = meeting.distributed_at or now
    meeting.status = "minutes_distributed"
    mark_done(session, settings, meeting, "copies_by", now)
    log(session, now=now, actor=actor, action="minutes_distributed", meeting_id=meeting.id, recipients=len(recipients))
    return len(recipients)
