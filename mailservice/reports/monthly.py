"""The monthly report for the head of department (issue 17): the same charts as the console's home page and the
tables by type, topic, channel, refusals by ground and feedback, as HTML and as PDF (one model through
:mod:`mailservice.documents`); e-mailed on the first working day of each month for the month before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailservice.config import Settings
from mailservice.feedback.models import FeedbackResponse
from mailservice.feedback.stats import COUNTED_SOURCES, channel_label
from mailservice.inforequests.lifecycle import CHANNEL_NAMES, REFUSAL_GROUNDS, Status
from mailservice.inforequests.models import Request
from mailservice.reports import figures
from mailservice.reports.figures import Chart, add_months, month_label, month_start
from mailservice.workdays import Calendar

if TYPE_CHECKING:  # the documents module (fpdf2, python-docx) is loaded only to draw the PDF
    from mailservice.documents import Block, Document

JOB = "monthly-report"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """A line of a table: a label, a count and, for feedback, an average."""

    label: str
    count: int
    average: float | None = None


@dataclass
class MonthlyReport:
    """What the month's report says (plain values; HTML and PDF are drawn from it)."""

    month: dt.date  # first day
    registered: int = 0
    answered: int = 0
    refused: int = 0
    on_time: int = 0
    late: int = 0
    open_overdue: int = 0
    by_type: list[Row] = field(default_factory=list)
    by_topic: list[Row] = field(default_factory=list)
    by_channel: list[Row] = field(default_factory=list)
    refusals: list[Row] = field(default_factory=list)
    feedback: list[Row] = field(default_factory=list)  # by channel, with averages
    feedback_count: int = 0
    feedback_average: float | None = None
    charts: list[Chart] = field(default_factory=list)

    @property
    def title(self) -> str:
        """«Отчёт о работе с запросами и обращениями за ноябрь 2026 г.»."""
        month = figures.MONTHS_FULL[self.month.month - 1]
        return f"Отчёт о работе с запросами и обращениями за {month} {self.month.year} г."


def _rows(counter: Counter[str], names: dict[str, str]) -> list[Row]:
    return [Row(names.get(key, key), count) for key, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def build(session: Session, settings: Settings, month: dt.date, today: dt.date | None = None) -> MonthlyReport:
    """The report of ``month`` (any day of it)."""
    from mailservice.classify.rules import load_taxonomy

    tax = load_taxonomy()
    first = month_start(month)
    after = add_months(first, 1)
    report = MonthlyReport(first)
    registered = session.execute(
        select(Request.type, Request.topic, Request.channel).where(
            Request.registered_on >= first, Request.registered_on < after
        )
    ).all()
    report.registered = len(registered)
    report.by_type = _rows(Counter(r[0] for r in registered), dict(tax["type"].display))
    report.by_topic = _rows(Counter(r[1] for r in registered), dict(tax["topic"].display))
    report.by_channel = _rows(Counter(r[2] for r in registered), {c.value: n for c, n in CHANNEL_NAMES.items()})
    since = dt.datetime.combine(first, dt.time(), settings.tz)
    until = dt.datetime.combine(after, dt.time(), settings.tz)
    finished = session.execute(
        select(Request.status, Request.answered_at, Request.due_date, Request.refusal_ground).where(
            Request.answered_at >= since, Request.answered_at < until, Request.number.is_not(None)
        )
    ).all()
    grounds: Counter[str] = Counter()
    for status, answered_at, due_date, ground in finished:
        if answered_at is None:
            continue
        if status == Status.refused:
            report.refused += 1
            grounds[ground or ""] += 1
        else:
            report.answered += 1
        if due_date is None or answered_at.astimezone(settings.tz).date() <= due_date:
            report.on_time += 1
        else:
            report.late += 1
    report.refusals = _rows(grounds, {code: g.title for code, g in REFUSAL_GROUNDS.items()})
    last_day = after - dt.timedelta(days=1)
    report.open_overdue = sum(
        1
        for (due,) in session.execute(
            select(Request.due_date).where(
                Request.status.in_([s.value for s in (Status.registered, Status.in_progress,
                                                      Status.clarification_requested, Status.extended,
                                                      Status.forwarded)]),
                Request.due_date < min(last_day, today or last_day),
            )
        )
        if due is not None
    )  # fmt: skip
    ratings = session.execute(
        select(FeedbackResponse.channel, FeedbackResponse.rating).where(
            FeedbackResponse.rating.is_not(None),
            FeedbackResponse.source.in_(COUNTED_SOURCES),
            FeedbackResponse.created_at >= since,
            FeedbackResponse.created_at < until,
        )
    ).all()
    by_channel: dict[str, list[int]] = {}
    values_all: list[int] = []
    for channel, rating in ratings:
        if rating is not None:
            by_channel.setdefault(channel, []).append(rating)
            values_all.append(rating)
    report.feedback = [
        Row(channel_label(channel), len(values), round(sum(values) / len(values), 2))
        for channel, values in sorted(by_channel.items())
    ]
    report.feedback_count = len(values_all)
    report.feedback_average = round(sum(values_all) / len(values_all), 2) if values_all else None
    report.charts = [
        figures.weekly_by_channel(session, last_day, weeks=6),
        figures.on_time_by_month(session, settings, first),
        figures.open_by_status(session),
        figures.feedback_by_month(session, settings, first),
    ]
    return report


def tables(report: MonthlyReport) -> list[tuple[str, str, list[Row]]]:
    """The report's count tables: title, first column's header, rows (the HTML and the PDF show the same)."""
    return [
        ("Зарегистрировано по типам", "Тип", report.by_type),
        ("По тематике", "Тематика", report.by_topic),
        ("По каналам поступления", "Канал", report.by_channel),
        ("Отказы по основаниям", "Основание", report.refusals),
    ]


def _table_rows(rows: list[Row]) -> tuple[tuple[str, ...], ...]:
    return tuple((row.label, str(row.count)) for row in rows) or (("нет", "0"),)


def to_document(report: MonthlyReport, settings: Settings) -> Document:
    """The report as a :class:`mailservice.documents.Document` (render it with ``render_pdf`` or ``render_docx``)."""
    from mailservice.documents import Document, Heading, Image, Paragraph, Table, letterhead

    blocks: list[Block] = [
        Heading(report.title, level=1),
        Paragraph(
            f"Зарегистрировано: {report.registered}. Дан ответ: {report.answered}; отказано: {report.refused}; "
            f"в срок: {report.on_time}; с нарушением срока: {report.late}. "
            f"Просрочено (срок истёк до конца месяца, запрос всё ещё в работе): {report.open_overdue}."
        ),
    ]
    for chart in report.charts:
        blocks.append(Image(chart.svg.encode("utf-8"), "svg", alt=chart.title, width_mm=165))
    for title, column, rows in tables(report):
        blocks.append(Heading(title, level=2))
        blocks.append(Table(rows=((column, "Количество"), *_table_rows(rows)), widths=(130.0, 35.0)))
    blocks.append(Heading("Отзывы клиентов", level=2))
    average = f"{report.feedback_average:.2f}".replace(".", ",") if report.feedback_average is not None else "—"
    blocks.append(Paragraph(f"Оценок: {report.feedback_count}; средняя оценка: {average} из 5."))
    feedback_rows = tuple(
        (row.label, str(row.count), f"{row.average:.2f}".replace(".", ",")) for row in report.feedback
    ) or (("нет", "0", "—"),)
    blocks.append(Table(rows=(("Канал", "Оценок", "Средняя"), *feedback_rows), widths=(105.0, 30.0, 30.0)))
    return Document(
        title=report.title,
        blocks=tuple(blocks),
        letterhead=letterhead(settings),
        font="sans",
    )


def to_pdf(report: MonthlyReport, settings: Settings) -> bytes:
    """The report as PDF."""
    from mailservice.documents import render_pdf

    return render_pdf(to_document(report, settings))


def to_html(report: MonthlyReport, settings: Settings) -> str:
    """The report as a stand-alone HTML page (no script, no outside request; the charts inline)."""
    from mailservice.templating import render

    return render("web/staff/monthly_standalone.html", report=report, tables=tables(report), settings=settings)


def first_working_day(month: dt.date, calendar: Calendar) -> dt.date:
    """The first working day of ``month``'s month."""
    return calendar.working_day_on_or_after(month_start(month))


NOBODY = (
    "Ежемесячный отчёт никому не направлен: не задан адрес руководителя (MAILSERVICE_HEAD_OF_DEPARTMENT_EMAIL) "
    "и нет активных администраторов консоли"
)


def recipients(session: Session, settings: Settings) -> list[str]:
    """Who receives the report: ``HEAD_OF_DEPARTMENT_EMAIL``; while it is empty, the console's active
    administrators, as the reminders of requests nobody heads (README "Напоминания")."""
    from mailservice.inforequests.reminders import directory_of

    directory = directory_of(session, settings)
    return [directory.head_of_department] if directory.head_of_department else list(directory.administrators)


def send_due(settings: Settings, now: dt.datetime) -> int:
    """The worker's job: on the first working day of a month, from ``MONTHLY_REPORT_HOUR``, e-mail the report of the
    month before to ``HEAD_OF_DEPARTMENT_EMAIL`` (or the administrators) once (the run claimed in job_runs); returns
    the number of e-mails queued. A month with nobody to send to is recorded with a note and a warning."""
    from mailservice import jobruns
    from mailservice.db import session_scope
    from mailservice.mail.compose import build_message, wire_address
    from mailservice.outbox import enqueue
    from mailservice.workdays import default_calendar

    local = now.astimezone(settings.tz)
    today = local.date()
    if local.hour < settings.monthly_report_hour:
        return 0
    if today != first_working_day(today, default_calendar(settings)):
        return 0
    month = add_months(today, -1)
    with session_scope(settings) as session:
        run = jobruns.claim(session, JOB, f"{month:%Y-%m}", now)
        if run is None:
            return 0
        addresses = recipients(session, settings)
        if not addresses:
            log.warning("%s (%s)", NOBODY, f"{month:%Y-%m}")
            jobruns.finish(run, now, {"to": [], "note": NOBODY})
            return 0
        report = build(session, settings, month, today)
        pdf = to_pdf(report, settings)
        html = to_html(report, settings)
        name = f"otchet-{month:%Y-%m}"
        message_ids = []
        for address in addresses:
            message = build_message(
                settings,
                to=address,
                subject=report.title,
                template="monthly_report",
                context={"report": report, "month_label": month_label(month)},
                attachments=[
                    (f"{name}.pdf", "application/pdf", pdf),
                    (f"{name}.html", "text/html", html.encode("utf-8")),
                ],
            )
            row = enqueue(
                session,
                message,
                kind="monthly_report",
                envelope=(wire_address(settings.from_address), [wire_address(address)]),
            )
            message_ids.append(row.message_id)
        jobruns.finish(
            run,
            now,
            {"to": addresses, "registered": report.registered, "message_ids": message_ids, "pdf_bytes": len(pdf)},
        )
    return len(addresses)


__all__ = [
    "JOB",
    "NOBODY",
    "MonthlyReport",
    "Row",
    "build",
    "first_working_day",
    "recipients",
    "send_due",
    "to_document",
    "to_html",
    "to_pdf",
]
