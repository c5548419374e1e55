"""The register as ``requests list`` reads it: SQLAlchemy Core over the few columns it shows, no ORM.

Importing the ORM and the models, and configuring their mappers, is most of a light command's start (issue 15: a
command answers in at most 0.4 s). The columns here are those of :mod:`mailservice.inforequests.models` under the
same names and types (tests/test_cli_start.py compares them), and the rules applied to a row are the shared ones
(:mod:`mailservice.inforequests.queues`, :func:`client_display_name`). How a client is named is defined here, where
the models read it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Date, Engine, Integer, String, column, select, table

from mailservice.engine import UTCDateTime


class ContactLike(Protocol):
    """What the rules below read of a contact: a ``ClientContact`` or a plain row of the same fields."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def proven(self) -> bool: ...


def preferred_email(contacts: Iterable[ContactLike]) -> str | None:
    """A client's preferred e-mail address among ``contacts``: proven first, then the newest (pure)."""
    emails = [c for c in contacts if c.kind == "email"]
    emails.sort(key=lambda c: (not c.proven, -c.id if c.id else 0))
    return emails[0].value if emails else None


def client_display_name(
    name: str, organisation: str, contacts: Callable[[], Iterable[ContactLike]], client_id: int
) -> str:
    """A name to show staff: the name, the organisation, the preferred address, or the record's number (pure).

    ``contacts`` is called only when there is neither name nor organisation (an ORM client loads them then only).
    """
    return name or organisation or (preferred_email(contacts()) or "") or f"клиент №{client_id}"


# The columns read, as declared by the models (name and type); nothing else of the tables is needed to read them.
REQUESTS = table(
    "requests",
    column("id", Integer),
    column("number", String),
    column("client_id", Integer),
    column("channel", String),
    column("subject", String),
    column("status", String),
    column("type", String),
    column("topic", String),
    column("urgency", String),
    column("received_at", UTCDateTime()),
    column("registered_on", Date),
    column("due_date", Date),
    column("control_date", Date),
)
CLIENTS = table("clients", column("id", Integer), column("name", String), column("organisation", String))
CLIENT_CONTACTS = table(
    "client_contacts",
    column("id", Integer),
    column("client_id", Integer),
    column("kind", String),
    column("value", String),
    column("proven_at", UTCDateTime()),
)


@dataclass(frozen=True)
class Listed:
    """A request as the list shows it (the fields the queue rules read, and the client's name)."""

    id: int
    number: str | None
    channel: str
    subject: str
    status: str
    type: str
    topic: str
    urgency: str
    received_at: dt.datetime
    registered_on: dt.date | None
    due_date: dt.date | None
    control_date: dt.date | None
    client: str


@dataclass(frozen=True)
class _Contact:
    id: int
    kind: str
    value: str
    proven: bool


def list_requests(
    engine: Engine,
    *,
    limit: int,
    status: str | None = None,
    held: bool = False,
    to_forward: bool = False,
    tz: dt.tzinfo = dt.UTC,
) -> list[Listed]:
    """The newest ``limit`` requests, with the filters of ``requests list`` (two queries, one transaction); with
    ``to_forward``, the ``limit`` whose forwarding dates (in ``tz``) come first, as the console's queue shows them."""
    from mailservice.inforequests import queues

    r = REQUESTS.c
    fields = [r.id, r.number, r.channel, r.subject, r.status, r.type, r.topic, r.urgency]
    fields += [r.received_at, r.registered_on, r.due_date, r.control_date]
    query = (
        select(*fields, CLIENTS.c.id.label("client_id"), CLIENTS.c.name, CLIENTS.c.organisation)
        .join_from(REQUESTS, CLIENTS, CLIENTS.c.id == r.client_id)
        .order_by(r.id.desc())
    )
    if not to_forward:  # the forwarding date is computed from the local day of receipt: sorted below, not in SQL
        query = query.limit(limit)
    if status is not None:
        query = query.where(r.status == status)
    if held:
        query = query.where(queues.held_condition(REQUESTS.c))
    if to_forward:
        query = query.where(queues.to_forward_condition(REQUESTS.c))
    with engine.begin() as connection:
        rows = connection.execute(query).all()
        nameless = {row.client_id for row in rows if not row.name and not row.organisation}
        contacts: dict[int, list[_Contact]] = {}
        if nameless:
            c = CLIENT_CONTACTS.c
            found = connection.execute(
                select(c.client_id, c.id, c.kind, c.value, c.proven_at).where(c.client_id.in_(nameless))
            )
            for client_id, contact_id, kind, value, proven_at in found:
                contacts.setdefault(client_id, []).append(_Contact(contact_id, kind, value, proven_at is not None))

    listed = []
    for row in rows:
        values = row._mapping
        own: list[_Contact] = contacts.get(values["client_id"], [])
        name = client_display_name(values["name"], values["organisation"], own.copy, values["client_id"])
        listed.append(Listed(**{f.name: values[f.name] for f in fields}, client=name))
    if to_forward:  # 59-FZ art. 8 p. 3: the letter whose seven days run out first comes first
        listed.sort(key=lambda item: (queues.forwarding_date(item, tz) or dt.date.max, item.id))
        return listed[:limit]
    return listed
