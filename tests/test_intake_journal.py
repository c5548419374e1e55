"""The intake journal: one row per message, an IMAP message never handled twice (README "Intake" and "Crash safety
of the poller"), and what a row records. SQLite and PostgreSQL. Written for the mutants of intake/pipeline.py's
`_seen`, `_seen_many`, `_entry`, `_careful_one` and `_quarantine` that only the Dovecot tests reached
(docs/mutation.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mailservice.config import Settings
from mailservice.db import session_scope
from mailservice.inforequests import service
from mailservice.inforequests.models import Request
from mailservice.intake import pipeline, prepare
from mailservice.intake.models import IntakeEntry, Outcome
from mailservice.intake.pipeline import IntakeResult, Source, process_batch
from mailservice.intake.russian import reason_ru
from tests.mailfactory import citizen_mail, message_id_of
from tests.servers import Sink
from tests.test_intake_list_mail import COMPLAINT, LIST
from tests.test_intake_pipeline_rules import utc
from tests.test_intake_register_first import AD, _answered

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)


def imap(mailbox: str, uidvalidity: int, uid: int) -> Source:
    return Source("imap", mailbox=mailbox, uidvalidity=uidvalidity, uid=uid, envelope_from="bounce@example.ru")


def letter(number: int) -> bytes:
    return citizen_mail(sender=f"c{number}@example.ru", subject=f"Запрос {number}")


def counts(settings: Settings) -> tuple[int, int]:
    """Journal rows and requests."""
    with session_scope(settings) as session:
        return session.scalar(select(func.count(IntakeEntry.id))) or 0, session.scalar(
            select(func.count(Request.id))
        ) or 0


def outcomes(results: list[IntakeResult]) -> list[tuple[Outcome, str | None, bool]]:
    return [(r.outcome, r.request_number, r.already_seen) for r in results]


def test_an_imap_message_journaled_already_is_not_handled_again(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """README: a kill after the commit and before the move leaves the message in the folder; the next poll finds its
    (mailbox, UIDVALIDITY, UID) in the journal (the *seen* step) and does nothing again. A UID names a message only in
    its mailbox and with its UIDVALIDITY (RFC 3501 2.3.1.1): the same UID elsewhere is another message."""
    first = process_batch(settings, [(letter(1), imap("INBOX", 7, 1)), (letter(2), imap("INBOX", 7, 2))], now=NOW)
    assert outcomes(first) == [(Outcome.new_request, "2026-000001", False), (Outcome.new_request, "2026-000002", False)]
    again = [(letter(2), imap("INBOX", 7, 2)), (letter(3), imap("Archive", 7, 1)), (letter(4), imap("INBOX", 8, 1))]
    again += [(letter(1), imap("INBOX", 7, 1)), (letter(5), imap("INBOX", 7, 3))]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        second = process_batch(settings, again, now=NOW + dt.timedelta(minutes=1))
    assert [(r.outcome, r.already_seen) for r in (second[0], second[3])] == [(Outcome.new_request, True)] * 2
    assert [second[0].entry_id, second[3].entry_id] == [first[1].entry_id, first[0].entry_id]
    assert [outcomes([r])[0] for r in (second[1], second[2], second[4])] == [
        (Outcome.new_request, number, False) for number in ("2026-000003", "2026-000004", "2026-000005")
    ]
    assert counts(settings) == (5, 5)
    # Found by the seen step, not by the unique key refusing a second row (which would rewrite the whole batch).
    assert "message by message" not in caplog.text


def test_a_message_another_poller_journaled_meanwhile_is_theirs(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pollers on one folder: the other commits the same IMAP message after our look-up. The unique key refuses
    our row; the message is theirs (already seen), nothing is quarantined, and the next letter of our batch is
    registered with the next number (gap-free)."""
    # Messages that share two of the three parts of its identity, journaled before it and sorting before it.
    near = [(letter(7), imap("INBOX", 7, 1)), (letter(8), imap("INBOX", 6, 2)), (letter(9), imap("Archive", 7, 2))]
    process_batch(settings, near, now=NOW)
    theirs = process_batch(settings, [(letter(1), imap("INBOX", 7, 2))], now=NOW)[0]
    # Our look-up ran before their commit: it found nothing.
    monkeypatch.setattr(pipeline, "_seen_many", lambda session, sources: {})
    ours = process_batch(settings, [(letter(1), imap("INBOX", 7, 2)), (letter(2), imap("INBOX", 7, 3))], now=NOW)
    assert (ours[0].entry_id, ours[0].outcome, ours[0].already_seen) == (theirs.entry_id, Outcome.new_request, True)
    assert outcomes([ours[1]]) == [(Outcome.new_request, "2026-000005", False)]
    assert counts(settings) == (5, 5)
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).where(IntakeEntry.outcome == Outcome.quarantined)) == 0


def test_a_batch_written_message_by_message_quarantines_each_bad_one_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: an unexpected error quarantines the message with its reason and the raw bytes stay; in the careful
    mode (a savepoint per message) its neighbours are registered. An integrity error that is not the IMAP key (a
    bug, a constraint) is one such error; so is any other exception, named in the reason staff read."""
    original = service.create_request

    def failing(*args: object, **kwargs: object) -> Request:
        subject = str(kwargs.get("subject"))
        if "СБОЙ" in subject:
            raise IntegrityError("INSERT", {}, Exception("simulated constraint"))
        if "ОШИБКА" in subject:
            raise RuntimeError("simulated bug")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "create_request", failing)
    fail_preparing(monkeypatch)
    garbage = b"\x00\x01\x02 this is not a message at all \xff\xfe"
    batch = [
        (letter(1), imap("INBOX", 7, 1)),
        (citizen_mail(sender="x@example.ru", subject="СБОЙ"), imap("INBOX", 7, 2)),
    ]
    batch += [
        (citizen_mail(sender="y@example.ru", subject="ОШИБКА"), imap("INBOX", 7, 3)),
        (garbage, imap("INBOX", 7, 4)),
    ]
    batch += [(citizen_mail(sender="z@example.ru", subject="ПОДГОТОВКА"), imap("INBOX", 7, 5))]
    batch += [(letter(6), imap("INBOX", 7, 6))]
    results = process_batch(settings, batch, now=NOW)
    assert outcomes(results) == [
        (Outcome.new_request, "2026-000001", False),
        (Outcome.quarantined, None, False),
        (Outcome.quarantined, None, False),
        (Outcome.quarantined, None, False),
        (Outcome.quarantined, None, False),
        (Outcome.new_request, "2026-000002", False),
    ]
    assert results[1].reason == "database integrity error"
    assert results[2].reason == "internal error: RuntimeError: simulated bug"
    assert results[3].reason.startswith("unparseable")
    assert results[4].reason == "internal error: RuntimeError: simulated preparation bug"
    senders = ("x@example.ru", "y@example.ru", None, "z@example.ru")
    with session_scope(settings) as session:
        for result, uid, sender in zip(results[1:5], (2, 3, 4, 5), senders, strict=True):
            entry = session.get(IntakeEntry, result.entry_id)
            assert entry is not None
            assert (entry.mailbox, entry.uid, entry.from_addr, entry.reason) == ("INBOX", uid, sender, result.reason)
            assert utc(entry.received_at) == NOW
        rows = [session.get_one(IntakeEntry, result.entry_id) for result in results]
        assert [utc(row.received_at) for row in rows] == [NOW] * len(results)  # the moment intake took each
        garbage_entry = session.get(IntakeEntry, results[3].entry_id)
        assert garbage_entry is not None and garbage_entry.size == len(garbage)
    assert counts(settings) == (6, 2)


def test_an_unreadable_message_in_a_batch_is_quarantined_by_the_fast_mode_itself(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that are no message at all (nothing could be parsed, not even a sender) are quarantined beside the
    batch's letters: nothing in the fast mode trips over a message with nothing read, so the batch is not written
    again message by message."""
    garbage = b"\x00\x01\x02 this is not a message at all \xff\xfe"
    batch = [(garbage, imap("INBOX", 7, 1)), (letter(2), imap("INBOX", 7, 2))]
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        results = process_batch(settings, batch, now=NOW)
    assert "message by message" not in caplog.text
    assert outcomes(results) == [(Outcome.quarantined, None, False), (Outcome.new_request, "2026-000001", False)]
    assert results[0].reason.startswith("unparseable")


def fail_preparing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing a letter titled «ПОДГОТОВКА» fails after it was parsed (a bug in the advertising check)."""
    original = prepare.hold_reasons

    def failing(subject: str, *args: Any, **kwargs: Any) -> tuple[str, ...]:
        if "ПОДГОТОВКА" in subject:
            raise RuntimeError("simulated preparation bug")
        return original(subject, *args, **kwargs)

    monkeypatch.setattr(prepare, "hold_reasons", failing)


def test_a_letter_whose_preparation_failed_is_quarantined_with_what_was_read(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A letter parsed but not prepared (an error after parsing) is quarantined with that error, and its journal
    row keeps what was read of it (sender, subject, Message-ID) for staff. The fast mode quarantines it itself: the
    batch is not written again message by message."""
    fail_preparing(monkeypatch)
    raw = citizen_mail(sender="z@example.ru", subject="ПОДГОТОВКА")
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        result = process_batch(settings, [(raw, imap("INBOX", 7, 1))], now=NOW)[0]
    assert "message by message" not in caplog.text
    assert (result.outcome, result.reason) == (
        Outcome.quarantined,
        "internal error: RuntimeError: simulated preparation bug",
    )
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None
        assert (entry.from_addr, entry.subject, entry.message_id) == ("z@example.ru", "ПОДГОТОВКА", message_id_of(raw))
        assert utc(entry.received_at) == NOW


def test_the_journal_row_records_where_the_message_came_from(settings: Settings) -> None:
    """Each row records when intake took the message, how and from where (IMAP identity, envelope sender), its
    Message-ID, sender and subject, and the raw bytes' hash and size (the blob it is kept under)."""
    raw = citizen_mail(sender="petrov@example.ru", subject="Запрос о торгах " + "я" * 600)
    result = process_batch(settings, [(raw, imap("INBOX", 7, 42))], now=NOW)[0]
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None
        assert (entry.source, entry.mailbox, entry.uidvalidity, entry.uid) == ("imap", "INBOX", 7, 42)
        assert (entry.envelope_from, entry.from_addr) == ("bounce@example.ru", "petrov@example.ru")
        assert entry.message_id == message_id_of(raw)
        assert entry.subject == ("Запрос о торгах " + "я" * 600)[:500]  # the column holds 500 characters
        assert (entry.raw_sha256, entry.size) == (hashlib.sha256(raw).hexdigest(), len(raw))
        assert entry.content_hash != entry.raw_sha256  # trace headers aside (README "dedupe")
        assert utc(entry.received_at) == NOW


def test_an_unparseable_message_is_journaled_by_its_bytes(settings: Settings) -> None:
    """A message that cannot be read is quarantined with what is known of it: its bytes' hash (its content, for
    the duplicate check) and size, where it came from, no sender, no subject, no Message-ID."""
    garbage = b"\x00\x01\x02 this is not a message at all \xff\xfe"
    result = process_batch(settings, [(garbage, imap("INBOX", 7, 9))], now=NOW)[0]
    assert (result.outcome, result.request_number) == (Outcome.quarantined, None)
    with session_scope(settings) as session:
        entry = session.get(IntakeEntry, result.entry_id)
        assert entry is not None
        sha = hashlib.sha256(garbage).hexdigest()
        assert (entry.content_hash, entry.raw_sha256, entry.size) == (sha, sha, len(garbage))
        assert (entry.message_id, entry.from_addr, entry.subject) == (None, None, "")
        assert (entry.reason, entry.uid, entry.envelope_from) == (result.reason, 9, "bounce@example.ru")
        assert result.reason


def test_the_reasons_of_feedback_and_held_letters_read_in_russian(settings: Settings, sink: Sink) -> None:
    """The CLI shows each journal reason in Russian (T3; intake/russian.py reads the reason intake records): a thank-you
    for our answer names the request, one to nothing of ours says so, a held letter says it waits for staff."""
    number, answer_id = _answered(settings, sink, "grateful@example.ru")
    thanks = citizen_mail(
        sender="grateful@example.ru", subject="Re: ответ", body="Большое спасибо за ответ!", in_reply_to=answer_id
    )
    standalone = citizen_mail(
        sender="kind@example.ru",
        subject="Благодарность",
        body="Благодарю специалиста Смирнову О. В. за помощь в оформлении документов.",
    )
    advertising = citizen_mail(sender="promo@okna.example.com", name="", subject="Скидки!", body=AD)
    relayed = citizen_mail(sender="petrova@example.ru", subject="Мусор", body=COMPLAINT, headers=LIST)
    later = NOW + dt.timedelta(days=1)
    results = [
        process_batch(settings, [(raw, imap("INBOX", 7, uid))], now=later)[0]
        for uid, raw in enumerate((thanks, standalone, advertising, relayed), start=100)
    ]
    assert [r.outcome for r in results] == [Outcome.feedback, Outcome.feedback, Outcome.held, Outcome.held]
    assert [reason_ru(r.reason) for r in results] == [
        f"благодарность за ответ {number}, без нового обращения",
        "благодарность, без обращения",
        # Each held letter says why: advertising, or the rule of triage that held it (a list's copy that asks).
        "ждёт решения сотрудника без регистрации: похоже на рекламу",
        "ждёт решения сотрудника без регистрации: письмо из списка рассылки с вопросом",
    ]
