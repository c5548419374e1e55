"""merged contacts: contacts still held by a merged record move to the record it was merged into

A merge has always moved every contact of the absorbed record to the survivor, but old data, an import or an older
backup restored can leave one on the merged record. The look-ups then find the survivor by it, and intake quarantined
a letter from it (the survivor could not be given an address another row holds). Each such contact moves to the end
of its record's chain of merges as a merge moves it: unproven (README, "Security model"), with an internal note on
the survivor saying what came over. A contact whose survivor is anonymised stays where it is (retention removes it
with its own record; an anonymised record is never touched again), as does one on a loop of merges. The search
index rows of the requests of every record that gave or took a contact are written again.

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
_requests = sa.table("requests", sa.column("id", sa.Integer()), sa.column("client_id", sa.Integer()))
_CHUNK = 500  # ids a statement
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
    # A join, not a list of the merged ids: claims absorb emptied records, so there may be more of them than a
    # statement takes bound parameters (65,535 with psycopg).
    left = conn.execute(
        sa.select(_contacts).join(_clients, k.id == c.client_id).where(k.merged_into_id.is_not(None)).order_by(c.id)
    ).all()
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
    _reindex(conn, sorted({client for pair in moved for client in pair}))


def _reindex(conn: sa.Connection, client_ids: list[int]) -> None:
    """Rewrite the search index rows of these clients' requests: they hold the clients' addresses and phones, and
    a Core UPDATE is not seen by the index's session hooks (search_index.py)."""
    # Indexed by the same code that keeps the index up to date, as migration 1901 does.
    from mailservice.inforequests.search_index import reindex

    for start in range(0, len(client_ids), _CHUNK):
        chunk = client_ids[start : start + _CHUNK]
        reindex(conn, conn.scalars(sa.select(_requests.c.id).where(_requests.c.client_id.in_(chunk))).all())


def downgrade() -> None:
    # The contacts stay with their survivors: where they were is the inconsistency this revision repaired.
    pass
