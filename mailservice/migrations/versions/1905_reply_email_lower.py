"""reply address lower-cased: the acknowledgement limit counts an address whatever the case of its local part, by
lower(reply_email), which this expression index keeps an index look-up (defect U9)

Revision ID: 1905_reply_email_lower
Revises: 1904_status_link_key
Create Date: 2026-12-06 07:35:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1905_reply_email_lower"
down_revision: str | Sequence[str] | None = "1904_status_link_key"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The same expression as inforequests/notifications.prefetch_auto_replies: an expression index serves only it.
    op.execute("CREATE INDEX ix_requests_reply_email_lower ON requests (lower(reply_email))")


def downgrade() -> None:
    op.drop_index("ix_requests_reply_email_lower", table_name="requests")
