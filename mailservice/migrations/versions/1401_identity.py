"""identity: proven addresses (proven_at, proof), identity checks in person, suggested merges, a request's own
reply name and claimed Reply-To (issue 14)

The old ``verified`` flag is carried over: an address verified by a history confirmation link becomes proven by
``link`` at that moment, any other verified address proven by ``reply`` (the only other way it was set) at the
contact's creation, the best time the old data know.

Revision ID: 1401_identity
Revises: 0001
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1401_identity"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
# The carry-over reads history_exports (console branch).
depends_on: str | Sequence[str] | None = "console_0001"


def upgrade() -> None:
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proven_at", mailservice.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("proof", sa.String(length=16), nullable=True))
    op.execute(
        """
        UPDATE client_contacts SET proof = 'link', proven_at = (
            SELECT MAX(e.verified_at) FROM history_exports e
            WHERE e.client_id = client_contacts.client_id AND e.address = client_contacts.value
              AND e.verified_at IS NOT NULL)
        WHERE verified AND kind = 'email' AND EXISTS (
            SELECT 1 FROM history_exports e
            WHERE e.client_id = client_contacts.client_id AND e.address = client_contacts.value
              AND e.verified_at IS NOT NULL)
        """
    )
    op.execute("UPDATE client_contacts SET proof = 'reply', proven_at = created_at WHERE verified AND proof IS NULL")
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.drop_column("verified")

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_name", sa.String(length=300), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reply_to_claimed", sa.String(length=320), nullable=True))
        batch_op.create_index(batch_op.f("ix_requests_reply_email"), ["reply_email"], unique=False)
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.alter_column("reply_name", server_default=None)

    op.create_table(
        "identity_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.String(length=320), nullable=False),
        sa.Column("document", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_identity_checks_client_id_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_checks")),
    )
    with op.batch_alter_table("identity_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_checks_client_id"), ["client_id"], unique=False)

    op.create_table(
        "merge_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=False),
        sa.Column("decided_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_merge_suggestions_client_id_clients")),
        sa.ForeignKeyConstraint(["other_id"], ["clients.id"], name=op.f("fk_merge_suggestions_other_id_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merge_suggestions")),
        sa.UniqueConstraint("client_id", "other_id", name=op.f("uq_merge_suggestions_client_id_other_id")),
    )
    with op.batch_alter_table("merge_suggestions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merge_suggestions_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_merge_suggestions_other_id"), ["other_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("merge_suggestions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merge_suggestions_other_id"))
        batch_op.drop_index(batch_op.f("ix_merge_suggestions_client_id"))
    op.drop_table("merge_suggestions")
    with op.batch_alter_table("identity_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_checks_client_id"))
    op.drop_table("identity_checks")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_reply_email"))
        batch_op.drop_column("reply_to_claimed")
        batch_op.drop_column("reply_name")
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE client_contacts SET verified = (proven_at IS NOT NULL)")
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.alter_column("verified", server_default=None)
        batch_op.drop_column("proof")
        batch_op.drop_column("proven_at")
