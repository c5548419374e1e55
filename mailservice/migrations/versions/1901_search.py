"""search: the full-text index of requests (PostgreSQL tsvector + GIN, SQLite FTS5), filled for existing rows
(issue 19)

Revision ID: 1901_search
Revises: 1401_identity
Create Date: 2026-12-05 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1901_search"
down_revision: str | Sequence[str] | None = "1401_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TSV = (
    "setweight(to_tsvector('russian'::regconfig, head), 'A') || setweight(to_tsvector('russian'::regconfig, body), 'D')"
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("request_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_search_documents_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_search_documents")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS ({TSV}) STORED")
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(head, body, content='search_documents', "
            "content_rowid='request_id', tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN "
            "INSERT INTO search_fts(rowid, head, body) VALUES (new.request_id, new.head, new.body); END"
        )
        op.execute(
            "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, head, body) "
            "VALUES ('delete', old.request_id, old.head, old.body); END"
        )
        op.execute(
            "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, head, body) "
            "VALUES ('delete', old.request_id, old.head, old.body); "
            "INSERT INTO search_fts(rowid, head, body) VALUES (new.request_id, new.head, new.body); END"
        )
    # Existing requests: indexed by the same code that keeps the index up to date.
    from mailservice.inforequests.search_index import reindex

    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM requests ORDER BY id"))]
    reindex(bind, ids)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS search_documents_au")
        op.execute("DROP TRIGGER IF EXISTS search_documents_ad")
        op.execute("DROP TRIGGER IF EXISTS search_documents_ai")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_documents")
