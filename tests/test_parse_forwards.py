"""Letters forwarded as attachments are read, and undeclared Cyrillic bodies are decoded (tryout G5, G6).

README, "Limits": a forwarded letter's text (under a short header block) is the request's text when the sender
wrote nothing and follows the sender's own words otherwise, within a size and a depth; a body without a charset is
read as Windows-1251, KOI8-R or CP866, whichever reads as Russian.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest

from mailservice.mail.headers import decode_bytes
from mailservice.mail.parse import ParsedMessage, parse_message
from mailservice.mail.triage import Verdict, triage
from tests.documented import FORWARDED_LEVELS, FORWARDED_TEXT_CHARS

SEPARATOR = "-------- Пересланное сообщение --------"  # README, "Limits"


def _inner(text: str, subject: str = "Аукцион", *, html: str | None = None) -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "Мария Лебедева <lebedeva@example.ru>"
    inner["To"] = "colleague@example.ru"
    inner["Subject"] = subject
    inner["Date"] = "Fri, 04 Dec 2026 10:15:00 +0700"
    inner.set_content(text)
    if html is not None:
        inner.add_alternative(html, subtype="html")
    return inner


def _forward(inner: EmailMessage, own: str = "", subject: str = "Fw: Аукцион") -> EmailMessage:
    outer = EmailMessage()
    outer["From"] = "Коллега <colleague@example.ru>"
    outer["To"] = "info@dizo.test"
    outer["Subject"] = subject
    outer["Message-ID"] = "<fw@example.ru>"
    outer.set_content(own)
    outer.add_attachment(inner)
    return outer


def _parse(message: EmailMessage) -> ParsedMessage:
    return parse_message(message.as_bytes(policy=email.policy.SMTP))


def test_an_empty_forward_takes_the_forwarded_letters_text_under_its_header_block() -> None:
    parsed = _parse(_forward(_inner("Прошу сообщить, когда будет аукцион на участок в Бердске.")))
    lines = parsed.text.splitlines()
    assert lines[0] == SEPARATOR
    assert "От: Мария Лебедева <lebedeva@example.ru>" in lines
    assert "Тема: Аукцион" in lines
    assert any(line.startswith("Дата:") and "2026" in line for line in lines)
    assert "Прошу сообщить, когда будет аукцион на участок в Бердске." in lines
    assert "аукцион на участок" in (parsed.new_text or parsed.text)
    # The whole message is still attached as it came.
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_the_senders_own_words_come_first() -> None:
    parsed = _parse(_forward(_inner("Прошу сообщить дату аукциона."), own="Пересылаю обращение гражданки."))
    assert parsed.text.startswith("Пересылаю обращение гражданки.")
    assert parsed.text.index(SEPARATOR) > parsed.text.index("Пересылаю")
    assert "Прошу сообщить дату аукциона." in parsed.text


def test_an_html_only_forwarded_letter_is_read_as_text() -> None:
    inner = EmailMessage()
    inner["From"] = "lebedeva@example.ru"
    inner["Subject"] = "Аукцион"
    inner.set_content("<p>Когда <b>аукцион</b> в Бердске?</p>", subtype="html")
    parsed = _parse(_forward(inner))
    assert "Когда аукцион в Бердске?" in " ".join(parsed.text.split())
    assert "<p>" not in parsed.text


def test_the_forwarded_letters_own_attachments_stay_inside_its_eml() -> None:
    inner = _inner("Скан заявления во вложении.")
    inner.add_attachment(b"%PDF-1.4\n" + b"0" * 5000, "application", "pdf", filename="заявление.pdf")
    parsed = _parse(_forward(inner))
    assert "Скан заявления во вложении." in parsed.text
    assert "%PDF" not in parsed.text
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_forwarded_text_is_bounded() -> None:
    huge = ("Прошу сообщить. " * 20 + "\n") * 1000  # about 330,000 characters
    parsed = _parse(_forward(_inner(huge)))
    assert parsed.text.startswith(SEPARATOR)
    assert "Прошу сообщить." in parsed.text
    assert FORWARDED_TEXT_CHARS // 2 < len(parsed.text) <= FORWARDED_TEXT_CHARS + 10


def test_many_forwarded_letters_share_the_bound() -> None:
    outer = _forward(_inner("Первое. " * 2000))
    for n in range(30):
        outer.add_attachment(_inner(f"Письмо {n}. " + "Текст. " * 2000, subject=f"Письмо {n}"))
    parsed = _parse(outer)
    assert len(parsed.text) <= FORWARDED_TEXT_CHARS + 10 * 31
    assert len(parsed.attachments) == 31  # every letter is kept whole all the same


def test_forwards_inside_forwards_are_read_to_a_depth() -> None:
    message = _inner("Уровень 0 (сам гражданин).", subject="Уровень 0")
    for level in range(1, FORWARDED_LEVELS + 3):
        message = _forward(message, own=f"Уровень {level}.", subject=f"Уровень {level}")
    # The outermost message is level FORWARDED_LEVELS + 2: its own text, then forwards 3 deep.
    top = FORWARDED_LEVELS + 2
    parsed = _parse(message)
    for level in range(top - FORWARDED_LEVELS, top + 1):
        assert f"Уровень {level}." in parsed.text, level
    for level in range(top - FORWARDED_LEVELS):
        assert f"Уровень {level}." not in parsed.text, level


def test_the_letter_a_delivery_report_returns_is_not_read() -> None:
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@mx.example.ru"
    report["To"] = "info@dizo.test"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report.set_content("This is the mail system. The message could not be delivered to <gone@example.ru>.")
    report.add_attachment(
        "Reporting-MTA: dns; mx.example.ru\n\nFinal-Recipient: rfc822; gone@example.ru\nAction: failed\n"
        "Status: 5.1.1\n",
        subtype="delivery-status",
    )
    report.add_attachment(_inner("Рассылка департамента: новости недели.", subject="Новости"))
    report.replace_header("Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report"))
    raw = report.as_bytes(policy=email.policy.SMTP)
    parsed = parse_message(raw)
    assert "Рассылка департамента" not in parsed.text
    assert SEPARATOR not in parsed.text
    assert triage(parsed, email.message_from_bytes(raw), "").verdict is Verdict.bounce


RUSSIAN = [
    "Прошу сообщить, когда будет аукцион на участок в Бердске.",
    "Прошу",
    "ПРОШУ СРОЧНО ОТВЕТИТЬ НА МОЁ ОБРАЩЕНИЕ",
    "ЖАЛОБА",
    "Ёлка, ёжик, щука, съезд",
    "Иванов И. И., ул. Лесная, д. 5",
]


@pytest.mark.parametrize("charset", ["cp1251", "koi8-r", "cp866"])
@pytest.mark.parametrize("text", RUSSIAN)
def test_an_undeclared_cyrillic_body_is_read_in_its_charset(text: str, charset: str) -> None:
    assert decode_bytes(text.encode(charset))[0] == text


@pytest.mark.parametrize(
    "text", ["Grüße aus München, schöne Grüße", "Señor Muñoz, ¿qué tal?", "naïve façade résumé, déjà vu"]
)
def test_an_undeclared_western_body_stays_windows_1252(text: str) -> None:
    assert decode_bytes(text.encode("cp1252"))[0] == text


def test_a_declared_utf8_body_is_not_guessed() -> None:
    text = "Прошу сообщить, когда будет аукцион."
    assert decode_bytes(text.encode("utf-8"), "utf-8") == (text, None)
