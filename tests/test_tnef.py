"""Outlook's winmail.dat (TNEF) is read: its files become the request's attachments, its plain text the letter's
text when the letter has none of its own; a TNEF that cannot be read whole keeps the .dat with a note for staff
(README, "Limits").

The sample files in tests/data/tnef/ are real Outlook and Exchange TNEF streams from the test suite of tnefparse 1.4.0
(LGPL-3.0); the expected file names are those its tests state. Russian ones are built here by the spec ([MS-OXTNEF]).
"""

from __future__ import annotations

import email.policy
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Attachment, Event, Request
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.parse import ParsedMessage, parse_message
from mailservice.mail.quotes import html_to_text
from mailservice.mail.tnef import read_tnef

SAMPLES = Path(__file__).parent / "data" / "tnef"
SIGNATURE = b"\x78\x9f\x3e\x22"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# --- a TNEF writer after [MS-OXTNEF] 2.1.3: signature, key, then attributes (level, id, type, length, data, sum) ---


def _attribute(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
    return struct.pack("<BHHI", level, attr_id, attr_type, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def _unicode_property(prop_id: int, text: str) -> bytes:
    value = text.encode("utf-16-le") + b"\x00\x00"
    return struct.pack("<HHII", 0x001F, prop_id, 1, len(value)) + value + b"\x00" * (-len(value) % 4)


def _russian_tnef(*, body: str | None, title: str, data: bytes, long_name: str | None = None) -> bytes:
    """What Outlook in Russian Windows writes: OEM code page 1251, the body and title in it, a long name in UTF-16."""
    out = SIGNATURE + b"\x01\x00"
    out += _attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _attribute(1, 0x9007, 0x0006, struct.pack("<II", 1251, 0))  # attOemCodepage
    if body is not None:
        out += _attribute(1, 0x800C, 0x0002, body.encode("cp1251") + b"\x00")  # attBody
    out += _attribute(
        2, 0x9002, 0x0006, b"\x01\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"
    )  # attAttachRendData
    out += _attribute(2, 0x8010, 0x0001, title.encode("cp1251") + b"\x00")  # attAttachTitle
    out += _attribute(2, 0x800F, 0x0006, data)  # attAttachData
    if long_name is not None:
        props = struct.pack("<I", 1) + _unicode_property(0x3707, long_name)  # PR_ATTACH_LONG_FILENAME
        out += _attribute(2, 0x9005, 0x0006, props)  # attAttachment
    return out


def _letter(tnef: bytes, own_text: str | None = None, *, filename: str = "winmail.dat") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Иванов Иван <ivanov@example.ru>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Документы"
    msg["Message-ID"] = "<tnef@example.ru>"
    if own_text is not None:
        msg.set_content(own_text)
    msg.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP)


def _names(parsed: ParsedMessage) -> list[str]:
    return [a.filename for a in parsed.attachments]


# --- the reader on real samples ---


@pytest.mark.parametrize(
    ("sample", "names"),
    [
        ("two-files.tnef", ["AUTHORS", "README"]),
        ("umlaut.tnef", ["TBZ PARIV GmbH.jpg", "image003.jpg", "UmlautAnhang-äüö.txt"]),
        ("unicode-mapi-attr.tnef", ["example.dat"]),
        ("garbage-at-end.tnef", []),
        ("triples.tnef", []),
        ("rtf.tnef", []),
    ],
)
def test_the_files_of_real_outlook_samples_are_read(sample: str, names: list[str]) -> None:
    content = read_tnef(_sample(sample))
    assert [f.name for f in content.files] == names
    assert content.complete, content.problems


def test_file_contents_and_bodies_of_the_samples() -> None:
    two = read_tnef(_sample("two-files.tnef"))
    assert all(b"\n" in f.data and len(f.data) > 200 for f in two.files)  # two text files of the tnef package
    umlaut = {f.name: f.data for f in read_tnef(_sample("umlaut.tnef")).files}
    assert umlaut["TBZ PARIV GmbH.jpg"][:3] == umlaut["image003.jpg"][:3] == b"\xff\xd8\xff"  # JPEG
    assert umlaut["UmlautAnhang-äüö.txt"].startswith(b"TEST ")
    assert read_tnef(_sample("triples.tnef")).body.strip() == "Sample description"
    html = read_tnef(_sample("unicode-mapi-attr.tnef"))
    assert html.body == "" and "hello world" in html.html
    rtf = read_tnef(_sample("rtf.tnef"))  # the body only as compressed RTF (PR_RTF_COMPRESSED)
    assert "Greg Allen\nSenior Engineer/QADirector Team\nCompuware Corporation" in rtf.body
    assert (rtf.html, rtf.unread_body) == ("", False)
    umlaut = read_tnef(_sample("umlaut.tnef"))  # HTML encapsulated in its RTF ([MS-OXRTFEX])
    assert umlaut.body == "" and umlaut.html.startswith("<html") and "TEST äöü +-*/~" in html_to_text(umlaut.html)


def test_an_attached_outlook_message_is_not_taken_for_a_file() -> None:
    content = read_tnef(_sample("IPM-DistList.tnef"))
    assert content.files == [] and not content.complete


def test_a_russian_outlook_tnef_is_read_in_its_code_page() -> None:
    raw = _russian_tnef(body="Прошу выдать копию постановления.\r\n", title="ЗАЯВЛ~1.PDF", data=b"%PDF-1.4 x")
    content = read_tnef(raw)
    assert content.body.strip() == "Прошу выдать копию постановления."
    assert [(f.name, f.data) for f in content.files] == [("ЗАЯВЛ~1.PDF", b"%PDF-1.4 x")]
    named = read_tnef(_russian_tnef(body=None, title="ЗАЯВЛ~1.PDF", data=b"x", long_name="Заявление о выдаче.pdf"))
    assert [f.name for f in named.files] == ["Заявление о выдаче.pdf"]


# --- bounded and never losing the letter ---


def test_counts_read_from_the_stream_are_bounded_by_its_bytes() -> None:
    """A property list announcing 4 billion properties, or one value of 4 GB, ends with the stream (the tnefparse
    package loops over such a count); the files read before it are kept."""
    huge = struct.pack("<I", 0xFFFFFFFF)
    for props in (
        huge,
        huge + struct.pack("<HHI", 0x001F, 0x1000, 0xFFFFFFFF),
        struct.pack("<IHHII", 1, 0x0102, 0x3701, 1, 0xFFFFFFFF),
    ):
        raw = _russian_tnef(body=None, title="a.txt", data=b"abc") + _attribute(2, 0x9005, 0x0006, props)
        content = read_tnef(raw)
        assert [(f.name, f.data) for f in content.files] == [("a.txt", b"abc")]
        assert not content.complete


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_damaged_tnef_never_raises_and_never_yields_more_than_it_holds(data: st.DataObject) -> None:
    raw = bytearray(_sample(data.draw(st.sampled_from(["two-files.tnef", "unicode-mapi-attr.tnef", "triples.tnef"]))))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(4, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(6, len(raw)))]
    content = read_tnef(bytes(raw))
    held = sum(len(f.data) for f in content.files)
    assert held <= len(raw)
    assert len(content.body) + len(content.html) <= len(raw)
    parsed = parse_message(_letter(bytes(raw), "Прошу ответить."))
    # Whatever was read, the letter keeps either the files read or the .dat itself.
    assert parsed.text.startswith("Прошу ответить.")
    assert content.complete or "winmail.dat" in _names(parsed)


# --- through the parser ---


def test_a_letter_with_winmail_dat_gets_its_files_and_keeps_its_own_text() -> None:
    parsed = parse_message(_letter(_sample("two-files.tnef"), "Прошу рассмотреть приложенные файлы."))
    assert _names(parsed) == ["AUTHORS", "README"]
    assert parsed.text.strip() == "Прошу рассмотреть приложенные файлы."
    assert parsed.staff_notes == ()
    # The letter's own text comes first; an RTF copy of it in winmail.dat is not needed then.
    rtf = parse_message(_letter(_sample("umlaut.tnef"), "Прошу ответить."))
    assert _names(rtf) == ["TBZ PARIV GmbH.jpg", "image003.jpg", "UmlautAnhang-äüö.txt"]
    assert rtf.staff_notes == ()


def test_a_letter_whose_only_text_is_in_winmail_dat_reads_it() -> None:
    raw = _russian_tnef(body="Прошу выдать копию постановления.", title="ЗАЯВЛ~1.PDF", data=b"%PDF-1.4 x")
    parsed = parse_message(_letter(raw, filename="WINMAIL.DAT"))
    assert parsed.text.strip() == "Прошу выдать копию постановления."
    assert _names(parsed) == ["ЗАЯВЛ~1.PDF"]
    assert parsed.attachments[0].content_type == "application/pdf"
    html = parse_message(_letter(_sample("unicode-mapi-attr.tnef")))
    assert "hello world" in html.text and _names(html) == ["example.dat"]


def test_an_rtf_only_text_is_read_and_an_unreadable_one_keeps_the_dat_with_a_note() -> None:
    parsed = parse_message(_letter(_sample("rtf.tnef")))
    assert "Greg Allen" in parsed.text and _names(parsed) == [] and parsed.staff_notes == ()
    damaged = bytearray(_sample("rtf.tnef"))
    damaged[damaged.index(b"LZFu") + 40] ^= 0xFF  # inside the compressed bytes: the CRC no longer matches
    parsed = parse_message(_letter(bytes(damaged)))
    assert _names(parsed) == ["winmail.dat"] and parsed.text == ""
    assert any("winmail.dat" in note and "RTF" in note for note in parsed.staff_notes), parsed.staff_notes
    assert any("CRC" in d for d in parsed.defects)


def test_a_broken_tnef_keeps_the_dat_and_what_was_read() -> None:
    whole = _sample("two-files.tnef")
    cut = whole[: whole.index(b"README") + 200]  # inside README's data
    parsed = parse_message(_letter(cut, "Прошу рассмотреть."))
    assert _names(parsed) == ["AUTHORS", "winmail.dat"]
    assert next(a.data for a in parsed.attachments if a.filename == "winmail.dat") == cut
    assert any("winmail.dat" in note and "не полностью" in note for note in parsed.staff_notes), parsed.staff_notes
    assert any(d.startswith("TNEF") for d in parsed.defects)


def test_a_winmail_dat_with_nothing_in_it_is_kept_as_it_came() -> None:
    # Read to the end, no text and no files (the sample holds only message properties): the citizen's file is
    # not dropped, and nothing went wrong, so no note.
    whole = _sample("garbage-at-end.tnef")
    content = read_tnef(whole)
    assert content.complete and not content.files and not content.body.strip() and not content.html.strip()
    parsed = parse_message(_letter(whole, "Прошу рассмотреть."))
    assert _names(parsed) == ["winmail.dat"] and parsed.staff_notes == ()
    assert parsed.attachments[0].data == whole


def test_a_part_that_only_claims_to_be_tnef_stays_as_it_came() -> None:
    parsed = parse_message(_letter(b"not a TNEF stream at all", "Прошу рассмотреть."))
    assert _names(parsed) == ["winmail.dat"] and parsed.staff_notes == ()


# --- through intake, on both databases ---


def test_intake_stores_the_files_of_winmail_dat_and_the_note(settings: Settings) -> None:
    now = utcnow()
    whole = _sample("two-files.tnef")
    raw = _letter(whole[: whole.index(b"README") + 200], "Прошу рассмотреть приложенные документы.")
    result = process_raw(settings, raw, Source("smtp", envelope_from="ivanov@example.ru"), now=now)
    assert result.request_number
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        files = session.scalars(select(Attachment).where(Attachment.request_id == request.id)).all()
        assert sorted(a.filename for a in files) == ["AUTHORS", "winmail.dat"]
        notes = session.scalars(select(Event.comment).where(Event.request_id == request.id, Event.kind == "note"))
        assert any("winmail.dat" in n and "не полностью" in n for n in notes)
