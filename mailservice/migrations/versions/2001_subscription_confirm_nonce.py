"""subscription confirm nonce: a confirmation link confirms the lists its letter named, not every pending request
of the address (defect V3: a stranger's lapsed request was confirmed by the owner's own later link)

Revision ID: 2001_subscription_confirm_nonce
Revises: mailings_0001
Create Date: 2026-12-06 10:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2001_subscription_confirm_nonce"
down_revision: str | Sequence[str] | None = "mailings_0001"  # the mailings branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailing_subscriptions") as batch:
        batch.add_column(sa.Column("confirm_nonce", sa.String(length=32), nullable=True))
    # A pending request made before the upgrade belongs to its subscriber's newest letter, as it did: a link already
    # mailed keeps confirming what it would have (within its hours; older requests are never confirmed).
    op.execute(
        "UPDATE mailing_subscriptions SET confirm_nonce = (SELECT s.confirm_nonce FROM mailing_subscribers s "
        "WHERE s.id = mailing_subscriptions.subscriber_id) WHERE status = 'pending'"
    )


def downgrade() -> None:
    with op.batch_alter_table("mailing_subscriptions") as batch:
        batch.drop_column("confirm_nonce")
