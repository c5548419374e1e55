"""workgroup: groups, members, meetings, agenda, votes, opinions, replies, minutes, deadlines

Also materials, attendance, poll ballots, minutes signatures and the action log.

Revision ID: workgroup_0001
Revises: 0001
Create Date: 2026-11-25 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "workgroup_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("workgroup",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wg_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_groups")),
        sa.UniqueConstraint("slug", name=op.f("uq_wg_groups_slug")),
    )
    op.create_table(
        "wg_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("position", sa.String(length=300), nullable=False),
        sa.Column("voting", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("verified_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verified_how", sa.String(length=32), nullable=False),
        sa.Column("verify_nonce", sa.String(length=32), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_members_group_id_wg_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_members")),
        sa.UniqueConstraint("group_id", "email", name=op.f("uq_wg_members_group_id_email")),
    )
    op.create_index(op.f("ix_wg_members_group_id"), "wg_members", ["group_id"], unique=False)
    op.create_table(
        "wg_meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("starts_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(length=500), nullable=False),
        sa.Column("ics_uid", sa.String(length=255), nullable=False),
        sa.Column("ics_sequence", sa.Integer(), nullable=False),
        sa.Column("presiding_id", sa.Integer(), nullable=True),
        sa.Column("agenda_nonce", sa.String(length=32), nullable=False),
        sa.Column("agenda_submitted_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("agenda_approved_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("agenda_approved_by_id", sa.Integer(), nullable=True),
        sa.Column("agenda_sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("poll_closes_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("poll_closed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("audio_sha256", sa.String(length=64), nullable=False),
        sa.Column("audio_filename", sa.String(length=300), nullable=False),
        sa.Column("held_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("distributed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agenda_approved_by_id"], ["wg_members.id"], name=op.f("fk_wg_meetings_agenda_approved_by_id_wg_members")
        ),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_meetings_group_id_wg_groups")),
        sa.ForeignKeyConstraint(
            ["presiding_id"], ["wg_members.id"], name=op.f("fk_wg_meetings_presiding_id_wg_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_meetings")),
        sa.UniqueConstraint("group_id", "number", name=op.f("uq_wg_meetings_group_id_number")),
        sa.UniqueConstraint("ics_uid", name=op.f("uq_wg_meetings_ics_uid")),
    )
    op.create_index(op.f("ix_wg_meetings_group_id"), "wg_meetings", ["group_id"], unique=False)
    op.create_index(op.f("ix_wg_meetings_status"), "wg_meetings", ["status"], unique=False)
    op.create_table(
        "wg_agenda_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("speaker", sa.String(length=300), nullable=False),
        sa.Column("proposal", sa.Text(), nullable=False),
        sa.Column("heard", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_agenda_items_meeting_id_wg_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by_id"], ["wg_members.id"], name=op.f("fk_wg_agenda_items_proposed_by_id_wg_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_agenda_items")),
    )
    op.create_index(op.f("ix_wg_agenda_items_meeting_id"), "wg_agenda_items", ["meeting_id"], unique=False)
    op.create_table(
        "wg_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_attendance_meeting_id_wg_meetings")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_attendance_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_attendance")),
        sa.UniqueConstraint("meeting_id", "member_id", name=op.f("uq_wg_attendance_meeting_id_member_id")),
    )
    op.create_index(op.f("ix_wg_attendance_meeting_id"), "wg_attendance", ["meeting_id"], unique=False)
    op.create_table(
        "wg_ballots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("returned_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_ballots_meeting_id_wg_meetings")),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_ballots_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_ballots")),
        sa.UniqueConstraint("meeting_id", "member_id", name=op.f("uq_wg_ballots_meeting_id_member_id")),
    )
    op.create_index(op.f("ix_wg_ballots_meeting_id"), "wg_ballots", ["meeting_id"], unique=False)
    op.create_table(
        "wg_deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reminded_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("missed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_deadlines_meeting_id_wg_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_deadlines")),
        sa.UniqueConstraint("meeting_id", "key", name=op.f("uq_wg_deadlines_meeting_id_key")),
    )
    op.create_index(op.f("ix_wg_deadlines_meeting_id"), "wg_deadlines", ["meeting_id"], unique=False)
    op.create_table(
        "wg_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_invitations_meeting_id_wg_meetings")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_invitations_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_invitations")),
        sa.UniqueConstraint("meeting_id", "member_id", name=op.f("uq_wg_invitations_meeting_id_member_id")),
    )
    op.create_index(op.f("ix_wg_invitations_meeting_id"), "wg_invitations", ["meeting_id"], unique=False)
    op.create_table(
        "wg_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_log_group_id_wg_groups")),
        sa.ForeignKeyConstraint(["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_log_meeting_id_wg_meetings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_log")),
    )
    op.create_index(op.f("ix_wg_log_at"), "wg_log", ["at"], unique=False)
    op.create_index(op.f("ix_wg_log_meeting_id"), "wg_log", ["meeting_id"], unique=False)
    op.create_table(
        "wg_minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("docx_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("sent_for_signature_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_minutes_meeting_id_wg_meetings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_minutes")),
        sa.UniqueConstraint("meeting_id", "version", name=op.f("uq_wg_minutes_meeting_id_version")),
    )
    op.create_index(op.f("ix_wg_minutes_meeting_id"), "wg_minutes", ["meeting_id"], unique=False)
    op.create_table(
        "wg_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.Integer(), nullable=True),
        sa.Column("ballot_id", sa.Integer(), nullable=True),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("intake_id", sa.Integer(), nullable=True),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("from_name", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("received_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["wg_ballots.id"], name=op.f("fk_wg_inbox_ballot_id_wg_ballots")),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_inbox_group_id_wg_groups")),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intake_journal.id"], name=op.f("fk_wg_inbox_intake_id_intake_journal")
        ),
        sa.ForeignKeyConstraint(["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_inbox_meeting_id_wg_meetings")),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_inbox_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_inbox")),
    )
    op.create_index(op.f("ix_wg_inbox_meeting_id"), "wg_inbox", ["meeting_id"], unique=False)
    op.create_index(op.f("ix_wg_inbox_status"), "wg_inbox", ["status"], unique=False)
    op.create_table(
        "wg_materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_materials_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_materials_meeting_id_wg_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_materials")),
    )
    op.create_index(op.f("ix_wg_materials_meeting_id"), "wg_materials", ["meeting_id"], unique=False)
    op.create_table(
        "wg_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minutes_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("requested_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("signed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_signatures_member_id_wg_members")),
        sa.ForeignKeyConstraint(["minutes_id"], ["wg_minutes.id"], name=op.f("fk_wg_signatures_minutes_id_wg_minutes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_signatures")),
        sa.UniqueConstraint("minutes_id", "member_id", name=op.f("uq_wg_signatures_minutes_id_member_id")),
    )
    op.create_index(op.f("ix_wg_signatures_minutes_id"), "wg_signatures", ["minutes_id"], unique=False)
    op.create_table(
        "wg_opinions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["inbox_id"], ["wg_inbox.id"], name=op.f("fk_wg_opinions_inbox_id_wg_inbox")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_opinions_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_opinions_meeting_id_wg_meetings")),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_opinions_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_opinions")),
    )
    op.create_index(op.f("ix_wg_opinions_meeting_id"), "wg_opinions", ["meeting_id"], unique=False)
    op.create_table(
        "wg_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=320), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=True),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["ballot_id"], ["wg_ballots.id"], name=op.f("fk_wg_votes_ballot_id_wg_ballots")),
        sa.ForeignKeyConstraint(["inbox_id"], ["wg_inbox.id"], name=op.f("fk_wg_votes_inbox_id_wg_inbox")),
        sa.ForeignKeyConstraint(["item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_votes_item_id_wg_agenda_items")),
        sa.ForeignKeyConstraint(["member_id"], ["wg_members.id"], name=op.f("fk_wg_votes_member_id_wg_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_votes")),
        sa.UniqueConstraint("item_id", "member_id", name=op.f("uq_wg_votes_item_id_member_id")),
    )
    op.create_index(op.f("ix_wg_votes_item_id"), "wg_votes", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_wg_votes_item_id"), table_name="wg_votes")
    op.drop_table("wg_votes")
    op.drop_index(op.f("ix_wg_opinions_meeting_id"), table_name="wg_opinions")
    op.drop_table("wg_opinions")
    op.drop_index(op.f("ix_wg_signatures_minutes_id"), table_name="wg_signatures")
    op.drop_table("wg_signatures")
    op.drop_index(op.f("ix_wg_materials_meeting_id"), table_name="wg_materials")
    op.drop_table("wg_materials")
    op.drop_index(op.f("ix_wg_inbox_status"), table_name="wg_inbox")
    op.drop_index(op.f("ix_wg_inbox_meeting_id"), table_name="wg_inbox")
    op.drop_table("wg_inbox")
    op.drop_index(op.f("ix_wg_minutes_meeting_id"), table_name="wg_minutes")
    op.drop_table("wg_minutes")
    op.drop_index(op.f("ix_wg_log_meeting_id"), table_name="wg_log")
    op.drop_index(op.f("ix_wg_log_at"), table_name="wg_log")
    op.drop_table("wg_log")
    op.drop_index(op.f("ix_wg_invitations_meeting_id"), table_name="wg_invitations")
    op.drop_table("wg_invitations")
    op.drop_index(op.f("ix_wg_deadlines_meeting_id"), table_name="wg_deadlines")
    op.drop_table("wg_deadlines")
    op.drop_index(op.f("ix_wg_ballots_meeting_id"), table_name="wg_ballots")
    op.drop_table("wg_ballots")
    op.drop_index(op.f("ix_wg_attendance_meeting_id"), table_name="wg_attendance")
    op.drop_table("wg_attendance")
    op.drop_index(op.f("ix_wg_agenda_items_meeting_id"), table_name="wg_agenda_items")
    op.drop_table("wg_agenda_items")
    op.drop_index(op.f("ix_wg_meetings_status"), table_name="wg_meetings")
    op.drop_index(op.f("ix_wg_meetings_group_id"), table_name="wg_meetings")
    op.drop_table("wg_meetings")
    op.drop_index(op.f("ix_wg_members_group_id"), table_name="wg_members")
    op.drop_table("wg_members")
    op.drop_table("wg_groups")
