"""contact case: a client's e-mail address is unique whatever the case of its letters (defect U9, identity part)

«Victim@example.ru» and «victim@example.ru» reach one mailbox (RFC 5321 2.4 discourages exploiting the case of a
local part), so ``client_contacts`` gets ``value_key`` (mail.addresses.address_key, a copy frozen below: NFC, IDN
domain as Unicode, lower-cased by Python, as SQLite's lower() folds ASCII only) and the unique constraint moves from
the value to it.

Existing spellings of one address are merged first:
- of one client: one contact remains, the proven one (else the oldest), proven when either was (the earliest
  proof), created when the first was;
- of different clients: the clients are never merged automatically (that would open one person's history to
  another). The proven (else the older) contact stays; the other client loses only the contact row (its requests
  keep their reply addresses, its history stays) and staff get a suggested merge saying what was found.

Revision ID: 2001_contact_case
Revises: 1905_reply_email_lower
Create Date: 2026-12-06 10:20:00
"""

import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2001_contact_case"
down_revision: str | Sequence[str] | None = "1905_reply_email_lower"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The key as mail/addresses.py computed it when this migration was written, frozen here: a migration must give the
# same result whenever it runs, and the live functions may change (a later change of the key gets its own
# migration). Copied from mailservice.mail.addresses of 6 December 2026.


def _domain_unicode(domain: str) -> str:
    """The domain with its punycode labels (``xn--``) decoded, as email-validator stores an IDN domain."""
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
    """NFC, IDN domain as Unicode, the whole lower-cased by Python (SQLite's lower() folds ASCII only)."""
    text = address.strip().strip("<>").strip()
    if text.isascii() and "xn--" not in text.lower():
        return text.lower()
    text = unicodedata.normalize("NFC", text)
    local, at, domain = text.rpartition("@")
    if at:
        text = f"{local}@{_domain_unicode(domain.rstrip('.'))}"
    return text.lower()


def contact_key(kind: str | None, value: str | None) -> str:
    """The uniqueness key of a client's contact: an e-mail address by :func:`_address_key`, others as written."""
    if value is None:
        return ""
    return _address_key(value) if kind == "email" else value


_contacts = sa.table(
    "client_contacts",
    sa.column("id", sa.Integer()),
    sa.column("client_id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("value", sa.String()),
    sa.column("value_key", sa.String()),
    sa.column("created_at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("proven_at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("proof", sa.String()),
)
_suggestions = sa.table(
    "merge_suggestions",
    sa.column("client_id", sa.Integer()),
    sa.column("other_id", sa.Integer()),
    sa.column("reason", sa.Text()),
    sa.column("created_at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("status", sa.String()),
    sa.column("decided_by", sa.String()),
)


def _rank(row: Any) -> tuple[int, Any, Any, int]:
    """The contact that stays comes first: proven (earliest proof), else the oldest."""
    return (row.proven_at is None, row.proven_at or row.created_at, row.created_at, row.id)


def _suggest(conn: sa.Connection, client_id: int, other_id: int, reason: str) -> None:
    """A merge suggestion for staff, unless the pair already has one (either way round)."""
    s = _suggestions.c
    pair = sa.or_(
        (s.client_id == client_id) & (s.other_id == other_id), (s.client_id == other_id) & (s.other_id == client_id)
    )
    if conn.execute(sa.select(s.client_id).where(pair).limit(1)).first() is None:
        conn.execute(
            _suggestions.insert().values(
                client_id=client_id,
                other_id=other_id,
                reason=reason[:2000],
                created_at=mailservice.db.utcnow(),
                status="open",
                decided_by="",
            )
        )


def _merge(conn: sa.Connection, rows: list[Any]) -> None:
    """Leave one contact of a group of spellings of one address (module docstring)."""
    rows = sorted(rows, key=_rank)
    keeper = rows[0]
    c = _contacts.c
    own = [r for r in rows[1:] if r.client_id == keeper.client_id]
    if own:
        created = min(r.created_at for r in [keeper, *own])
        proven = [r for r in [keeper, *own] if r.proven_at is not None]
        first = min(proven, key=lambda r: r.proven_at) if proven else None
        conn.execute(
            _contacts.update()
            .where(c.id == keeper.id)
            .values(
                created_at=created,
                proven_at=first.proven_at if first else None,
                proof=first.proof if first else None,
            )
        )
    for row in rows[1:]:
        if row.client_id != keeper.client_id:
            state = "подтверждён" if row.proven_at is not None else "не подтверждён"
            _suggest(
                conn,
                row.client_id,
                keeper.client_id,
                f"Адрес {row.value} ({state}) был записан за клиентом № {row.client_id}, тот же адрес в написании "
                f"{keeper.value} — за клиентом № {keeper.client_id}. Регистр букв адреса не различается (один "
                f"почтовый ящик), поэтому адрес оставлен только за клиентом № {keeper.client_id}; обращения и "
                "история обоих клиентов сохранены. Объединяйте записи только после проверки личности.",
            )
        conn.execute(_contacts.delete().where(c.id == row.id))


def upgrade() -> None:
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_key", sa.String(length=320), nullable=True))
    conn = op.get_bind()
    c = _contacts.c
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(sa.select(_contacts).order_by(c.id)):
        groups.setdefault((row.kind, contact_key(row.kind, row.value)), []).append(row)
    keys: list[dict[str, Any]] = []
    for (_kind, key), rows in groups.items():
        if len(rows) > 1:
            _merge(conn, rows)
        keeper = sorted(rows, key=_rank)[0]
        keys.append({"contact_id": keeper.id, "key": key})
    if keys:
        conn.execute(
            _contacts.update().where(c.id == sa.bindparam("contact_id")).values(value_key=sa.bindparam("key")), keys
        )
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.alter_column("value_key", existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_constraint("uq_client_contacts_kind_value", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_client_contacts_kind_value_key"), ["kind", "value_key"])


def downgrade() -> None:
    # Merged spellings stay merged: the removed rows are not brought back.
    with op.batch_alter_table("client_contacts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_client_contacts_kind_value_key", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_client_contacts_kind_value"), ["kind", "value"])
        batch_op.drop_column("value_key")
