"""console: thanks by e-mail are feedback of a client (issue 13): feedback_responses.client_id, rating optional

Revision ID: 1301_feedback_thanks
Revises: console_0001
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1301_feedback_thanks"
down_revision: str | Sequence[str] | None = "console_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_feedback_responses_client_id_clients"), "clients", ["client_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_feedback_responses_client_id"), ["client_id"], unique=False)
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM feedback_responses WHERE rating IS NULL")
    with op.batch_alter_table("feedback_responses", schema=None) as batch_op:
        batch_op.alter_column("rating", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_feedback_responses_client_id"))
        batch_op.drop_constraint(batch_op.f("fk_feedback_responses_client_id_clients"), type_="foreignkey")
        batch_op.drop_column("client_id")
