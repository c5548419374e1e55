"""Lists that grow with the years come a page at a time (a client's timeline and requests, the clients found, the
search), and the whole register downloads as a streamed CSV (issue 19)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import insert, select

from mailservice.config import Settings
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Client, Event, Request
from mailservice.web.staff import auth
from mailservice.web.staff.models import AuditEntry
from tests.console_support import add_staff, client_for, login, staff_request


def _phone_request(
    settings: Settings, name: str, subject: str, text: str = "Текст", client_id: int | None = None
) -> tuple[int, int]:
    return staff_request(settings, name=name, subject=subject, text=text, client_id=client_id)


def _operator(settings: Settings):  # type: ignore[no-untyped-def]
    add_staff(settings, "op@dizo.test", auth.Role.operator)
    http = client_for(settings)
    login(http, "op@dizo.test")
    return http


def test_register_downloads_whole_and_formula_safe(settings: Settings) -> None:
    for i in range(3):
        _phone_request(settings, f"Клиент {i}", f"Тема {i}")
    _phone_request(settings, "Злоумышленник", '=HYPERLINK("http://evil.example","x")')
    anonymous = client_for(settings).get("/staff/queue/register.csv?status=all")
    assert anonymous.status_code == 303 and "/staff/login" in anonymous.headers["location"]
    http = _operator(settings)
    with http.stream("GET", "/staff/queue/register.csv?status=all") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        body = b"".join(response.iter_bytes()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    # The Russian columns of the register (README, the register of the Procedure p. 8), one row per request.
    assert list(rows[0])[:5] == ["№", "Дата и время поступления", "Дата регистрации", "Канал", "Заявитель"]
    assert len(rows) == 4
    assert [r["Заявитель"] for r in rows[:3]] == ["Клиент 0", "Клиент 1", "Клиент 2"]
    evil = rows[3]["Тема письма"]
    assert not evil.startswith("="), evil  # a spreadsheet would run it
    with session_scope(settings) as session:
        assert session.scalar(select(AuditEntry.action).where(AuditEntry.action == "register_export"))


def test_register_export_reads_past_one_chunk(settings: Settings) -> None:
    from mailservice.inforequests.export import register_rows

    for i in range(7):
        _phone_request(settings, f"Клиент {i}", f"Тема {i}")
    with session_scope(settings) as session:
        rows = list(register_rows(session, settings, dt.date(2026, 12, 5), chunk=3))
        numbers = list(session.scalars(select(Request.number).order_by(Request.registered_at, Request.id)))
    assert [r["number"] for r in rows] == numbers and len(rows) == 7


def test_client_timeline_and_requests_come_in_pages(settings: Settings) -> None:
    rid, cid = _phone_request(settings, "Частый Заявитель", "Первый")
    base = utcnow() - dt.timedelta(days=400)
    with session_scope(settings) as session:
        session.execute(
            insert(Event),
            [
                {
                    "client_id": cid,
                    "request_id": rid,
                    "at": base + dt.timedelta(hours=i),
                    "kind": "note",
                    "comment": f"Запись {i:03d}",
                    "channel": "",
                    "direction": "",
                    "actor": "",
                    "data": {},
                }
                for i in range(250)
            ],
        )
    for i in range(55):
        _phone_request(settings, "Частый Заявитель", f"Запрос {i}", client_id=cid)
    http = _operator(settings)
    page = http.get(f"/staff/clients/{cid}")
    assert page.status_code == 200
    # 250 old notes + the events of 56 requests: the newest 200 first; the oldest notes on a later page.
    assert "Запись 000" not in page.text
    assert "страница 1 из" in page.text
    pages = int(re.search(r"страница 1 из (\d+) \(всего (\d+)\)", page.text).group(1))  # type: ignore[union-attr]
    last = http.get(f"/staff/clients/{cid}?tl={pages}")
    assert "Запись 000" in last.text and "Запрос 54" not in last.text.split("История взаимодействия")[-1]
    # Requests: 56, newest first, 50 a page.
    assert "Запрос 54" in page.text and "Первый" not in page.text.split("История взаимодействия")[0]
    second = http.get(f"/staff/clients/{cid}?rq=2")
    assert "Первый" in second.text
    # Out-of-range and junk page numbers fall back to a real page, never an error.
    for junk in ("0", "-1", "abc", "99999999999999999999"):
        assert http.get(f"/staff/clients/{cid}?tl={junk}&rq={junk}").status_code == 200
        assert http.get(f"/staff/requests/{rid}?tl={junk}").status_code == 200


def test_clients_found_come_in_pages(settings: Settings) -> None:
    with session_scope(settings) as session:
        session.execute(
            insert(Client),
            [{"name": f"Однофамилец {i:02d}", "organisation": "", "postal_address": ""} for i in range(60)],
        )
    http = _operator(settings)
    first = http.get("/staff/clients", params={"q": "Однофамилец"})
    assert first.status_code == 200
    assert first.text.count("Однофамилец ") == 50 and "страница 1 из 2" in first.text
    second = http.get("/staff/clients", params={"q": "Однофамилец", "page": "2"})
    assert second.text.count("Однофамилец ") == 10


def test_search_results_come_in_pages(settings: Settings) -> None:
    for i in range(53):
        _phone_request(settings, f"Заявитель {i}", "Аренда участка", "Прошу сообщить условия аренды")
    http = _operator(settings)
    first = http.get("/staff/search", params={"q": "аренды"})
    assert "Найдено: 53" in first.text and "страница 1 из 2" in first.text
    second = http.get("/staff/search", params={"q": "аренды", "page": "2"})
    assert second.text.count('<td><a href="/staff/requests/') == 6  # 3 rows, two links each (number, subject)


def test_queue_counts_up_to_a_cap_and_pages_on(settings: Settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past the cap the queue says «более N» and offers the next page while a page is full (README, "Lists that
    grow"); under it, the exact number and «страница 1 из M»."""
    from mailservice.web.staff import queue

    for i in range(5):
        _phone_request(settings, f"Заявитель {i}", f"Тема {i}")
    http = _operator(settings)
    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    monkeypatch.setattr(queue, "COUNT_CAP", 3)
    first = http.get("/staff/queue?status=all").text
    assert "Найдено: более 3." in first and "страница 1</span>" in first
    assert 'href="/staff/queue?status=all&amp;page=2"' in first
    last = http.get("/staff/queue?status=all&page=3").text
    assert last.count('<td><a href="/staff/requests/') == 2  # the fifth request alone (number and subject link)
    assert "вперёд" not in last and "← назад" in last
    monkeypatch.setattr(queue, "COUNT_CAP", 10)
    exact = http.get("/staff/queue?status=all").text
    assert "Найдено: 5." in exact and "страница 1 из 3" in exact
