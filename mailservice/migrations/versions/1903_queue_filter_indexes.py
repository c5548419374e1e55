"""queue filter indexes: the queue's channel and topic/type filters counted from an index (they read the whole
table), and the records merged into a client found without a scan of every client (issue 19)

Revision ID: 1903_queue_filter_indexes
Revises: 1902_console_indexes
Create Date: 2026-12-05 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1903_queue_filter_indexes"
down_revision: str | Sequence[str] | None = "1902_console_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_requests_channel_status", "requests", ["channel", "status"], unique=False)
    op.create_index("ix_requests_topic_type_status", "requests", ["topic", "type", "status"], unique=False)
    # Partial: nearly every client is merged into none, and SQLite's statistics of a full index make it scan instead.
    partial = sa.text("merged_into_id IS NOT NULL")
    op.create_index(
        "ix_clients_merged_into_id",
        "clients",
        ["merged_into_id"],
        unique=False,
        sqlite_where=partial,
        postgresql_where=partial,
    )


def downgrade() -> None:
    op.drop_index("ix_clients_merged_into_id", table_name="clients")
    op.drop_index("ix_requests_topic_type_status", table_name="requests")
    op.drop_index("ix_requests_channel_status", table_name="requests")
