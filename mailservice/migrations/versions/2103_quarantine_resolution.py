"""quarantine resolution: how staff dealt with a quarantined letter, released or set aside as no appeal

The «Карантин» page could only release a letter (register it, with an address staff type): junk without a sender
stayed there for good or was registered with an invented address (tryout W5). ``intake_journal.resolution`` records
``not_appeal`` for a letter staff set aside, ``released`` for one let through; the rows resolved before were all
released (the only action there was).

Revision ID: 2103_quarantine_resolution
Revises: 2101_reply_email_key
Create Date: 2026-12-06 13:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2103_quarantine_resolution"
down_revision: str | Sequence[str] | None = "2101_reply_email_key"  # the requests' branch (intake_journal is 0001's)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_journal = sa.table(
    "intake_journal",
    sa.column("outcome", sa.String()),
    sa.column("resolved_at", sa.DateTime()),
    sa.column("resolution", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("intake_journal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution", sa.String(length=16), server_default="", nullable=False))
    op.execute(
        _journal.update()
        .where(_journal.c.outcome == "quarantined", _journal.c.resolved_at.is_not(None))
        .values(resolution="released")
    )


def downgrade() -> None:
    with op.batch_alter_table("intake_journal", schema=None) as batch_op:
        batch_op.drop_column("resolution")
