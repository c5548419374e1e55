"""history asks: web-form requests for the history, handled by the worker (issue 14, constant-time /history)

Revision ID: 1402_history_asks
Revises: console_0001
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1402_history_asks"
down_revision: str | Sequence[str] | None = "console_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_asks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_asks")),
    )


def downgrade() -> None:
    op.drop_table("history_asks")
