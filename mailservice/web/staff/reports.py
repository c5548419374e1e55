"""Console downloads and pictures of the request register (issue 17): the register spreadsheet with the queue's
filters, the charts of the home page and the monthly report."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy import Select, false
from sqlalchemy.orm import Session

from mailservice.db import session_scope, utcnow
from mailservice.inforequests import export, search
from mailservice.inforequests.models import Request as InfoRequest
from mailservice.reports import monthly
from mailservice.reports.figures import add_months, report_month
from mailservice.web.staff import queue
from mailservice.web.staff.deps import Refused, content_disposition, download, page, secure, settings_of
from mailservice.web.staff.routes import Operator, _audit

router = APIRouter(prefix="/staff", include_in_schema=False)

MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
_PIECE = 1 << 16  # bytes of a streamed download read at a time


def _register_query(session: Session, filters: queue.QueueFilters, today: dt.date) -> Select[InfoRequest]:
    """The queue's query for these filters; its search box narrows the register as it narrows the queue."""
    query = queue.build_query(filters, today)
    if filters.q:
        found = search.matching_ids(session, filters.q)
        query = query.where(InfoRequest.id.in_(found) if found is not None else false())
    return query


@router.get("/queue/register.{fmt}")
def register_download(request: Request, ctx: Operator, fmt: str) -> Response:
    """The register spreadsheet (XLSX or CSV) of the requests the queue shows with these filters (all pages)."""
    if fmt not in MEDIA_TYPES:
        raise Refused(404, "Нет такого формата")
    settings = settings_of(request)
    filters = queue.QueueFilters.parse(request.query_params)
    today = utcnow().astimezone(settings.tz).date()
    filename = f"реестр-запросов-{today.isoformat()}.{fmt}"
    if fmt == "csv":
        # Streamed: five years of the register is 100,000+ rows and the web process's memory stays flat.
        with session_scope(settings) as session:
            _audit(session, ctx, "register_export", "register", None, format=fmt, filters=filters.query_string())

        def body() -> Iterator[bytes]:
            yield "\ufeff".encode()  # a byte order mark: spreadsheet programs then read the Cyrillic right
            with session_scope(settings) as session:
                rows = export.register_rows(session, settings, today, _register_query(session, filters, today))
                for piece in export.csv_chunks(rows):
                    yield piece.encode("utf-8")

        response = StreamingResponse(
            body(), media_type=MEDIA_TYPES[fmt], headers={"Content-Disposition": content_disposition(filename)}
        )
        return secure(response)
    # Written to an anonymous temporary file (gone once closed) and streamed from it: the workbook is a ZIP, whole
    # only once its last row is in, and five years of rows kept in memory took the web process +900 MB (tryout W4).
    spool = tempfile.TemporaryFile()
    try:
        with session_scope(settings) as session:
            rows = export.register_rows(session, settings, today, _register_query(session, filters, today))
            count = export.write_xlsx_to(rows, spool)
            _audit(
                session,
                ctx,
                "register_export",
                "register",
                None,
                format=fmt,
                rows=count,
                filters=filters.query_string(),
            )
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def stored() -> Iterator[bytes]:
        with spool:
            while piece := spool.read(_PIECE):
                yield piece

    response = StreamingResponse(
        stored(),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": content_disposition(filename), "Content-Length": str(size)},
    )
    return secure(response)


def _month(request: Request) -> dt.date:
    """The month asked for (``?month=2026-11``), else the month before this one; a month that is none (or not yet
    begun, or beyond what a date holds) is a page in Russian, 400."""
    settings = settings_of(request)
    today = utcnow().astimezone(settings.tz).date()
    value = request.query_params.get("month", "")
    if not value:
        return add_months(today, -1)
    try:
        return report_month(value, today)
    except ValueError as exc:
        text = str(exc)
        raise Refused(400, "Неверный месяц отчёта", f"{text[:1].upper()}{text[1:]}.") from None


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
    return download(monthly.to_pdf(report, settings), f"otchet-{month:%Y-%m}.pdf", "application/pdf")
