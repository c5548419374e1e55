"""Pictures where people look (issue 17 p. 6): SVG charts drawn on the server (escaped labels, no script) on the
console's home page, and the monthly report as HTML and PDF (rendered to PNG pages), e-mailed to the head of
department on the first working day of a month."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select, update

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Request
from mailservice.jobs import default_jobs
from mailservice.outbox import OutboxMessage
from mailservice.reports import monthly
from mailservice.reports.charts import Series, bar_chart, column_chart
from mailservice.web.staff.auth import Role
from tests.browser import ARTIFACTS
from tests.conftest import make_env, reset_caches
from tests.console_support import add_staff, client_for, login, mail_request, phone_request
from tests.servers import Sink

SVG = "{http://www.w3.org/2000/svg}"
NSK = dt.timezone(dt.timedelta(hours=7))
CHIEF = "chief@dizo.test"
HOSTILE = '<script>alert("x")</script> & «Отдел»'


def test_chart_labels_are_escaped_and_the_svg_is_inert() -> None:
    for svg in (
        column_chart(HOSTILE, [HOSTILE, "b"], [Series(HOSTILE, (3.0, 1.0)), Series("другой", (1.0, 0.0))]),
        bar_chart(HOSTILE, [(HOSTILE, 2.0), ("ok", 0.0)]),
    ):
        root = ET.fromstring(svg)  # well-formed XML: nothing broke out of a text or an attribute
        assert not list(root.iter(f"{SVG}script"))
        texts = [t.text for t in root.iter(f"{SVG}text")]
        assert HOSTILE in texts  # shown as text, whole
        assert "<script" not in svg and "javascript:" not in svg
        assert all(not key.startswith("on") for el in root.iter() for key in el.attrib)  # no event handlers


def _finish(settings: Settings, request_id: int, *, answered: dt.datetime, due: dt.date) -> None:
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        service.change_status(session, settings, request, Status.answered, now=answered, actor="t", comment="Ответ")
        session.flush()
        session.execute(update(Request).where(Request.id == request_id).values(due_date=due))


@pytest.fixture
def reporting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), head_of_department_email=CHIEF)
    yield settings
    reset_caches()


def _seed_month(settings: Settings) -> None:
    """November 2026: two e-mailed requests and one by phone; one answered on time, one late; ratings 5 and 3."""
    on_time, late = mail_request(settings), mail_request(settings, sender="p@example.ru", name="Петрова Анна")
    phone_request(settings, name="Кузнецов Олег", phone="+7 913 000-00-00", subject="Вакансии", text="т")
    nov = dt.date(2026, 11, 10)
    with session_scope(settings) as session:
        session.execute(update(Request).values(registered_on=nov))
    _finish(settings, on_time, answered=dt.datetime(2026, 11, 20, 12, tzinfo=NSK), due=dt.date(2026, 12, 10))
    _finish(settings, late, answered=dt.datetime(2026, 11, 25, 12, tzinfo=NSK), due=dt.date(2026, 11, 24))
    with session_scope(settings) as session:
        for rating in (5, 3):
            session.add(
                FeedbackResponse(
                    created_at=dt.datetime(2026, 11, 26, 12, tzinfo=NSK),
                    source="survey",
                    channel="email",
                    rating=rating,
                )
            )
        session.add(
            FeedbackResponse(created_at=dt.datetime(2026, 11, 26, tzinfo=NSK), source="site", channel="web", rating=1)
        )  # the anonymous form does not count


def test_monthly_report_tables_html_and_pdf_pages(reporting: Settings) -> None:
    _seed_month(reporting)
    with session_scope(reporting) as session:
        report = monthly.build(session, reporting, dt.date(2026, 11, 1), dt.date(2026, 12, 5))
    assert report.registered == 3 and (report.answered, report.on_time, report.late) == (2, 1, 1)
    assert {(r.label, r.count) for r in report.by_channel} == {("электронная почта", 2), ("телефон", 1)}
    assert report.feedback_count == 2 and report.feedback_average == 4.0
    html = monthly.to_html(report, reporting)
    assert "за ноябрь 2026 г." in html and html.count("<svg") == 4 and "<script" not in html
    pdf = monthly.to_pdf(report, reporting)
    document = pdfium.PdfDocument(pdf)
    assert len(document) >= 2  # four charts and five tables do not fit one A4 page
    ARTIFACTS.mkdir(exist_ok=True)
    text = ""
    for index in range(len(document)):
        page = document[index]
        text += page.get_textpage().get_text_range()
        image = page.render(scale=1.5).to_pil()
        assert image.getextrema() != ((255, 255), (255, 255), (255, 255))  # something is drawn
        png = io.BytesIO()
        image.save(png, format="PNG")
        assert png.getvalue().startswith(b"\x89PNG")
        if index == 0:
            image.save(ARTIFACTS / "issue17-monthly-report-p1.png")
    assert "Отчёт о работе с запросами и обращениями за ноябрь 2026 г." in " ".join(text.split())
    assert "в срок" in text and "Запросы по неделям и каналам" in text  # the charts' text is in the PDF (vector)


def test_the_report_goes_to_the_head_on_the_first_working_day(reporting: Settings) -> None:
    _seed_month(reporting)
    job = next(j for j in default_jobs() if j.name == "monthly-report")
    # 01.12.2026 is a Tuesday, the first working day of December: the November report goes out once.
    assert job.run(reporting, dt.datetime(2026, 12, 1, 8, 0, tzinfo=NSK)) == 0  # before the hour (9)
    assert job.run(reporting, dt.datetime(2026, 12, 1, 9, 30, tzinfo=NSK)) == 1
    assert job.run(reporting, dt.datetime(2026, 12, 1, 15, 0, tzinfo=NSK)) == 0
    assert job.run(reporting, dt.datetime(2026, 12, 2, 10, 0, tzinfo=NSK)) == 0  # not the first working day
    # January 2027: the 1st to the 8th are holidays, the 9th and 10th a weekend; Monday the 11th is the day.
    assert job.run(reporting, dt.datetime(2027, 1, 8, 10, 0, tzinfo=NSK)) == 0
    assert job.run(reporting, dt.datetime(2027, 1, 11, 10, 0, tzinfo=NSK)) == 1
    with session_scope(reporting) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "monthly_report")).all()
        assert [r.recipients for r in rows] == [CHIEF, CHIEF]
        message = email.message_from_bytes(rows[0].raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert "за ноябрь 2026" in str(message["Subject"])
    names = {part.get_filename(): part.get_content_type() for part in message.iter_attachments()}
    assert names == {"otchet-2026-11.pdf": "application/pdf", "otchet-2026-11.html": "text/html"}


def test_home_page_shows_the_four_charts_without_script(reporting: Settings) -> None:
    _seed_month(reporting)
    add_staff(reporting, "operator@dizo.test", Role.operator)
    http = client_for(reporting)
    login(http, "operator@dizo.test")
    home = http.get("/staff/").text
    for key in ("weekly", "ontime", "status", "feedback"):
        assert f'id="chart-{key}"' in home
    assert home.count("<svg") == 4 and "<script" not in home
    assert "Запросы в работе по статусам" in home
    monthly_page = http.get("/staff/reports/monthly?month=2026-11")
    assert monthly_page.status_code == 200 and "за ноябрь 2026 г." in monthly_page.text
    pdf = http.get("/staff/reports/monthly.pdf?month=2026-11")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_cli_writes_the_monthly_report(reporting: Settings, tmp_path: Path) -> None:
    from mailservice.cli import main

    _seed_month(reporting)
    target = tmp_path / "report.pdf"
    assert main(["requests", "report", "--month", "2026-11", "--output", str(target)]) == 0
    assert len(pdfium.PdfDocument(target.read_bytes())) >= 2
    html = tmp_path / "report.html"
    assert main(["requests", "report", "--month", "2026-11", "--output", str(html)]) == 0
    assert "за ноябрь 2026 г." in html.read_text("utf-8")
    assert main(["requests", "report", "--month", "ноябрь", "--output", str(html)]) == 2
