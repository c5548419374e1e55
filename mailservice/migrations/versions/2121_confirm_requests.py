"""confirm requests: every confirmation letter's link works for the lists it named, a later letter naming the same
list notwithstanding (tryout W13, the same-list case)

A subscription kept the nonce of one letter only, the latest that named its list: a citizen who asked twice for the
same list and followed the first letter's link was refused. Each (letter, list) becomes a row of
``mailing_confirm_requests`` with the letter's nonce and its time, and ``mailing_subscriptions.confirm_nonce`` goes.
A pending request keeps its letter's link working: its row is made from the nonce and time it had.

Revision ID: 2121_confirm_requests
Revises: 2102_subscriber_spellings
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2121_confirm_requests"
down_revision: str | Sequence[str] | None = "2102_subscriber_spellings"  # the mailings branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailing_confirm_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("requested_at", mailservice.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["mailing_subscriptions.id"],
            name=op.f("fk_mailing_confirm_requests_subscription_id_mailing_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailing_confirm_requests")),
        sa.UniqueConstraint("subscription_id", "nonce", name=op.f("uq_mailing_confirm_requests_subscription_id_nonce")),
    )
    op.create_index(op.f("ix_mailing_confirm_requests_nonce"), "mailing_confirm_requests", ["nonce"])
    op.create_index(
        op.f("ix_mailing_confirm_requests_subscription_id"), "mailing_confirm_requests", ["subscription_id"]
    )
    op.execute(
        "INSERT INTO mailing_confirm_requests (subscription_id, nonce, requested_at) "
        "SELECT id, confirm_nonce, requested_at FROM mailing_subscriptions "
        "WHERE status = 'pending' AND confirm_nonce IS NOT NULL AND confirm_nonce <> ''"
    )
    # SQLite (3.35+) drops a column that no index or constraint names in place: a batch copy of the table would
    # trip the foreign keys pointing at it.
    op.drop_column("mailing_subscriptions", "confirm_nonce")


def downgrade() -> None:
    op.add_column("mailing_subscriptions", sa.Column("confirm_nonce", sa.String(length=32), nullable=True))
    # One nonce per subscription again: the latest letter's (the earlier letters' links stop working, as they did).
    op.execute(
        "UPDATE mailing_subscriptions SET confirm_nonce = (SELECT r.nonce FROM mailing_confirm_requests r "
        "WHERE r.subscription_id = mailing_subscriptions.id ORDER BY r.requested_at DESC, r.id DESC LIMIT 1) "
        "WHERE status = 'pending'"
    )
    op.drop_table("mailing_confirm_requests")
