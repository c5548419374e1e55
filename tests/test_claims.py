"""Defect F12: a request whose typed e-mail address is another client's stays on a record of its own until the
address's owner joins it by the link of its acknowledgement (README, "Security model")."""

from __future__ import annotations

import io
import re
import time
import zipfile
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import func, select

from mailservice.config import Settings, get_settings
from mailservice.db import session_scope, utcnow
from mailservice.history import service as history
from mailservice.history.archive import write_zip
from mailservice.inforequests import identity
from mailservice.inforequests.lifecycle import Channel
from mailservice.inforequests.models import Client, ClientContact, MergeSuggestion, Request
from mailservice.outbox import OutboxMessage
from mailservice.web.staff import actions, auth
from mailservice.web.staff.models import AuditEntry
from tests import documented
from tests.conftest import reset_caches
from tests.console_support import add_staff, client_for, drain, link_in, login, mail_request, parsed, text_of
from tests.servers import Sink
from tests.test_channels import _submit, fast_form  # noqa: F401  (the form's helpers and settings fixture)

V = "vera.vasilieva@example.ru"
V_TEXT = "Прошу сообщить сведения о моём земельном участке в Коченёве."
STRANGER = "Чужаков Пётр Ильич"
STRANGER_TEXT = "ЧУЖОЙ-ТЕКСТ: прошу выдать копии всех документов этого заявителя."
BUTTON = "Это моё обращение — присоединить к моей истории обращений"  # the brief's and README's wording
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _client_v(settings: Settings) -> int:
    """V wrote by e-mail and proved the address at an identity check in person; returns V's record id."""
    request_id = mail_request(settings, sender=V, name="Васильева Вера", body=V_TEXT)
    with session_scope(settings) as session:
        request = session.get_one(Request, request_id)
        identity.record_check(
            session, request.client, document="passport_rf", checked_by="op@dizo.test", now=utcnow(), email=V
        )
        return request.client_id


def _stranger_types_v(http: TestClient) -> str:
    """The stranger sends the form with V's address; returns the registration number shown."""
    response = _submit(http, {"name": STRANGER, "email": V, "subject": "Документы", "text": STRANGER_TEXT})
    assert response.status_code == 200, response.text
    number = re.search(r'id="number">([0-9]{4}-[0-9]{6})<', response.text)
    assert number, response.text
    return number.group(1)


def _mail_to(sink: Sink, address: str, number: str) -> EmailMessage:
    mail = [parsed(raw) for _f, rcpts, raw in sink.messages() if rcpts == [address]]
    [message] = [m for m in mail if number in str(m["Subject"])]
    return message


def _archive_text(settings: Settings, client_id: int) -> str:
    buffer = io.BytesIO()
    with session_scope(settings) as session:
        write_zip(session, settings, client_id, utcnow(), buffer)
    archive = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    return b"".join(archive.read(n) for n in archive.namelist()).decode("utf-8", "replace")


def _state(settings: Settings, number: str) -> tuple[int, str | None, int, int]:
    """The request's record, how V's address is proven, how many audit entries of joining, how many records."""
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        proof = session.scalar(select(ClientContact.proof).where(ClientContact.value == V))
        audits = session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "request_claim"))
        return request.client_id, proof, audits or 0, session.scalar(select(func.count(Client.id))) or 0


def _post(http: TestClient, path: str) -> tuple[int, str]:
    """Open the page as a browser does, then press its button."""
    page = http.get(path)
    csrf = CSRF.search(page.text)
    assert page.status_code == 200 and csrf, page.text
    response = http.post(path, data={"csrf_token": csrf.group(1)})
    return response.status_code, response.text


def test_a_stranger_typing_a_clients_address_enters_nothing_of_theirs_until_the_owner_joins_it(
    fast_form: Settings,  # noqa: F811
    sink: Sink,
) -> None:
    v_id = _client_v(fast_form)
    http = client_for(fast_form)
    number = _stranger_types_v(http)
    # Registered at once (59-FZ art. 8), on a record of its own with what the form gave; the reply address is V's.
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        record = request.client
        assert request.status == "registered" and request.reply_email == V
        assert record.id != v_id and record.name == STRANGER and record.contacts == []
        v = session.get_one(Client, v_id)
        assert v.name == "Васильева Вера"
        # Staff see a note that the address is claimed, not proven, and a suggested merge.
        notes = [e.comment for e in request.events if e.kind == "note" and e.data.get("internal")]
        assert any(f"записан за клиентом № {v_id}" in n and "не подтверждён" in n for n in notes), notes
        assert [(s.client_id, s.other_id) for s in identity.open_suggestions(session, v_id)] == [(record.id, v_id)]
        record_id = record.id
    # The console shows it on the new record's page.
    add_staff(fast_form, "op@dizo.test", auth.Role.operator)
    console = client_for(fast_form)
    login(console, "op@dizo.test")
    record_page = console.get(f"/staff/clients/{record_id}").text
    assert f"записан за клиентом № {v_id}" in record_page and "не подтверждён" in record_page
    # V's history export, asked for and downloaded as V would, holds nothing of the stranger.
    with session_scope(fast_form) as session:
        outcome = history.request_history(
            session, fast_form, client=session.get_one(Client, v_id), address=V, via="staff", now=utcnow()
        )
        assert outcome is history.Outcome.link_sent
    drain(fast_form)
    [link_mail] = [m for m in (parsed(raw) for _f, _r, raw in sink.messages()) if "/history/download/" in text_of(m)]
    download = link_in(link_mail, "/history/download/")
    archive = zipfile.ZipFile(io.BytesIO(http.get(download + "/archive.zip").content))
    everything = b"".join(archive.read(n) for n in archive.namelist()).decode("utf-8", "replace")
    assert V_TEXT in everything
    assert "ЧУЖОЙ-ТЕКСТ" not in everything and "Чужаков" not in everything and number not in everything
    # The acknowledgement went to the address typed, greeting by the name the form gave, with the joining link.
    ack = _mail_to(sink, V, number)
    assert "Чужаков" in str(ack["To"]) and "Васильева" not in text_of(ack)
    assert BUTTON in text_of(ack)
    claim = link_in(ack, "/request/claim/")
    # GET (a mail scanner) shows the button and changes nothing; a POST without the page's token does nothing.
    page = http.get(claim)
    assert page.status_code == 200 and BUTTON in page.text and number in page.text
    assert http.post(claim, data={"csrf_token": "forged"}).status_code == 403
    assert client_for(fast_form).post(claim).status_code == 403  # no cookie: another site's form
    assert _state(fast_form, number) == (record_id, "in_person", 0, 2)
    # The owner presses the button: the request joins V's history, the address proven by the link, audited.
    status_code, text = _post(http, claim)
    assert status_code == 200 and "присоединено" in text and number in text
    client_id, proof, audits, _records = _state(fast_form, number)
    assert (client_id, audits) == (v_id, 1)
    assert proof == "in_person"  # a proof in person is not replaced by a weaker one
    with session_scope(fast_form) as session:
        assert session.get_one(Client, record_id).merged_into_id == v_id
        assert identity.open_suggestions(session, v_id) == []
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "request_claim")).one()
        assert entry.object_type == "request" and entry.details == {"from_client": record_id, "to_client": v_id}
    assert "ЧУЖОЙ-ТЕКСТ" in _archive_text(fast_form, v_id)
    # A second use is harmless: the page says so and offers no button; pressing the old form again changes nothing.
    again = http.get(claim)
    assert again.status_code == 200 and "присоединено" in again.text and BUTTON not in again.text
    http.cookies.set("mailservice_claim", "again", path="/request/claim")
    assert http.post(claim, data={"csrf_token": "again"}).status_code == 200
    assert _state(fast_form, number)[:3] == (v_id, "in_person", 1)


def test_a_tampered_expired_or_wrong_purpose_link_joins_nothing(
    fast_form: Settings,  # noqa: F811
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mail_request(fast_form, sender=V, name="Васильева Вера", body=V_TEXT)  # V wrote from it: not proven yet
    http = client_for(fast_form)
    number = _stranger_types_v(http)
    drain(fast_form)
    ack = _mail_to(sink, V, number)
    claim = link_in(ack, "/request/claim/")
    status_path = link_in(ack, "/status/")
    before = _state(fast_form, number)
    assert before[1] is None  # V's address is not proven
    token = claim.rsplit("/", 1)[1]
    page = http.get(claim)
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    forged = [
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),  # the signature changed
        token.split(".")[0] + "." + token.split(".", 1)[1][::-1],  # rearranged
        status_path.rsplit("/", 1)[1],  # a real token of another purpose (the status page of the same request)
        "garbage",
    ]
    for bad in forged:
        assert http.get(f"/request/claim/{bad}").status_code == 400, bad
        assert http.post(f"/request/claim/{bad}", data={"csrf_token": csrf}).status_code == 400, bad
    # Signed with a key the service does not have.
    other = fast_form.model_copy(update={"secret_keys": ["another-key-" + "y" * 40]})
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        from mailservice.inforequests import claims

        foreign = claims.token(other, request)
        aged = {}
        for days in (documented.CLAIM_LINK_VALID.days - 1, documented.CLAIM_LINK_VALID.days + 1):
            with monkeypatch.context() as patch:
                patch.setattr(TimestampSigner, "get_timestamp", lambda self, d=days: int(time.time()) - d * 86400)
                aged[days] = claims.token(fast_form, request)
    assert http.post(f"/request/claim/{foreign}", data={"csrf_token": csrf}).status_code == 400
    # Older than the documented 30 days: refused as expired; a day short of them, still open.
    young, old = aged[documented.CLAIM_LINK_VALID.days - 1], aged[documented.CLAIM_LINK_VALID.days + 1]
    assert client_for(fast_form).get(f"/request/claim/{young}").status_code == 200  # (its own cookie jar)
    assert http.get(f"/request/claim/{old}").status_code == 410
    assert http.post(f"/request/claim/{old}", data={"csrf_token": csrf}).status_code == 410
    assert _state(fast_form, number) == before
    # After a key rotation (MAILSERVICE_SECRET_KEYS, newest first) the link from the mail still joins.
    monkeypatch.setenv("MAILSERVICE_SECRET_KEYS", "new-key-" + "z" * 40 + ",test-key-" + "x" * 40)
    reset_caches()
    rotated = client_for(get_settings())
    status_code, _text = _post(rotated, claim)
    assert status_code == 200
    client_id, proof, audits, _records = _state(fast_form, number)
    assert proof == "link" and audits == 1 and client_id != before[0]


def test_an_address_of_nobody_stays_only_the_reply_address(fast_form: Settings, sink: Sink) -> None:  # noqa: F811
    http = client_for(fast_form)
    number = _stranger_types_v(http)  # nobody has V's address yet
    drain(fast_form)
    ack = _mail_to(sink, V, number)
    assert "/request/claim/" not in text_of(ack) and BUTTON not in text_of(ack)
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        assert request.reply_email == V and request.client.name == STRANGER
        assert session.scalar(select(func.count(ClientContact.id))) == 0  # not a contact, let alone a proven one
        assert session.scalar(select(func.count(MergeSuggestion.id))) == 0


def test_an_address_staff_type_for_a_call_enters_nothing_of_its_owner(fast_form: Settings, sink: Sink) -> None:  # noqa: F811
    v_id = _client_v(fast_form)
    with session_scope(fast_form) as session:
        data = actions.ContactRequest(
            channel=Channel.phone, received_at=utcnow(), subject="Звонок", text=STRANGER_TEXT, name=STRANGER, email=V
        )
        request = actions.register_contact_request(session, fast_form, data, actor="op@dizo.test", now=utcnow())
        session.flush()
        assert request.client_id != v_id and request.number
        number = request.number
    assert "ЧУЖОЙ-ТЕКСТ" not in _archive_text(fast_form, v_id)
    with session_scope(fast_form) as session:
        ack = session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == request.id)).one()
        text = text_of(parsed(ack.raw))
        assert ack.kind == "acknowledgement" and number in text and "/request/claim/" in text


def test_a_link_joins_nothing_once_staff_merged_the_record_elsewhere(fast_form: Settings, sink: Sink) -> None:  # noqa: F811
    v_id = _client_v(fast_form)
    http = client_for(fast_form)
    number = _stranger_types_v(http)
    drain(fast_form)
    claim = link_in(_mail_to(sink, V, number), "/request/claim/")
    with session_scope(fast_form) as session:
        record = session.scalars(select(Request).where(Request.number == number)).one().client
        other = Client(name=STRANGER, created_at=utcnow())
        session.add(other)
        session.flush()
        # Staff saw the stranger's passport and merged the record into his own (README: a merge needs that check).
        actions.merge_clients(session, other, record, actor="op@dizo.test", now=utcnow(), document="passport_rf")
        other_id = other.id
    assert http.get(claim).status_code == 400
    with session_scope(fast_form) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        assert request.client_id == other_id != v_id


def test_the_forms_answer_tells_nothing_of_whose_the_address_is(fast_form: Settings) -> None:  # noqa: F811
    _client_v(fast_form)
    http = client_for(fast_form)
    addresses = (V, "nobody@example.ru")
    pages = [
        _submit(http, {"name": STRANGER, "email": a, "subject": "Документы", "text": STRANGER_TEXT}) for a in addresses
    ]
    assert [p.status_code for p in pages] == [200, 200]
    same = {re.sub(r"[0-9]{4}-[0-9]{6}", "N", p.text).replace(a, "A") for p, a in zip(pages, addresses, strict=True)}
    assert len(same) == 1
