"""Documents for the head of the department, and the group's expert groups and project committees.

* A progress report (seed 000 p. 3.3 and 3.9: "представляет руководителю департамента доклады о ходе внедрения
  клиентоцентричности") generated for a period from the group's plans, the road map, its decisions, its
  instructions and the work of its sub-groups, rendered as DOCX and PDF from one document
  (:mod:`mailservice.documents`: the template's line markup becomes the shared model, both files read it).
* A protocol of disagreements (seed 000 p. 3.7: "в случае невозможности снятия разногласий ... формирует протокол
  разногласий и передает его руководителю департамента для принятия руководящего решения") when the group
  records disagreements it could not resolve at a meeting; DOCX and PDF alike.
* Either is kept (every rendering, both files by their hashes in the blob store) and sent by the secretary
  through the outbox to the head named in the group's record, the DOCX and the PDF attached.
* Expert groups and project committees (seed 002 p. 10: "могут быть сформированы экспертные группы и проектные
  комитеты рабочей группы" by its decision) are groups with a parent: their own members, meetings and minutes;
  copies of their signed minutes go to the parent's chair and secretary, and the parent's report counts their work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.mail.headers import normalise_address
from mailservice.templating import render, ru_date
from mailservice.workgroup import groups, mail, meetings, service, voting
from mailservice.workgroup import instructions as instr
from mailservice.workgroup import plans as plan_rules
from mailservice.workgroup.models import WgAgendaItem, WgDisagreement, WgGroup, WgInstruction, WgMeeting, WgReport
from mailservice.workgroup.service import WorkgroupError

KIND_NAMES = {
    "working_group": "рабочая группа",
    "expert_group": "экспертная группа",
    "project_committee": "проектный комитет",
}
PDF_TYPE = "application/pdf"
SUBGROUP_KINDS = ("expert_group", "project_committee")
REPORT_NAMES = {"progress": "Доклад о ходе внедрения клиентоцентричности", "disagreements": "Протокол разногласий"}


# The head of the department -----------------------------------------------------------------------------------


def set_head(group: WgGroup, *, name: str, email: str, session: Session, now: dt.datetime, actor: str) -> None:
    """Whom the group's reports go to."""
    address = normalise_address(email)
    if address is None:
        raise WorkgroupError(f"Неверный адрес электронной почты: {email}")
    if not name.strip():
        raise WorkgroupError("Укажите руководителя департамента (фамилию, инициалы, должность)")
    group.head_name, group.head_email = name.strip()[:300], address
    service.log(session, now=now, actor=actor, action="head_set", group_id=group.id)


# The progress report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRow:
    """One plan item as reported."""

    title: str
    owner: str
    due: str
    state: str
    note: str
    roadmap: str


@dataclass(frozen=True)
class PlanSection:
    """One plan overlapping the period."""

    title: str
    period: str
    approved: str  # the decision that approved it, or «не утверждён»
    rows: Sequence[PlanRow]
    done: int
    overdue: int


@dataclass(frozen=True)
class RoadmapRow:
    """One road-map item as reported."""

    code: str
    title: str
    due: str
    state: str
    result: str
    agreed: str


@dataclass(frozen=True)
class DecisionRow:
    """One question decided in the period."""

    meeting: str  # «№ 3 от 16.12.2026»
    number: int
    title: str
    decision: str
    outcome: str


@dataclass(frozen=True)
class InstructionRow:
    """One instruction still open (or overdue) at the end of the period."""

    text: str
    assignee: str
    due: str
    state: str


@dataclass(frozen=True)
class SubgroupRow:
    """What a sub-group did in the period."""

    kind: str
    title: str
    meetings: int
    decisions: int


@dataclass(frozen=True)
class ProgressData:
    """Everything the progress report says."""

    department: str
    group_title: str
    head: str
    period: str
    date: str
    chair: str
    secretary: str
    meetings_held: int
    plans: Sequence[PlanSection]
    roadmap: Sequence[RoadmapRow]
    decisions: Sequence[DecisionRow]
    instructions_given: int
    instructions_done: int
    instructions_open: int
    instructions_overdue: int
    open_instructions: Sequence[InstructionRow]
    subgroups: Sequence[SubgroupRow] = field(default_factory=tuple)


def _d(day: dt.date | None) -> str:
    return day.strftime("%d.%m.%Y") if day else ""


def _held_in(session: Session, settings: Settings, group: WgGroup, start: dt.date, end: dt.date) -> list[WgMeeting]:
    held = session.scalars(
        select(WgMeeting)
        .where(WgMeeting.group_id == group.id, WgMeeting.held_at.is_not(None), WgMeeting.status != "cancelled")
        .order_by(WgMeeting.number)
    )
    return [m for m in held if start <= service.meeting_day(settings, m) <= end]


def progress_data(
    session: Session, settings: Settings, group: WgGroup, *, start: dt.date, end: dt.date, today: dt.date
) -> ProgressData:
    """The report's content for ``group`` over [start, end], states as of ``today``."""
    if end < start:
        raise WorkgroupError("Период доклада: дата окончания раньше даты начала")
    held = _held_in(session, settings, group, start, end)
    decisions = []
    for meeting in held:
        when = f"№ {meeting.number} от {_d(service.meeting_day(settings, meeting))}"
        for r in voting.tallies(session, meeting)[2]:
            decisions.append(
                DecisionRow(when, r.number, r.item.title, r.item.decision or r.item.proposal, r.result.text)
            )
    sections = []
    roadmap = {r.id: r for r in plan_rules.roadmap_of(session, group)}
    for plan in plan_rules.plans_of(session, group):
        if plan.period_end < start or plan.period_start > end:
            continue
        approved = "не утверждён"
        if plan.approved_item_id is not None:
            item = session.get(WgAgendaItem, plan.approved_item_id)
            assert item is not None
            approved = "утверждён: " + plan_rules.decision_of(session, group, item).reference
        rows = []
        for p in plan.items:
            state = plan_rules.item_status(p, today)
            rows.append(
                PlanRow(
                    title=p.title,
                    owner=p.owner,
                    due=_d(p.due),
                    state="просрочено" if state == "overdue" else plan_rules.ITEM_STATE_NAMES[state],
                    note=p.note,
                    roadmap=roadmap[p.roadmap_item_id].code if p.roadmap_item_id in roadmap else "",
                )
            )
        sections.append(
            PlanSection(
                title=plan.title,
                period=f"{_d(plan.period_start)}–{_d(plan.period_end)}",
                approved=approved,
                rows=rows,
                done=sum(p.state == "done" for p in plan.items),
                overdue=sum(plan_rules.item_status(p, today) == "overdue" for p in plan.items),
            )
        )
    roadmap_rows = []
    for step in roadmap.values():
        agreed = ""
        if step.agreed_item_id is not None:
            item = session.get(WgAgendaItem, step.agreed_item_id)
            assert item is not None
            agreed = plan_rules.decision_of(session, group, item).reference
        state = plan_rules.ITEM_STATE_NAMES[step.state]
        roadmap_rows.append(RoadmapRow(step.code, step.title, _d(step.due), state, step.result, agreed))
    given = [
        i
        for i in session.scalars(select(WgInstruction).where(WgInstruction.group_id == group.id))
        if i.meeting_id in {m.id for m in held}
    ]
    every_open = [
        i
        for i in session.scalars(
            select(WgInstruction)
            .where(WgInstruction.group_id == group.id, WgInstruction.state.in_(instr.OPEN))
            .order_by(WgInstruction.due)
        )
    ]
    subgroups = []
    for child in subgroups_of(session, group):
        child_held = _held_in(session, settings, child, start, end)
        adopted = sum(r.result.adopted for m in child_held for r in voting.tallies(session, m)[2])
        subgroups.append(SubgroupRow(KIND_NAMES[child.kind], child.title, len(child_held), adopted))
    chair, secretary = groups.officer(session, group, "chair"), groups.officer(session, group, "secretary")
    return ProgressData(
        department=settings.department_name,
        group_title=group.title,
        head=group.head_name,
        period=f"с {_d(start)} по {_d(end)}",
        date=ru_date(today),
        chair=chair.name if chair else "",
        secretary=secretary.name if secretary else "",
        meetings_held=len(held),
        plans=sections,
        roadmap=roadmap_rows,
        decisions=decisions,
        instructions_given=len(given),
        instructions_done=sum(i.state == "done" for i in given),
        instructions_open=len(every_open),
        instructions_overdue=sum(instr.status(i.state, i.due, today) == "overdue" for i in every_open),
        open_instructions=[
            InstructionRow(i.text, i.assignee_name, _d(i.due), instr.STATE_NAMES[instr.status(i.state, i.due, today)])
            for i in every_open
        ],
        subgroups=subgroups,
    )


def render_both(markup: str, *, title: str, author: str) -> tuple[bytes, bytes]:
    """The DOCX and the PDF of a document written in the line markup: one model, both renderers."""
    from mailservice.documents import render_docx, render_pdf  # python-docx and fpdf2: only when a report is made
    from mailservice.documents.markup import markup_document

    document = markup_document(markup, title=title, author=author, footer=title)
    return render_docx(document), render_pdf(document)


def _markup(template: str, **context: object) -> str:
    from mailservice.documents.markup import cell, literal

    return render(template, lit=literal, cell=cell, **context)


def _keep(
    session: Session,
    settings: Settings,
    group: WgGroup,
    *,
    kind: str,
    title: str,
    markup: str,
    start: dt.date | None,
    end: dt.date | None,
    now: dt.datetime,
    actor: str,
) -> WgReport:
    docx, pdf = render_both(markup, title=title, author=settings.department_name)
    store = BlobStore(settings.blob_dir)
    report = WgReport(
        group_id=group.id,
        kind=kind,
        title=title,
        period_start=start,
        period_end=end,
        docx_sha256=store.put(docx),
        pdf_sha256=store.put(pdf),
        created_at=now,
        created_by=actor,
    )
    session.add(report)
    session.flush()
    service.log(session, now=now, actor=actor, action=f"report_{kind}", group_id=group.id, report=report.id)
    return report


def progress_report(
    session: Session, settings: Settings, group: WgGroup, *, start: dt.date, end: dt.date, now: dt.datetime, actor: str
) -> WgReport:
    """Generate and keep the progress report for a period."""
    data = progress_data(session, settings, group, start=start, end=end, today=service.local_today(settings, now))
    markup = _markup("wg/report_docx.txt", r=data)
    title = f"{REPORT_NAMES['progress']} за период {data.period}"
    return _keep(
        session,
        settings,
        group,
        kind="progress",
        title=title,
        markup=markup,
        start=start,
        end=end,
        now=now,
        actor=actor,
    )


# Disagreements ------------------------------------------------------------------------------------------------


def record_disagreement(
    session: Session,
    meeting: WgMeeting,
    *,
    subject: str,
    positions: Sequence[tuple[str, str]],
    proposal: str = "",
    item: WgAgendaItem | None = None,
    now: dt.datetime,
    actor: str,
) -> WgDisagreement:
    """Disagreements the meeting could not resolve: the subject and each party's position (at least two)."""
    if meeting.held_at is None:
        raise WorkgroupError("Разногласия фиксируются по итогам проведённого заседания")
    if item is not None and item.meeting_id != meeting.id:
        raise WorkgroupError("Этого вопроса нет в повестке заседания")
    clean = [(party.strip(), position.strip()) for party, position in positions if party.strip() or position.strip()]
    if len(clean) < 2 or any(not party or not position for party, position in clean):
        raise WorkgroupError("Укажите позиции не менее двух сторон: сторону и её позицию")
    if not subject.strip():
        raise WorkgroupError("Укажите предмет разногласий")
    row = WgDisagreement(
        group_id=meeting.group_id,
        meeting_id=meeting.id,
        item_id=item.id if item else None,
        subject=subject.strip(),
        positions=[{"party": party, "position": position} for party, position in clean],
        proposal=proposal.strip(),
        recorded_at=now,
        recorded_by=actor,
    )
    session.add(row)
    session.flush()
    service.log(
        session, now=now, actor=actor, action="disagreement_recorded", meeting_id=meeting.id, disagreement=row.id
    )
    return row


def disagreements_protocol(
    session: Session, settings: Settings, disagreement: WgDisagreement, *, now: dt.datetime, actor: str
) -> WgReport:
    """Render and keep the protocol of disagreements for the head of the department."""
    meeting = meetings.get_meeting(session, disagreement.meeting_id)
    group = session.get(WgGroup, disagreement.group_id)
    assert group is not None
    numbers = {i.id: n for n, i in enumerate(meetings.items_of(session, meeting), 1)}
    item = session.get(WgAgendaItem, disagreement.item_id) if disagreement.item_id else None
    presiding = voting.presiding_of(session, meeting)
    secretary = groups.officer(session, group, "secretary")
    markup = _markup(
        "wg/disagreements_docx.txt",
        d=disagreement,
        group=group,
        meeting=meeting,
        meeting_date=_d(service.meeting_day(settings, meeting)),
        item=item,
        item_number=numbers.get(item.id) if item else None,
        department=settings.department_name,
        date=ru_date(service.local_today(settings, now)),
        presiding=presiding.name if presiding else "",
        secretary=secretary.name if secretary else "",
    )
    title = f"{REPORT_NAMES['disagreements']} по итогам заседания № {meeting.number}"
    report = _keep(
        session,
        settings,
        group,
        kind="disagreements",
        title=title,
        markup=markup,
        start=None,
        end=None,
        now=now,
        actor=actor,
    )
    disagreement.report_id = report.id
    return report


# Sending ------------------------------------------------------------------------------------------------------


def send_report(
    session: Session, settings: Settings, report: WgReport, *, now: dt.datetime, actor: str, again: bool = False
) -> None:
    """The secretary sends a report (DOCX and PDF attached) to the head of the department through the outbox."""
    group = session.get(WgGroup, report.group_id)
    assert group is not None
    if not group.head_email:
        raise WorkgroupError("Не указан руководитель департамента, которому направляются доклады (wg group head)")
    if report.sent_at is not None and not again:
        raise WorkgroupError(f"Документ уже направлен {service.fmt_local(settings, report.sent_at)}")
    secretary = groups.officer(session, group, "secretary")
    store = BlobStore(settings.blob_dir)
    name = f"{report_file_stem(report)}-{report.id}"
    files = [(f"{name}.docx", mail.DOCX_TYPE, store.get(report.docx_sha256))]
    if report.pdf_sha256:  # reports made before PDFs were kept have the DOCX only
        files.append((f"{name}.pdf", PDF_TYPE, store.get(report.pdf_sha256)))
    mail.enqueue_to(
        session,
        settings,
        instr.Person(group.head_name, group.head_email),
        subject=f"{report.title} — рабочая группа «{group.title}»",
        template="wg_report",
        context={"group": group, "report": report, "secretary": secretary},
        kind="wg_report",
        ref_type=mail.REF_REPORT,
        ref_id=report.id,
        attachments=files,
    )
    report.sent_at, report.sent_by, report.sent_to = now, actor, group.head_email
    service.log(session, now=now, actor=actor, action="report_sent", group_id=group.id, report=report.id)


def report_file_stem(report: WgReport) -> str:
    """The file name (without the extension) a report is attached and downloaded under."""
    return "doklad" if report.kind == "progress" else "protokol-raznoglasiy"


def reports_of(session: Session, group: WgGroup) -> list[WgReport]:
    """The group's documents for the head, newest first."""
    query = select(WgReport).where(WgReport.group_id == group.id).order_by(WgReport.id.desc())
    return list(session.scalars(query))


# Sub-groups ---------------------------------------------------------------------------------------------------


def create_subgroup(
    session: Session,
    parent: WgGroup,
    *,
    slug: str,
    title: str,
    kind: str,
    formed_by: WgAgendaItem,
    profile: str | None = None,
    now: dt.datetime,
    actor: str,
) -> WgGroup:
    """An expert group or a project committee formed by the parent's decision (seed 002 p. 10)."""
    if kind not in SUBGROUP_KINDS:
        raise WorkgroupError("Вид: expert_group (экспертная группа) или project_committee (проектный комитет)")
    if parent.parent_id is not None:
        raise WorkgroupError("Экспертные группы и проектные комитеты формируются рабочей группой, не другой подгруппой")
    decision = plan_rules.decision_of(session, parent, formed_by)
    group = groups.create_group(
        session,
        slug=slug,
        title=title,
        profile=profile or parent.profile,
        overrides=dict(parent.settings or {}) if profile is None else {},
        now=now,
        actor=actor,
    )
    group.kind, group.parent_id, group.formed_by_item_id = kind, parent.id, formed_by.id
    group.head_name, group.head_email = parent.head_name, parent.head_email
    service.log(
        session,
        now=now,
        actor=actor,
        action="subgroup_formed",
        group_id=parent.id,
        subgroup=group.id,
        kind=kind,
        meeting_id=decision.meeting.id,
        item=formed_by.id,
    )
    return group


def subgroups_of(session: Session, group: WgGroup) -> list[WgGroup]:
    """The expert groups and project committees of a group."""
    return list(session.scalars(select(WgGroup).where(WgGroup.parent_id == group.id).order_by(WgGroup.id)))
