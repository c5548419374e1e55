"""console: staff users, sessions, login attempts, audit log, history exports, feedback surveys and responses

Revision ID: console_0001
Revises: 0001
Create Date: 2026-11-25 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "console_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("console",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_login_attempts")),
    )
    with op.batch_alter_table("staff_login_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_staff_login_attempts_email_at", ["email", "at"], unique=False)
        batch_op.create_index("ix_staff_login_attempts_ip_at", ["ip", "at"], unique=False)

    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["staff_users.id"], name=op.f("fk_audit_log_actor_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_users.id"],
            name=op.f("fk_staff_sessions_user_id_staff_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feedback_surveys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_feedback_surveys_client_id_clients")),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], name=op.f("fk_feedback_surveys_outbox_id_outbox")),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], name=op.f("fk_feedback_surveys_request_id_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_surveys")),
        sa.UniqueConstraint("request_id", name=op.f("uq_feedback_surveys_request_id")),
    )
    with op.batch_alter_table("feedback_surveys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_surveys_client_id"), ["client_id"], unique=False)

    op.create_table(
        "history_exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("verified_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("downloaded_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("download_count", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_history_exports_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["intake_id"], ["intake_journal.id"], name=op.f("fk_history_exports_intake_id_intake_journal")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_exports")),
    )
    with op.batch_alter_table("history_exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_history_exports_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_history_exports_created_at"), ["created_at"], unique=False)

    op.create_table(
        "feedback_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("survey_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.CheckConstraint("rating >= 1 AND rating <= 5", name=op.f("ck_feedback_responses_rating_range")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_feedback_responses_request_id_requests")
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["feedback_surveys.id"],
            name=op.f("fk_feedback_responses_survey_id_feedback_surveys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_responses")),
        sa.UniqueConstraint("survey_id", name=op.f("uq_feedback_responses_survey_id")),
    )
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_responses_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_responses_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_responses_request_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_responses_created_at"))

    op.drop_table("feedback_responses")
    with op.batch_alter_table("history_exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_history_exports_created_at"))
        batch_op.drop_index(batch_op.f("ix_history_exports_client_id"))

    op.drop_table("history_exports")
    with op.batch_alter_table("feedback_surveys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_surveys_client_id"))

    op.drop_table("feedback_surveys")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))

    op.drop_table("staff_sessions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index(batch_op.f("ix_audit_log_actor_id"))

    op.drop_table("audit_log")
    op.drop_table("staff_users")
    with op.batch_alter_table("staff_login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_login_attempts_ip_at")
        batch_op.drop_index("ix_staff_login_attempts_email_at")

    op.drop_table("staff_login_attempts")
