"""Work plans and the road map the group tracks (seed 000 p. 3.2-3.5; seed 002 p. 4 "б", "е").

* The group "forms and approves work plans": a plan is drafted with its items (what, who is responsible, by when,
  and the road-map item it serves) and approved by a decision of the group: an adopted question of a meeting whose
  minutes are signed (seed 000 p. 9: decisions are recorded in minutes).
* The road map ("План мероприятий («Дорожная карта») ... утвержденный приказом департамента от 28.09.2023 № 3047",
  seed 000 p. 3.5) is kept as items with a code, a term and a state; the group "reviews and agrees the results",
  which is recorded as the decision that agreed each result.
* Each item's state (planned, in progress, done, cancelled) is kept up to date by the secretary; the progress
  report (:mod:`.reports`) is generated from it.

Functions take the caller's session and never commit; refusals raise :class:`WorkgroupError` in Russian.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailservice.workgroup import meetings, service, voting
from mailservice.workgroup.models import WgAgendaItem, WgGroup, WgMeeting, WgMember, WgPlan, WgPlanItem, WgRoadmapItem
from mailservice.workgroup.service import FINAL_MINUTES, WorkgroupError

ITEM_STATES = ("planned", "in_progress", "done", "cancelled")
ITEM_STATE_NAMES = {
    "planned": "запланировано",
    "in_progress": "выполняется",
    "done": "выполнено",
    "cancelled": "отменено",
}
ROADMAP_STATES = ("planned", "in_progress", "done")
PLAN_STATE_NAMES = {"draft": "проект", "approved": "утверждён"}


@dataclass(frozen=True)
class Decision:
    """An adopted decision of a meeting with signed minutes: where it is recorded."""

    meeting: WgMeeting
    item: WgAgendaItem
    number: int

    @property
    def reference(self) -> str:
        """«протокол № 3, вопрос № 2»."""
        noun = "протокол письменного опроса" if self.meeting.form == "absentee" else "протокол"
        return f"{noun} № {self.meeting.number}, вопрос № {self.number}"


def decision_of(session: Session, group: WgGroup, item: WgAgendaItem) -> Decision:
    """The decision behind an agenda item of ``group``: adopted, and its minutes signed; refused otherwise."""
    meeting = session.get(WgMeeting, item.meeting_id)
    if meeting is None or meeting.group_id != group.id:
        raise WorkgroupError("Решение должно быть принято этой рабочей группой")
    results = {r.item.id: r for r in voting.tallies(session, meeting)[2]}
    if item.id not in results:
        raise WorkgroupError("Этого вопроса нет в повестке")
    if not results[item.id].result.adopted:
        raise WorkgroupError(f"По вопросу № {results[item.id].number} заседания № {meeting.number} решение не принято")
    if meeting.status not in FINAL_MINUTES:
        raise WorkgroupError(f"Протокол заседания № {meeting.number} ещё не подписан: решение не оформлено")
    return Decision(meeting, item, results[item.id].number)


def decision_by_number(session: Session, group: WgGroup, meeting_number: int, item_number: int) -> Decision:
    """A decision by the meeting's number in the group and the question's number."""
    meeting = session.scalar(
        select(WgMeeting).where(WgMeeting.group_id == group.id, WgMeeting.number == meeting_number)
    )
    if meeting is None:
        raise WorkgroupError(f"Заседания № {meeting_number} нет")
    return decision_of(session, group, meetings.item_by_number(session, meeting, item_number))


def decisions_of(session: Session, group: WgGroup) -> list[Decision]:
    """Every decision of the group that can approve a plan or agree a result (newest meeting first)."""
    found = []
    final = session.scalars(
        select(WgMeeting)
        .where(WgMeeting.group_id == group.id, WgMeeting.status.in_(FINAL_MINUTES))
        .order_by(WgMeeting.number.desc())
    )
    for meeting in final:
        for r in voting.tallies(session, meeting)[2]:
            if r.result.adopted:
                found.append(Decision(meeting, r.item, r.number))
    return found


# The road map -------------------------------------------------------------------------------------------------


def add_roadmap_item(
    session: Session,
    group: WgGroup,
    *,
    code: str,
    title: str,
    act: str = "",
    due: dt.date | None = None,
    now: dt.datetime,
    actor: str,
) -> WgRoadmapItem:
    """An item of the department's road map the group tracks."""
    code, title = code.strip(), title.strip()
    if not code or not title:
        raise WorkgroupError("Укажите номер и наименование мероприятия дорожной карты")
    exists = session.scalar(select(WgRoadmapItem).where(WgRoadmapItem.group_id == group.id, WgRoadmapItem.code == code))
    if exists is not None:
        raise WorkgroupError(f"Мероприятие дорожной карты № {code} уже есть")
    row = WgRoadmapItem(group_id=group.id, code=code, title=title, act=act.strip(), due=due, created_at=now)
    session.add(row)
    session.flush()
    service.log(session, now=now, actor=actor, action="roadmap_added", group_id=group.id, roadmap=row.id, code=code)
    return row


def roadmap_of(session: Session, group: WgGroup) -> list[WgRoadmapItem]:
    """The road-map items of a group, by code."""
    rows = session.scalars(select(WgRoadmapItem).where(WgRoadmapItem.group_id == group.id))
    return sorted(rows, key=lambda r: [int(p) if p.isdigit() else p for p in r.code.replace("-", ".").split(".")])


def roadmap_item(session: Session, group: WgGroup, code: str) -> WgRoadmapItem:
    """A road-map item by its code."""
    row = session.scalar(select(WgRoadmapItem).where(WgRoadmapItem.group_id == group.id, WgRoadmapItem.code == code))
    if row is None:
        raise WorkgroupError(f"Мероприятия дорожной карты № {code} нет")
    return row


def update_roadmap_item(
    session: Session,
    group: WgGroup,
    row: WgRoadmapItem,
    *,
    state: str | None = None,
    result: str | None = None,
    agreed_by: WgAgendaItem | None = None,
    now: dt.datetime,
    actor: str,
) -> None:
    """Record progress of a road-map item, or the decision that reviewed and agreed its result (seed 000 p. 3.5)."""
    if state is not None:
        if state not in ROADMAP_STATES:
            raise WorkgroupError("Состояние мероприятия: planned, in_progress или done")
        row.state = state
    if result is not None:
        row.result = result.strip()
    if agreed_by is not None:
        decision_of(session, group, agreed_by)
        if not row.result:
            raise WorkgroupError("Результат мероприятия не описан: согласовывать нечего")
        row.agreed_item_id = agreed_by.id
    service.log(
        session, now=now, actor=actor, action="roadmap_updated", group_id=group.id, roadmap=row.id, state=row.state
    )


# Plans --------------------------------------------------------------------------------------------------------


def create_plan(
    session: Session,
    group: WgGroup,
    *,
    title: str,
    period_start: dt.date,
    period_end: dt.date,
    now: dt.datetime,
    actor: str,
) -> WgPlan:
    """A draft work plan for a period."""
    if not title.strip():
        raise WorkgroupError("Укажите название плана")
    if period_end < period_start:
        raise WorkgroupError("Период плана: дата окончания раньше даты начала")
    plan = WgPlan(
        group_id=group.id,
        title=title.strip(),
        period_start=period_start,
        period_end=period_end,
        state="draft",
        created_at=now,
        created_by=actor,
    )
    session.add(plan)
    session.flush()
    service.log(session, now=now, actor=actor, action="plan_created", group_id=group.id, plan=plan.id)
    return plan


def get_plan(session: Session, plan_id: int) -> WgPlan:
    """A plan by id."""
    plan = session.get(WgPlan, plan_id)
    if plan is None:
        raise WorkgroupError(f"Плана {plan_id} нет")
    return plan


def plans_of(session: Session, group: WgGroup) -> list[WgPlan]:
    """The group's plans, newest period first."""
    query = select(WgPlan).where(WgPlan.group_id == group.id).order_by(WgPlan.period_start.desc(), WgPlan.id.desc())
    return list(session.scalars(query))


def add_plan_item(
    session: Session,
    plan: WgPlan,
    *,
    title: str,
    owner: str = "",
    owner_member: WgMember | None = None,
    due: dt.date,
    roadmap: WgRoadmapItem | None = None,
    now: dt.datetime,
    actor: str,
) -> WgPlanItem:
    """An item of a draft plan: what, who is responsible (a member, or a unit or person by name), by when."""
    if plan.state != "draft":
        raise WorkgroupError(
            "План утверждён решением группы: новые пункты вносятся в новый план или его новую редакцию"
        )
    if not title.strip():
        raise WorkgroupError("Укажите, что должно быть сделано")
    if owner_member is not None:
        if owner_member.group_id != plan.group_id:
            raise WorkgroupError("Ответственный не состоит в рабочей группе")
        owner = owner or owner_member.name
    if not owner.strip():
        raise WorkgroupError("Укажите ответственного")
    if not plan.period_start <= due <= plan.period_end:
        raise WorkgroupError(f"Срок пункта вне периода плана ({plan.period_start:%d.%m.%Y}–{plan.period_end:%d.%m.%Y})")
    if roadmap is not None and roadmap.group_id != plan.group_id:
        raise WorkgroupError("Мероприятие дорожной карты другой группы")
    position = (session.scalar(select(func.max(WgPlanItem.position)).where(WgPlanItem.plan_id == plan.id)) or 0) + 1
    item = WgPlanItem(
        plan_id=plan.id,
        position=position,
        title=title.strip(),
        owner=owner.strip(),
        owner_member_id=owner_member.id if owner_member else None,
        due=due,
        roadmap_item_id=roadmap.id if roadmap else None,
        state="planned",
        updated_at=now,
    )
    session.add(item)
    session.flush()
    service.log(
        session, now=now, actor=actor, action="plan_item_added", group_id=plan.group_id, plan=plan.id, item=item.id
    )
    return item


def approve_plan(
    session: Session, plan: WgPlan, decision_item: WgAgendaItem, *, now: dt.datetime, actor: str
) -> Decision:
    """Record the group's decision approving the plan (seed 000 p. 3.2)."""
    if plan.state == "approved":
        raise WorkgroupError("План уже утверждён")
    group = session.get(WgGroup, plan.group_id)
    assert group is not None
    if not plan.items:
        raise WorkgroupError("В плане нет ни одного пункта")
    decision = decision_of(session, group, decision_item)
    plan.state, plan.approved_item_id, plan.approved_at = "approved", decision_item.id, now
    service.log(
        session,
        now=now,
        actor=actor,
        action="plan_approved",
        group_id=group.id,
        plan=plan.id,
        meeting_id=decision.meeting.id,
        item=decision_item.id,
    )
    return decision


def update_plan_item(
    session: Session, item: WgPlanItem, *, state: str, note: str | None = None, now: dt.datetime, actor: str
) -> None:
    """Record progress of a plan item."""
    if state not in ITEM_STATES:
        raise WorkgroupError("Состояние пункта: planned, in_progress, done или cancelled")
    item.state, item.updated_at = state, now
    if note is not None:
        item.note = note.strip()
    plan = session.get(WgPlan, item.plan_id)
    assert plan is not None
    service.log(
        session, now=now, actor=actor, action="plan_item_state", group_id=plan.group_id, item=item.id, state=state
    )


def item_status(item: WgPlanItem, today: dt.date) -> str:
    """An item's state, ``overdue`` for one neither done nor cancelled past its term (pure)."""
    return "overdue" if item.state in ("planned", "in_progress") and today > item.due else item.state
