"""Console downloads and pictures of the request register (issue 17): the register spreadsheet with the queue's
filters, the charts of the home page and the monthly report."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mailservice.db import session_scope, utcnow
from mailservice.inforequests import export
from mailservice.reports import monthly
from mailservice.reports.figures import add_months
from mailservice.web.staff import queue
from mailservice.web.staff.deps import Refused, page, secure, settings_of
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
        query = queue.build_query(filters, today)
        if filters.q:  # the queue's search box narrows the register as it narrows the queue (issue 19's search)
            from sqlalchemy import false

            from mailservice.inforequests import search
            from mailservice.inforequests.models import Request as InfoRequest

            found = search.matching_ids(session, filters.q)
            query = query.where(InfoRequest.id.in_(found) if found is not None else false())
        rows = export.register_rows(session, settings, today, query)
        if fmt == "xlsx":
            data, count = export.xlsx_bytes(rows)
        else:
            listed = list(rows)
            data, count = export.csv_bytes(listed), len(listed)
        _audit(
            session, ctx, "register_export", "register", None, format=fmt, rows=count, filters=filters.query_string()
        )
    return _attachment(data, f"реестр-запросов-{today.isoformat()}.{fmt}", MEDIA_TYPES[fmt])


def _month(request: Request) -> dt.date:
    """The month asked for (``?month=2026-11``), else the month before this one."""
    settings = settings_of(request)
    today = utcnow().astimezone(settings.tz).date()
    value = request.query_params.get("month", "")
    try:
        year, month = (int(part) for part in value.split("-", 1))
        if 2000 <= year <= 9999 and 1 <= month <= 12:
            return dt.date(year, month, 1)
    except ValueError:
        pass
    return add_months(today, -1)


@router.get("/reports/monthly", response_class=HTMLResponse)
def monthly_page(request: Request, ctx: Operator) -> Response:
    """The monthly report (charts and tables) of a month, as the head of department receives it."""
    settings = settings_of(request)
    month = _month(request)
    with session_scope(settings) as session:
        report = monthly.build(session, settings, month, utcnow().astimezone(settings.tz).date())
    return page(
        request,
        "web/staff/monthly.html",
        ctx=ctx,
        report=report,
        tables=monthly.tables(report),
        month_value=f"{month:%Y-%m}",
    )


@router.get("/reports/monthly.pdf")
def monthly_pdf(request: Request, ctx: Operator) -> Response:
    """The monthly report as PDF."""
    settings = settings_of(request)
    month = _month(request)
    with session_scope(settings) as session:
        report = monthly.build(session, settings, month, utcnow().astimezone(settings.tz).date())
        _audit(session, ctx, "monthly_report_download", "report", None, month=f"{month:%Y-%m}")
    return _attachment(monthly.to_pdf(report, settings), f"otchet-{month:%Y-%m}.pdf", "application/pdf")
