"""The fast mode writes history events, outbox rows and attachments with Core executemany (mailservice/bulk.py):
the rows must be the very rows the careful mode (one message at a time, ORM objects, a savepoint each) writes for
the same messages, in the same order (ids increasing in the order of the messages), on SQLite and PostgreSQL.

The same batch goes through both modes on an emptied database (sequences restarted), and every table is compared
row by row, ids and foreign keys included; only what differs by nature is left out (the moment an outbox row was
queued, its random Message-ID, which is masked in the letter's bytes, and the Date header of the letter).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import logging
import re
import shutil
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailservice import bulk, db
from mailservice.config import Settings
from mailservice.db import Base, session_scope
from mailservice.inforequests import identity, search_index
from mailservice.inforequests.models import ClientContact, Event
from mailservice.inforequests.search_index import SearchDocument
from mailservice.intake import pipeline
from mailservice.intake.models import Outcome
from mailservice.intake.pipeline import Source, process_batch, process_raw
from tests.conftest import _truncate_pg, make_env, reset_caches
from tests.mailfactory import citizen_mail, html_mail, mail_mix_messages, message_id_of
from tests.test_forwarded_intake import forward

NOW = dt.datetime(2026, 3, 2, 5, 0, tzinfo=dt.UTC)
EML = Path(__file__).parent / "data" / "eml"
AD = "Распродажа окон ПВХ со склада, скидки до 50%. Цены от 9 900 руб. Звоните! https://okna.example.com/sale"
LIMIT = 2  # acknowledgements per address and hour (the third letter of an address gets a note instead)
ATTACHMENT_LIMIT = 4000  # bytes: the larger attachment below is not kept


def _source() -> Source:
    return Source("smtp", envelope_from="someone@example.ru")


def _with_files(sender: str, files: list[tuple[str, int]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Петров П. П. <{sender}>"
    msg["To"] = "info@dizo.test"
    msg["Subject"] = "Запрос с документами"
    msg["Message-ID"] = f"<files-{sender}>"
    msg.set_content("Прошу рассмотреть приложенные документы о границах участка.")
    for name, size in files:
        msg.add_attachment(b"%" * size, maintype="application", subtype="pdf", filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)


def _batch(first: bytes) -> list[bytes]:
    """Plain letters of every kind the fast mode writes, with a few that go to their own savepoint in between."""
    repeated = citizen_mail(sender="b@example.ru", name="Борисова Б. Б.", subject="Запрос о договорах аренды")
    return [
        repeated,
        html_mail(sender="h@example.ru", subject="Ремонт дороги", paragraphs=["Прошу отремонтировать дорогу."]),
        repeated,  # a copy: its own savepoint, between letters written in bulk
        citizen_mail(sender="promo@okna.example.com", name="", subject="Скидки!", body=AD),  # held: a note
        citizen_mail(sender="long@example.ru", name="Я" * 320, subject="Длинное имя"),  # a staff note: name cut
        _with_files("p@example.ru", [("small.pdf", 100), ("big.pdf", ATTACHMENT_LIMIT * 2)]),  # one kept, one not
        # A follow-up of the first letter (by its Message-ID): joins it, in its own savepoint.
        citizen_mail(
            sender="z@example.ru", subject="Re: торги", body="Уточняю свой запрос.", references=[message_id_of(first)]
        ),
        citizen_mail(sender="z@example.ru", subject="Дополнение к обращению № 2026-000001", body="Ещё вопрос."),
        *[citizen_mail(sender="q@example.ru", subject=f"Вопрос {i}", body=f"Вопрос номер {i}.") for i in range(3)],
        forward(sender="office@example.ru"),  # no forwarding body: a note names the author
        (EML / "10_yandex_vacation_autoreply.eml").read_bytes(),
        (EML / "12_postfix_dsn_ru.eml").read_bytes(),
        # A question under an unsubscribe subject: registered, and the withdrawal carried out (in bulk too).
        citizen_mail(sender="u@example.ru", subject="Отписаться", body="Отпишите меня и сообщите, когда торги."),
        citizen_mail(sender="c@example.ru", name="Сидоров С. С.", subject="Последний запрос"),
    ]


# Columns that differ by nature between two runs (not by what intake decided).
_SKIP = {"outbox": {"created_at", "next_attempt_at", "message_id"}}
_DATE = re.compile(rb"^Date: .*\r\n", re.MULTILINE)


def _snapshot(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows in id order, as plain values."""
    found: dict[str, list[dict[str, Any]]] = {}
    with session_scope(settings) as session:
        conn = session.connection()
        for table in Base.metadata.sorted_tables:
            order = list(table.primary_key.columns)
            rows = [dict(row._mapping) for row in conn.execute(select(table).order_by(*order))]
            for row in rows:
                if table.name == "outbox":
                    row["raw"] = _DATE.sub(b"", row["raw"].replace(row["message_id"].encode(), b"<id>"))
                for column in _SKIP.get(table.name, ()):
                    row.pop(column)
            if rows:
                found[table.name] = rows
    return found


def _run(settings: Settings, first: bytes, batch: list[bytes]) -> tuple[list[Outcome], dict[str, list[Any]]]:
    """The first letter from z@ (its address then proven), then the batch; the outcomes and every table."""
    assert process_raw(settings, first, _source(), now=NOW).request_number == "2026-000001"
    with session_scope(settings) as session:
        contact = session.scalars(select(ClientContact).where(ClientContact.value == "z@example.ru")).one()
        identity.prove(session, contact.client, "z@example.ru", identity.Proof.in_person, NOW, actor="t")
    results = process_batch(settings, [(raw, _source()) for raw in batch], now=NOW)
    return [r.outcome for r in results], _snapshot(settings)


def _empty(db_url: str, template: Path) -> None:
    db.dispose_engines()
    if db_url.startswith("sqlite"):
        shutil.copyfile(template, db_url.removeprefix("sqlite:///"))
    else:
        _truncate_pg(db_url)


def test_the_bulk_rows_are_the_rows_of_the_careful_mode(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
    sink: Any,
    _sqlite_template: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_env(
        monkeypatch,
        tmp_path,
        db_url,
        smtp_port=str(sink.port),
        smtp_host="127.0.0.1",
        ack_limit_per_hour=str(LIMIT),
        max_attachment_bytes=str(ATTACHMENT_LIMIT),
    )
    written: list[int] = []
    original = bulk.write

    def counting(session: Any) -> None:
        written.append(len(bulk.queued(session)))
        original(session)

    monkeypatch.setattr(bulk, "write", counting)
    first = citizen_mail(sender="z@example.ru", name="Зайцев З. З.", subject="Запрос о торгах")
    batch = _batch(first)  # built once: Message-IDs and dates are the same in both runs
    with caplog.at_level(logging.WARNING, logger="mailservice.intake.pipeline"):
        fast_outcomes, fast = _run(settings, first, batch)
    assert "writing it message by message" not in caplog.text  # the fast mode held: no fallback
    assert sum(written) > 0, "nothing was written in bulk"

    _empty(db_url, _sqlite_template)
    # Every message in its own savepoint with ORM objects: the service before the fast mode existed.
    monkeypatch.setattr(pipeline.BatchLookups, "plain", lambda self, prepared: False)
    written.clear()
    careful_outcomes, careful = _run(settings, first, batch)
    assert sum(written) == 0

    assert fast_outcomes == careful_outcomes
    assert Outcome.new_request in fast_outcomes and Outcome.reply in fast_outcomes
    assert fast.keys() == careful.keys()
    for table in careful:
        assert len(fast[table]) == len(careful[table]), table
        for fast_row, careful_row in zip(fast[table], careful[table], strict=True):
            assert fast_row == careful_row, table
    # The batch did write what the comparison is about.
    kinds = [row["kind"] for row in careful["events"]]
    assert {"message_in", "registered", "message_out", "note"} <= set(kinds)
    notes = [row["data"] for row in careful["events"] if row["kind"] == "note"]
    assert any(data.get("auto_reply_suppressed") for data in notes)
    assert any(data.get("held") for data in notes)
    assert any(data.get("mentions") for data in notes)
    assert any(data.get("forwarded_author") for data in notes)
    assert any("просьба отписаться" in (row["comment"] or "") for row in careful["events"] if row["kind"] == "note")
    kept = [row["filename"] for row in careful["attachments"]]
    assert "small.pdf" in kept and "big.pdf" not in kept
    reset_caches()


def test_an_orm_event_among_bulk_rows_is_refused(settings: Settings) -> None:
    """Mixed in one flush, the ORM's row would take an id before the queued ones: the flush is refused."""
    citizen = citizen_mail(sender="m@example.ru")
    assert process_raw(settings, citizen, _source(), now=NOW).outcome is Outcome.new_request
    with session_scope(settings) as session:
        contact = session.scalars(select(ClientContact)).one()
        bulk.start(session)
        bulk.add(session, Event, {"at": NOW, "kind": "note", "comment": "queued"}, client_id=contact.client)
        session.add(Event(client=contact.client, at=NOW, kind="note", comment="orm"))
        with pytest.raises(RuntimeError, match="queued in bulk"):
            session.flush()
        session.rollback()


def test_the_index_written_by_a_bulk_batch_is_the_index_computed_afresh(settings: Settings) -> None:
    """The search documents of a batch written in bulk (the requests its rows point at are noted by bulk's hook)
    are those the index computes from the data alone."""
    first = citizen_mail(sender="z@example.ru", name="Зайцев З. З.", subject="Запрос о торгах")
    batch = [*_batch(first), *mail_mix_messages(20)]
    process_batch(settings, [(raw, _source()) for raw in [first, *batch]], now=NOW)
    with session_scope(settings) as session:
        conn = session.connection()
        stored = {row.request_id: (row.head, row.body) for row in conn.execute(select(SearchDocument))}
        assert len(stored) > 20
        fresh = {row["request_id"]: (row["head"], row["body"]) for row in search_index.documents(conn, list(stored))}
    assert stored == fresh
