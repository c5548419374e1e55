"""A citizen's letter forwarded by another body, through the real intake (issue 13; README "Forwarded appeals").

A body in ``FORWARDING_BODIES`` proven by our server's Authentication-Results (``TRUSTED_AUTHSERV_ID``): the appeal
is registered under the citizen, on a record of its own, and acknowledged to the citizen alone. Anything less (the
default): registered under the sender, with a note and the console's one action that re-registers it on the
author. Acknowledgements are read from the SMTP sink. Both databases.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailservice.blobs import BlobStore
from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Client, Event, Request
from mailservice.inforequests.service import change_status
from mailservice.intake.models import IntakeEntry
from mailservice.intake.pipeline import Source, process_batch, process_raw
from mailservice.intake.prepare import POOL_MIN_BATCH
from mailservice.mail.receiver import start_receiver
from mailservice.web.staff import auth
from mailservice.web.staff.models import AuditEntry
from tests.conftest import make_env, reset_caches
from tests.console_support import add_staff, client_for, csrf_of, drain, login, mail_request, parsed, text_of
from tests.mailfactory import citizen_mail, message_id_of
from tests.servers import Sink, free_port
from tests.test_cli import run
from tests.test_intake_pipeline_rules import dated, utc

BODY = "priemnaya@mfc.nso.example.ru"
BODY_DOMAIN = "mfc.nso.example.ru"
OURS = "mx.dizo.example.ru"
CITIZEN = "belova.as@example.ru"
CITIZEN_NAME = "Белова Анна Сергеевна"
APPEAL = "Прошу сообщить, когда будет аукцион на участок на ул. Ленина в Бердске."
SUBJECT = "Участок на Ленина"
PASS = f"{OURS}; dkim=pass header.d={BODY_DOMAIN} header.s=mail; dmarc=pass header.from={BODY_DOMAIN}"
BUTTON = "Перерегистрировать на автора пересланного письма"  # the brief's wording
JOIN = "Это моё обращение — присоединить к моей истории обращений"  # README, "Security model" (F12)


@pytest.fixture
def fwd_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[Settings]:
    """Settings on both databases with one forwarding body configured and our server's authserv-id."""
    yield make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        smtp_host="127.0.0.1",
        forwarding_bodies=f"{BODY_DOMAIN}, other-body.example.ru",
        trusted_authserv_id=OURS,
        receiver_port=str(free_port()),
    )
    reset_caches()


def forward(
    *results: str, sender: str = BODY, message_id: str = "<fwd-1@mfc.nso.example.ru>", appeal: str = APPEAL
) -> bytes:
    """The body's Gmail-style inline forward of the citizen's letter, with the given Authentication-Results on top."""
    msg = EmailMessage()
    for value in results:
        msg["Authentication-Results"] = value
    msg["From"] = f"Приёмная МФЦ <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = f"Fwd: {SUBJECT}"
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id
    msg.set_content(
        "Направляем по компетенции обращение гр. Беловой А.С.\n\n"
        "---------- Пересылаемое сообщение ---------\n"
        f"От: {CITIZEN_NAME} <{CITIZEN}>\n"
        "Date: пн, 30 нояб. 2026 г. в 10:15\n"
        f"Subject: {SUBJECT}\n"
        f"To: <{sender}>\n\n\n"
        f"{appeal}\n"
    )
    return msg.as_bytes(policy=email.policy.SMTP)


def _request(settings: Settings, number: str | None) -> Request:
    assert number is not None
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        session.expunge(request)
        return request


def _notes(settings: Settings, number: str | None) -> list[str]:
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == number)).one()
        return [e.comment for e in request.events if e.kind == "note" and e.data.get("internal")]


def _mail(sink: Sink) -> list[tuple[list[str], EmailMessage]]:
    return [(rcpts, parsed(raw)) for _sender, rcpts, raw in sink.messages()]


def test_a_proven_bodys_forward_is_the_citizens_appeal_acknowledged_to_the_citizen_alone(
    fwd_settings: Settings, sink: Sink
) -> None:
    raw = forward(PASS)
    result = process_raw(fwd_settings, raw, Source("smtp", envelope_from=BODY))
    assert result.outcome == "new_request" and result.request_number, result
    request = _request(fwd_settings, result.request_number)
    assert (request.reply_email, request.reply_name, request.channel) == (CITIZEN, CITIZEN_NAME, "email")
    assert request.subject == SUBJECT and APPEAL in request.text
    # The legal clock runs from our registration (today), whatever date the forwarded letter bears.
    today = utcnow().astimezone(fwd_settings.tz).date()
    assert request.registered_on == today and request.status == "registered"
    with session_scope(fwd_settings) as session:
        client = session.get_one(Client, request.client_id)
        # A record of its own for the citizen: the address is the body's word, no contact of anyone.
        assert client.name == CITIZEN_NAME and client.contacts == []
        assert session.scalar(select(func.count(Client.id))) == 1  # and no record for the body
        # The body's letter is the request's source: its first message is that letter, kept whole.
        first = session.scalars(select(Event).where(Event.request_id == request.id, Event.kind == "message_in")).one()
        entry = session.get_one(IntakeEntry, first.intake_id)
        assert entry.from_addr == BODY
        assert BlobStore(fwd_settings.blob_dir).get(entry.raw_sha256) == raw
    notes = _notes(fwd_settings, result.request_number)
    assert any(
        "поступило в порядке переадресации от приёмная мфц" in n.lower()
        and BODY in n
        and "письмо органа сохранено" in n
        for n in notes
    ), notes
    drain(fwd_settings)
    mail = _mail(sink)
    assert [rcpts for rcpts, _m in mail] == [[CITIZEN]]  # the body gets nothing automatic
    ack = mail[0][1]
    assert result.request_number in str(ack["Subject"]) and "Белова" in str(ack["To"])
    assert JOIN not in text_of(ack)  # the address is nobody's yet: nothing to join


def test_a_proven_forward_is_registered_even_where_appeals_by_e_mail_are_only_redirected(
    fwd_settings: Settings, sink: Sink
) -> None:
    # README "Law of a request": with APPEAL_BY_EMAIL=redirect_only a citizen's own e-mail appeal is answered with
    # the legal channels and closed; a body's forwarding is no e-mail of the citizen's.
    strict = fwd_settings.model_copy(update={"appeal_by_email": "redirect_only"})
    complaint = "Жалоба. Прошу разобраться, почему мне отказали в предоставлении участка многодетной семье."
    result = process_raw(strict, forward(PASS, appeal=complaint), Source("smtp", envelope_from=BODY))
    request = _request(strict, result.request_number)
    assert request.type == "appeal"  # else the rule on appeals by e-mail would not be in question
    assert request.status == "registered" and request.reply_email == CITIZEN
    drain(strict)
    [(rcpts, ack)] = _mail(sink)
    assert rcpts == [CITIZEN] and result.request_number in str(ack["Subject"])


@pytest.mark.parametrize(
    ("results", "sender"),
    [
        ([f"mx.other.example; dkim=pass header.d={BODY_DOMAIN}"], BODY),  # another server's id
        ([f"{OURS}; dkim=none; dmarc=none", PASS], BODY),  # the pass only below ours: the sender wrote it
        ([f"{OURS}; dkim=pass header.d=example.ru"], "office@example.ru"),  # proven, but not a forwarding body
        ([], BODY),  # no verdict of ours at all
    ],
    ids=["wrong-authserv-id", "forged-below-ours", "not-a-body", "no-results"],
)
def test_an_unproven_forwarder_keeps_the_letter_with_a_note_naming_the_author(
    fwd_settings: Settings, sink: Sink, results: list[str], sender: str
) -> None:
    result = process_raw(fwd_settings, forward(*results, sender=sender), Source("smtp", envelope_from=sender))
    request = _request(fwd_settings, result.request_number)
    assert request.reply_email == sender  # we answer who wrote to us
    notes = _notes(fwd_settings, result.request_number)
    assert any(f"пересланное обращение: {CITIZEN_NAME} <{CITIZEN}>" in n for n in notes), notes
    drain(fwd_settings)
    assert [rcpts for rcpts, _m in _mail(sink)] == [[sender]]


def test_a_citizen_known_by_the_address_is_not_joined_but_offered_the_link(fwd_settings: Settings, sink: Sink) -> None:
    earlier = mail_request(fwd_settings, sender=CITIZEN, name=CITIZEN_NAME, body="Когда приём граждан?")
    with session_scope(fwd_settings) as session:
        known = session.get_one(Request, earlier).client_id
    result = process_raw(fwd_settings, forward(PASS), Source("smtp", envelope_from=BODY))
    request = _request(fwd_settings, result.request_number)
    assert request.client_id != known and request.reply_email == CITIZEN
    with session_scope(fwd_settings) as session:
        # Nothing of the forwarded appeal enters the known client's history until the owner follows the link.
        theirs = session.scalars(select(Event.request_id).where(Event.client_id == known)).all()
        assert request.id not in theirs
    assert any(f"записан за клиентом № {known}" in n for n in _notes(fwd_settings, result.request_number))
    drain(fwd_settings)
    [ack] = [m for rcpts, m in _mail(sink) if result.request_number in str(m["Subject"])]
    assert ack["To"].addresses[0].addr_spec == CITIZEN and JOIN in text_of(ack)


def test_a_proven_forward_through_the_smtp_receiver(fwd_settings: Settings, sink: Sink) -> None:
    controller = start_receiver(fwd_settings)
    try:
        with smtplib.SMTP("127.0.0.1", fwd_settings.receiver_port) as smtp:
            assert smtp.sendmail(BODY, ["info@dizo.test"], forward(PASS)) == {}
    finally:
        controller.stop()
    with session_scope(fwd_settings) as session:
        [request] = session.scalars(select(Request)).all()
        assert request.reply_email == CITIZEN and request.number
        number = request.number
    drain(fwd_settings)
    assert [(rcpts, number in str(m["Subject"])) for rcpts, m in _mail(sink)] == [([CITIZEN], True)]


def test_staff_reregister_an_unproven_forward_on_its_author_in_one_action(fwd_settings: Settings, sink: Sink) -> None:
    result = process_raw(fwd_settings, forward(), Source("smtp", envelope_from=BODY))  # no verdict: unproven
    number = result.request_number
    request = _request(fwd_settings, number)
    body_client, due = request.client_id, request.due_date
    drain(fwd_settings)
    sink_before = len(sink.messages())
    add_staff(fwd_settings, "op@dizo.test", auth.Role.operator)
    http = client_for(fwd_settings)
    login(http, "op@dizo.test")
    page = http.get(f"/staff/requests/{request.id}")
    assert page.status_code == 200 and BUTTON in page.text and CITIZEN in page.text
    path = f"/staff/requests/{request.id}/reregister-forwarded"
    assert http.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert _request(fwd_settings, number).client_id == body_client
    response = http.post(path, data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303, response.text
    after = _request(fwd_settings, number)
    # Same number and term; a record of its own for the author, whose address is the request's reply address.
    assert (after.number, after.due_date, after.reply_email) == (number, due, CITIZEN)
    assert after.client_id != body_client
    with session_scope(fwd_settings) as session:
        record = session.get_one(Client, after.client_id)
        assert record.name == CITIZEN_NAME and record.contacts == []
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "request_reregister_forwarded")).one()
        assert entry.object_id == after.id and entry.details == {"from_client": body_client, "to_client": record.id}
        assert not session.scalars(
            select(Event).where(Event.client_id == body_client, Event.request_id == after.id)
        ).all()
    drain(fwd_settings)
    new = _mail(sink)[sink_before:]
    assert sorted(rcpts[0] for rcpts, _m in new) == sorted([CITIZEN, BODY])
    [ack] = [m for rcpts, m in new if rcpts == [CITIZEN]]
    assert number in str(ack["Subject"]) and "зарегистрировано" in text_of(ack)
    [notice] = [m for rcpts, m in new if rcpts == [BODY]]
    said = str(notice["Subject"]) + text_of(notice)
    assert "зарегистрировано на имя его автора" in said
    # No case details to an address nobody proved: no number, no name, no subject, no text.
    for detail in (number, "Белова", SUBJECT, "аукцион"):
        assert detail not in said, detail
    assert notice["In-Reply-To"] == "<fwd-1@mfc.nso.example.ru>"  # the body can tell which of its letters
    # Done once: the button is gone and a second POST changes nothing.
    again = http.get(f"/staff/requests/{request.id}")
    assert BUTTON not in again.text and "Перерегистрирован на автора пересланного письма" in again.text
    assert http.post(path, data={"csrf_token": csrf_of(again.text)}).status_code == 400
    assert _request(fwd_settings, number).client_id == after.client_id


def test_the_cli_twin_reregisters_once(fwd_settings: Settings, sink: Sink) -> None:
    result = process_raw(fwd_settings, forward(), Source("smtp", envelope_from=BODY))
    number = result.request_number
    assert number is not None
    body_client = _request(fwd_settings, number).client_id
    done = run("requests", "reregister-forwarded", number, "--actor", "op@dizo.test")
    assert done.returncode == 0 and CITIZEN in done.stdout, done.stderr
    after = _request(fwd_settings, number)
    assert after.client_id != body_client and after.reply_email == CITIZEN
    again = run("requests", "reregister-forwarded", number)
    assert again.returncode == 1 and "уже перерегистрирован" in again.stderr, again.stderr
    drain(fwd_settings)
    assert sorted(rcpts[0] for rcpts, _m in _mail(sink)) == sorted([BODY, CITIZEN, BODY])  # ack, then both


def test_a_batch_prepared_in_worker_processes_reads_forwards_alike(fwd_settings: Settings, sink: Sink) -> None:
    """A poll's batch is prepared in worker processes and written in the fast mode (README "Throughput"): a forward
    crosses to the worker and back, and the proven one is written in its own savepoint."""
    citizens = [
        citizen_mail(sender=f"citizen{i}@example.ru", name=f"Гражданин {i}", body=f"Вопрос номер {i} об аренде?")
        for i in range(6)
    ]
    batch = [forward(PASS, message_id="<fwd-a@mfc.nso.example.ru>"), *citizens]
    batch.append(forward(message_id="<fwd-b@mfc.nso.example.ru>"))  # unproven: no verdict of ours
    assert len(batch) >= POOL_MIN_BATCH
    results = process_batch(fwd_settings, [(raw, Source("smtp", envelope_from=BODY)) for raw in batch])
    assert [r.outcome for r in results] == ["new_request"] * len(batch)
    proven, unproven = (
        _request(fwd_settings, results[0].request_number),
        _request(fwd_settings, results[-1].request_number),
    )
    assert (proven.reply_email, unproven.reply_email) == (CITIZEN, BODY)
    assert any("пересланное обращение" in n for n in _notes(fwd_settings, results[-1].request_number))
    assert not any("пересланное обращение" in n for r in results[1:-1] for n in _notes(fwd_settings, r.request_number))


def test_a_proven_forward_arrived_at_its_plausible_date(fwd_settings: Settings) -> None:
    """README: an e-mail's Date header counts as its arrival when it is no more than 3 days old and not in the
    future; a body's forward is an e-mail like any other (its terms count from its arrival, deadlines.term_start)."""
    sent = (utcnow() - dt.timedelta(days=1)).replace(microsecond=0)
    result = process_raw(fwd_settings, dated(forward(PASS), sent), Source("smtp", envelope_from=BODY))
    assert result.outcome == "new_request", result
    assert utc(_request(fwd_settings, result.request_number).received_at) == sent


def test_a_bodys_forward_following_up_its_own_finished_request_opens_a_linked_request(fwd_settings: Settings) -> None:
    """README "Replies to finished requests": a letter that follows up an answered request (found by its thread
    root, the first letter's Message-ID) opens a new request linked to it, whatever it carries; a proven body's
    forward in the body's own thread is such a letter (kills pipeline `_decide` 172, which registered it on its
    author as a first appeal, with no link)."""
    own = citizen_mail(sender=BODY, name="Приёмная МФЦ", subject="График приёма", body="Прошу сообщить график приёма.")
    first = process_raw(fwd_settings, own, Source("smtp", envelope_from=BODY))
    assert first.outcome == "new_request" and first.request_number, first
    with session_scope(fwd_settings) as session:
        request = session.scalars(select(Request).where(Request.number == first.request_number)).one()
        change_status(session, fwd_settings, request, Status.answered, now=utcnow(), actor="t", comment="Ответ.")
    message = email.message_from_bytes(forward(PASS, message_id="<fwd-2@mfc.nso.example.ru>"), policy=email.policy.SMTP)
    message["References"] = f"<{message_id_of(own)}>"
    result = process_raw(fwd_settings, message.as_bytes(policy=email.policy.SMTP), Source("smtp", envelope_from=BODY))
    assert result.outcome == "new_request" and result.request_number not in (None, first.request_number), result
    assert result.reason.startswith(f"follow-up to {first.request_number} "), result
    followed = _request(fwd_settings, first.request_number)
    assert _request(fwd_settings, result.request_number).parent_id == followed.id


def test_a_file_over_the_limit_in_a_proven_forward_is_noted_on_the_appeal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink
) -> None:
    """README: an attachment over `MAX_ATTACHMENT_BYTES` is not kept, and the history notes it and says why; for the
    citizen's appeal a proven body forwards as for any letter."""
    limit = 1024 * 1024
    env = {"forwarding_bodies": BODY_DOMAIN, "trusted_authserv_id": OURS, "max_attachment_bytes": str(limit)}
    settings = make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1", **env)
    reset_caches()
    message = email.message_from_bytes(forward(PASS), policy=email.policy.SMTP)
    assert isinstance(message, EmailMessage)
    message.add_attachment(b"\0" * (limit + 1024), maintype="application", subtype="zip", filename="scan.zip")
    result = process_raw(settings, message.as_bytes(policy=email.policy.SMTP), Source("smtp", envelope_from=BODY))
    assert result.outcome == "new_request" and result.request_number, result
    with session_scope(settings) as session:
        request = session.scalars(select(Request).where(Request.number == result.request_number)).one()
        assert request.reply_email == CITIZEN  # registered for the author: the forward was proven
        why = "«scan.zip» (файл больше 1 МБ, предельного размера вложения)"
        assert [e for e in request.events if e.kind == "note" and why in (e.comment or "")], [
            e.comment for e in request.events
        ]
        assert not request.attachments
