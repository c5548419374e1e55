"""The console's full-text search of requests (issue 19); the register download is in reports.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mailservice.db import session_scope
from mailservice.inforequests import search
from mailservice.inforequests.search_terms import MAX_QUERY_CHARS
from mailservice.web.staff.deps import page, settings_of
from mailservice.web.staff.routes import Operator, _local, _names

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
