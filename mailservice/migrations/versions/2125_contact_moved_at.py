"""contact moved at: a contact a merge brought to its record is proven again only in person (tryout of 7 December)

A merge moves the absorbed record's contacts to the survivor unproven (README, "Security model"), but a reply to our
letter, or a signed link, then proved such an address again for the survivor: whoever held the absorbed record (a
stranger who called with the survivor's phone number, say, and was merged in by mistake) got the survivor's whole
history by answering the letter that asks to confirm the address. ``client_contacts.moved_at`` says when a merge
brought a contact to its record; such a contact is proven only by an identity check in person.

Contacts moved before this migration cannot be told apart from the survivor's own: every unproven e-mail address of
a record that absorbed another is marked, so that it too is proven only in person (the safe direction; staff see the
mark on the client's page).

Revision ID: 2125_contact_moved_at
Revises: 2124_merged_contacts
Create Date: 2026-12-07 19:50:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailservice.db

revision: str = "2125_contact_moved_at"
down_revision: str | Sequence[str] | None = "2124_merged_contacts"  # the requests' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_clients = sa.table("clients", sa.column("id", sa.Integer()), sa.column("merged_into_id", sa.Integer()))
_contacts = sa.table(
    "client_contacts",
    sa.column("client_id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("proven_at", mailservice.db.UTCDateTime(timezone=True)),
    sa.column("moved_at", mailservice.db.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column("client_contacts", sa.Column("moved_at", mailservice.db.UTCDateTime(timezone=True), nullable=True))
    survivors = sa.select(_clients.c.merged_into_id).where(_clients.c.merged_into_id.is_not(None))
    op.get_bind().execute(
        _contacts.update()
        .where(
            _contacts.c.kind == "email",
            _contacts.c.proven_at.is_(None),
            _contacts.c.client_id.in_(survivors),
        )
        .values(moved_at=dt.datetime.now(dt.UTC))
    )


def downgrade() -> None:
    with op.batch_alter_table("client_contacts") as batch_op:
        batch_op.drop_column("moved_at")
