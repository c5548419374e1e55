"""postal address format: addresses stored before defect V12 was fixed are stored as a new one is

A postal address typed on the site's form or by staff kept its control and format characters; a direction override
(U+202A-U+202E, U+2066-U+2069) reverses the rest of its line in the register's export and on the envelope. New
addresses go through ``mail.headers.address_lines`` when stored; this migration passes the stored ones through a
copy of that function as it was then (line breaks kept, each line as ``one_line``, empty lines dropped). The search
index needs no rewrite: its terms are runs of letters and digits, which a format character and the space replacing
it both end alike.
Letters already sent (``postal_letters.addressee``) stay as they were sent: they are a record.

Revision ID: 2003_postal_address_format
Revises: 2001_contact_case
Create Date: 2026-12-06 11:20:00
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2003_postal_address_format"
down_revision: str | Sequence[str] | None = "2001_contact_case"  # the requests' branch
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# mail.headers' functions as they were when this migration was written, frozen here: a migration must give the same
# result whenever it runs, and the live functions may change. Copied from mailservice.mail.headers of 6 December 2026.


def _one_line(value: str) -> str:
    """Control, format and line/paragraph separator characters become spaces, runs of white space fold into one."""
    if not value.isprintable():  # printable text has no character of Unicode category C, Zl or Zp
        value = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in value)
    return " ".join(value.split())


def address_lines(value: str) -> str:
    """Each line as :func:`_one_line`, empty lines dropped, the line breaks kept."""
    return "\n".join(line for line in (_one_line(part) for part in value.splitlines()) if line)


_clients = sa.table("clients", sa.column("id", sa.Integer()), sa.column("postal_address", sa.Text()))


def upgrade() -> None:
    conn = op.get_bind()
    c = _clients.c
    changed = []
    for client_id, address in conn.execute(sa.select(c.id, c.postal_address).where(c.postal_address != "")):
        cleaned = address_lines(address)
        if cleaned != address:
            changed.append({"client_id": client_id, "address": cleaned})
    if changed:
        conn.execute(
            _clients.update().where(c.id == sa.bindparam("client_id")).values(postal_address=sa.bindparam("address")),
            changed,
        )


def downgrade() -> None:
    pass  # the characters removed were never meant to be stored; nothing to put back
