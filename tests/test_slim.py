"""mail/slim.py: a letter over the message limit read without its too-large attachments (T1), on real MIME."""

from __future__ import annotations

import email.policy
import os
from email.message import EmailMessage

from mailservice.mail.parse import parse_message
from mailservice.mail.slim import slim

LIMIT = 10_000
TEXT = "Прошу оформить в собственность участок под моим домом."


def _letter() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Кравцова Ольга <kravtsova@example.ru>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Документы"
    msg.set_content(TEXT)
    return msg


def test_an_attachment_over_the_limit_is_cut_out_and_named_the_rest_kept() -> None:
    msg = _letter()
    msg.add_attachment(os.urandom(LIMIT * 5), maintype="application", subtype="pdf", filename="скан паспорта.pdf")
    msg.add_attachment(b"%PDF small", maintype="application", subtype="pdf", filename="заявление.pdf")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    result = slim(raw, max_attachment_bytes=LIMIT)
    assert result.dropped == ["скан паспорта.pdf"]
    assert len(result.raw) < LIMIT < len(raw)
    parsed = parse_message(result.raw)
    assert TEXT in parsed.text
    assert [(a.filename, a.data) for a in parsed.attachments] == [("заявление.pdf", b"%PDF small")]


def test_a_file_under_the_limit_and_a_long_text_are_kept() -> None:
    msg = _letter()
    msg.set_content(TEXT + "\n" + "Подробности. " * 2000)  # the text part alone is over the limit: text is kept
    msg.add_attachment(os.urandom(LIMIT // 2), maintype="image", subtype="jpeg", filename="фото.jpg")
    raw = msg.as_bytes(policy=email.policy.SMTP)
    result = slim(raw, max_attachment_bytes=LIMIT)
    assert result.dropped == [] and result.raw == raw


def test_a_nested_multipart_and_a_cut_message_without_its_close_delimiter() -> None:
    inner = _letter()
    inner.add_alternative("<p>" + TEXT + "</p>", subtype="html")  # multipart/alternative inside multipart/mixed
    inner.add_attachment(os.urandom(LIMIT * 3), maintype="application", subtype="zip", filename="архив.zip")
    raw = inner.as_bytes(policy=email.policy.SMTP)
    cut = raw[: raw.rindex(b"\r\n--")]  # the close delimiter lost: the last part runs to the end
    for whole in (raw, cut):
        result = slim(whole, max_attachment_bytes=LIMIT)
        assert result.dropped == ["архив.zip"]
        parsed = parse_message(result.raw)
        assert TEXT in parsed.text and parsed.attachments == []
