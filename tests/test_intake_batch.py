"""Writing a batch: the fast mode (one flush per batch) and the careful one (a savepoint per message) decide the
same, a failure in the fast mode loses nothing, and the worker processes that prepare batches can die safely.

On SQLite and PostgreSQL; the outcomes are spelled out, not compared between modes, so a wrong answer in both
would still fail.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.feedback.models import FeedbackResponse
from mailservice.inforequests import notifications, service
from mailservice.inforequests.lifecycle import Status
from mailservice.inforequests.models import Client, Request
from mailservice.intake import pipeline
from mailservice.intake.models import Bounce, IntakeEntry, Outcome
from mailservice.intake.pipeline import Source, process_batch, process_raw
from mailservice.intake.prepare import preparer_for
from mailservice.mail import compose
from mailservice.outbox import OutboxMessage
from tests.conftest import make_env
from tests.mailfactory import citizen_mail, html_mail, message_id_of

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)
AD = "Распродажа окон ПВХ со склада, скидки до 50%. Цены от 9 900 руб. Звоните! https://okna.example.com/sale"
EML = Path(__file__).parent / "data" / "eml"


def _source() -> Source:
    return Source("smtp", envelope_from="someone@example.ru")


def _careful_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every message in its own savepoint: what the service did before the fast mode existed.
    monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_a_mixed_batch_gets_the_same_decisions_in_both_modes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    if mode == "careful":
        _careful_only(monkeypatch)
    first = citizen_mail(sender="a@example.ru", name="Андреев А. А.", subject="Запрос о торгах")
    assert process_raw(settings, first, _source(), now=NOW).request_number == "2026-000001"
    with session_scope(settings) as session:
        ack_id = session.scalars(select(OutboxMessage.message_id)).one()
    # C's request is answered before the batch: C's thanks in the batch join it as feedback (issue 13).
    assert (
        process_raw(settings, citizen_mail(sender="c@example.ru"), _source(), now=NOW).request_number == "2026-000002"
    )
    with session_scope(settings) as session:
        answered = service.get_by_number(session, "2026-000002")
        assert answered is not None
        service.change_status(session, settings, answered, Status.answered, now=NOW, actor="t", comment="Ответ.")
        answered_id = answered.id
        answer_id = session.scalars(select(OutboxMessage.message_id).where(OutboxMessage.kind == "status_notice")).one()

    b1 = citizen_mail(sender="b@example.ru", name="Борисова Б. Б.", subject="Запрос о договорах аренды")
    batch = [
        b1,
        b1,  # the same message twice in one batch
        citizen_mail(sender="b@example.ru", name="Борисова Б. Б.", subject="Второй запрос о приватизации"),
        citizen_mail(sender="a@example.ru", subject="Re: ответ", body="Уточняю свой запрос.", in_reply_to=ack_id),
        citizen_mail(sender="a@example.ru", name="Андреев А. А.", subject="Новый запрос о выписке"),
        (EML / "10_yandex_vacation_autoreply.eml").read_bytes(),
        (EML / "12_postfix_dsn_ru.eml").read_bytes(),
        # b@ follows up on B1 of this very batch: it joins B1 (a thread root the database has not seen yet).
        citizen_mail(sender="b@example.ru", subject="Дополнение", body="Ещё вопрос.", references=[message_id_of(b1)]),
        b"Subject: no sender at all\r\n\r\nbody\r\n",
        # Register first (issue 13): advertising is held, a strict command is routed, thanks are feedback, and a
        # complaint that says «отписались» is a request like any other.
        citizen_mail(sender="promo@okna.example.com", name="", subject="Скидки!", body=AD),
        citizen_mail(sender="d@example.ru", subject="Отписаться от рассылки", body=""),
        citizen_mail(sender="c@example.ru", subject="Re: ответ", body="Спасибо за ответ!", in_reply_to=answer_id),
        citizen_mail(sender="e@example.ru", subject="Благодарность", body="Спасибо вам за помощь!"),
        citizen_mail(sender="f@example.ru", subject="Отписка", body="Опять отписались. Прошу разобраться."),
        # e@'s client was created by the thanks above (in its savepoint): e@'s request is that client's.
        citizen_mail(sender="e@example.ru", subject="Часы приёма", body="Прошу сообщить часы приёма."),
    ]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = process_batch(settings, [(raw, _source()) for raw in batch], now=NOW)
    # Written as it was first tried: nothing of the fast mode failed and made it write the batch again.
    assert "message by message" not in caplog.text

    assert [r.outcome for r in results] == [
        Outcome.new_request,
        Outcome.duplicate,
        Outcome.new_request,
        Outcome.reply,
        Outcome.new_request,
        Outcome.ignored_auto_reply,
        Outcome.bounce,
        Outcome.reply,
        Outcome.quarantined,
        Outcome.held,
        Outcome.routed,
        Outcome.feedback,
        Outcome.feedback,
        Outcome.new_request,
        Outcome.new_request,
    ]
    # Gap-free and in the order of the mailbox.
    assert [r.request_number for r in results if r.outcome is Outcome.new_request] == [
        "2026-000003",
        "2026-000004",
        "2026-000005",
        "2026-000006",
        "2026-000007",
    ]
    with session_scope(settings) as session:
        entries = session.scalars(select(IntakeEntry).order_by(IntakeEntry.id)).all()
        assert len(entries) == 2 + len(batch)
        by_number = {r.number: r for r in session.scalars(select(Request)) if r.number}
        b_first, b_second, a_second = by_number["2026-000003"], by_number["2026-000004"], by_number["2026-000005"]
        a_first = by_number["2026-000001"]
        # One client per address, whether it existed before the batch (a@) or was created in it (b@).
        assert b_first.client_id == b_second.client_id
        assert a_second.client_id == a_first.client_id
        assert session.scalar(select(Client).where(Client.id == b_first.client_id)).name == "Борисова Б. Б."
        # a, b, c, the advertiser, e (thanks) and f; the unsubscribe command creates no client.
        assert len(session.scalars(select(Client)).all()) == 6
        batch_entries = entries[2:]
        assert batch_entries[1].duplicate_of_id == batch_entries[0].id
        assert batch_entries[1].request_id == b_first.id
        assert batch_entries[3].request_id == a_first.id
        assert batch_entries[7].request_id == b_first.id
        assert [e.kind for e in b_first.events].count("message_in") == 2
        assert session.scalars(select(Bounce)).one().intake_id == batch_entries[6].id
        assert batch_entries[8].reason.startswith("unparseable")
        held = session.get(Request, batch_entries[9].request_id)
        assert held is not None and held.status == "received" and held.number is None
        assert batch_entries[10].reason.startswith("mailing: withdrawal requested")
        feedback = session.scalars(select(FeedbackResponse).order_by(FeedbackResponse.id)).all()
        assert [(f.request_id, f.rating) for f in feedback] == [(answered_id, None), (None, None)]
        assert batch_entries[11].request_id == answered_id
        assert by_number["2026-000007"].client_id == feedback[1].client_id
        # One acknowledgement per registration, each threaded to its request.
        acks = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).all()
        assert sorted(a.request_id for a in acks) == sorted(r.id for r in by_number.values())


def test_a_failure_in_the_fast_mode_rewrites_the_batch_message_by_message(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = service.create_request

    def failing(*args: object, **kwargs: object) -> Request:
        if "СБОЙ" in str(kwargs.get("subject")):
            raise RuntimeError("simulated bug")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "create_request", failing)
    subjects = ["Первый запрос", "СБОЙ в обработке", "Третий запрос"]
    batch = [(citizen_mail(sender=f"c{i}@example.ru", subject=s), _source()) for i, s in enumerate(subjects)]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = process_batch(settings, batch, now=NOW)
    assert "writing it message by message" in caplog.text
    assert [r.outcome for r in results] == [Outcome.new_request, Outcome.quarantined, Outcome.new_request]
    assert "simulated bug" in results[1].reason
    assert [results[0].request_number, results[2].request_number] == ["2026-000001", "2026-000002"]
    with session_scope(settings) as session:
        assert len(session.scalars(select(IntakeEntry)).all()) == 3
        assert len(session.scalars(select(Request)).all()) == 2


def test_batches_are_prepared_in_worker_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> None:
    settings = make_env(monkeypatch, tmp_path, db_url, intake_workers="1")
    batch = [(citizen_mail(sender=f"w{i}@example.ru", subject=f"Запрос {i}"), _source()) for i in range(12)]
    results = process_batch(settings, batch, now=NOW)
    assert preparer_for(settings).workers_running
    assert [r.request_number for r in results] == [f"2026-{i:06d}" for i in range(1, 13)]


def test_the_workers_collect_garbage_as_seldom_as_the_warmed_up_poller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    """A letter leaves thousands of short-lived objects in a worker as in the poller: both raise the collector's
    thresholds from Python's default (700, 10, 10), alike."""
    settings = make_env(monkeypatch, tmp_path, db_url, intake_workers="1")
    thresholds = gc.get_threshold()
    try:
        pipeline.warm_up(settings)
        pool = preparer_for(settings)._executor()
        assert pool is not None
        assert pool.submit(gc.get_threshold).result() == gc.get_threshold() != (700, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_a_worker_killed_mid_batch_is_replaced_and_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_env(monkeypatch, tmp_path, db_url, intake_workers="1", fault="prepare_worker:1")
    messages = [citizen_mail(sender=f"k{i}@example.ru", subject=f"Запрос {i}") for i in range(24)]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.prepare"):
        first = process_batch(settings, [(raw, _source()) for raw in messages[:12]], now=NOW)
        second = process_batch(settings, [(raw, _source()) for raw in messages[12:]], now=NOW)
    assert "intake worker pool broke" in caplog.text  # the worker really was killed, twice
    numbers = [r.request_number for r in first + second]
    assert numbers == [f"2026-{i:06d}" for i in range(1, 25)]


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_an_appeal_by_plain_email_gets_the_legal_channels_threaded_to_itself_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, mode: str
) -> None:
    settings = make_env(monkeypatch, tmp_path, db_url, appeal_by_email="redirect_only")
    if mode == "careful":
        _careful_only(monkeypatch)
    # Mail of ours that concerns no request (a subscription confirmation, say): not part of any citizen's thread.
    with session_scope(settings) as session:
        session.add(
            OutboxMessage(
                kind="mailing_confirm",
                message_id="other@dizo.test",
                mail_from="info@dizo.test",
                recipients="x@example.ru",
                raw=b"",
                ref_type="subscriber",
            )
        )
    appeal = citizen_mail(
        sender="c@example.ru",
        subject="Жалоба на действия специалиста департамента",
        body="Прошу рассмотреть мою жалобу: специалист отказался принять документы и нагрубил мне на приёме.",
    )
    [result] = process_batch(settings, [(appeal, _source())], now=NOW)
    assert result.outcome is Outcome.new_request and result.request_number is None
    with session_scope(settings) as session:
        request = session.scalars(select(Request)).one()
        assert request.type == "appeal" and request.status == "closed"
        notice = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "appeal_channels")).one()
        assert notice.request_id == request.id
        headers = notice.raw.decode("ascii", "replace")
        assert f"References: <{message_id_of(appeal)}>" in headers
        assert "other@dizo.test" not in headers


@pytest.mark.parametrize("mode", ["fast", "careful"])
def test_an_acknowledgement_has_the_bytes_of_its_template_rendered_in_full(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Intake writes acknowledgements from a text rendered once per kind (notifications._quick_acknowledgement):
    each must be byte for byte the letter build_message makes from the template for that request."""
    if mode == "careful":
        _careful_only(monkeypatch)
    monkeypatch.setattr(compose, "utcnow", lambda: NOW)  # the Date header of both builds
    long_subject = "Запрос о предоставлении сведений о земельных участках, " * 3
    batch = [
        citizen_mail(sender="a@example.ru", name="Андреев Андрей Андреевич", subject="Запрос о торгах"),
        citizen_mail(sender="b@example.ru", name='John "Jack" Smith', subject=long_subject),
        citizen_mail(sender="c@example.ru", name="ООО «Ромашка»", subject=None),
        citizen_mail(sender="d@example.ru", name="", subject="Жалоба", body="Прошу разобраться: нагрубили на приёме."),
        citizen_mail(sender="e@example.ru", name="Ёлкина Е.", subject="Subject in ASCII only"),
        html_mail(sender="f@example.ru", name="Фёдоров Ф. Ф.", subject="Письмо в HTML", paragraphs=["Прошу ответить."]),
    ]
    results = process_batch(settings, [(raw, _source()) for raw in batch], now=NOW)
    assert [r.outcome for r in results] == [Outcome.new_request] * len(batch)
    with session_scope(settings) as session:
        acks = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement")).all()
        assert len(acks) == len(batch)
        built = {row.request_id: (row.message_id, row.raw, row.subject) for row in acks}
    # The same acknowledgement again, built the long way with the same Message-ID, in a transaction rolled back.
    monkeypatch.setattr(notifications, "_quick_acknowledgement", lambda *args: None)
    for request_id, (message_id, raw, subject) in built.items():
        monkeypatch.setattr(compose, "new_message_id", lambda _settings, known=message_id: known)
        with pytest.raises(_RolledBack), session_scope(settings) as session:
            request = session.get(Request, request_id)
            assert request is not None
            row = notifications.acknowledgement(session, settings, request, NOW)
            assert row is not None
            assert (row.raw, row.subject) == (raw, subject)
            raise _RolledBack
    # The variants really occurred: an encoded name folded, no name, the subject folded over two lines.
    raws = b"".join(raw for _id, raw, _subject in built.values())
    assert b"?=\r\n =?utf-8?b?0Yc=?= <a@example.ru>\r\n" in raws and b"To: d@example.ru\r\n" in raws
    assert raws.count(b"?=\r\n =?utf-8?b?") >= 2 * len(batch)


class _RolledBack(Exception):
    """Leaves a session_scope without committing."""
