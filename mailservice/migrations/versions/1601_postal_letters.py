"""postal letters: notices and answers to clients without e-mail, waiting to be posted (issue 16)

Revision ID: 1601_postal_letters
Revises: 1401_identity
Create Date: 2026-12-05 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1601_postal_letters"
down_revision: str | Sequence[str] | None = "1401_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "postal_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("letter_date", sa.Date(), nullable=False),
        sa.Column("addressee", sa.Text(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signatory_position", sa.String(length=300), nullable=False),
        sa.Column("signatory_name", sa.String(length=300), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("docx_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_postal_letters_client_id_clients")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_postal_letters_event_id_events")),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], name=op.f("fk_postal_letters_request_id_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postal_letters")),
        sa.UniqueConstraint("number", name=op.f("uq_postal_letters_number")),
    )
    with op.batch_alter_table("postal_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_postal_letters_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_postal_letters_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_postal_letters_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_table("postal_letters")
