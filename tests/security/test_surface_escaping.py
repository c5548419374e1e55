"""What a citizen wrote comes out inert everywhere it is shown: the console's pages, the history summary, the feedback
pages, the register's spreadsheets, the minutes' DOCX and the terminal (README, "Security model", "Escaping").

One hostile name, subject, body, attachment file name and feedback comment, each written as an attacker would:
HTML that runs (``<script>``, ``onerror``), a template expression, spreadsheet formulas, ANSI escape sequences and
other control characters, bidirectional controls, and Rich markup. The pages are parsed, not searched for strings.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from mailservice.cli import main as cli_main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.feedback.models import FeedbackResponse
from mailservice.history import archive
from mailservice.inforequests import export
from mailservice.inforequests.models import Attachment, Request
from mailservice.web.staff.auth import Role
from mailservice.workgroup import minutes as minutes_doc
from tests.console_support import add_staff, client_for, login, mail_request

# A control character before a formula: dropped for XML after the formula check, it would leave the formula bare.
NAME = '\x07=HYPERLINK("http://evil.example")<img src=x onerror=alert(1)>[link=http://evil.example]И[/link]\x1b]0;x\x07'
SUBJECT = "\x1b[31m[bold red]Тема[/bold red]<script>alert(2)</script>"
BODY = '<iframe src="http://evil.example"></iframe>{{ 7*7 }}\x1b[2J\u202eтекст\n=cmd|"/c calc"!A1\n@SUM(1+1)'
FILENAME = '"><svg onload=alert(3)>\x1b[31m.pdf'
COMMENT = '<script>alert(4)</script><a href="javascript:alert(5)">ссылка</a>\x1b[31m'
ADMIN = "admin@dizo.test"
ROOT = Path(__file__).resolve().parents[2]

# Elements and attributes that would run or load something if the text had been taken as markup.
ACTIVE_TAGS = {"script", "iframe", "svg", "object", "embed"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


# Our own inline scripts, as the templates write them (the contrast switch of the public pages, the unsubscribe
# page's form): any other script in a page is the hostile text come alive.
OUR_SCRIPT_TAG = r"<script(?: data-page-script)?>(.*?)</script>"
OUR_SCRIPTS = {
    match
    for path in (ROOT / "mailservice" / "templates").rglob("*.html")
    for match in re.findall(OUR_SCRIPT_TAG, path.read_text(encoding="utf-8"), flags=re.S)
}


def assert_inert_html(html: str, *shown: str) -> None:
    """No element or attribute of the hostile text made it into ``html``; each of ``shown`` is there as text."""
    parser = _Elements()
    parser.feed(html)
    for script in parser.scripts:
        assert script in OUR_SCRIPTS, script[:200]
    for tag, attrs in parser.found:
        assert tag not in ACTIVE_TAGS - {"script"}, (tag, attrs)
        assert not (tag == "script" and any(name == "src" for name, _ in attrs)), attrs
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name, value)
        assert not (tag == "img" and ("src", "x") in attrs), attrs
    for text in shown:
        assert text in html, text


def hostile_request(settings: Settings) -> tuple[int, int, str]:
    """A request whose client, subject, text and attachment are the hostile values; (request id, client id, number)."""
    message = EmailMessage()
    message["From"] = "Иванов <ivanov@example.ru>"
    message["To"] = "info@dizo.test"
    message["Subject"] = "Запрос"
    message.set_content("Прошу сообщить часы приёма.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="scan.pdf")
    request_id = mail_request(settings, raw=message.as_bytes())
    # The hostile values are written as stored text: what is tested is how every surface shows them.
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None and request.number is not None
        request.subject, request.text, request.client.name = SUBJECT, BODY, NAME
        attachment = session.scalars(select(Attachment).where(Attachment.request_id == request_id)).one()
        attachment.filename = FILENAME
        for event in request.events:
            if event.kind == "message_in":
                event.comment = BODY
        return request_id, request.client_id, request.number


@pytest.fixture
def hostile(settings: Settings) -> tuple[int, int, str]:
    return hostile_request(settings)


def test_console_pages_show_citizen_text_inert(settings: Settings, hostile: tuple[int, int, str]) -> None:
    request_id, client_id, _number = hostile
    add_staff(settings, ADMIN, Role.administrator)
    http = client_for(settings)
    login(http, ADMIN)
    # The site's anonymous form takes a hostile comment; staff read it on the feedback page.
    form = http.post("/feedback", data={"rating": "2", "comment": COMMENT})
    assert form.status_code == 200
    assert_inert_html(form.text)  # the public page does not echo the comment
    assert "alert(4)" not in form.text
    with session_scope(settings) as session:
        assert session.scalars(select(FeedbackResponse.comment)).one().startswith("<script>alert(4)")
    pages = {
        "/staff/queue": ["&lt;script&gt;alert(2)"],
        f"/staff/requests/{request_id}": ["&lt;script&gt;alert(2)", "&lt;iframe", "onerror=alert(1)", "&lt;svg"],
        "/staff/clients?q=ivanov%40example.ru": ["&lt;img src=x onerror=alert(1)&gt;"],
        f"/staff/clients/{client_id}": ["&lt;img src=x onerror=alert(1)&gt;"],
        "/staff/feedback": ["&lt;script&gt;alert(4)"],
    }
    for path, shown in pages.items():
        page = http.get(path)
        assert page.status_code == 200, path
        assert_inert_html(page.text, *shown)
    assert "{{ 7*7 }}" in http.get(f"/staff/requests/{request_id}").text  # a template expression stays text


def test_history_summary_shows_citizen_text_inert(settings: Settings, hostile: tuple[int, int, str]) -> None:
    _request_id, client_id, _number = hostile
    with session_scope(settings) as session:
        html = archive.summary_html(settings, archive.collect(session, settings, client_id), utcnow())
        out = io.BytesIO()
        archive.write_zip(session, settings, client_id, utcnow(), out)
    assert_inert_html(html, "&lt;script&gt;alert(2)", "&lt;iframe", "onerror=alert(1)")
    assert "{{ 7*7 }}" in html  # the template expression is text, not evaluated
    names = zipfile.ZipFile(out).namelist()
    assert all(".." not in n and not n.startswith("/") and '"' not in n and "<" not in n for n in names), names


def test_register_exports_are_formula_safe(settings: Settings, hostile: tuple[int, int, str]) -> None:
    today = utcnow().date()
    with session_scope(settings) as session:
        buffer = io.StringIO()
        export.write_csv(export.register_rows(session, settings, today), buffer)
    with session_scope(settings) as session:
        path = settings.data_dir / "register.xlsx"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        export.write_xlsx(export.register_rows(session, settings, today), path)
    rows = list(csv.reader(io.StringIO(buffer.getvalue()), delimiter=";" if ";" in buffer.getvalue()[:200] else ","))
    cells = [c for row in rows for c in row]
    hostile_cells = [c for c in cells if "HYPERLINK" in c or "calc" in c or "onerror" in c]
    assert hostile_cells, "the hostile values are not in the export at all"
    for cell in hostile_cells:
        assert cell.lstrip()[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell  # a formula never starts a CSV cell
    # In the XLSX a cell has a type: the hostile texts are text cells with the quote prefix, never formulas.
    sheet = load_workbook(path).active
    assert sheet is not None
    xlsx = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    hostile_xlsx = [c for c in xlsx if any(word in str(c.value) for word in ("HYPERLINK", "calc", "onerror"))]
    assert hostile_xlsx, "the hostile values are not in the XLSX at all"
    assert all(c.data_type != "f" for c in xlsx)
    for cell in hostile_xlsx:
        if str(cell.value).lstrip()[:1] in ("=", "+", "-", "@"):
            assert cell.data_type == "s" and cell.quotePrefix, cell.value
    cells += [str(c.value) for c in xlsx]
    assert not any("\x1b" in c or "\x07" in c for c in cells)  # XML cannot hold them; the CSV drops them too


def test_minutes_docx_keeps_a_members_text_as_text() -> None:
    from tests.test_wg_rules import _data

    hostile = "</w:t></w:r><w:r><w:t>ВНЕДРЕНО</w:t></w:r><w:r><w:t><script>alert(6)</script>\x1b[31m\x07"
    data = _data(written_opinions=[minutes_doc.Opinion("Кузнецов К. К.", hostile, "15.12.2026 09:00")])
    docx = minutes_doc.render_docx(data)
    xml = zipfile.ZipFile(io.BytesIO(docx)).read("word/document.xml").decode("utf-8")
    assert "&lt;/w:t&gt;&lt;/w:r&gt;&lt;w:r&gt;&lt;w:t&gt;ВНЕДРЕНО" in xml  # escaped, not spliced into the XML
    assert "\x1b" not in xml and "\x07" not in xml
    assert "</w:t></w:r><w:r><w:t>ВНЕДРЕНО" in minutes_doc.docx_text(docx)  # and the member's words are all there
    html = minutes_doc.render_html(data)
    assert_inert_html(html, "&lt;script&gt;alert(6)")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = cli_main(list(args))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_terminal_output_is_inert(
    settings: Settings,
    hostile: tuple[int, int, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request_id, _client_id, number = hostile
    monkeypatch.setenv("COLUMNS", "400")  # Rich wraps tables to the terminal's width; keep each value on one line
    capsys.readouterr()
    listed = _cli(capsys, "requests", "list")
    shown = _cli(capsys, "requests", "show", number)
    with session_scope(settings) as session:
        request = session.get(Request, request_id)
        assert request is not None
        request.status = "received"  # now it waits unregistered, in the held queue
    held = _cli(capsys, "intake", "held")
    for out in (listed, shown, held):
        # No control character reaches the terminal but the line breaks: an escape sequence is shown, not obeyed.
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", out), repr(out)
        assert "\\x1b[31m[bold red]Тема[/bold red]" in out, out  # Rich markup printed as typed, not interpreted
    for out in (listed, shown):
        assert '\\x07=HYPERLINK("http://evil.example")' in out and "[link=http://evil.example]И[/link]" in out
        assert "\\x1b]0;x\\x07" in out, out
    assert "\\u202eтекст" in shown and "\\x1b[2J" in shown and '"><svg onload=alert(3)>' in shown


def test_inert_terminal_text_is_pure_and_keeps_ordinary_text() -> None:
    from mailservice.termtext import inert

    assert inert("Иванов И. И.\tзапрос") == "Иванов И. И.\\x09запрос"
    assert inert("строка\nвторая", multiline=True) == "строка\nвторая"
    assert inert("a\x1b[31mb\x9bc\u202ed") == "a\\x1b[31mb\\x9bc\\u202ed"
    assert inert(dt.date(2026, 1, 2)) == "2026-01-02"
