"""Full-text search of requests: one interface over PostgreSQL (``russian`` configuration, GIN) and SQLite (FTS5).

Finds requests by number, subject, the text of any message or record in them, and the client's name,
organisation, address, e-mail or phone, with morphology (the index holds lemmas: search_terms.py), ranked (a match
in the number, subject or client weighs more than one in the texts; then how often the words occur), each hit with
its matched fragment escaped and marked. The console's search, the queue's search box and ``requests search`` all
come here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, column, func, literal_column, select, table, text
from sqlalchemy.orm import Session, joinedload

from mailservice.inforequests import search_terms
from mailservice.inforequests.models import Client, Event, Request
from mailservice.inforequests.search_index import FTS_TABLE, SearchDocument, flush_index
from mailservice.inforequests.search_terms import Fragment

PAGE_SIZE = 50
MAX_PAGE = 40  # 2,000 hits is more than anyone reads; a narrower query is the answer
# A query matching more requests than this is ranked among the newest this many of them, and counted as "more".
RANKED_AMONG = 2000


@dataclass(frozen=True)
class Hit:
    """One request found, with where it matched."""

    request: Request
    fragment: Fragment | None


@dataclass(frozen=True)
class SearchPage:
    """One page of the results of a query."""

    query: str
    terms: tuple[str, ...]
    hits: list[Hit]
    total: int  # counted up to RANKED_AMONG + 1: more means "more than RANKED_AMONG"
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the results fill (at least one)."""
        return max(1, min(MAX_PAGE, math.ceil(min(self.total, RANKED_AMONG) / self.page_size)))

    @property
    def more(self) -> bool:
        """Whether more requests match than are ranked and shown (``total`` is then RANKED_AMONG + 1)."""
        return self.total > RANKED_AMONG


def _match_expression(terms: Sequence[str]) -> str:
    # Every term is [0-9a-zа-я]+ (search_terms), quoted as an FTS5 string: no operator can get through.
    return " ".join(f'"{t}"' for t in terms)


def matches(session: Session, terms: Sequence[str], *, ranked_among: int | None = None) -> Select[Any]:
    """SELECT (request id, score) of the documents holding every term; a lower score ranks higher.

    ``ranked_among``: score only the newest that many matches (a common word matches most of five years; ranking
    them all costs a scan of their index entries, ranking the newest few thousand costs milliseconds). The newest
    are read once, scored as they are read (selecting them first and matching again read every document twice).
    """
    if session.get_bind().dialect.name == "postgresql":
        query = func.plainto_tsquery(literal_column("'russian'::regconfig"), bindparam("q", " ".join(terms)))
        tsv: ColumnElement[object] = literal_column("search_documents.tsv")
        found = select(SearchDocument.request_id.label("request_id"), (-func.ts_rank(tsv, query)).label("score")).where(
            tsv.op("@@")(query)
        )
        if ranked_among:
            found = found.order_by(SearchDocument.request_id.desc()).limit(ranked_among)
        return found
    fts = table(FTS_TABLE, column("rowid"))
    match = text(f"{FTS_TABLE} MATCH :m").bindparams(m=_match_expression(terms))
    found = (
        select(fts.c.rowid.label("request_id"), literal_column(f"bm25({FTS_TABLE}, 4.0, 1.0)").label("score"))
        .select_from(fts)
        .where(match)
    )
    if ranked_among:
        found = found.order_by(fts.c.rowid.desc()).limit(ranked_among)
    return found


def _ids(session: Session, terms: Sequence[str]) -> Select[Any]:
    if session.get_bind().dialect.name == "postgresql":
        query = func.plainto_tsquery(literal_column("'russian'::regconfig"), bindparam("q", " ".join(terms)))
        return select(SearchDocument.request_id).where(literal_column("search_documents.tsv").op("@@")(query))
    fts = table(FTS_TABLE, column("rowid"))
    return (
        select(fts.c.rowid).select_from(fts).where(text(f"{FTS_TABLE} MATCH :m").bindparams(m=_match_expression(terms)))
    )


def matching_ids(session: Session, query: str) -> Select[Any] | None:
    """SELECT of the ids of the requests a query finds (to filter another list by it); None for an empty query."""
    terms = search_terms.query_terms(query)
    if not terms:
        return None
    flush_index(session)
    return _ids(session, terms)


def search_requests(session: Session, query: str, *, page: int = 1, page_size: int = PAGE_SIZE) -> SearchPage:
    """The requests a query finds, best first (ties: newest first), one page of them with their fragments.

    When more than ``RANKED_AMONG`` requests match, the newest that many are ranked and shown, and the count stops
    there (``more``): counting every match of a common word reads most of the index on PostgreSQL.
    """
    page = max(1, min(page, MAX_PAGE))
    terms = search_terms.query_terms(query)
    if not terms:
        return SearchPage(query, terms, [], 0, page, page_size)
    flush_index(session)  # what this transaction wrote is found too
    counted = _ids(session, terms).limit(RANKED_AMONG + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(counted)) or 0)
    found = matches(session, terms, ranked_among=RANKED_AMONG).subquery()
    ranked = session.execute(
        select(found.c.request_id)
        .order_by(found.c.score, found.c.request_id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    ).all()
    ids = [row[0] for row in ranked]
    by_id = {
        r.id: r
        for r in session.scalars(
            select(Request)
            .where(Request.id.in_(ids))
            .options(joinedload(Request.client).selectinload(Client.contacts))  # the client joined: one query less
        )
    }
    texts: dict[int, list[tuple[str, str]]] = {}
    if ids:
        for request_id, kind, comment in session.execute(
            select(Event.request_id, Event.kind, Event.comment)
            .where(Event.request_id.in_(ids), Event.comment != "")
            .order_by(Event.id)
        ):
            if request_id is not None:
                texts.setdefault(request_id, []).append((_EVENT_FIELD.get(kind, "Запись"), comment))
    hits = []
    for request_id in ids:
        request = by_id.get(request_id)
        if request is None:
            continue
        hits.append(Hit(request, search_terms.highlight(_fields(request, texts.get(request_id, [])), terms)))
    return SearchPage(query, terms, hits, total, page, page_size)


_EVENT_FIELD = {
    "message_in": "Сообщение клиента",
    "message_out": "Наше сообщение",
    "note": "Заметка",
    "status_changed": "Смена статуса",
}


def _fields(request: Request, records: list[tuple[str, str]]) -> list[tuple[str, str]]:
    client = request.client
    contacts = [c.value for c in client.contacts] if client is not None else []
    return [
        ("Номер", request.number or ""),
        ("Тема", request.subject),
        ("Клиент", client.name if client else ""),
        ("Организация", client.organisation if client else ""),
        ("Адрес", client.postal_address if client else ""),
        ("Контакты", ", ".join(contacts)),
        ("Адрес для ответа", request.reply_email or ""),
        ("Имя в обращении", request.reply_name),
        ("Текст запроса", request.text),
        *records,
    ]
