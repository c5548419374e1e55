"""processes in the console (issue 18): a form (columns) per register version, cells of added columns, the staff
account that submitted a change request, and the links between owner cells and staff accounts

Revision ID: 1802_processes_console
Revises: processes_0001
Create Date: 2026-12-04 21:52:16
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "1802_processes_console"
down_revision: str | Sequence[str] | None = "processes_0001"
branch_labels: str | Sequence[str] | None = None
# Owners and submitters are staff accounts of the console.
depends_on: str | Sequence[str] | None = "console_0001"


def upgrade() -> None:
    op.create_table(
        "process_owner_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_key", sa.String(length=500), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_user_id"], ["staff_users.id"], name=op.f("fk_process_owner_links_staff_user_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_owner_links")),
        sa.UniqueConstraint("owner_key", name=op.f("uq_process_owner_links_owner_key")),
    )
    op.create_index(
        op.f("ix_process_owner_links_staff_user_id"), "process_owner_links", ["staff_user_id"], unique=False
    )
    # Plain ADD COLUMN on both backends (no table rebuild): existing rows get the template's form and no extra cells.
    op.add_column("process_register_versions", sa.Column("form", sa.JSON(), nullable=True))
    op.add_column(
        "process_register_rows", sa.Column("extra", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE process_change_requests ADD COLUMN submitted_by_staff_id INTEGER REFERENCES staff_users (id)"
        )
    else:
        op.add_column("process_change_requests", sa.Column("submitted_by_staff_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_process_change_requests_submitted_by_staff_id_staff_users"),
            "process_change_requests",
            "staff_users",
            ["submitted_by_staff_id"],
            ["id"],
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            op.f("fk_process_change_requests_submitted_by_staff_id_staff_users"),
            "process_change_requests",
            type_="foreignkey",
        )
    op.drop_column("process_change_requests", "submitted_by_staff_id")
    op.drop_column("process_register_rows", "extra")
    op.drop_column("process_register_versions", "form")
    op.drop_index(op.f("ix_process_owner_links_staff_user_id"), table_name="process_owner_links")
    op.drop_table("process_owner_links")
