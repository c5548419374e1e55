"""phone key: a client's phone is unique by its digits, however it was typed (tryout W7)

«+7 913 555-12-34» and «8 (913) 555-12-34» are one number; ``client_contacts.value_key`` of a phone was the number
as typed, so a caller whose number a clerk typed the other usual way got a second client record and a split history
(every channel in one history, the whole of it given on request). The key becomes the number's digits, a Russian
one in E.164 form (``mail.addresses.phone_key``). Spellings of one number already stored are merged as migration
2001 merged spellings of one address: of one client, one contact remains (proven, else the oldest); of different
clients, the clients are never merged automatically, the other client loses only the contact row and staff get a
suggested merge saying what was found.

Revision ID: 2110_phone_key
Revises: 2103_quarantine_resolution
Create Date: 2026-12-06 14:05:00
"""

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2110_phone_key"
down_revision: str | Sequence[str] | None = "2103_quarantine_resolution"  # the requests' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def _phone_key(phone: str) -> str:
    """``mail.addresses.phone_key`` as of this migration, frozen: a later change of the live function must not change
    what re-running this migration on an old database gives."""
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return phone.strip()
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return ("+" if phone.strip().startswith("+") else "") + digits


def _rank(row: Any) -> tuple[bool, Any, Any, int]:
    """The contact that stays comes first: proven (earliest proof), else the oldest."""
    return (row.proven_at is None, row.proven_at or row.created_at, row.created_at, row.id)


def _suggest(conn: sa.Connection, client_id: int, other_id: int, reason: str) -> None:
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


def upgrade() -> None:
    conn = op.get_bind()
    c = _contacts.c
    groups: dict[str, list[Any]] = {}
    for row in conn.execute(sa.select(_contacts).where(c.kind == "phone").order_by(c.id)):
        groups.setdefault(_phone_key(row.value), []).append(row)
    keys: list[dict[str, Any]] = []
    for key, rows in groups.items():
        keeper, *others = sorted(rows, key=_rank)
        for row in others:
            if row.client_id != keeper.client_id:
                _suggest(
                    conn,
                    row.client_id,
                    keeper.client_id,
                    f"Телефон {row.value} был записан за клиентом № {row.client_id}, тот же номер в написании "
                    f"{keeper.value} — за клиентом № {keeper.client_id}. Номер теперь сравнивается по цифрам, поэтому "
                    f"он оставлен только за клиентом № {keeper.client_id}; обращения и история обоих клиентов "
                    "сохранены. Объединяйте записи только после проверки личности.",
                )
            conn.execute(_contacts.delete().where(c.id == row.id))
        if keeper.value_key != key:
            keys.append({"contact_id": keeper.id, "key": key})
    if keys:
        conn.execute(
            _contacts.update().where(c.id == sa.bindparam("contact_id")).values(value_key=sa.bindparam("key")), keys
        )


def downgrade() -> None:
    # Merged spellings stay merged; the kept phones get back their keys as typed.
    c = _contacts.c
    op.get_bind().execute(_contacts.update().where(c.kind == "phone").values(value_key=c.value))
