"""Issue 14, bad input from outside: a control character in a member's e-mailed opinion broke the DOCX minutes
(and in a citizen's subject, the XLSX register); an attachment over the limit was dropped without a word to
staff or client."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import openpyxl
from sqlalchemy import select

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.export import register_rows, write_xlsx
from mailservice.inforequests.models import Attachment, Event, Request
from mailservice.intake.pipeline import Source, process_raw
from mailservice.web.staff.auth import Role
from mailservice.workgroup import meetings, opinions, signing, voting
from mailservice.workgroup import minutes as minutes_doc
from mailservice.workgroup.models import WgMember, WgMinutes
from tests.conftest import make_env, reset_caches
from tests.console_support import add_staff, client_for, drain, login, parsed, phone_request, text_of
from tests.mailfactory import citizen_mail
from tests.servers import Sink
from tests.test_wg_bad_input import _meeting
from tests.test_wg_helpers import ADDRESSES, Clock, mail_to, make_group, reply

CONTROL = "\x01\x08\x0b\x0c\x1b"  # SOH, backspace, vertical tab, form feed, escape: none is allowed in XML 1.0


def test_control_characters_in_an_emailed_opinion_keep_the_docx_minutes(settings: Settings, sink: Sink) -> None:
    clock = Clock(utcnow())
    people = make_group(settings, clock.now, profile="astrakhan")
    meeting_id = _meeting(settings, people, clock.now, days=3)
    drain(settings)
    agenda = mail_to(sink, ADDRESSES["m3"][1], "Повестка")[0]
    opinion = f"Моё мнение:{CONTROL} поддерживаю первый вопрос."
    raw = reply(agenda, sender=ADDRESSES["m3"][1], name=ADDRESSES["m3"][0], body=opinion)
    process_raw(settings, raw, Source("file"), now=clock.now)
    with session_scope(settings) as session:
        meeting = meetings.get_meeting(session, meeting_id)
        opinions.confirm_reply(session, settings, opinions.held_items(session)[0], now=clock.now, actor="t")
        [kept] = opinions.opinions_of(session, meeting)
        assert any(c in kept.text for c in CONTROL)  # the record keeps what the member sent
        members = {m.id: m for m in session.scalars(select(WgMember))}
        for key in ("chair", "secretary", "m1"):
            voting.record_attendance(
                session, meeting, members[getattr(people, key)], "in_person", now=clock.now, actor="t"
            )
        voting.finish_meeting(session, settings, meeting, now=meeting.starts_at, actor="t")
        signing.draft_minutes(session, settings, meeting, now=meeting.starts_at, actor="t")
        draft = session.scalars(select(WgMinutes).where(WgMinutes.meeting_id == meeting_id)).one()
        docx = BlobStore(settings.blob_dir).get(draft.docx_sha256)
    text = minutes_doc.docx_text(docx)
    # The opinion is in the minutes (a vertical tab or form feed counts as a line break), without the controls.
    assert "Моё мнение:" in text and "поддерживаю первый вопрос." in text, text
    assert not any(c in text for c in CONTROL)


def test_control_characters_in_a_subject_keep_the_xlsx_register(settings: Settings, tmp_path: Path) -> None:
    # Registered by staff from a pasted text (a subject line of an e-mail could not carry these).
    phone_request(settings, name="Петров Пётр", phone="+7 913 000-00-00", subject=f"Запрос{CONTROL} о земле", text="т")
    with session_scope(settings) as session:
        rows = list(register_rows(session, settings, utcnow().date()))
    target = tmp_path / "register.xlsx"
    assert write_xlsx(rows, target) == 1
    sheet = openpyxl.load_workbook(target).worksheets[0]
    assert sheet["G2"].value == "Запрос о земле"  # the subject's column («Тема письма»)


def with_attachments(files: dict[str, bytes]) -> bytes:
    message = email.message_from_bytes(citizen_mail(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    for name, data in files.items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes(policy=email.policy.SMTP)


def test_an_attachment_over_the_limit_is_named_to_staff_and_to_the_client(
    monkeypatch,
    tmp_path: Path,
    db_url: str,
    sink: Sink,  # type: ignore[no-untyped-def]
) -> None:
    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        smtp_host="127.0.0.1",
        max_attachment_bytes=str(1024 * 1024),
    )
    try:
        raw = with_attachments({"план-участка.pdf": b"%PDF" + b"x" * (2 * 1024 * 1024), "заявление.txt": b"text"})
        result = process_raw(settings, raw, Source("smtp", envelope_from="ivanov@example.ru"))
        assert result.request_number
        with session_scope(settings) as session:
            request = session.scalars(select(Request)).one()
            kept = [a.filename for a in session.scalars(select(Attachment))]
            notes = [e.comment for e in session.scalars(select(Event).where(Event.kind == "note"))]
            request_id = request.id
        assert kept == ["заявление.txt"]
        assert any("план-участка.pdf" in note and "1 МБ" in note for note in notes), notes
        # Staff see it on the request's page.
        add_staff(settings, "op@dizo.test", Role.operator)
        http = client_for(settings)
        login(http, "op@dizo.test")
        assert "план-участка.pdf" in http.get(f"/staff/requests/{request_id}").text
        # The client learns it from the acknowledgement.
        drain(settings)
        [ack] = [parsed(m) for _f, _to, m in sink.messages() if "зарегистрировано" in str(parsed(m)["Subject"])]
        body = text_of(ack)
        assert "план-участка.pdf" in body and "больше 1 МБ" in body and "заявление.txt" not in body
    finally:
        reset_caches()
