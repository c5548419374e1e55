"""Mailing throughput: ``campaign send`` to N subscribers with default settings, against two bare aiosmtplib loops.

All send to the same local SMTP sink (aiosmtpd in its own process, counting messages), in the same run, slice by
slice interleaved (other load on the machine hits all alike):

* ``ceiling``: pre-built bytes, ``sendmail`` in a loop over 1 and over 4 connections, the better of the two
  (network and sink only);
* ``emailmessage``: an ``EmailMessage`` built per recipient (headers, text and HTML parts, ``policy.SMTP``), the
  better of 1 and 4 connections;
* ``mailservice``: ``send_campaign`` with the default settings (connections, batch size, sender processes; only
  the rate limit is off): claims, consent re-check per recipient, at-most-once bookkeeping, messages rendered
  once and filled in per recipient, on SQLite and on PostgreSQL, DKIM off; then DKIM on (dkimpy) on a smaller
  campaign.

Prints the figures with the load average (``uptime``) and, last, one JSON line with both ratios (the worse
backend at top level).

    .venv/bin/python bench/mailing.py            # 10,000 subscribers
    .venv/bin/python bench/mailing.py --quick    # 2,000 subscribers, well under two minutes
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiosmtplib
import psycopg
from sqlalchemy import insert, select

from mailservice import config, db
from mailservice.mailings import campaigns, consent
from mailservice.mailings.models import MailingList, Subscriber, Subscription
from mailservice.mailings.render import CampaignRenderer, Recipient, render_bodies
from mailservice.mailings.sender import send_campaign
from mailservice.mailings.subscribers import create_list, unsubscribe_mailto, unsubscribe_token, unsubscribe_url

TEMPLATE = (Path(__file__).resolve().parents[1] / "mailservice/templates/email/mailing_example.txt").read_text("utf-8")
SUBJECT = "Новости департамента: план приватизации на 2027 год"
PG_URL = os.environ.get("MAILSERVICE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- the sink (a separate process, so that it does not share our interpreter lock) ---------------------------


def serve_sink(port: int) -> None:
    """Run a counting aiosmtpd sink until killed; prints its count on each line of stdin."""
    from aiosmtpd.controller import Controller

    class Counter:
        count = 0

        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            Counter.count += 1
            return "250 2.0.0 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    print("ready", flush=True)
    for _line in sys.stdin:
        print(Counter.count, flush=True)
    controller.stop()


class SinkProcess:
    """The sink subprocess; ``count()`` asks it how many messages it has accepted."""

    def __init__(self) -> None:
        from tests.servers import free_port

        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-sink", str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def cpu_seconds(self) -> float:
        """CPU time the sink process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# -- baselines ---------------------------------------------------------------------------------------------------


async def bare_loop(port: int, concurrency: int, addresses: list[str], build: object) -> float:
    """Send one message per address over ``concurrency`` reused connections; returns messages per second."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for address in addresses:
        queue.put_nowait(address)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        while True:
            try:
                address = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            raw = build(address)  # type: ignore[operator]
            await client.sendmail("info@dizo.test", [address], raw)
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(addresses) / (time.perf_counter() - start)


def emailmessage_builder(settings: config.Settings) -> object:
    """Build each message from scratch with ``EmailMessage`` (the naive way), same content as the campaign."""
    from mailservice.mailings.render import CampaignSource

    source = CampaignSource(SUBJECT, TEMPLATE, None, "Новости департамента", "news")
    placeholder = "https://example.invalid/u/PLACEHOLDER"
    text, body_html = render_bodies(settings, source, "", placeholder)
    counter = iter(range(10**9))

    def build(address: str) -> bytes:
        n = next(counter)
        url = f"{settings.public_url}/unsubscribe/{n}.{secrets.token_urlsafe(20)}"
        message = EmailMessage()
        message["Date"] = format_datetime(db.utcnow())
        message["From"] = Address(settings.from_name, "info", "dizo.test")
        message["To"] = address
        message["Subject"] = SUBJECT
        message["Message-ID"] = f"<bench.{n}@dizo.test>"
        message["List-Id"] = "Новости департамента <news.lists.dizo.test>"
        message["List-Unsubscribe"] = f"<{url}>, <mailto:info@dizo.test?subject=unsubscribe>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Precedence"] = "bulk"
        message.set_content(text.replace(placeholder, url), cte="quoted-printable")
        message.add_alternative(body_html.replace(placeholder, url), subtype="html", cte="quoted-printable")
        return message.as_bytes(policy=email.policy.SMTP)

    return build


# -- the service -------------------------------------------------------------------------------------------------


def prepare(settings: config.Settings, count: int, slug: str) -> int:
    """A list of ``count`` active subscribers and a draft campaign to it; returns the campaign id."""
    now = db.utcnow()
    with db.session_scope(settings) as session:
        mailing_list = session.scalar(select(MailingList).where(MailingList.slug == slug)) or create_list(
            session, slug, f"Список {slug}"
        )
        list_id = mailing_list.id
    engine = db.get_engine(settings)
    with engine.begin() as conn:
        for start in range(0, count, 5000):
            batch = range(start, min(count, start + 5000))
            rows = [
                {
                    "email": f"{slug}.{i}@example.org",
                    "email_ascii": f"{slug}.{i}@example.org",
                    "email_hash": consent.email_hash(f"{slug}.{i}@example.org"),
                    "name": "",
                    "created_at": now,
                    "confirm_nonce": "",
                }
                for i in batch
            ]
            ids = list(conn.scalars(insert(Subscriber).returning(Subscriber.id), rows))
            conn.execute(
                insert(Subscription),
                [
                    {
                        "subscriber_id": sid,
                        "list_id": list_id,
                        "status": "active",
                        "nonce": secrets.token_hex(8),
                        "created_at": now,
                        "requested_at": now,
                        "confirmed_at": now,
                        "withdrawn_via": "",
                    }
                    for sid in ids
                ],
            )
    with db.session_scope(settings) as session:
        return campaigns.create(session, settings, list_slug=slug, subject=SUBJECT, text=TEMPLATE).id


def environment(url: str, data_dir: Path, port: int, **extra: str) -> config.Settings:
    """Settings for one backend (the service reads them from the environment): defaults but for the rate limit."""
    for key in list(os.environ):
        if key.startswith("MAILSERVICE_") and key != "MAILSERVICE_TEST_PG_URL":
            del os.environ[key]
    os.environ.update(
        MAILSERVICE_ENVIRONMENT="development",
        MAILSERVICE_DATABASE_URL=url,
        MAILSERVICE_DATA_DIR=str(data_dir),
        MAILSERVICE_SECRET_KEYS="bench-" + "k" * 40,
        MAILSERVICE_FROM_ADDRESS="info@dizo.test",
        MAILSERVICE_SMTP_PORT=str(port),
        MAILSERVICE_MAILING_RATE_PER_MINUTE="0",
        **{f"MAILSERVICE_{k.upper()}": v for k, v in extra.items()},
    )
    config.get_settings.cache_clear()
    db.dispose_engines()
    return config.get_settings()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the sender's helper processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_campaign(settings: config.Settings, campaign_id: int, sink: SinkProcess, expected: int) -> float:
    before = sink.count()
    start = time.perf_counter()
    summary = asyncio.run(send_campaign(settings, campaign_id))
    elapsed = time.perf_counter() - start
    received = sink.count() - before
    if summary.status != "done" or received != expected or summary.totals.sent != expected:
        raise SystemExit(f"campaign {campaign_id}: {summary}, sink received {received} of {expected}")
    return expected / elapsed


def sample_bytes(settings: config.Settings, campaign_id: int) -> bytes:
    with db.session_scope(settings) as session:
        campaign = campaigns.get(session, campaign_id)
        source, uid = campaigns.source_of(session, campaign), campaign.uid
    token = unsubscribe_token(settings, 1, "0" * 16)
    renderer = CampaignRenderer(settings, source, campaign_id=campaign_id, uid=uid)
    return renderer.message(
        Recipient(1, "someone@example.org", "", unsubscribe_url(settings, token), unsubscribe_mailto(settings, token))
    )


def bench_backend(name: str, url: str, data_dir: Path, sink: SinkProcess, count: int, slices: int) -> dict[str, float]:
    """The loops on one backend, interleaved slice by slice (other load on the machine hits all of them alike)."""
    settings = environment(url, data_dir, sink.port)
    db.upgrade(settings)
    sizes = [count // slices + (1 if i < count % slices else 0) for i in range(slices)]
    campaign_ids = [prepare(settings, size, f"bench{i}") for i, size in enumerate(sizes)]
    prebuilt = sample_bytes(settings, campaign_ids[0])
    naive_build = emailmessage_builder(settings)
    elapsed = {"ceiling_1": 0.0, "ceiling_4": 0.0, "emailmessage_1": 0.0, "emailmessage_4": 0.0, "mailservice": 0.0}
    cpu = dict.fromkeys(elapsed, 0.0)
    sink_cpu = dict.fromkeys(elapsed, 0.0)

    def run(kind: str, i: int) -> None:
        size = sizes[i]
        addresses = [f"base.{i}.{k}@example.org" for k in range(size)]
        cpu_before, sink_before = cpu_seconds(), sink.cpu_seconds()
        if kind == "mailservice":
            rate = run_campaign(settings, campaign_ids[i], sink, size)
        else:
            loop, connections = kind.rsplit("_", 1)
            build = (lambda _a: prebuilt) if loop == "ceiling" else naive_build
            rate = asyncio.run(bare_loop(sink.port, int(connections), addresses, build))
        elapsed[kind] += size / rate
        cpu[kind] += cpu_seconds() - cpu_before
        sink_cpu[kind] += sink.cpu_seconds() - sink_before

    kinds = list(elapsed)
    for i in range(slices):
        for kind in kinds[i % len(kinds) :] + kinds[: i % len(kinds)]:
            run(kind, i)
    rates = {k: count / v for k, v in elapsed.items()}
    ours = rates["mailservice"]
    naive = max(rates["emailmessage_1"], rates["emailmessage_4"])
    ceiling = max(rates["ceiling_1"], rates["ceiling_4"])
    figures = {
        "messages_per_s": round(ours, 1),
        "emailmessage_per_s": round(naive, 1),
        "ceiling_per_s": round(ceiling, 1),
        "ceiling_1_connection_per_s": round(rates["ceiling_1"], 1),
        "ceiling_4_connections_per_s": round(rates["ceiling_4"], 1),
        "ratio_vs_emailmessage": round(ours / naive, 3),
        "ratio_vs_ceiling": round(ours / ceiling, 3),
        # CPU per message (microseconds), less disturbed by other load than the rates: the sender's processes
        # (not the database server) against the pre-built-bytes client over 4 connections, and the sink's.
        "cpu_us_per_message": round(cpu["mailservice"] / count * 1e6),
        "ceiling_cpu_us_per_message": round(cpu["ceiling_4"] / count * 1e6),
        "sink_cpu_us_per_message": round(sink_cpu["ceiling_4"] / count * 1e6),
        "load_average": load_average(),
    }
    print(
        f"{name:<10} mailservice {ours:6.0f}/s | EmailMessage loop {naive:6.0f}/s | pre-built bytes {ceiling:6.0f}/s"
        f" (1 connection {rates['ceiling_1']:.0f}, 4: {rates['ceiling_4']:.0f})"
        f" | ratios {figures['ratio_vs_emailmessage']:.2f} and {figures['ratio_vs_ceiling']:.2f}"
        f" | CPU per message {figures['cpu_us_per_message']} µs (pre-built: {figures['ceiling_cpu_us_per_message']},"
        f" sink: {figures['sink_cpu_us_per_message']}) | load average {figures['load_average']}",
        flush=True,
    )
    db.dispose_engines()
    return figures


def bench_dkim(url: str, data_dir: Path, sink: SinkProcess, count: int) -> float:
    key = data_dir / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    settings = environment(url, data_dir, sink.port, dkim_private_key_file=str(key), dkim_selector="bench")
    campaign_id = prepare(settings, count, "dkim")
    rate = run_campaign(settings, campaign_id, sink, count)
    print(f"DKIM on    mailservice {rate:8.0f}/s (dkimpy, RSA-2048, {count} messages)", flush=True)
    db.dispose_engines()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--subscribers", type=int, default=10000)
    parser.add_argument("--quick", action="store_true", help="2,000 subscribers (DKIM: 300)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--no-dkim", action="store_true", help="skip the DKIM run")
    parser.add_argument("--serve-sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return
    count = 2000 if args.quick else args.subscribers
    dkim_count = 300 if args.quick else 2000
    slices = 2 if args.quick else 5
    print(
        f"{count} subscribers, default settings (rate limit off), sink in its own process,"
        f" {os.cpu_count()} CPUs, load average {load_average()}",
        flush=True,
    )
    sink = SinkProcess()
    work = Path(tempfile.mkdtemp(prefix="bench-mailing-"))
    results: dict[str, dict[str, float]] = {}
    pg_database = None
    dkim_rate = None
    try:
        if args.db in ("sqlite", "both"):
            url = f"sqlite:///{work / 'bench.sqlite3'}"
            results["sqlite"] = bench_backend("SQLite", url, work, sink, count, slices)
        if args.db in ("postgresql", "both"):
            pg_database = f"bench_mailing_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_database}"')
            url = PG_URL.rsplit("/", 1)[0] + f"/{pg_database}"
            results["postgresql"] = bench_backend("PostgreSQL", url, work, sink, count, slices)
        if not args.no_dkim:
            dkim_rate = bench_dkim(url, work, sink, dkim_count)
    finally:
        sink.stop()
        db.dispose_engines()
        if pg_database:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    worst = min(results.values(), key=lambda f: f["ratio_vs_ceiling"])
    summary = {
        "messages_per_s": min(f["messages_per_s"] for f in results.values()),
        "ratio_vs_emailmessage": min(f["ratio_vs_emailmessage"] for f in results.values()),
        "ratio_vs_ceiling": worst["ratio_vs_ceiling"],
        "dkim_on_messages_per_s": round(dkim_rate, 1) if dkim_rate is not None else None,
        "subscribers": count,
        "cpus": os.cpu_count(),
        "load_average": load_average(),
        "backends": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
