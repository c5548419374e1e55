"""mailings: lists, subscribers, subscriptions, append-only consent log, suppressions, campaigns, deliveries

Revision ID: mailings_0001
Revises: 0001
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "mailings_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("mailings",)
depends_on: str | Sequence[str] | None = None

# The consent log is the operator's proof of consent (152-FZ art. 9 part 3): the database itself refuses to
# change or delete a row of it, whatever the application does.
_PG_FUNCTION = """
CREATE FUNCTION mailing_consent_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'mailing_consent_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "mailing_consent_texts",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_mailing_consent_texts")),
    )
    op.create_table(
        "mailing_cursors",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mailing_cursors")),
    )
    op.create_table(
        "mailing_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("archived_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_lists")),
        sa.UniqueConstraint("slug", name=op.f("uq_mailing_lists_slug")),
    )
    op.create_table(
        "mailing_subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_ascii", sa.String(length=320), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirm_nonce", sa.String(length=32), nullable=False),
        sa.Column("purged_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_subscribers")),
        sa.UniqueConstraint("email", name=op.f("uq_mailing_subscribers_email")),
    )
    with op.batch_alter_table("mailing_subscribers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailing_subscribers_email_hash"), ["email_hash"], unique=False)

    op.create_table(
        "mailing_suppressions",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("email_hash", name=op.f("pk_mailing_suppressions")),
    )
    op.create_table(
        "mailing_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_throttle")),
    )
    with op.batch_alter_table("mailing_throttle", schema=None) as batch_op:
        batch_op.create_index("ix_mailing_throttle_key", ["kind", "key", "at"], unique=False)

    op.create_table(
        "mailing_workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mailing_workers")),
    )
    op.create_table(
        "mailing_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("template_name", sa.String(length=300), nullable=False),
        sa.Column("template_text", sa.Text(), nullable=False),
        sa.Column("template_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("uid", sa.String(length=16), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_send_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"], ["mailing_lists.id"], name=op.f("fk_mailing_campaigns_list_id_mailing_lists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_campaigns")),
    )
    with op.batch_alter_table("mailing_campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailing_campaigns_list_id"), ["list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailing_campaigns_status"), ["status"], unique=False)

    op.create_table(
        "mailing_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_via", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"], ["mailing_lists.id"], name=op.f("fk_mailing_subscriptions_list_id_mailing_lists")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["mailing_subscribers.id"],
            name=op.f("fk_mailing_subscriptions_subscriber_id_mailing_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_subscriptions")),
        sa.UniqueConstraint("subscriber_id", "list_id", name=op.f("uq_mailing_subscriptions_subscriber_id_list_id")),
    )
    with op.batch_alter_table("mailing_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_mailing_subscriptions_list_status", ["list_id", "status"], unique=False)

    op.create_table(
        "mailing_consent_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("list_id", sa.Integer(), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("data_processed", sa.Text(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("withdrawal_method", sa.Text(), nullable=False),
        sa.Column("consent_version", sa.String(length=40), nullable=False),
        sa.Column("consent_sha256", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"], ["mailing_lists.id"], name=op.f("fk_mailing_consent_log_list_id_mailing_lists")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["mailing_subscribers.id"],
            name=op.f("fk_mailing_consent_log_subscriber_id_mailing_subscribers"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["mailing_subscriptions.id"],
            name=op.f("fk_mailing_consent_log_subscription_id_mailing_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_consent_log")),
    )
    with op.batch_alter_table("mailing_consent_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mailing_consent_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailing_consent_log_email_hash"), ["email_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_mailing_consent_log_subscriber_id"), ["subscriber_id"], unique=False)

    op.create_table(
        "mailing_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sending_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["mailing_campaigns.id"],
            name=op.f("fk_mailing_deliveries_campaign_id_mailing_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["mailing_subscriptions.id"],
            name=op.f("fk_mailing_deliveries_subscription_id_mailing_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_deliveries")),
        sa.UniqueConstraint(
            "campaign_id", "subscription_id", name=op.f("uq_mailing_deliveries_campaign_id_subscription_id")
        ),
    )
    with op.batch_alter_table("mailing_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_mailing_deliveries_due", ["campaign_id", "state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_mailing_deliveries_subscription_state", ["subscription_id", "state"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER mailing_consent_log_append_only BEFORE UPDATE OR DELETE ON mailing_consent_log "
            "FOR EACH ROW EXECUTE FUNCTION mailing_consent_log_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER mailing_consent_log_no_{action.lower()} BEFORE {action} "
                "ON mailing_consent_log BEGIN SELECT RAISE(ABORT, 'mailing_consent_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS mailing_consent_log_append_only ON mailing_consent_log")
        op.execute("DROP FUNCTION IF EXISTS mailing_consent_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS mailing_consent_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS mailing_consent_log_no_delete")
    for table in (
        "mailing_deliveries",
        "mailing_consent_log",
        "mailing_subscriptions",
        "mailing_campaigns",
        "mailing_workers",
        "mailing_throttle",
        "mailing_suppressions",
        "mailing_subscribers",
        "mailing_lists",
        "mailing_cursors",
        "mailing_consent_texts",
    ):
        op.drop_table(table)
