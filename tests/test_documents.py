"""Letters and reports as DOCX and PDF from one model (mailservice/documents, issue 16 step 0).

The DOCX is read back with python-docx; the PDF is read with poppler (pdftotext, pdfinfo, pdftoppm), a reader
independent of the libraries that wrote it. Page images go to artifacts/documents/ for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from docx import Document as read_docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from PIL import Image as PILImage

from mailservice.config import Settings
from mailservice.documents import (
    Align,
    Document,
    DocumentError,
    Heading,
    Image,
    Letter,
    PageBreak,
    Paragraph,
    Signature,
    Table,
    letter_document,
    letterhead,
    render_docx,
    render_pdf,
    xml_text,
)
from mailservice.documents.markup import cell, literal, markup_document

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "documents"
DEPARTMENT = "Департамент имущества и земельных отношений Новосибирской области"
CHART = """<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200" viewBox="0 0 400 200">
<rect x="20" y="20" width="80" height="140" fill="#3f51b5"/><rect x="140" y="80" width="80" height="80" fill="#e91e63"/>
<line x1="0" y1="160" x2="400" y2="160" stroke="black"/>
<text x="25" y="185" font-family="sans-serif" font-size="14">Январь</text>
<text x="140" y="185" font-family="sans-serif" font-size="14" font-weight="bold">Февраль</text>
</svg>""".encode()


def poppler(tool: str, *args: str) -> str:
    """Run a poppler tool; a missing one fails the test (make system-deps installs poppler-utils)."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: apt-get install poppler-utils (make system-deps installs it as root)")
    done = subprocess.run([tool, *args], capture_output=True, check=True, timeout=60)
    return done.stdout.decode("utf-8")


def pdf_text(path: Path, *extra: str) -> str:
    return poppler("pdftotext", "-enc", "UTF-8", *extra, str(path), "-")


def words(text: str) -> str:
    """Text with runs of white space folded (PDF extraction breaks lines where the page did)."""
    return " ".join(text.split())


def settings() -> Settings:
    return Settings(department_address="630007, г. Новосибирск, ул. Кирова, д. 3", from_address="info@dizo.test")


def report() -> Document:
    return Document(
        title="Отчёт о запросах за март",
        letterhead=letterhead(settings()),
        blocks=(
            Heading("Отчёт о рассмотрении запросов"),
            # A vertical tab, NUL, ESC and a lone surrogate, as pasted text brings them: XML refuses each.
            Paragraph("Поступило\x0b 20 запросов;\x00 все\x1b зарегистрированы\ud800 в срок."),
            Heading("По месяцам", level=2),
            Table(rows=(("Месяц", "Запросов"), ("Январь", "12"), ("Февраль", "8")), widths=(3, 1)),
            Image(CHART, "svg", alt="Диаграмма: запросы по месяцам", width_mm=120, caption="Рисунок 1. Запросы"),
            Signature("Начальник отдела", "И. И. Иванов"),
        ),
    )


def test_one_model_gives_docx_and_pdf_with_the_same_russian_text(tmp_path: Path) -> None:
    document = report()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    docx = read_docx(io.BytesIO(render_docx(document)))
    paragraphs = [p.text for p in docx.paragraphs]
    assert paragraphs[0] == DEPARTMENT  # the letterhead opens the document
    assert "630007, г. Новосибирск, ул. Кирова, д. 3" in paragraphs
    assert "Поступило 20 запросов; все зарегистрированы в срок." in paragraphs
    heading = next(p for p in docx.paragraphs if p.text == "Отчёт о рассмотрении запросов")
    assert heading.style.name == "Heading 1"
    grid = docx.tables[0]
    assert [[c.text for c in row.cells] for row in grid.rows] == [
        ["Месяц", "Запросов"],
        ["Январь", "12"],
        ["Февраль", "8"],
    ]
    assert "Рисунок 1. Запросы" in paragraphs
    [picture] = docx.inline_shapes
    assert picture._inline.docPr.get("descr") == "Диаграмма: запросы по месяцам"
    signature = docx.tables[1]
    assert [c.text for c in signature.rows[0].cells] == ["Начальник отдела", "И. И. Иванов"]
    section = docx.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)  # A4 (stored in twips)
    assert docx.core_properties.title == "Отчёт о запросах за март"

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render_pdf(document))
    info = poppler("pdfinfo", str(pdf))
    assert "(A4)" in info
    assert "Отчёт о запросах за март" in info  # the title in the document's metadata
    text = words(pdf_text(pdf))
    for expected in (
        "Поступило 20 запросов; все зарегистрированы в срок.",
        "Отчёт о рассмотрении запросов",
        "Месяц Запросов",
        "Январь 12",
        "Февраль 8",
        "Рисунок 1. Запросы",
        "Начальник отдела",
        "И. И. Иванов",
    ):
        assert expected in text, (expected, text)
    # The chart is drawn with its Cyrillic labels as text (the SVG names sans-serif: the shipped DejaVu Sans).
    assert "Январь" in text.split("Рисунок 1")[0].split("Февраль 8")[1]
    # The letterhead: the department's name within the top 110 points of the first page.
    top = words(pdf_text(pdf, "-f", "1", "-l", "1", "-x", "0", "-y", "0", "-W", "595", "-H", "110"))
    assert DEPARTMENT in top, top

    for stale in ARTIFACTS.glob("report*.png"):  # a previous run's page image would be a second match below
        stale.unlink()
    poppler("pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / "report"))
    [page] = sorted(ARTIFACTS.glob("report*.png"))
    image = PILImage.open(page).convert("L")
    assert image.size[0] < image.size[1]  # portrait
    # Ink at the top (the letterhead) and in the middle (the chart's bars): the page is not blank.
    assert min(image.crop((0, 0, image.size[0], image.size[1] // 8)).getdata()) < 100
    assert min(image.crop((0, image.size[1] // 3, image.size[0], image.size[1] * 3 // 4)).getdata()) < 100
    page.rename(ARTIFACTS / "report-page-1.png")


def test_letter_has_number_date_addressee_and_signatory(tmp_path: Path) -> None:
    letter = Letter(
        letterhead=letterhead(settings()),
        number="16-000007",
        date=dt.date(2026, 3, 2),
        addressee=("Иванову Ивану Ивановичу", "ул. Ленина, д. 1, кв. 2", "г. Новосибирск, 630099"),
        title="О предоставлении информации",
        greeting="Уважаемый Иван Иванович!",
        body="На ваш запрос сообщаем следующее.\n\nВ 2025 году в аренду предоставлено 120 участков.",
        signatory_position="Заместитель руководителя департамента",
        signatory_name="П. П. Петров",
        reference="На № 2026-000042 от 01.03.2026",
        attachments=("Справка.pdf",),
        executor="Исп.: Сидоров С. С., 238-60-02",
    )
    document = letter_document(letter)
    docx = read_docx(io.BytesIO(render_docx(document)))
    by_text = {p.text: p for p in docx.paragraphs}
    assert "Исх. № 16-000007 от 02.03.2026" in by_text
    assert "На № 2026-000042 от 01.03.2026" in by_text
    address = by_text["Иванову Ивану Ивановичу\nул. Ленина, д. 1, кв. 2\nг. Новосибирск, 630099"]
    assert address.alignment == WD_ALIGN_PARAGRAPH.RIGHT
    assert by_text["Уважаемый Иван Иванович!"].alignment == WD_ALIGN_PARAGRAPH.CENTER
    assert "В 2025 году в аренду предоставлено 120 участков." in by_text
    assert "Приложение:\n1. Справка.pdf" in by_text
    assert [c.text for c in docx.tables[0].rows[0].cells] == ["Заместитель руководителя департамента", "П. П. Петров"]

    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(render_pdf(document))
    text = words(pdf_text(pdf))
    for expected in (
        DEPARTMENT,
        "Исх. № 16-000007 от 02.03.2026",
        "На № 2026-000042 от 01.03.2026",
        "Иванову Ивану Ивановичу",
        "г. Новосибирск, 630099",
        "В 2025 году в аренду предоставлено 120 участков.",
        "Заместитель руководителя департамента",
        "П. П. Петров",
        "Исп.: Сидоров С. С., 238-60-02",
    ):
        assert expected in text, (expected, text)
    # The addressee block is on the right half of the page: its text starts right of the middle.
    layout = pdf_text(pdf, "-layout")
    line = next(x for x in layout.splitlines() if "Иванову Ивану Ивановичу" in x)
    assert line.index("Иванову") > len(line) // 3


def test_a_table_row_taller_than_a_page_continues_on_the_next(tmp_path: Path) -> None:
    long_text = " ".join(f"слово{i}" for i in range(1500))
    document = Document(
        title="Длинная таблица",
        blocks=(Table(rows=(("Номер", "Текст"), ("2026-000001", long_text)), widths=(1, 4)),),
    )
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(render_pdf(document))
    pages = int(next(x for x in poppler("pdfinfo", str(pdf)).splitlines() if x.startswith("Pages:")).split()[1])
    assert pages >= 2
    text = words(pdf_text(pdf))
    assert all(f"слово{i} " in text + " " for i in (0, 700, 1499))  # nothing lost at the split
    assert "Номер Текст" in words(pdf_text(pdf, "-f", "2", "-l", "2"))  # the header repeats on page 2
    docx = read_docx(io.BytesIO(render_docx(document)))
    assert docx.tables[0].rows[1].cells[1].text == long_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("обычный текст", "обычный текст"),
        ("таб\tи\nперевод", "таб\tи\nперевод"),
        ("строка\r\nвторая\rтретья", "строка\nвторая\nтретья"),
        ("nul\x00 vt\x0b ff\x0c esc\x1b del\x7f c1\x85", "nul vt ff esc del c1"),
        ("surrogate\ud83d end", "surrogate end"),
        ("nonchar\ufffe\uffff", "nonchar"),
        ("эмодзи 😀 остаётся", "эмодзи 😀 остаётся"),
    ],
)
def test_xml_text_keeps_only_what_xml_allows(raw: str, clean: str) -> None:
    assert xml_text(raw) == clean


def test_bad_images_get_a_clear_error() -> None:
    broken = Document(title="x", blocks=(Image(b"not a picture", "png", alt="скан"),))
    with pytest.raises(DocumentError, match="скан"):
        render_pdf(broken)
    sizeless = Document(
        title="x", blocks=(Image(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "svg", alt="диаграмма"),)
    )
    with pytest.raises(DocumentError, match="размеров"):
        render_docx(sizeless)
    with pytest.raises(ValueError):
        Table(rows=(("a", "b"),), widths=(1,))


def test_line_markup_becomes_the_model_both_renderers_read() -> None:
    """The working group's templates write the line markup; each line kind becomes its block of the one model."""
    opinion = literal("строка\n- похожая на список\n| и на таблицу")
    markup = "\n".join(
        [
            "> Руководителю департамента",
            "# ДОКЛАД",
            "# о ходе работы",
            "## 1. Заседания",
            "| Вопрос | Итог |",
            f"| {cell('План | работ')} | принято |",
            "",
            "- первый пункт",
            f"Мнение: {opinion}",
            "---",
            "Приложение",
        ]
    )
    document = markup_document(markup, title="Доклад", footer="Доклад")
    table = document.blocks[4]
    assert isinstance(table, Table) and table.rows == (("Вопрос", "Итог"), ("План / работ", "принято"))
    assert document.blocks == (
        Paragraph("Руководителю департамента", align=Align.right),
        Heading("ДОКЛАД"),
        Paragraph("о ходе работы", align=Align.center, bold=True),  # one title: one outline entry
        Heading("1. Заседания", level=2),
        table,
        Paragraph("– первый пункт"),
        Paragraph("Мнение: строка"),
        Paragraph("- похожая на список"),  # a person's text stays text
        Paragraph("| и на таблицу"),
        PageBreak(),
        Paragraph("Приложение"),
    )
    docx = read_docx(io.BytesIO(render_docx(document)))
    assert [p.text for p in docx.paragraphs if p.text][:4] == [
        "Руководителю департамента",
        "ДОКЛАД",
        "о ходе работы",
        "1. Заседания",
    ]
    assert docx.paragraphs[1].style is not None and docx.paragraphs[1].style.name == "Heading 1"
    table = [[c.text for c in row.cells] for row in docx.tables[0].rows]
    assert table == [["Вопрос", "Итог"], ["План / работ", "принято"]]


def test_a_wide_table_keeps_its_words_whole(tmp_path: Path) -> None:
    """Seven columns of a work plan: the columns are as wide as their words need (a number column narrow), and the
    PDF sets the table in type small enough that no word is broken between letters."""
    header = ("№", "Мероприятие", "Ответственный", "Срок", "Состояние", "Дорожная карта", "Примечание")
    row = (
        "1",
        "Разработать анкету обратной связи",
        "Отдел информационной политики",
        "31.03.2027",
        "просрочено",
        "3.1",
        "",
    )
    markup = "\n".join("| " + " | ".join(r) + " |" for r in (header, row))
    document = markup_document(markup, title="План")
    (table,) = document.blocks
    assert isinstance(table, Table)
    number, title = table.widths[0], table.widths[1]
    assert number < title / 2
    pdf = tmp_path / "plan.pdf"
    pdf.write_bytes(render_pdf(document))
    text = words(pdf_text(pdf))
    for word in " ".join(header + row).split():
        assert f" {word} " in f" {text} ", (word, text)
