"""The full-text index of requests, kept up to date in the same transaction as the data.

One row per request in ``search_documents``: ``head`` holds the terms of the number, subject and client (name,
organisation, address, e-mail addresses, phones), ``body`` those of the request's text and of every message and
record in its history (search_terms.py makes the terms). The database indexes these rows:

* PostgreSQL: a stored ``tsv`` column, ``setweight(to_tsvector('russian', head), 'A') || setweight(...body, 'D')``,
  with a GIN index (migration 1901);
* SQLite: an FTS5 table ``search_fts`` over ``search_documents`` (external content), filled by triggers.

Every session collects, after each flush, the requests whose indexed data changed (a request, an event of it, its
client or the client's contacts) and rewrites their rows just before the outermost commit (not at a savepoint's
release), in that transaction: a rollback takes the index back with the data. Bulk UPDATEs that bypass the ORM
must call :func:`reindex` themselves (or touch the client, as retention and merging do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, ForeignKey, Text, delete, event, insert, inspect, select
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from mailservice import bulk
from mailservice.db import Base
from mailservice.inforequests import search_terms
from mailservice.inforequests.models import Client, ClientContact, Event, Request

# Names the database has that the models do not declare (autogenerate must leave them alone).
FTS_TABLE = "search_fts"
TSV_COLUMN = "tsv"
TSV_INDEX = "ix_search_documents_tsv"
# (Migration 1905's ix_requests_reply_email_lower is gone since 2101: the limit's key is a column of the models.)
HAND_MADE_INDEXES = frozenset({TSV_INDEX, "ix_requests_queue_order", "ix_requests_status_queue_order"})
_CHUNK = 500
_PENDING = "search_pending_requests"
_PENDING_CLIENTS = "search_pending_clients"

_REQUEST_FIELDS = ("number", "subject", "text", "client_id", "reply_email", "reply_name")
_CLIENT_FIELDS = ("name", "organisation", "postal_address", "merged_into_id", "anonymised_at")
_CONTACT_FIELDS = ("value", "client_id")
_EVENT_FIELDS = ("comment", "data", "request_id")


class SearchDocument(Base):
    """The terms of one request (see the module's docstring); written only by :func:`reindex`."""

    __tablename__ = "search_documents"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    head: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: the FTS5 table (and its shadow tables), the tsvector column and the expression indexes are
    made by hand in migrations 1901 and 1902, not from the models."""
    if name is None:
        return True
    if type_ == "table" and name.startswith(FTS_TABLE):
        return False
    if type_ == "column" and name == TSV_COLUMN and parent_names.get("table_name") == SearchDocument.__tablename__:
        return False
    return not (type_ == "index" and name in HAND_MADE_INDEXES)


def documents(conn: Connection, request_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The index rows of these requests (those that exist)."""
    requests = conn.execute(
        select(
            Request.id,
            Request.number,
            Request.subject,
            Request.text,
            Request.client_id,
            Request.reply_email,
            Request.reply_name,
        ).where(Request.id.in_(request_ids))
    ).all()
    if not requests:
        return []
    client_ids = {r.client_id for r in requests}
    clients = {
        c.id: c
        for c in conn.execute(
            select(Client.id, Client.name, Client.organisation, Client.postal_address).where(Client.id.in_(client_ids))
        )
    }
    contacts: dict[int, list[tuple[str, str]]] = {}
    for client_id, kind, value in conn.execute(
        select(ClientContact.client_id, ClientContact.kind, ClientContact.value).where(
            ClientContact.client_id.in_(client_ids)
        )
    ):
        contacts.setdefault(client_id, []).append((kind, value))
    texts: dict[int, list[str]] = {}
    for request_id, comment, data in conn.execute(
        select(Event.request_id, Event.comment, Event.data).where(Event.request_id.in_(request_ids)).order_by(Event.id)
    ):
        bucket = texts.setdefault(request_id, [])
        if isinstance(data, dict) and isinstance(data.get("subject"), str):
            bucket.append(data["subject"])
        bucket.append(comment or "")
    rows = []
    for r in requests:
        client = clients.get(r.client_id)
        head = [r.number or "", r.subject, r.reply_name, r.reply_email or ""]
        keys = [search_terms.digits_key(r.number)] if r.number else []
        if client is not None:
            head += [client.name, client.organisation, client.postal_address]
        for kind, value in contacts.get(r.client_id, []):
            head.append(value)
            if kind == "phone":
                keys.append(search_terms.digits_key(value))
        head_text = search_terms.document_text(head)
        extra = " ".join(k for k in keys if k)
        rows.append(
            {
                "request_id": r.id,
                "head": f"{head_text} {extra}".strip(),
                "body": search_terms.document_text([r.text, *texts.get(r.id, [])]),
            }
        )
    return rows


def reindex(conn: Connection, request_ids: Iterable[int]) -> int:
    """Rewrite the index rows of these requests from the data (a missing request loses its row); returns how
    many rows were written."""
    ids = sorted({int(i) for i in request_ids if i is not None})
    written = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = documents(conn, chunk)
        conn.execute(delete(SearchDocument).where(SearchDocument.request_id.in_(chunk)))
        if rows:
            conn.execute(insert(SearchDocument), rows)
        written += len(rows)
    return written


def _changed(obj: object, fields: tuple[str, ...], whole: bool) -> bool:
    if whole:
        return True
    state = inspect(obj)
    return any(state.attrs[f].history.has_changes() for f in fields)


def _collect(session: Session, _context: Any) -> None:
    """After a flush: note the requests whose indexed data this flush changed."""
    requests: set[int] = session.info.setdefault(_PENDING, set())
    clients: set[int] = session.info.setdefault(_PENDING_CLIENTS, set())
    whole = {id(o) for o in session.new} | {id(o) for o in session.deleted}
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Request):
            if obj.id is not None and _changed(obj, _REQUEST_FIELDS, id(obj) in whole):
                requests.add(obj.id)
        elif isinstance(obj, Event):
            if obj.request_id is not None and _changed(obj, _EVENT_FIELDS, id(obj) in whole):
                requests.add(obj.request_id)
        elif isinstance(obj, Client):
            if obj.id is not None and _changed(obj, _CLIENT_FIELDS, id(obj) in whole):
                clients.add(obj.id)
        elif isinstance(obj, ClientContact):
            if obj.client_id is not None and _changed(obj, _CONTACT_FIELDS, id(obj) in whole):
                clients.add(obj.client_id)
                old = inspect(obj).attrs.client_id.history.deleted
                clients.update(c for c in old or () if c is not None)


def flush_index(session: Session) -> None:
    """Rewrite the index rows the session's changes so far call for (before a commit; searches within one
    transaction call it too)."""
    session.flush()
    requests: set[int] = session.info.pop(_PENDING, set())
    clients: set[int] = session.info.pop(_PENDING_CLIENTS, set())
    if not requests and not clients:
        return
    conn = session.connection()
    if clients:
        ids = sorted(clients)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            requests.update(conn.scalars(select(Request.id).where(Request.client_id.in_(chunk))))
    reindex(conn, requests)


def _before_commit(session: Session) -> None:
    # SQLAlchemy fires before_commit for a savepoint's release too (SessionTransaction._prepare_impl). Only the
    # outermost commit writes the index: what a savepoint wrote waits for it in the pending sets, and a
    # savepoint rolled back leaves ids whose rewrite finds nothing. Intake releases a savepoint per letter it
    # writes carefully, and each release rewrote the rows pending so far (2,000 letters: 41 rewrites, now 10).
    # session.commit() releases a savepoint left open first, then commits the root: this runs again there.
    if session.in_nested_transaction():
        return
    if session.info.get(_PENDING) or session.info.get(_PENDING_CLIENTS) or session.new or session.dirty:
        flush_index(session)


def _transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction committed or rolled back: start afresh
        session.info.pop(_PENDING, None)
        session.info.pop(_PENDING_CLIENTS, None)


def _collect_rows(session: Session, rows: list[bulk.Row]) -> None:
    """After events written in bulk (mailservice/bulk.py): note their requests, as :func:`_collect` does."""
    requests: set[int] = session.info.setdefault(_PENDING, set())
    requests.update(row.ref("request_id").id for row in rows if row.ref("request_id") is not None)


bulk.on_written(Event.__tablename__, _collect_rows)
event.listen(Session, "after_flush", _collect)
event.listen(Session, "before_commit", _before_commit)
event.listen(Session, "after_transaction_end", _transaction_end)
