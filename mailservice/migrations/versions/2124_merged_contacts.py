"""merged contacts: contacts still held by a merged record move to the record it was merged into

A merge has always moved every contact of the absorbed record to the survivor, but old data, an import or an older
backup restored can leave one on the merged record. The look-ups then find the survivor by it, and intake quarantined
a letter from it (the survivor could not be given an address another row holds). Each such contact moves to the end
of its record's chain of merges as a merge moves it: unproven (README, "Security model"), with an internal note on
the survivor saying what came over. A contact whose survivor is anonymised stays where it is (retention removes it
with its own record; an anonymised record is never touched again), as does one on a loop of merges.

Revision ID: 2124_merged_contacts
Revises: 2110_phone_key
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2124_merged_contacts"
down_revision: str | Sequence[str] | None = "2110_phone_key"  # the requests' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_clients = sa.table(
    "clients",
    sa.column("id", sa.Integer()),
    sa.column("merged_into_id", sa.Integer()),
    sa.column("anonymised_at", mailservice.db.UTCDateTime(timezone=True)),
)
_contacts = sa.table(
    "client_contacts",
    sa.column("id", sa.Integer()),
    sa.column("client_id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("value", sa.String()),
    sa.column("proven_at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("proof", sa.String()),
)
_events = sa.table(
    "events",
    sa.column("client_id", sa.Integer()),
    sa.column("at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("kind", sa.String()),
    sa.column("channel", sa.String()),
    sa.column("direction", sa.String()),
    sa.column("comment", sa.Text()),
    sa.column("actor", sa.String()),
    sa.column("data", sa.JSON()),
)


def _survivor(merged_into: dict[int, int], client_id: int) -> int | None:
    """The end of ``client_id``'s chain of merges; None on a loop."""
    seen = {client_id}
    while client_id in merged_into:
        client_id = merged_into[client_id]
        if client_id in seen:
            return None
        seen.add(client_id)
    return client_id


def upgrade() -> None:
    conn = op.get_bind()
    k, c = _clients.c, _contacts.c
    merged_into = dict(conn.execute(sa.select(k.id, k.merged_into_id).where(k.merged_into_id.is_not(None))).all())
    if not merged_into:
        return
    anonymised = set(conn.scalars(sa.select(k.id).where(k.anonymised_at.is_not(None))))
    left = conn.execute(sa.select(_contacts).where(c.client_id.in_(sorted(merged_into))).order_by(c.id)).all()
    moved: dict[tuple[int, int], list[Any]] = {}
    for row in left:
        survivor = _survivor(merged_into, row.client_id)
        if survivor is not None and survivor not in anonymised:
            moved.setdefault((survivor, row.client_id), []).append(row)
    now = mailservice.db.utcnow()
    for (survivor, merged), rows in sorted(moved.items()):
        conn.execute(
            _contacts.update()
            .where(c.id.in_([row.id for row in rows]))
            .values(client_id=survivor, proven_at=None, proof=None)
        )
        conn.execute(
            _events.insert().values(
                client_id=survivor,
                at=now,
                kind="note",
                channel="",
                direction="",
                comment=f"Контакты записи клиента № {merged}, объединённой с этой, оставались за ней; перенесены к "
                f"этой записи неподтверждёнными: {', '.join(row.value for row in rows)}",
                actor="",
                data={"internal": True, "contacts_moved_from": merged},
            )
        )


def downgrade() -> None:
    # The contacts stay with their survivors: where they were is the inconsistency this revision repaired.
    pass
