"""workgroup reports as PDF too (issue 18): wg_reports.pdf_sha256, the PDF rendered from the same document as the
DOCX; empty for reports made before

Revision ID: 1803_wg_report_pdf
Revises: 1801_workgroup_followup
Create Date: 2026-12-05 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1803_wg_report_pdf"
down_revision: str | Sequence[str] | None = "1801_workgroup_followup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wg_reports") as batch:
        batch.add_column(sa.Column("pdf_sha256", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("wg_reports") as batch:
        batch.drop_column("pdf_sha256")
