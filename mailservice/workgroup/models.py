"""The working group's records: groups (and their expert groups and project committees), members, meetings,
agendas, attendance, votes, opinions, minutes, signatures, ballots, replies held for the secretary, deadline
records, instructions given by decisions and their reports, work plans, the road map, reports to the head of the
department, protocols of disagreements, and a log of every action.

Nothing a member writes is deleted: replies stay in ``wg_inbox`` whatever the secretary decides, superseded
minutes stay as earlier versions, and a corrected vote keeps its history in the log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailservice.db import Base, utcnow


class WgGroup(Base):
    """A working group under one regulation profile; ``settings`` overrides the profile's values.

    An expert group or a project committee (seed 002 p. 10) is a group with a ``parent``: its own members,
    meetings and minutes, formed by the parent's decision (``formed_by_item_id``) and reporting to it.
    """

    __tablename__ = "wg_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    profile: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # working_group | expert_group | project_committee
    kind: Mapped[str] = mapped_column(String(24), default="working_group")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("wg_groups.id"), default=None, index=True)
    formed_by_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("wg_agenda_items.id", use_alter=True), default=None
    )
    # The head of the department the group reports to (seed 000 p. 3.7, 3.9).
    head_name: Mapped[str] = mapped_column(String(300), default="")
    head_email: Mapped[str] = mapped_column(String(320), default="")

    members: Mapped[list[WgMember]] = relationship(back_populates="group", order_by="WgMember.id")


class WgMember(Base):
    """A person of the group: chair, deputy chair, secretary, member, or an invitee (who has no vote)."""

    __tablename__ = "wg_members"
    __table_args__ = (UniqueConstraint("group_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    position: Mapped[str] = mapped_column(String(300), default="")
    voting: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    verified_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    verified_how: Mapped[str] = mapped_column(String(32), default="")
    verify_nonce: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    group: Mapped[WgGroup] = relationship(back_populates="members")


class WgMeeting(Base):
    """A meeting (in person, remote) or a written poll (absentee), from planned to minutes distributed."""

    __tablename__ = "wg_meetings"
    __table_args__ = (UniqueConstraint("group_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    form: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="planned", index=True)
    starts_at: Mapped[dt.datetime] = mapped_column()
    duration_min: Mapped[int] = mapped_column(Integer, default=90)
    place: Mapped[str] = mapped_column(String(500), default="")
    # RFC 5545 3.8.4.7: one UID for the life of the event; SEQUENCE (3.8.7.4) grows with every update sent.
    ics_uid: Mapped[str] = mapped_column(String(255), unique=True)
    ics_sequence: Mapped[int] = mapped_column(Integer, default=0)
    presiding_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    # A new nonce voids every approval link sent for an earlier state of the agenda.
    agenda_nonce: Mapped[str] = mapped_column(String(32), default="")
    agenda_submitted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    agenda_approved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    agenda_approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    agenda_sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    poll_closes_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    poll_closed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    audio_sha256: Mapped[str] = mapped_column(String(64), default="")
    audio_filename: Mapped[str] = mapped_column(String(300), default="")
    held_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    signed_on: Mapped[dt.date | None] = mapped_column(Date, default=None)
    distributed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    group: Mapped[WgGroup] = relationship()
    items: Mapped[list[WgAgendaItem]] = relationship(order_by="WgAgendaItem.position, WgAgendaItem.id")


class WgInvitation(Base):
    """An invitee (or anyone outside the voting members) invited to one meeting."""

    __tablename__ = "wg_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WgAgendaItem(Base):
    """One question of the agenda: what was heard and decided is filled in at the meeting."""

    __tablename__ = "wg_agenda_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text)
    speaker: Mapped[str] = mapped_column(String(300), default="")
    proposal: Mapped[str] = mapped_column(Text, default="")  # the draft decision put to the vote
    heard: Mapped[str] = mapped_column(Text, default="")
    decision: Mapped[str] = mapped_column(Text, default="")
    # included | proposed (a member's proposal not yet in the agenda) | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="included")
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # "" for an ordinary question; "instructions" for the automatic item on earlier instructions, whose listing of
    # each instruction's state (as of the agenda's submission) is ``details``.
    kind: Mapped[str] = mapped_column(String(16), default="")
    details: Mapped[str] = mapped_column(Text, default="")


class WgMaterial(Base):
    """A file attached to the agenda (or to one item), kept in the blob store."""

    __tablename__ = "wg_materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_agenda_items.id"), default=None)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WgAttendance(Base):
    """Whether a member took part in a meeting, and how."""

    __tablename__ = "wg_attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    mode: Mapped[str] = mapped_column(String(16))  # in_person | remote | absent
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(320), default="")


class WgBallot(Base):
    """One member's ballot in a written poll; its nonce is in every link of the ballot."""

    __tablename__ = "wg_ballots"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    nonce: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    returned_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WgVote(Base):
    """One member's vote on one question: who, how (in person, remote, ballot link, e-mail) and when."""

    __tablename__ = "wg_votes"
    __table_args__ = (UniqueConstraint("item_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("wg_agenda_items.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    choice: Mapped[str] = mapped_column(String(8))
    method: Mapped[str] = mapped_column(String(16))  # in_person | remote | ballot_link | email
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(320), default="")
    ballot_id: Mapped[int | None] = mapped_column(ForeignKey("wg_ballots.id"), default=None)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("wg_inbox.id"), default=None)


class WgOpinion(Base):
    """An absent member's written opinion (an annex of the minutes) or a member's dissenting opinion."""

    __tablename__ = "wg_opinions"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_agenda_items.id"), default=None)
    kind: Mapped[str] = mapped_column(String(16))  # written | dissent
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(16), default="email")  # email | console | cli
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("wg_inbox.id"), default=None)
    confirmed_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WgInboxItem(Base):
    """A reply to one of the group's e-mails, recognised and held until the secretary confirms or rejects it."""

    __tablename__ = "wg_inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("wg_meetings.id"), default=None, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("wg_groups.id"), default=None)
    ballot_id: Mapped[int | None] = mapped_column(ForeignKey("wg_ballots.id"), default=None)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("intake_journal.id"), default=None)
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(300), default="")
    subject: Mapped[str] = mapped_column(String(500), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # written_opinion | dissent | agenda_proposal | ballot | other
    kind: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="held", index=True)  # held | confirmed | rejected
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str] = mapped_column(String(320), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class WgMinutes(Base):
    """One version of a meeting's minutes; a signed version is final and never changes."""

    __tablename__ = "wg_minutes"
    __table_args__ = (UniqueConstraint("meeting_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | superseded | signed
    html: Mapped[str] = mapped_column(Text)
    docx_sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    sent_for_signature_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    signed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WgSignature(Base):
    """A signature the profile requires on one version of the minutes: requested, then given."""

    __tablename__ = "wg_signatures"
    __table_args__ = (UniqueConstraint("minutes_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    minutes_id: Mapped[int] = mapped_column(ForeignKey("wg_minutes.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("wg_members.id"))
    capacity: Mapped[str] = mapped_column(String(16))  # presiding | chair | secretary | member
    nonce: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    signed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    method: Mapped[str] = mapped_column(String(16), default="")  # link | console | cli
    ip: Mapped[str] = mapped_column(String(64), default="")


class WgDeadline(Base):
    """One term of the regulation for one meeting, and whether it was kept."""

    __tablename__ = "wg_deadlines"
    __table_args__ = (UniqueConstraint("meeting_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    key: Mapped[str] = mapped_column(String(32))  # agenda_to_chair_by | agenda_send_by | minutes_by | copies_by
    due: Mapped[dt.date] = mapped_column(Date)
    done_on: Mapped[dt.date | None] = mapped_column(Date, default=None)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | kept | missed
    reminded_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    missed_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class WgLogEntry(Base):
    """Who did what to the group's records, and when (the console shows it per meeting)."""

    __tablename__ = "wg_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("wg_groups.id"), default=None)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("wg_meetings.id"), default=None, index=True)
    actor: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WgInstruction(Base):
    """An instruction (поручение) given by a decision: who, what result, by when; followed up until done.

    The assignee is a member of the group or a member of staff (``assignee_staff_id``); name and address are
    copied so that the record says whom it was given to even after the person leaves. ``state`` is assigned,
    extension_requested, done or cancelled; "overdue" is derived from ``due`` and the day.
    """

    __tablename__ = "wg_instructions"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("wg_agenda_items.id"), index=True)
    assignee_member_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    assignee_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    assignee_name: Mapped[str] = mapped_column(String(300))
    assignee_email: Mapped[str] = mapped_column(String(320))
    text: Mapped[str] = mapped_column(Text)
    expected_result: Mapped[str] = mapped_column(Text, default="")
    due_wd: Mapped[int | None] = mapped_column(Integer, default=None)  # the term as given, in working days
    due: Mapped[dt.date] = mapped_column(Date)
    original_due: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(24), default="assigned", index=True)
    # A new nonce voids every report link sent before (the instruction was changed or re-sent).
    nonce: Mapped[str] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    done_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reminded_before_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    reminded_after_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320), default="")


class WgInstructionReport(Base):
    """What the assignee reported through the signed link: done (comment, files) or a request for more time."""

    __tablename__ = "wg_instruction_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    instruction_id: Mapped[int] = mapped_column(ForeignKey("wg_instructions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # done | extension
    text: Mapped[str] = mapped_column(Text)
    proposed_due: Mapped[dt.date | None] = mapped_column(Date, default=None)
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{filename, content_type, size, sha256}]
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    via: Mapped[str] = mapped_column(String(16), default="link")  # link | console | cli
    ip: Mapped[str] = mapped_column(String(64), default="")
    # For an extension: approved | refused, by the chair or the secretary.
    decision: Mapped[str] = mapped_column(String(16), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decision_note: Mapped[str] = mapped_column(Text, default="")


class WgRoadmapItem(Base):
    """An item of the department's road map ("Дорожная карта", seed 000 p. 3.5) the group reviews."""

    __tablename__ = "wg_roadmap_items"
    __table_args__ = (UniqueConstraint("group_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text)
    act: Mapped[str] = mapped_column(String(500), default="")  # the act that approved the road map
    due: Mapped[dt.date | None] = mapped_column(Date, default=None)
    state: Mapped[str] = mapped_column(String(16), default="planned")  # planned | in_progress | done
    result: Mapped[str] = mapped_column(Text, default="")
    # The decision that reviewed and agreed the result (seed 000 p. 3.5).
    agreed_item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_agenda_items.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WgPlan(Base):
    """A work plan of the group (seed 000 p. 3.2): items with owners and dates, approved by a decision."""

    __tablename__ = "wg_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="draft")  # draft | approved
    approved_item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_agenda_items.id"), default=None)
    approved_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320), default="")

    items: Mapped[list[WgPlanItem]] = relationship(order_by="WgPlanItem.position, WgPlanItem.id")


class WgPlanItem(Base):
    """One item of a work plan: what, who is responsible, by when, and the road-map item it serves."""

    __tablename__ = "wg_plan_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("wg_plans.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(300))
    owner_member_id: Mapped[int | None] = mapped_column(ForeignKey("wg_members.id"), default=None)
    due: Mapped[dt.date] = mapped_column(Date)
    roadmap_item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_roadmap_items.id"), default=None)
    state: Mapped[str] = mapped_column(String(16), default="planned")  # planned | in_progress | done | cancelled
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WgDisagreement(Base):
    """Disagreements the group could not resolve (seed 000 p. 3.7): the protocol of disagreements to the head."""

    __tablename__ = "wg_disagreements"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("wg_meetings.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("wg_agenda_items.id"), default=None)
    subject: Mapped[str] = mapped_column(Text)
    positions: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"party": ..., "position": ...}]
    proposal: Mapped[str] = mapped_column(Text, default="")  # what the group asks the head to decide
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(320), default="")
    report_id: Mapped[int | None] = mapped_column(ForeignKey("wg_reports.id"), default=None)


class WgReport(Base):
    """A document for the head of the department: a progress report (seed 000 p. 3.9) or a protocol of
    disagreements (p. 3.7); every rendering is kept, and when it was sent."""

    __tablename__ = "wg_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wg_groups.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # progress | disagreements
    title: Mapped[str] = mapped_column(String(500))
    period_start: Mapped[dt.date | None] = mapped_column(Date, default=None)
    period_end: Mapped[dt.date | None] = mapped_column(Date, default=None)
    docx_sha256: Mapped[str] = mapped_column(String(64))
    # The PDF of the same document; empty for reports made before PDFs were kept.
    pdf_sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    sent_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    sent_by: Mapped[str] = mapped_column(String(320), default="")
    sent_to: Mapped[str] = mapped_column(String(320), default="")
