"""staff's working day (issue 17): job_runs (daily and monthly runs with their reports); feedback answered and
recorded by staff

Revision ID: 1701_staff_day
Revises: 1301_feedback_thanks
Create Date: 2026-12-05 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1701_staff_day"
down_revision: str | Sequence[str] | None = "1301_feedback_thanks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("started_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", mailservice.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "period", name=op.f("uq_job_runs_job_period")),
    )
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_by", sa.String(length=320), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("answered_at", mailservice.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("answered_by", sa.String(length=320), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.drop_column("answered_by")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("recorded_by")
    op.drop_table("job_runs")
