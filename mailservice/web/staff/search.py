"""Console pages over many rows: the full-text search of requests and the whole register as CSV (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from mailservice.db import session_scope
from mailservice.inforequests import export, search
from mailservice.inforequests.search_terms import MAX_QUERY_CHARS
from mailservice.web.staff.deps import page, settings_of
from mailservice.web.staff.routes import Operator, _audit, _local, _names, _today

router = APIRouter(prefix="/staff", include_in_schema=False)


@router.get("/search")
def search_page(
    request: Request, ctx: Operator, q: str = "", page_no: Annotated[int, Query(alias="page")] = 1
) -> Response:
    """Requests found by any of their words, the client's name, address, e-mail or phone; best first."""
    q = q[:MAX_QUERY_CHARS]
    with session_scope(settings_of(request)) as session:
        found = search.search_requests(session, q, page=max(1, min(page_no, search.MAX_PAGE)))
        return page(
            request,
            "web/staff/search.html",
            ctx=ctx,
            q=q,
            found=found,
            ranked_among=search.RANKED_AMONG,
            local=_local(request),
            **_names(),
        )


@router.get("/register.csv")
def register_export(request: Request, ctx: Operator) -> Response:
    """The whole request register (the Procedure p. 8) as CSV, streamed: memory stays flat at any size."""
    settings = settings_of(request)
    today = _today(request)
    with session_scope(settings) as session:
        _audit(session, ctx, "register_export")

    def body() -> Iterator[bytes]:
        yield "\ufeff".encode()  # a BOM, so that spreadsheet programs read the Cyrillic right
        with session_scope(settings) as session:
            for piece in export.csv_chunks(export.register_rows(session, settings, today)):
                yield piece.encode("utf-8")

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="register-{today.isoformat()}.csv"'},
    )
