"""reply email key: the acknowledgement limit counts a mailbox by a key computed in Python, alike on both databases

Migration 1905 indexed lower(reply_email); SQLite's lower() folds ASCII only, so «Иван@пример.рф» and
«иван@пример.рф» counted as two senders there (one on PostgreSQL). ``requests.reply_email_key`` holds
mail.addresses.address_key of the reply address (NFC, IDN domain as Unicode, lower-cased by Python), set by the
model whenever the address is set; the rows written before are filled here with a frozen copy of that key.

Revision ID: 2101_reply_email_key
Revises: 2003_postal_address_format
Create Date: 2026-12-06 13:10:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2101_reply_email_key"
down_revision: str | Sequence[str] | None = "2003_postal_address_format"  # the requests' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_requests = sa.table(
    "requests",
    sa.column("id", sa.Integer()),
    sa.column("reply_email", sa.String()),
    sa.column("reply_email_key", sa.String()),
)
_CHUNK = 1000

# mail.addresses.address_key as it was when this migration was written, frozen here: a migration must give the same
# result whenever it runs, and the live function may change (a later change of the key gets its own migration).


def _domain_unicode(domain: str) -> str:
    labels = []
    for label in domain.split("."):
        if label.lower().startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass  # not valid punycode: compared as written
        labels.append(label)
    return ".".join(labels)


def _address_key(address: str) -> str:
    text = address.strip().strip("<>").strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower()
    text = unicodedata.normalize("NFC", text)
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local}@{_domain_unicode(domain.rstrip('.'))}"
    return text.lower()


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_email_key", sa.String(length=320), nullable=True))
    conn = op.get_bind()
    r = _requests.c
    last = 0
    while True:
        rows = conn.execute(
            sa.select(r.id, r.reply_email).where(r.id > last, r.reply_email.is_not(None)).order_by(r.id).limit(_CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        conn.execute(
            _requests.update().where(r.id == sa.bindparam("request_id")).values(reply_email_key=sa.bindparam("key")),
            [{"request_id": row.id, "key": _address_key(row.reply_email)} for row in rows if row.reply_email],
        )
    op.drop_index("ix_requests_reply_email_lower", table_name="requests")
    op.create_index(op.f("ix_requests_reply_email_key"), "requests", ["reply_email_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_requests_reply_email_key"), table_name="requests")
    op.execute("CREATE INDEX ix_requests_reply_email_lower ON requests (lower(reply_email))")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("reply_email_key")
