"""console indexes: the queue's order (urgent first, then by control date) as an index, with and without the
status in front; a covering index for the queue's counters; a client's timeline by time; the register in
registration order (issue 19)

Revision ID: 1902_console_indexes
Revises: 1901_search
Create Date: 2026-12-05 01:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1902_console_indexes"
down_revision: str | Sequence[str] | None = "1901_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same expressions as web/staff/queue.py's ORDER BY (the literal 'urgent' included): both databases use an
# expression index for an ORDER BY only when the expressions are the same.
QUEUE_ORDER = "(urgency = 'urgent') DESC, (control_date IS NULL), control_date, id"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_requests_queue_order ON requests ({QUEUE_ORDER})")
    op.execute(f"CREATE INDEX ix_requests_status_queue_order ON requests (status, {QUEUE_ORDER})")
    op.create_index(
        "ix_requests_counters",
        "requests",
        ["status", "urgency", "needs_review", "topic", "due_date", "control_date"],
        unique=False,
    )
    op.create_index("ix_events_client_at", "events", ["client_id", "at", "id"], unique=False)
    op.create_index("ix_requests_registered", "requests", ["registered_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_requests_registered", table_name="requests")
    op.drop_index("ix_events_client_at", table_name="events")
    op.drop_index("ix_requests_counters", table_name="requests")
    op.execute("DROP INDEX ix_requests_status_queue_order")
    op.execute("DROP INDEX ix_requests_queue_order")
