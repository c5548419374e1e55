"""processes: register versions and rows, status history, change requests and their approvals

Revision ID: processes_0001
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "processes_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("processes",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_register_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("catalogue_version", sa.String(length=40), nullable=False),
        sa.Column("approved_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_register_versions")),
        sa.UniqueConstraint("number", name=op.f("uq_process_register_versions_number")),
    )
    op.create_table(
        "process_change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("proposal", sa.JSON(), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("submitted_by", sa.String(length=320), nullable=False),
        sa.Column("submitted_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=320), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("applied_version_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["applied_version_id"],
            ["process_register_versions.id"],
            name=op.f("fk_process_change_requests_applied_version_id_process_register_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_change_requests")),
    )
    with op.batch_alter_table("process_change_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_process_change_requests_process_id"), ["process_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_process_change_requests_state"), ["state"], unique=False)

    op.create_table(
        "process_register_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("life_situation", sa.Text(), nullable=False),
        sa.Column("service_name", sa.Text(), nullable=False),
        sa.Column("regulating_act", sa.Text(), nullable=False),
        sa.Column("process_group", sa.Text(), nullable=False),
        sa.Column("process_name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("client_value", sa.Text(), nullable=False),
        sa.Column("input_data", sa.Text(), nullable=False),
        sa.Column("output_result", sa.Text(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digital_access", sa.Text(), nullable=False),
        sa.Column("custom", sa.Boolean(), nullable=False),
        sa.Column("catalogue_id", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["process_register_versions.id"],
            name=op.f("fk_process_register_rows_version_id_process_register_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_register_rows")),
        sa.UniqueConstraint("version_id", "process_id", name=op.f("uq_process_register_rows_version_id_process_id")),
    )
    with op.batch_alter_table("process_register_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_process_register_rows_version_id"), ["version_id"], unique=False)

    op.create_table(
        "process_status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["process_register_versions.id"],
            name=op.f("fk_process_status_history_version_id_process_register_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_status_history")),
    )
    with op.batch_alter_table("process_status_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_process_status_history_process_id"), ["process_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_process_status_history_version_id"), ["version_id"], unique=False)

    op.create_table(
        "process_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_request_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("asked_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["process_change_requests.id"],
            name=op.f("fk_process_approvals_change_request_id_process_change_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_process_approvals_outbox_id_outbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_approvals")),
        sa.UniqueConstraint("change_request_id", "email", name=op.f("uq_process_approvals_change_request_id_email")),
    )
    with op.batch_alter_table("process_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_process_approvals_change_request_id"), ["change_request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("process_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_approvals_change_request_id"))
    op.drop_table("process_approvals")
    with op.batch_alter_table("process_status_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_status_history_version_id"))
        batch_op.drop_index(batch_op.f("ix_process_status_history_process_id"))
    op.drop_table("process_status_history")
    with op.batch_alter_table("process_register_rows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_register_rows_version_id"))
    op.drop_table("process_register_rows")
    with op.batch_alter_table("process_change_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_process_change_requests_state"))
        batch_op.drop_index(batch_op.f("ix_process_change_requests_process_id"))
    op.drop_table("process_change_requests")
    op.drop_table("process_register_versions")
