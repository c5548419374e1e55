"""The whole interaction history on request: only to a proven address, never another client's data."""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import io
import os
import tempfile
import time
import tracemalloc
import zipfile
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select, update

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.history import service
from mailservice.history.models import HistoryExport
from mailservice.inforequests.models import Attachment, Client, ClientContact, Event, Request
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_raw
from mailservice.intake.routes import load_routes
from mailservice.tokens import Purpose, sign_timed
from tests import documented
from tests.console_support import client_for, drain, link_in, mail_request, parsed, text_of
from tests.mailfactory import citizen_mail
from tests.servers import Sink

A = "ivanov@example.ru"
B = "petrova@example.ru"
SECRET_B = "СЕКРЕТ-Б: кадастровый номер 54:35:000000:999"


@pytest.fixture(autouse=True)
def _routes() -> None:
    load_routes()


def mail_with_attachment(sender: str, name: str, subject: str, body: str, filename: str, data: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.ru")
    msg.set_content(body)
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return msg.as_bytes(policy=email.policy.SMTP)


def history_mail(sender: str, *, reply_to: str | None = None, body: str = "") -> bytes:
    return citizen_mail(
        sender=sender,
        name="",
        subject="Прошу историю взаимодействия",
        body=body or "Прошу направить мне всю историю взаимодействия с департаментом.",
        headers={"Reply-To": reply_to} if reply_to else None,
    )


def ask(settings: Settings, raw: bytes, sender: str) -> str:
    result = process_raw(settings, raw, Source("smtp", envelope_from=sender), now=utcnow())
    assert result.outcome is Outcome.routed, result
    return result.reason


def two_clients(settings: Settings) -> tuple[int, int, bytes]:
    raw_a = mail_with_attachment(
        A, "Иванов Иван", "Запрос о предоставлении земельных участков",
        "Прошу предоставить сведения о земельных участках, предоставленных в аренду.", "заявление.pdf", b"%PDF-A",
    )  # fmt: skip
    request_a = mail_request(settings, raw=raw_a, sender=A)
    request_b = mail_request(
        settings, sender=B, name="Петрова Анна", subject="Запрос о кадастровой стоимости", body=SECRET_B
    )
    return request_a, request_b, raw_a


def sent_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [parsed(raw) for _f, rcpts, raw in sink.messages() if rcpts == [address]]


def zip_text(data: bytes) -> tuple[zipfile.ZipFile, str]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    everything = b"".join(archive.read(name) for name in archive.namelist())
    return archive, everything.decode("utf-8", "replace")


def prove(settings: Settings, address: str) -> None:
    """Mark an address proven (as an answer to our message would)."""
    with session_scope(settings) as session:
        session.execute(
            update(ClientContact).where(ClientContact.value == address).values(proven_at=utcnow(), proof="reply")
        )


def test_unproven_address_gets_no_history_until_it_answers_our_letter(settings: Settings, sink: Sink) -> None:
    request_a, _request_b, raw_a = two_clients(settings)
    drain(settings)
    sink.clear()
    # A wrote from this address but never proved it: From can be forged, so no link and no data, only a letter
    # saying how to prove it, and a note telling staff.
    assert ask(settings, history_mail(A), A) == "history request: unproven"
    drain(settings)
    [letter] = sent_to(sink, A)
    assert len(sink.messages()) == 1
    assert "/history/" not in text_of(letter) and "ответьте на это письмо" in text_of(letter)
    assert "Иванов" not in text_of(letter) and "Иванов" not in str(letter["To"])  # not even the record's name
    with session_scope(settings) as session:
        contact = session.scalar(select(ClientContact).where(ClientContact.value == A))
        assert contact is not None and not contact.proven
        notes = session.scalars(select(Event).where(Event.client_id == contact.client_id, Event.kind == "note"))
        assert any("распечатайте историю" in n.comment and n.data.get("internal") for n in notes)
        assert session.scalar(select(func.count(HistoryExport.id))) == 0
    # Answering that letter from the same address proves it (README, "Security model"); the link follows.
    answer = citizen_mail(
        sender=A, name="", subject="Re: " + str(letter["Subject"]), body="Подтверждаю.",
        in_reply_to=str(letter["Message-ID"]).strip("<>"),
    )  # fmt: skip
    assert ask(settings, answer, A) == "history address proof: link_sent"
    drain(settings)
    link_mail = sent_to(sink, A)[-1]
    download_path = link_in(link_mail, "/history/download/")
    with session_scope(settings) as session:
        contact = session.scalar(select(ClientContact).where(ClientContact.value == A))
        assert contact is not None and contact.proof == "reply"

    http = client_for(settings)
    assert http.get(download_path).status_code == 200
    archive_response = http.get(download_path + "/archive.zip")
    assert archive_response.status_code == 200
    assert archive_response.headers["content-type"] == "application/zip"
    archive, everything = zip_text(archive_response.content)
    names = archive.namelist()
    index = archive.read("index.html").decode()
    with session_scope(settings) as session:
        number_a = session.get(Request, request_a).number  # type: ignore[union-attr]
    assert number_a and number_a in index and "Иванов Иван" in index
    assert "Прошу историю взаимодействия" in index  # the history request itself is part of the history
    incoming = [n for n in names if n.endswith("-incoming.eml")]
    assert raw_a in [archive.read(n) for n in incoming]  # the original message, byte for byte
    assert any(n.endswith("-outgoing.eml") for n in names)  # our acknowledgement
    assert [archive.read(n) for n in names if n.startswith("attachments/")] == [b"%PDF-A"]
    assert SECRET_B not in everything and B not in everything and "Петрова" not in everything
    with session_scope(settings) as session:
        export = session.scalars(select(HistoryExport)).one()
        assert export.download_count == 1 and export.via == "email"


def test_a_legacy_confirmation_link_proves_the_address_for_its_client_only(settings: Settings) -> None:
    """Links of the old confirmation step (no longer sent) still work, and prove by ``link``."""
    two_clients(settings)
    with session_scope(settings) as session:
        contact = session.scalar(select(ClientContact).where(ClientContact.value == A))
        assert contact is not None
        export = HistoryExport(
            client_id=contact.client_id, via="email", address=A, status="awaiting_verification", nonce="n1",
            expires_at=utcnow() + documented.HISTORY_LINK_VALID,
        )  # fmt: skip
        session.add(export)
        session.flush()
        token = service.verify_token(settings, export)
    http = client_for(settings)
    assert http.get(f"/history/confirm/{token}").status_code == 200
    with session_scope(settings) as session:  # a GET (a mail scanner) confirms nothing
        assert session.scalar(select(ClientContact.proof).where(ClientContact.value == A)) is None
    response = http.post(f"/history/confirm/{token}")
    assert response.status_code == 303 and response.headers["location"].startswith("/history/download/")
    with session_scope(settings) as session:
        proven = session.scalars(select(ClientContact).where(ClientContact.proven_at.is_not(None))).all()
        assert [(c.value, c.proof) for c in proven] == [(A, "link")]


def test_verified_address_gets_the_link_and_the_six_hour_limit(settings: Settings, sink: Sink) -> None:
    two_clients(settings)
    prove(settings, A)
    drain(settings)
    sink.clear()
    assert ask(settings, history_mail(A), A) == "history request: link_sent"
    assert ask(settings, history_mail(A, body="Повторно прошу историю моих обращений"), A) == "history request: limited"
    drain(settings)
    link_mail, limited_mail = sent_to(sink, A)
    path = link_in(link_mail, "/history/download/")
    assert "/history/" not in text_of(limited_mail) and "уже была направлена" in text_of(limited_mail)
    http = client_for(settings)
    _archive, everything = zip_text(http.get(path + "/archive.zip").content)
    assert "Иванов Иван" in everything and SECRET_B not in everything
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(HistoryExport.id))) == 1
        # The export records the letter that asked for it (the first of the two).
        asked = select(IntakeEntry.id).where(IntakeEntry.subject == "Прошу историю взаимодействия")
        assert (
            session.scalars(select(HistoryExport.intake_id)).one()
            == session.scalars(asked.order_by(IntakeEntry.id)).first()
        )
        # One export per 6 hours (README): a minute short of them, still refused; a minute past, sent.
        session.execute(
            update(HistoryExport).values(
                created_at=utcnow() - documented.HISTORY_ONE_EXPORT_PER + dt.timedelta(minutes=1)
            )
        )
    assert ask(settings, history_mail(A, body="Повторно прошу историю моих обращений"), A) == "history request: limited"
    with session_scope(settings) as session:
        session.execute(
            update(HistoryExport).values(
                created_at=utcnow() - documented.HISTORY_ONE_EXPORT_PER - dt.timedelta(minutes=1)
            )
        )
    assert ask(settings, history_mail(A, body="И ещё раз: вся переписка со мной"), A) == "history request: link_sent"


def test_writing_from_another_address_gets_nothing(settings: Settings, sink: Sink) -> None:
    request_a, _b, _raw = two_clients(settings)
    prove(settings, A)
    with session_scope(settings) as session:
        number_a = session.get(Request, request_a).number  # type: ignore[union-attr]
    drain(settings)
    sink.clear()
    thief = "thief@evil.example"
    body = f"Я Иванов Иван, мой запрос № {number_a}, адрес {A}. Пришлите историю моих обращений на этот адрес."
    assert ask(settings, history_mail(thief, body=body), thief) == "history request: unknown"
    # A forged From with the victim's address and a Reply-To of the thief: the mail still goes to the victim only.
    assert ask(settings, history_mail(A, reply_to=thief), A) == "history request: link_sent"
    drain(settings)
    [to_thief] = sent_to(sink, thief)
    assert "не связано ни одного обращения" in text_of(to_thief) and "/history/" not in text_of(to_thief)
    assert all(thief not in rcpts for _f, rcpts, _raw in sink.messages() if rcpts != [thief])
    assert [m for m in sent_to(sink, A) if "/history/download/" in text_of(m)]
    with session_scope(settings) as session:
        assert {e.address for e in session.scalars(select(HistoryExport))} == {A}


def test_web_form_says_the_same_for_everyone_and_sends_only_to_the_owner(lite_settings: Settings, sink: Sink) -> None:
    from mailservice.jobs import history_asks

    two_clients(lite_settings)
    drain(lite_settings)
    sink.clear()
    http = client_for(lite_settings)
    assert http.get("/history").status_code == 200
    known = http.post("/history", data={"email": A})
    unknown = http.post("/history", data={"email": "stranger@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert "/history/download/" not in known.text and "/history/confirm/" not in known.text
    assert http.post("/history", data={"email": "not an address"}).status_code == 422
    assert history_asks(lite_settings, utcnow()) == 2
    drain(lite_settings)
    assert sink.messages() == []  # A is the client's but not proven, the stranger nobody's: the form mails neither
    prove(lite_settings, A)
    http.post("/history", data={"email": A})
    assert history_asks(lite_settings, utcnow()) == 1
    drain(lite_settings)
    [link_mail] = sent_to(sink, A)
    assert "/history/download/" in text_of(link_mail) and len(sink.messages()) == 1
    again = http.post("/history", data={"email": A})  # within six hours: no second mail
    assert again.text == known.text
    history_asks(lite_settings, utcnow())
    drain(lite_settings)
    assert len(sink.messages()) == 1


def _export_for(settings: Settings, address: str) -> HistoryExport:
    prove(settings, address)
    with session_scope(settings) as session:
        contact = session.scalar(select(ClientContact).where(ClientContact.value == address))
        assert contact is not None
        outcome = service.request_history(
            session, settings, client=contact.client, address=address, via="web", now=utcnow()
        )
        assert outcome is service.Outcome.link_sent
        return session.scalars(select(HistoryExport).where(HistoryExport.address == address)).one()


def test_altered_guessed_and_expired_links_fail_with_a_clear_page(
    lite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_clients(lite_settings)
    export_a = _export_for(lite_settings, A)
    export_b = _export_for(lite_settings, B)
    http = client_for(lite_settings)
    good = service.download_token(lite_settings, export_a)
    assert http.get(f"/history/download/{good}").status_code == 200

    def refused(token: str, status: int = 400) -> None:
        for suffix in ("", "/archive.zip"):
            response = http.get(f"/history/download/{token}{suffix}")
            assert response.status_code == status, (token, suffix, response.status_code)
            assert response.headers["content-type"].startswith("text/html")
            assert "Ссылка" in response.text or "Срок" in response.text
            assert "Петрова" not in response.text and "Иванов" not in response.text

    flipped = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    refused(flipped)
    refused("1")  # guessing a number
    refused(str(export_b.id))
    # A's nonce with B's id (what changing the id in a link would need), signed with the real key.
    refused(sign_timed(lite_settings, Purpose.history_download, {"x": export_b.id, "n": export_a.nonce}))
    # A correctly signed token of another purpose (the confirmation link) does not open the download.
    refused(service.verify_token(lite_settings, export_a))
    # Signed with another key.
    other = lite_settings.model_copy(update={"secret_keys": ["another-key-" + "y" * 40]})
    refused(service.download_token(other, export_b))
    # Expired: the link is older than seven days, or the export's term has run out.
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 8 * 86400)
    old = service.download_token(lite_settings, export_a)
    monkeypatch.undo()
    refused(old, 410)
    with session_scope(lite_settings) as session:
        session.execute(update(HistoryExport).where(HistoryExport.id == export_a.id).values(expires_at=utcnow()))
    refused(good, 410)
    assert "7 дней" in http.get(f"/history/download/{good}").text
    # The confirmation page refuses the same way.
    assert http.get("/history/confirm/garbage").status_code == 400
    assert http.post("/history/confirm/garbage").status_code == 400


def test_internal_notes_stay_out_and_the_history_request_is_recorded(lite_settings: Settings, sink: Sink) -> None:
    from mailservice.history.archive import write_zip

    request_a, _b, _raw = two_clients(lite_settings)
    with session_scope(lite_settings) as session:
        request = session.get(Request, request_a)
        assert request is not None
        session.add(
            Event(
                client_id=request.client_id,
                request_id=request.id,
                kind="note",
                comment="СЛУЖЕБНО: не показывать",
                data={"internal": True},
            )
        )
        client_id = request.client_id
    ask(lite_settings, history_mail(A), A)
    with session_scope(lite_settings) as session:
        buffer = io.BytesIO()
        write_zip(session, lite_settings, client_id, utcnow(), buffer)
        _archive, everything = zip_text(buffer.getvalue())
        entry = session.scalars(select(IntakeEntry).where(IntakeEntry.outcome == Outcome.routed)).one()
        recorded = session.scalars(select(Event).where(Event.intake_id == entry.id)).one()
    assert "СЛУЖЕБНО" not in everything
    assert recorded.client_id == client_id and recorded.direction == "in"


def test_unknown_sender_is_told_once_per_interval(lite_settings: Settings, sink: Sink) -> None:
    stranger = "someone@example.org"
    assert ask(lite_settings, history_mail(stranger), stranger) == "history request: unknown"
    # The same command again (a question, «Где история моих обращений?», would be registered: issue 13).
    assert ask(lite_settings, history_mail(stranger, body="Повторно прошу историю моих обращений."), stranger) == (
        "history request: unknown"
    )
    drain(lite_settings)
    assert len(sent_to(sink, stranger)) == 1


def test_staff_send_history_only_to_the_clients_own_address(lite_settings: Settings, sink: Sink) -> None:
    from mailservice.web.staff.auth import Role
    from tests.console_support import add_staff, login

    request_a, _b, _raw = two_clients(lite_settings)
    with session_scope(lite_settings) as session:
        client_a = session.get(Request, request_a).client_id  # type: ignore[union-attr]
    add_staff(lite_settings, "op@dizo.test", Role.operator)
    http = client_for(lite_settings)
    csrf = login(http, "op@dizo.test")
    other = http.post(f"/staff/clients/{client_a}/history", data={"csrf_token": csrf, "address": B})
    assert other.status_code == 400 and "не принадлежит" in other.text
    drain(lite_settings)
    sink.clear()
    unproven = http.post(f"/staff/clients/{client_a}/history", data={"csrf_token": csrf, "address": A})
    assert unproven.status_code == 400 and "распечатайте историю" in unproven.text
    drain(lite_settings)
    assert sink.messages() == []
    prove(lite_settings, A)
    own = http.post(f"/staff/clients/{client_a}/history", data={"csrf_token": csrf, "address": A})
    assert own.status_code == 200 and "Ссылка на архив истории отправлена" in own.text
    drain(lite_settings)
    assert {tuple(rcpts) for _f, rcpts, raw in sink.messages() if "/history/" in text_of(parsed(raw))} == {(A,)}


def test_export_follows_a_merge(lite_settings: Settings) -> None:
    from mailservice.web.staff.actions import merge_clients

    request_a, request_b, _raw = two_clients(lite_settings)
    export = _export_for(lite_settings, A)
    with session_scope(lite_settings) as session:
        client_a = session.get(Request, request_a).client_id  # type: ignore[union-attr]
        client_b = session.get(Request, request_b).client_id  # type: ignore[union-attr]
        survivor, duplicate = session.get(Client, client_b), session.get(Client, client_a)
        assert survivor is not None and duplicate is not None
        # The person showed a document and gave A: proven in person for the survivor (without it A comes over
        # unproven and the link opens nothing: tests/security/test_identity_tryout_dec7.py).
        merge_clients(session, survivor, duplicate, actor="test", now=utcnow(), document="passport_rf", email=A)
    http = client_for(lite_settings)
    _archive, everything = zip_text(
        http.get(f"/history/download/{service.download_token(lite_settings, export)}/archive.zip").content
    )
    assert "Запрос о предоставлении земельных участков" in everything and A in everything  # merged into B


MB = 1024 * 1024


def attach_random_files(settings: Settings, request_id: int, count: int, size: int) -> list[str]:
    """Store ``count`` files of random bytes (deflate cannot shrink them) and attach them to a request the way
    intake does: one blob each, on the event of the client's first message. Returns their hashes in order."""
    store = BlobStore(settings.blob_dir)
    hashes: list[str] = []
    with session_scope(settings) as session:
        first = session.scalars(select(Attachment).where(Attachment.request_id == request_id)).first()
        assert first is not None and first.event_id is not None
        for number in range(count):
            digest = store.put(os.urandom(size), durable=False)  # a test has no crash to survive
            session.add(
                Attachment(
                    request_id=request_id,
                    event_id=first.event_id,
                    filename=f"скан-{number:02d}.pdf",
                    content_type="application/pdf",
                    size=size,
                    sha256=digest,
                )
            )
            hashes.append(digest)
    return hashes


def test_big_archive_streams_in_bounded_memory(browser_settings: Settings, live_url: str, tmp_path: Path) -> None:
    request_a, _b, raw_a = two_clients(browser_settings)
    hashes = attach_random_files(browser_settings, request_a, count=20, size=MB)
    export = _export_for(browser_settings, A)
    url = f"{live_url}/history/download/{service.download_token(browser_settings, export)}/archive.zip"
    target = tmp_path / "archive.zip"
    tracemalloc.start()
    try:
        # The client writes each chunk to disk as it comes, so what is traced is the server's building and sending.
        with httpx.stream("GET", url, timeout=120) as response, target.open("wb") as out:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                out.write(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"archive {target.stat().st_size / MB:.1f} MB, traced peak {peak / MB:.2f} MB")
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="history-')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert target.stat().st_size > 20 * MB
    assert peak < 8 * MB, f"peak {peak / MB:.1f} MB"
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert names[0] == "index.html"
        attachments = [n for n in names if n.startswith("attachments/")]
        assert [hashlib.sha256(archive.read(n)).hexdigest() for n in attachments[1:]] == hashes
        assert archive.read(attachments[0]) == b"%PDF-A"
        assert raw_a in [archive.read(n) for n in names if n.endswith("-incoming.eml")]
        index = archive.read("index.html").decode()
    assert index.count("(1,0 МБ)") == 20 and "файл не сохранился" not in index
    with session_scope(browser_settings) as session:
        assert session.get(HistoryExport, export.id).download_count == 1  # type: ignore[union-attr]


def test_missing_files_are_noted_and_the_rest_is_complete(settings: Settings) -> None:
    request_a, _b, raw_a = two_clients(settings)
    kept, lost = attach_random_files(settings, request_a, count=2, size=3000)
    store = BlobStore(settings.blob_dir)
    store.path(lost).unlink()
    store.path(hashlib.sha256(raw_a).hexdigest()).unlink()  # the original message is gone too
    export = _export_for(settings, A)
    response = client_for(settings).get(f"/history/download/{service.download_token(settings, export)}/archive.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    names = archive.namelist()
    index = archive.read("index.html").decode()
    assert index.count("файл не сохранился") == 2
    assert "скан-01.pdf: файл не сохранился" in index and "Исходное письмо клиента: файл не сохранился" in index
    assert "(3 КБ)" in index  # the kept one, with its size for people (3000 bytes)
    assert [archive.read(n) for n in names if n.startswith("attachments/")] == [b"%PDF-A", store.get(kept)]
    assert not [n for n in names if n.endswith("-incoming.eml") and archive.read(n) == raw_a]
    assert any(n.endswith("-outgoing.eml") for n in names)  # our acknowledgement is in the database, not a blob
    with session_scope(settings) as session:
        assert session.get(HistoryExport, export.id).download_count == 1  # type: ignore[union-attr]


def test_a_failed_build_counts_nothing_and_frees_the_temporary_file(
    lite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailservice.history import archive, routes

    request_a, _b, _raw = two_clients(lite_settings)
    [digest] = attach_random_files(lite_settings, request_a, count=1, size=2 * archive.SPOOL_MAX_SIZE)
    export = _export_for(lite_settings, A)
    url = f"/history/download/{service.download_token(lite_settings, export)}/archive.zip"
    spools: list[tempfile.SpooledTemporaryFile[bytes]] = []

    def recording_spool(settings: Settings) -> tempfile.SpooledTemporaryFile[bytes]:
        spools.append(archive.spool_file(settings))
        return spools[-1]

    monkeypatch.setattr(routes, "spool_file", recording_spool)
    http = client_for(lite_settings)
    ok = http.get(url)  # bigger than the spool's memory part: it went to disk
    assert ok.status_code == 200 and int(ok.headers["content-length"]) == len(ok.content)
    assert spools[-1]._rolled and spools[-1].closed  # type: ignore[attr-defined]
    # A blob that cannot be read while the archive is written (here a folder in its place) fails the download.
    path = BlobStore(lite_settings.blob_dir).path(digest)
    path.unlink()
    path.mkdir()
    with pytest.raises(IsADirectoryError):
        http.get(url)
    assert len(spools) == 2 and spools[-1].closed
    with session_scope(lite_settings) as session:
        assert session.get(HistoryExport, export.id).download_count == 1  # type: ignore[union-attr]
    assert list((lite_settings.data_dir / "tmp").iterdir()) == []  # the temporary files never had a name
