"""Tryout F2/F15: letters that stayed in the quarantine for good.

A whole "Name <addr>" put in one encoded word (Python's compat32 ``m["From"] = "Ольга <olga@...>"``, PHP's
``mb_encode_mimeheader``) has no address we may read (an encoded word never becomes an address), and a NUL in the
Subject was taken for binary data. Every letter a person writes is registered (59-FZ art. 8): a NUL in a header
becomes a space, and staff register a letter without a usable From with the address they read in it
(`intake release ID --sender ADDRESS`, or the console's quarantine page); the address proves nothing.
"""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from mailservice.cli import main as cli_main
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import ClientContact, Request
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.mail.parse import parse_message
from mailservice.web.staff.auth import Role
from mailservice.web.staff.models import AuditEntry
from tests.console_support import add_staff, client_for, login

OPERATOR = "operator@dizo.test"


def _whole_from_encoded() -> bytes:
    word = base64.b64encode("Ольга <olga@example.ru>".encode()).decode()
    return (
        f"From: =?utf-8?b?{word}?=\r\nTo: info@dizo.test\r\nSubject: =?utf-8?b?"
        + base64.b64encode("Вопрос об аренде".encode()).decode()
        + "?=\r\nMessage-ID: <olga-1@example.ru>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Прошу сообщить размер арендной платы за участок.\r\n"
    ).encode()


def _quarantined(settings: Settings) -> int:
    result = process_raw(settings, _whole_from_encoded(), Source("smtp", envelope_from="olga@example.ru"), now=utcnow())
    assert result.outcome is Outcome.quarantined and "no usable sender" in result.reason
    return result.entry_id


def test_a_nul_in_the_subject_is_a_space() -> None:
    raw = b"From: Ivan <nul3@example.ru>\r\nTo: info@dizo.test\r\nSubject: Vopros\x00x\r\n\r\nPlain text, no NUL.\r\n"
    parsed = parse_message(raw)
    assert parsed.subject == "Vopros x" and parsed.from_addr == "nul3@example.ru"


def test_a_nul_in_the_subject_gets_a_number(settings: Settings) -> None:
    raw = b"From: Ivan <nul3@example.ru>\r\nTo: info@dizo.test\r\nSubject: Vopros\x00x\r\n\r\nPrivet.\r\n"
    result = process_raw(settings, raw, Source("smtp"), now=utcnow())
    assert result.outcome is Outcome.new_request and result.request_number


def test_binary_data_is_still_not_a_message() -> None:
    from mailservice.mail.parse import ParseError

    with pytest.raises(ParseError, match="binary"):
        parse_message(b"\x00\x01\x02" * 100 + b"\r\n\r\nx")


def test_release_with_a_typed_sender_registers_the_letter(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    entry_id = _quarantined(settings)
    assert cli_main(["intake", "release", str(entry_id)]) == 0  # as before: quarantined again, row not resolved
    assert "в карантине" in capsys.readouterr().out  # Russian, as the whole CLI (T3)
    with session_scope(settings) as session:
        assert session.get(IntakeEntry, entry_id).resolved_at is None  # type: ignore[union-attr]
    assert cli_main(["intake", "release", str(entry_id), "--sender", "not an address"]) == 1
    assert "Неверный адрес" in capsys.readouterr().err
    assert cli_main(["intake", "release", str(entry_id), "--sender", "Olga@Example.RU", "--actor", "clerk"]) == 0
    assert "зарегистрировано" in capsys.readouterr().out
    with session_scope(settings) as session:
        assert session.get(IntakeEntry, entry_id).resolved_by == "clerk"  # type: ignore[union-attr]
        request = session.scalars(select(Request)).one()
        assert request.number and request.reply_email == "Olga@example.ru" and request.reply_name == "Ольга"
        assert request.text.startswith("Прошу сообщить размер арендной платы")
        contact = session.scalars(select(ClientContact).where(ClientContact.client_id == request.client_id)).one()
        assert contact.value == "Olga@example.ru" and not contact.proven  # typed by staff: proves nothing
        assert any("указан сотрудником" in e.comment for e in request.events)
    assert cli_main(["intake", "release", str(entry_id), "--sender", "olga@example.ru"]) == 1  # already done


def test_release_help_is_russian(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["intake", "release", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--sender" in out and "Адрес автора" in out


def test_the_console_quarantine_page_registers_with_a_typed_sender(settings: Settings) -> None:
    entry_id = _quarantined(settings)
    add_staff(settings, OPERATOR, Role.operator)
    add_staff(settings, "pub@dizo.test", Role.publisher)
    other = client_for(settings)
    login(other, "pub@dizo.test")
    assert other.get("/staff/quarantine").status_code == 403
    http = client_for(settings)
    csrf = login(http, OPERATOR)
    page = http.get("/staff/quarantine")
    assert page.status_code == 200 and f'action="/staff/quarantine/{entry_id}/release"' in page.text
    assert "Ольга &lt;olga@example.ru&gt;" in page.text  # the From read as text, escaped
    assert "нет адреса автора" in page.text and "no usable sender" not in page.text  # the reason in Russian (T3)
    forged = http.post(f"/staff/quarantine/{entry_id}/release", data={"sender": "olga@example.ru"})
    assert forged.status_code == 403  # no CSRF token
    again = http.post(f"/staff/quarantine/{entry_id}/release", data={"csrf_token": csrf})
    assert again.status_code == 400 and "Укажите адрес автора" in again.text
    done = http.post(f"/staff/quarantine/{entry_id}/release", data={"csrf_token": csrf, "sender": "olga@example.ru"})
    assert done.status_code == 303
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.number and request.reply_email == "olga@example.ru"
        audits = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "quarantine_release").order_by(AuditEntry.id)
        ).all()
        assert [(a.actor, a.object_id, a.details["outcome"]) for a in audits] == [
            (OPERATOR, entry_id, "quarantined"),  # the attempt without an address is audited too
            (OPERATOR, entry_id, "new_request"),
        ]
    assert f'action="/staff/quarantine/{entry_id}/release"' not in http.get("/staff/quarantine").text
    # Where the release leads: the number, as a link to the request it made (tryout of 7 December).
    released = http.get(done.headers["location"]).text
    assert f'Письмо принято: <a href="/staff/requests/{request.id}">{request.number}</a>.' in released
    # What the address says is shown only as a number that exists or an outcome: no text of a stranger's link
    # appears as the console's own words.
    for planted in ("Позвоните по номеру 8-800-000-00-00", "2099-000001", "1"):
        shown = http.get("/staff/quarantine", params={"done": planted}).text
        assert "Письмо принято" not in shown and "8-800" not in shown, planted
    assert "Письмо принято: в карантине." in http.get("/staff/quarantine?done=quarantined").text


def test_the_console_shows_a_quarantined_letters_text_decoded_and_takes_the_envelope_address(
    settings: Settings,
) -> None:
    """Staff-day tryout of 7 December: «прочитайте письмо» above base64, and the envelope's address typed by hand."""
    body = base64.b64encode("Прошу сообщить размер арендной платы за участок.".encode("cp1251")).decode()
    word = base64.b64encode("Ольга <olga@example.ru>".encode()).decode()
    raw = (
        f"From: =?utf-8?b?{word}?=\r\nTo: info@dizo.test\r\nSubject: Aренда\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{body}\r\n"
    ).encode()
    result = process_raw(settings, raw, Source("smtp", envelope_from="olga@example.ru"), now=utcnow())
    assert result.outcome is Outcome.quarantined
    add_staff(settings, OPERATOR, Role.operator)
    http = client_for(settings)
    csrf = login(http, OPERATOR)
    page = http.get("/staff/quarantine").text
    assert '<h3>Текст письма</h3><pre class="text">Прошу сообщить размер арендной платы за участок.</pre>' in page
    assert body[:40] in page  # the letter as received stays one click away
    # One click takes the envelope's address, recorded as staff gave it (unproven), as a typed one is.
    assert 'name="sender" value="olga@example.ru"' in page
    taken = http.post(
        f"/staff/quarantine/{result.entry_id}/release", data={"csrf_token": csrf, "sender": "olga@example.ru"}
    )
    assert taken.status_code == 303
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.number and request.reply_email == "olga@example.ru"
        assert request.text.startswith("Прошу сообщить размер арендной платы")
