"""Console downloads and pictures of the request register (issue 17): the register spreadsheet with the queue's
filters, the charts of the home page and the monthly report."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailservice.db import session_scope, utcnow
from mailservice.inforequests import export
from mailservice.web.staff import queue
from mailservice.web.staff.deps import Refused, secure, settings_of
from mailservice.web.staff.routes import Operator, _audit

router = APIRouter(prefix="/staff", include_in_schema=False)

MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


def _attachment(data: bytes, filename: str, media_type: str) -> Response:
    response = Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
    return secure(response)


@router.get("/queue/register.{fmt}")
def register_download(request: Request, ctx: Operator, fmt: str) -> Response:
    """The register spreadsheet (XLSX or CSV) of the requests the queue shows with these filters (all pages)."""
    if fmt not in MEDIA_TYPES:
        raise Refused(404, "Нет такого формата")
    settings = settings_of(request)
    filters = queue.QueueFilters.parse(request.query_params)
    today = utcnow().astimezone(settings.tz).date()
    with session_scope(settings) as session:
        rows = export.register_rows(session, settings, today, queue.build_query(filters, today))
        if fmt == "xlsx":
            data, count = export.xlsx_bytes(rows)
        else:
            listed = list(rows)
            data, count = export.csv_bytes(listed), len(listed)
        _audit(
            session, ctx, "register_export", "register", None, format=fmt, rows=count, filters=filters.query_string()
        )
    return _attachment(data, f"реестр-запросов-{today.isoformat()}.{fmt}", MEDIA_TYPES[fmt])
