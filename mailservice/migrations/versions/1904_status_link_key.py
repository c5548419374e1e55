"""status link key: a request's status link names a key that changes when the address its notices go to changes,
so the links sent before show nothing (defect U1)

Revision ID: 1904_status_link_key
Revises: 1903_queue_filter_indexes
Create Date: 2026-12-06 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1904_status_link_key"
down_revision: str | Sequence[str] | None = "1903_queue_filter_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for every existing request: the links already mailed (without a key) keep working until the first change.
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("status_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("status_key")
