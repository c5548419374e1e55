"""staff form uses: the one-time token of the console's registration form, so that the same form sent twice
registers one request (defect V4)

Revision ID: 2002_staff_form_uses
Revises: 1701_staff_day
Create Date: 2026-12-06 10:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2002_staff_form_uses"
down_revision: str | Sequence[str] | None = "1701_staff_day"  # the console branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_form_uses",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("used_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )


def downgrade() -> None:
    op.drop_table("staff_form_uses")
