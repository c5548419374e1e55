"""workgroup follow-up (issue 18): instructions and their reports, work plans, the road map, reports to the head,
protocols of disagreements, expert groups and project committees (wg_groups.parent_id, kind), and triggers that
make signed minutes and given signatures immutable in the database

Revision ID: 1801_workgroup_followup
Revises: workgroup_0001
Create Date: 2026-12-04 21:32:11
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1801_workgroup_followup"
down_revision: str | Sequence[str] | None = "workgroup_0001"
branch_labels: str | Sequence[str] | None = None
# wg_instructions.assignee_staff_id refers to the console's staff_users.
depends_on: str | Sequence[str] | None = "console_0001"

# Signed minutes are final (seed 000 p. 16-17: the presiding member approves them, copies go out): the database
# itself refuses to change or delete a signed version or a given signature, as it does for the consent log.
_PG_FUNCTION = """
CREATE FUNCTION wg_signed_is_final() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% row % is signed and cannot be changed', TG_TABLE_NAME, OLD.id;
END;
$$ LANGUAGE plpgsql
"""
# (table, condition on OLD that makes a row final)
_FINAL = (("wg_minutes", "OLD.status = 'signed'"), ("wg_signatures", "OLD.signed_at IS NOT NULL"))


def upgrade() -> None:
    op.create_table(
        "wg_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("docx_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_by", sa.String(length=320), nullable=False),
        sa.Column("sent_to", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_reports_group_id_wg_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_reports")),
    )
    with op.batch_alter_table("wg_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_reports_group_id"), ["group_id"], unique=False)

    op.create_table(
        "wg_disagreements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("positions", sa.JSON(), nullable=False),
        sa.Column("proposal", sa.Text(), nullable=False),
        sa.Column("recorded_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=320), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_disagreements_group_id_wg_groups")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_disagreements_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_disagreements_meeting_id_wg_meetings")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["wg_reports.id"], name=op.f("fk_wg_disagreements_report_id_wg_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_disagreements")),
    )
    with op.batch_alter_table("wg_disagreements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_disagreements_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wg_disagreements_meeting_id"), ["meeting_id"], unique=False)

    op.create_table(
        "wg_instructions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("assignee_member_id", sa.Integer(), nullable=True),
        sa.Column("assignee_staff_id", sa.Integer(), nullable=True),
        sa.Column("assignee_name", sa.String(length=300), nullable=False),
        sa.Column("assignee_email", sa.String(length=320), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("expected_result", sa.Text(), nullable=False),
        sa.Column("due_wd", sa.Integer(), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("original_due", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_before_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminded_after_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_member_id"], ["wg_members.id"], name=op.f("fk_wg_instructions_assignee_member_id_wg_members")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_staff_id"], ["staff_users.id"], name=op.f("fk_wg_instructions_assignee_staff_id_staff_users")
        ),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_instructions_group_id_wg_groups")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_instructions_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["wg_meetings.id"], name=op.f("fk_wg_instructions_meeting_id_wg_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_instructions")),
    )
    with op.batch_alter_table("wg_instructions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_instructions_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wg_instructions_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wg_instructions_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_wg_instructions_state"), ["state"], unique=False)

    op.create_table(
        "wg_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approved_item_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_plans_approved_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_plans_group_id_wg_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_plans")),
    )
    with op.batch_alter_table("wg_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_plans_group_id"), ["group_id"], unique=False)

    op.create_table(
        "wg_roadmap_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("act", sa.String(length=500), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("agreed_item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agreed_item_id"], ["wg_agenda_items.id"], name=op.f("fk_wg_roadmap_items_agreed_item_id_wg_agenda_items")
        ),
        sa.ForeignKeyConstraint(["group_id"], ["wg_groups.id"], name=op.f("fk_wg_roadmap_items_group_id_wg_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_roadmap_items")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_wg_roadmap_items_group_id_code")),
    )
    with op.batch_alter_table("wg_roadmap_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_roadmap_items_group_id"), ["group_id"], unique=False)

    op.create_table(
        "wg_instruction_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instruction_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("proposed_due", sa.Date(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=False),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instruction_id"],
            ["wg_instructions.id"],
            name=op.f("fk_wg_instruction_reports_instruction_id_wg_instructions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_instruction_reports")),
    )
    with op.batch_alter_table("wg_instruction_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_instruction_reports_instruction_id"), ["instruction_id"], unique=False)

    op.create_table(
        "wg_plan_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=300), nullable=False),
        sa.Column("owner_member_id", sa.Integer(), nullable=True),
        sa.Column("due", sa.Date(), nullable=False),
        sa.Column("roadmap_item_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_member_id"], ["wg_members.id"], name=op.f("fk_wg_plan_items_owner_member_id_wg_members")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["wg_plans.id"], name=op.f("fk_wg_plan_items_plan_id_wg_plans")),
        sa.ForeignKeyConstraint(
            ["roadmap_item_id"], ["wg_roadmap_items.id"], name=op.f("fk_wg_plan_items_roadmap_item_id_wg_roadmap_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wg_plan_items")),
    )
    with op.batch_alter_table("wg_plan_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wg_plan_items_plan_id"), ["plan_id"], unique=False)

    # Plain ADD COLUMN on both backends: a batch rebuild of wg_groups would drop a table other rows refer to.
    dialect = op.get_bind().dialect.name
    op.add_column("wg_groups", sa.Column("kind", sa.String(length=24), nullable=False, server_default="working_group"))
    op.add_column("wg_groups", sa.Column("head_name", sa.String(length=300), nullable=False, server_default=""))
    op.add_column("wg_groups", sa.Column("head_email", sa.String(length=320), nullable=False, server_default=""))
    if dialect == "sqlite":
        # SQLite adds a column with its REFERENCES clause (NULL default) without rebuilding the table.
        op.execute("ALTER TABLE wg_groups ADD COLUMN parent_id INTEGER REFERENCES wg_groups (id)")
        op.execute("ALTER TABLE wg_groups ADD COLUMN formed_by_item_id INTEGER REFERENCES wg_agenda_items (id)")
    else:
        op.add_column("wg_groups", sa.Column("parent_id", sa.Integer(), nullable=True))
        op.add_column("wg_groups", sa.Column("formed_by_item_id", sa.Integer(), nullable=True))
        op.create_foreign_key(op.f("fk_wg_groups_parent_id_wg_groups"), "wg_groups", "wg_groups", ["parent_id"], ["id"])
        op.create_foreign_key(
            op.f("fk_wg_groups_formed_by_item_id_wg_agenda_items"),
            "wg_groups",
            "wg_agenda_items",
            ["formed_by_item_id"],
            ["id"],
        )
    op.create_index(op.f("ix_wg_groups_parent_id"), "wg_groups", ["parent_id"], unique=False)
    op.add_column("wg_agenda_items", sa.Column("kind", sa.String(length=16), nullable=False, server_default=""))
    op.add_column("wg_agenda_items", sa.Column("details", sa.Text(), nullable=False, server_default=""))

    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        for table, condition in _FINAL:
            op.execute(
                f"CREATE TRIGGER {table}_final BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION wg_signed_is_final()"
            )
    else:
        for table, condition in _FINAL:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_final_{action.lower()} BEFORE {action} ON {table} "
                    f"WHEN {condition} BEGIN SELECT RAISE(ABORT, '{table} row is signed and cannot be changed'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table, _condition in _FINAL:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_final ON {table}")
        op.execute("DROP FUNCTION IF EXISTS wg_signed_is_final()")
    else:
        for table, _condition in _FINAL:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_final_{action}")
    op.drop_index(op.f("ix_wg_groups_parent_id"), table_name="wg_groups")
    if dialect != "sqlite":
        op.drop_constraint(op.f("fk_wg_groups_formed_by_item_id_wg_agenda_items"), "wg_groups", type_="foreignkey")
        op.drop_constraint(op.f("fk_wg_groups_parent_id_wg_groups"), "wg_groups", type_="foreignkey")
    # SQLite (3.35+) drops a column that no index or constraint names; the REFERENCES clause goes with it.
    for column in ("formed_by_item_id", "parent_id", "head_email", "head_name", "kind"):
        op.drop_column("wg_groups", column)
    op.drop_column("wg_agenda_items", "details")
    op.drop_column("wg_agenda_items", "kind")

    with op.batch_alter_table("wg_plan_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_plan_items_plan_id"))

    op.drop_table("wg_plan_items")
    with op.batch_alter_table("wg_instruction_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_instruction_reports_instruction_id"))

    op.drop_table("wg_instruction_reports")
    with op.batch_alter_table("wg_roadmap_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_roadmap_items_group_id"))

    op.drop_table("wg_roadmap_items")
    with op.batch_alter_table("wg_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_plans_group_id"))

    op.drop_table("wg_plans")
    with op.batch_alter_table("wg_instructions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_instructions_state"))
        batch_op.drop_index(batch_op.f("ix_wg_instructions_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_wg_instructions_item_id"))
        batch_op.drop_index(batch_op.f("ix_wg_instructions_group_id"))

    op.drop_table("wg_instructions")
    with op.batch_alter_table("wg_disagreements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_disagreements_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_wg_disagreements_group_id"))

    op.drop_table("wg_disagreements")
    with op.batch_alter_table("wg_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wg_reports_group_id"))

    op.drop_table("wg_reports")
