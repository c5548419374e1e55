"""The staff console at five years: pages through the real web app against the bare SQL of the same rows.

Fills a fresh database (SQLite file or a new PostgreSQL database) in bulk (not through the service layer) with
100,000 requests, 30,000 clients and 500,000 events spread over five years (more each year; status, channel,
type and topic in realistic shares; a few clients with hundreds of requests), indexes them for search with the
service's own indexer, then starts ``mailservice serve`` in its own process and measures with httpx:

* the queue page with each filter, a deep page, and the queue's search box;
* request pages and client pages (including the client with the longest timeline);
* the full-text search (a common word, a rare one, a phrase, a phone, a number, a name);
* the whole register as CSV (streamed), with the web process's resident memory sampled meanwhile;

each against the bare SQL that reads the same rows (same run, same database). p95 per page (target at most
150 ms), the export's time (target under 30 s) and the memory the web process gained while exporting; beside
each, the CPU time the web process spent (per page, for the export), which the other load of a shared machine
barely changes. The machine may be shared: the load average is printed with the figures. Last line: one JSON
object.

    .venv/bin/python bench/console.py [--db sqlite|postgres] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import psycopg
from sqlalchemy import Connection, insert, select, text

from mailservice import config, db
from mailservice.db import session_scope, utcnow
from mailservice.inforequests.models import Client, ClientContact, Event, RegistrationCounter, Request
from mailservice.inforequests.search_index import reindex
from mailservice.web.staff import auth

PG_URL = os.environ.get("MAILSERVICE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "bench password for the console"
TARGET_PAGE_MS = 150
TARGET_EXPORT_S = 30

SURNAMES = "Иванов Петров Сидоров Кузнецов Смирнов Попов Васильев Соколов Михайлов Новиков Фёдоров Морозов Волков Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин Захаров Зайцев Соловьёв Борисов Яковлев".split()  # noqa: E501
NAMES = "Иван Пётр Алексей Сергей Андрей Дмитрий Михаил Николай Ольга Анна Мария Елена Татьяна Наталья Ирина Светлана".split()  # noqa: E501
STREETS = (
    "Ленина Кирова Гоголя Мичурина Фрунзе Советская Красный_проспект Богдана_Хмельницкого Титова Станиславского".split()
)
ORGS = "Ромашка Сибирь Вектор Альфа Стройинвест Агрохолдинг Меридиан Исток Горизонт Технопарк".split()
TOPICS = {
    "lease": (
        "Аренда земельного участка",
        "Прошу сообщить условия аренды земельного участка на улице {street}, кадастровый квартал 54:35:{n}.",
    ),
    "land": (
        "Предоставление участка",
        "Прошу разъяснить порядок предоставления земельного участка под ИЖС в {district}.",
    ),
    "privatization": ("Приватизация", "Прошу сообщить о приватизации нежилого помещения по адресу ул. {street}, {n}."),
    "cadastral_value": (
        "Кадастровая стоимость",
        "Не согласен с кадастровой стоимостью участка {n}, прошу пересмотреть.",
    ),
    "state_services": ("Госуслуга", "Подскажите, как получить выписку из реестра государственного имущества."),
    "legal_acts": ("Нормативные акты", "Прошу направить текст приказа департамента № {n} о порядке аренды."),
    "reports": ("Отчёт", "Прошу предоставить отчёт о доходах от аренды имущества за {year} год."),
    "personnel": ("Вакансии", "Есть ли вакансии в департаменте для юриста?"),
    "other": ("Вопрос", "Оборваны провода на улице {street}, примите меры."),
}
DISTRICTS = "Новосибирском районе;Искитимском районе;Бердске;Колыванском районе;Тогучинском районе".split(";")
CHANNELS = [("email", 70), ("phone", 10), ("post", 10), ("visit", 5), ("social", 3), ("web", 2)]
TYPES = [("info_request", 55), ("appeal", 35), ("history_request", 3), ("feedback", 2), ("other", 5)]
OPEN = ("registered", "in_progress", "clarification_requested", "extended")


def pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: a figure the other load of a shared machine barely moves."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chunks(rows: list[dict[str, Any]], size: int = 5000) -> Any:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def fill(conn: Connection, n_requests: int, n_clients: int, n_events: int, seed: int = 19) -> dict[str, Any]:
    """Bulk-insert the data set; returns what the measurements need (ids to visit)."""
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    start = now - dt.timedelta(days=5 * 365)
    clients, contacts = [], []
    for cid in range(1, n_clients + 1):
        surname = rng.choice(SURNAMES)
        name = f"{surname}{'а' if rng.random() < 0.5 else ''} {rng.choice(NAMES)}"
        clients.append(
            {
                "id": cid,
                "name": name,
                "organisation": f"ООО «{rng.choice(ORGS)}»" if rng.random() < 0.2 else "",
                "postal_address": f"г. Новосибирск, ул. {rng.choice(STREETS).replace('_', ' ')}, {rng.randint(1, 200)}"
                if rng.random() < 0.3
                else "",
                "created_at": start,
                "last_interaction_at": now,
                "legal_hold": False,
            }
        )
        if rng.random() < 0.7:
            contacts.append({"client_id": cid, "kind": "email", "value": f"user{cid}@example.ru", "created_at": start})
        if rng.random() < 0.5:
            contacts.append(
                {
                    "client_id": cid,
                    "kind": "phone",
                    "value": f"+7 913 {cid // 10000:03d}-{cid % 10000:04d}",
                    "created_at": start,
                }
            )
    for batch in chunks(clients):
        conn.execute(insert(Client), batch)
    for batch in chunks(contacts):
        conn.execute(insert(ClientContact), batch)

    # Volume grows year by year; a few clients write a lot (a heavy tail).
    moments = sorted(start + dt.timedelta(seconds=(5 * 365 * 86400) * (rng.random() ** 0.8)) for _ in range(n_requests))
    heavy = list(range(1, 11))
    counters: dict[int, int] = {}
    requests = []
    for rid, received in enumerate(moments, start=1):
        client_id = rng.choice(heavy) if rng.random() < 0.03 else rng.randint(1, n_clients)
        topic = rng.choice(list(TOPICS))
        subject, body = TOPICS[topic]
        body = body.format(
            street=rng.choice(STREETS).replace("_", " "),
            n=rng.randint(1, 9999),
            district=rng.choice(DISTRICTS),
            year=received.year - 1,
        )
        age = (now - received).days
        if rng.random() < 0.01:
            status = "received"
        elif age > 60:
            status = rng.choices(["closed", "answered", "refused", "forwarded"], [50, 40, 5, 5])[0]
        else:
            status = rng.choices([*OPEN, "answered", "closed"], [30, 30, 5, 5, 20, 10])[0]
        registered = status != "received"
        year = received.year
        number = None
        if registered:
            counters[year] = counters.get(year, 0) + 1
            number = f"{year}-{counters[year]:06d}"
        registered_on = received.date() if registered else None
        due = registered_on + dt.timedelta(days=30) if registered_on else None
        requests.append(
            {
                "id": rid,
                "number": number,
                "client_id": client_id,
                "channel": pick(rng, CHANNELS),
                "law": "8-fz",
                "subject": subject,
                "text": body,
                "status": status,
                "type": pick(rng, TYPES),
                "topic": topic if rng.random() < 0.9 else "outside",
                "urgency": "urgent" if rng.random() < 0.05 else "normal",
                "classification": {},
                "classifier_version": "bench",
                "needs_review": rng.random() < 0.05,
                "received_at": received,
                "registered_at": received if registered else None,
                "registered_on": registered_on,
                "due_date": due,
                "control_date": due,
                "answered_at": None,
                "closed_at": None,
                "assignee": "",
                "unit": "",
                "reply_email": f"user{client_id}@example.ru" if rng.random() < 0.7 else None,
                "reply_name": "",
            }
        )
    for batch in chunks(requests):
        conn.execute(insert(Request), batch)
    for year, last in counters.items():
        conn.execute(insert(RegistrationCounter), [{"year": year, "last": last}])

    kinds = [("status_changed", 40), ("message_out", 20), ("message_in", 20), ("note", 10), ("classified", 10)]
    comments = {
        "status_changed": "Статус изменён",
        "message_out": "Направлен ответ заявителю: сведения об аренде во вложении.",
        "message_in": "Дополнительно сообщаю, что участок огорожен.",
        "note": "Запрошены сведения в отделе аренды",
        "classified": "",
    }
    events = []
    per_request = max(1, n_events // n_requests)
    for r in requests:
        base = r["received_at"]
        events.append(
            {
                "client_id": r["client_id"],
                "request_id": r["id"],
                "at": base,
                "kind": "registered",
                "comment": "Зарегистрирован",
            }
        )
        for k in range(per_request - 1):
            kind = pick(rng, kinds)
            events.append(
                {
                    "client_id": r["client_id"],
                    "request_id": r["id"],
                    "at": base + dt.timedelta(hours=k + 1),
                    "kind": kind,
                    "comment": comments[kind],
                }
            )
    for e in events:
        e.update(channel="", direction="", actor="", data={})
    for batch in chunks(events):
        conn.execute(insert(Event), batch)
    biggest = max(heavy, key=lambda c: sum(1 for r in requests if r["client_id"] == c))
    return {
        "request_ids": [r["id"] for r in rng.sample(requests, min(40, len(requests)))],
        "client_ids": rng.sample(range(1, n_clients + 1), min(40, n_clients)),
        "heavy_client": biggest,
        "number": next(r["number"] for r in reversed(requests) if r["number"]),
        "phone": next(c["value"] for c in contacts if c["kind"] == "phone"),
        "events": len(events),
        "registered": sum(counters.values()),
    }


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="2,000 requests, 600 clients, 10,000 events")
    parser.add_argument("--repeat", type=int, default=0, help="requests per page (default: 20, quick: 5)")
    args = parser.parse_args()
    n_req, n_cli, n_ev = (2_000, 600, 10_000) if args.quick else (100_000, 30_000, 500_000)
    repeat = args.repeat or (5 if args.quick else 20)

    workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    pg_name = None
    if args.db == "postgres":
        pg_name = f"bench_console_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{pg_name}"')
        url = PG_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    else:
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILSERVICE_")},
        "MAILSERVICE_DATABASE_URL": url,
        "MAILSERVICE_DATA_DIR": str(workdir / "data"),
        "MAILSERVICE_ENVIRONMENT": "development",
        "MAILSERVICE_SECRET_KEYS": "bench-console-" + uuid.uuid4().hex * 2,
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("MAILSERVICE_")})
    config.get_settings.cache_clear()
    settings = config.get_settings()
    server = None
    try:
        db.upgrade(settings)
        t0 = time.perf_counter()
        with db.get_engine(settings).begin() as conn:
            facts = fill(conn, n_req, n_cli, n_ev)
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with db.get_engine(settings).begin() as conn:
            reindex(conn, range(1, n_req + 1))
        index_s = time.perf_counter() - t0
        # Statistics, and on PostgreSQL the visibility map, as a database in service has them (autovacuum keeps
        # them; a bulk load leaves none, and without the map no count is answered from an index alone).
        if args.db == "postgres":
            with db.get_engine(settings).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        else:  # in a transaction: the engine's BEGIN IMMEDIATE would otherwise be left open and ANALYZE rolled back
            with db.get_engine(settings).begin() as conn:
                conn.execute(text("ANALYZE"))
        with session_scope(settings) as session:
            auth.create_user(session, email="bench@dizo.test", role=auth.Role.operator, password=PASSWORD, now=utcnow())

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "mailservice", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(
                    "the web app did not start: " + (server.stderr.read().decode() if server.stderr else "")
                )
            time.sleep(0.2)
        login_form = http.get("/staff/login").text
        token = login_form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = http.post("/staff/login", data={"email": "bench@dizo.test", "password": PASSWORD, "csrf_token": token})
        assert answer.status_code == 303, answer.text[:300]

        engine = db.get_engine(settings)
        raw = engine.raw_connection()

        def bare(sql: str, params: tuple[Any, ...] = ()) -> Callable[[], Any]:
            def run() -> Any:
                cur = raw.cursor()
                if args.db == "postgres":
                    cur.execute(sql.replace("?", "%s"), params or None)
                else:
                    cur.execute(sql, params)
                rows = cur.fetchall()
                cur.close()
                return rows

            return run

        today = utcnow().date()
        open_list = "('registered','in_progress','clarification_requested','extended','forwarded')"
        active = "('received','registered','in_progress','clarification_requested','extended','forwarded')"
        queue_sql = (
            "SELECT r.*, c.name FROM requests r JOIN clients c ON c.id = r.client_id WHERE {where} "
            "ORDER BY r.control_date, r.id LIMIT 50"
        )
        pages: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}

        def page(name: str, path: str, sql: str, params: tuple[Any, ...] = ()) -> None:
            def get() -> None:
                response = http.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text[:300])

            pages[name] = (get, bare(sql, params))

        for name, query, where in [
            ("queue", "", f"r.status IN {active}"),
            ("queue_all", "status=all", "1=1"),
            ("queue_held", "held=1", "r.status = 'received'"),
            ("queue_to_forward", "to_forward=1", f"r.topic = 'outside' AND r.status IN {open_list}"),
            ("queue_overdue", "overdue=1", f"r.status IN {open_list} AND r.due_date < '{today}'"),
            ("queue_due_week", "due_week=1", f"r.status IN {open_list} AND r.control_date >= '{today}'"),
            ("queue_needs_review", "needs_review=1", "r.needs_review"),
            ("queue_urgent", "urgency=urgent", f"r.status IN {active} AND r.urgency = 'urgent'"),
            ("queue_phone", "channel=phone&status=all", "r.channel = 'phone'"),
            ("queue_lease", "topic=lease&type=appeal&status=all", "r.topic = 'lease' AND r.type = 'appeal'"),
            ("queue_closed", "status=closed", "r.status = 'closed'"),
            ("queue_page_20", "status=all&page=20", "1=1"),
        ]:
            page(name, f"/staff/queue?{query}", queue_sql.format(where=where))
        page(
            "queue_search",
            "/staff/queue?status=all&q=аренда+Ленина",
            "SELECT id FROM requests WHERE subject = 'Аренда' LIMIT 50",
        )
        request_ids = facts["request_ids"]
        client_ids = facts["client_ids"]
        rotation = {"r": 0, "c": 0}

        def request_get() -> None:
            rid = request_ids[rotation["r"] % len(request_ids)]
            rotation["r"] += 1
            assert http.get(f"/staff/requests/{rid}").status_code == 200

        def request_bare() -> Any:
            rid = request_ids[rotation["r"] % len(request_ids)]
            return bare("SELECT * FROM requests r JOIN events e ON e.request_id = r.id WHERE r.id = ?", (rid,))()

        pages["request"] = (request_get, request_bare)

        def client_get() -> None:
            cid = client_ids[rotation["c"] % len(client_ids)]
            rotation["c"] += 1
            assert http.get(f"/staff/clients/{cid}").status_code == 200

        def client_bare() -> Any:
            cid = client_ids[rotation["c"] % len(client_ids)]
            return bare("SELECT * FROM events WHERE client_id = ? ORDER BY at, id", (cid,))()

        pages["client"] = (client_get, client_bare)
        heavy = facts["heavy_client"]
        page(
            "client_heavy",
            f"/staff/clients/{heavy}",
            "SELECT * FROM events WHERE client_id = ? ORDER BY at, id",
            (heavy,),
        )
        if args.db == "postgres":
            fts = "SELECT request_id FROM search_documents WHERE tsv @@ plainto_tsquery('russian', ?) ORDER BY ts_rank(tsv, plainto_tsquery('russian', ?)) DESC LIMIT 50"  # noqa: E501
        else:
            fts = "SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY bm25(search_fts, 4.0, 1.0) LIMIT 50"
        for name, query, terms in [
            ("search_common", "аренды", "аренда"),
            ("search_phrase", "аренда участка Ленина", "аренда участок ленин"),
            ("search_rare", "вакансии юриста", "вакансия юрист"),
            ("search_name", facts_name(conn_url=url, settings=settings), ""),
            ("search_phone", facts["phone"], ""),
            ("search_number", facts["number"], ""),
        ]:
            words = terms or query
            params = (
                (words, words)
                if args.db == "postgres"
                else (" ".join(f'"{w}"' for w in words.split()) if terms else f'"{words}"',)
            )
            page(name, "/staff/search?" + httpx.QueryParams({"q": query}).__str__(), fts, params)

        results: dict[str, Any] = {}
        for name, (get, sql) in pages.items():
            get()  # warm
            cpu_before = cpu_s(server.pid)
            web = timed(get, repeat)
            web_cpu_ms = (cpu_s(server.pid) - cpu_before) * 1000 / repeat
            raw_ms = timed(sql, repeat)
            results[name] = {
                "p95_ms": round(p95(web), 1),
                "web_cpu_ms_per_page": round(web_cpu_ms, 1),
                "median_ms": round(statistics.median(web), 1),
                "bare_sql_p95_ms": round(p95(raw_ms), 2),
                "ratio": round(p95(web) / max(p95(raw_ms), 0.01), 1),
            }
            print(
                f"{name:20s} p95 {results[name]['p95_ms']:8.1f} ms (web CPU {web_cpu_ms:6.1f} ms)  "
                f"bare SQL {results[name]['bare_sql_p95_ms']:8.2f} ms",
                flush=True,
            )

        samples: list[int] = []
        stop = threading.Event()
        rss_before = rss_kb(server.pid)
        export_cpu_before = cpu_s(server.pid)

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss_kb(server.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.perf_counter()
        lines = 0
        size = 0
        with http.stream("GET", "/staff/queue/register.csv?status=all") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                size += len(chunk)
                lines += chunk.count(b"\n")
        export_s = time.perf_counter() - t0
        export_cpu = cpu_s(server.pid) - export_cpu_before
        stop.set()
        sampler.join()
        t0 = time.perf_counter()
        bare_rows = len(
            bare(
                "SELECT r.number, r.registered_at, r.channel, c.name, r.reply_email, r.subject, r.type, r.urgency, "
                "r.status, r.due_date FROM requests r JOIN clients c ON c.id = r.client_id "
                "WHERE r.number IS NOT NULL ORDER BY r.registered_at, r.id"
            )()
        )
        export_bare_s = time.perf_counter() - t0
        raw.close()
        assert lines - 1 == facts["registered"] == bare_rows, (lines, facts["registered"], bare_rows)
        worst = max(results.values(), key=lambda r: r["p95_ms"])
        load = os.getloadavg()
        summary = {
            "bench": "console",
            "db": args.db,
            "quick": args.quick,
            "requests": n_req,
            "clients": n_cli,
            "events": facts["events"],
            "fill_s": round(fill_s, 1),
            "index_s": round(index_s, 1),
            "pages": results,
            "worst_page_p95_ms": worst["p95_ms"],
            "pages_within_target": all(r["p95_ms"] <= TARGET_PAGE_MS for r in results.values()),
            "export_rows": lines - 1,
            "export_mb": round(size / 1e6, 1),
            "export_s": round(export_s, 1),
            "export_web_cpu_s": round(export_cpu, 1),
            "export_bare_sql_s": round(export_bare_s, 2),
            "export_within_target": export_s < TARGET_EXPORT_S,
            "web_rss_before_export_mb": round(rss_before / 1024, 1),
            "web_rss_max_during_export_mb": round(max(samples or [rss_before]) / 1024, 1),
            "web_rss_growth_mb": round((max(samples or [rss_before]) - rss_before) / 1024, 1),
            "loadavg": [round(v, 2) for v in load],
            "cpus": os.cpu_count(),
        }
        print(
            f"export: {lines - 1} rows in {export_s:.1f} s (web CPU {export_cpu:.1f} s; "
            f"bare SQL {export_bare_s:.2f} s), "
            f"web RSS {summary['web_rss_before_export_mb']} -> max {summary['web_rss_max_during_export_mb']} MB"
        )
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        print(json.dumps(summary, ensure_ascii=False))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        db.dispose_engines()
        if pg_name:
            with psycopg.connect(PG_URL, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)


def facts_name(conn_url: str, settings: config.Settings) -> str:
    """A client's surname as staff would type it (another case: the search has morphology)."""
    with session_scope(settings) as session:
        name = session.scalar(select(Client.name).where(Client.id == 7)) or "Иванов"
    return name.split()[0]


if __name__ == "__main__":
    main()
