"""Intake throughput: N messages in a real Dovecot, polled end to end, against a plain imap-tools fetch.

The messages are the realistic mix of tests/mailfactory.mail_mix: letters of the packaged labelled sets, median
about 240 characters, 6% over 1,000, a few up to 12,000, a fifth HTML only.

Both figures are measured in the same run on the same mailbox: first a bare imap-tools fetch of every message
(the ceiling: network and IMAP server only), then `poll_once` (fetch, store, parse, classify, register,
acknowledge into the outbox, journal, move). Prints the figures and, last, one JSON line.

    .venv/bin/python bench/intake.py            # 5,000 messages
    .venv/bin/python bench/intake.py --quick    # 500 messages, well under two minutes
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imap_tools import MailBoxUnencrypted

from bench.machine import facts as machine_facts
from mailservice import config, db
from mailservice.intake.prepare import preparer_for
from mailservice.mail.imap import poll_once
from tests.mailfactory import mail_mix_messages
from tests.servers import start_dovecot


def append_all(port: int, user: str, password: str, messages: list[bytes]) -> None:
    with MailBoxUnencrypted("127.0.0.1", port).login(user, password) as box:
        for raw in messages:
            box.append(raw, "INBOX")


def raw_fetch(port: int, user: str, password: str) -> tuple[int, float]:
    """The baseline: a bare imap-tools fetch of the whole folder in bulk (no processing at all)."""
    start = time.perf_counter()
    with MailBoxUnencrypted("127.0.0.1", port).login(user, password) as box:
        count = sum(1 for _ in box.fetch(mark_seen=False, bulk=200))
    return count, time.perf_counter() - start


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux /proc; 0 where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--messages", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="500 messages")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--profile", default="", help="write cProfile statistics of the main process to this file")
    args = parser.parse_args()
    count = 500 if args.quick else args.messages

    machine = machine_facts()  # before the pass, not beside it
    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    work.chmod(0o755)  # Dovecot's unprivileged processes must reach the mail folder
    server = start_dovecot(work / "dovecot")
    try:
        messages = mail_mix_messages(count)
        append_all(server.port, server.user, server.password, messages)
        fetched, fetch_s = raw_fetch(server.port, server.user, server.password)
        assert fetched == count, f"baseline fetched {fetched} of {count}"

        os.environ.update(
            {
                "MAILSERVICE_ENVIRONMENT": "development",
                "MAILSERVICE_DATA_DIR": str(work / "data"),
                "MAILSERVICE_DATABASE_URL": args.database_url or f"sqlite:///{work / 'bench.sqlite3'}",
                "MAILSERVICE_SECRET_KEYS": "bench-" + "k" * 40,
                **server.env("none"),
            }
        )
        config.get_settings.cache_clear()
        settings = config.get_settings()
        db.upgrade(settings)
        # What the service does once at start-up (classifier, workers, GC), not charged to the messages.
        from mailservice.intake.pipeline import warm_up

        warm_up(settings)
        workers = {pid: process_cpu_s(pid) for pid in preparer_for(settings).worker_pids}
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall time
        cpu_start, start = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = poll_once(settings)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        poll_s, main_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        workers_cpu_s = sum(process_cpu_s(pid) - before for pid, before in workers.items())
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert result.fetched == count, f"polled {result.fetched} of {count}"
        # A fast run that quarantined everything would be a lie: every message here is a valid request.
        assert result.outcomes.get("quarantined", 0) == 0, f"messages were quarantined: {result.outcomes}"
    finally:
        server.stop()
        db.dispose_engines()
        shutil.rmtree(work, ignore_errors=True)

    figures = {
        "messages": count,
        "messages_per_s": round(count / poll_s, 1),
        "raw_fetch_per_s": round(count / fetch_s, 1),
        "ratio": round((count / poll_s) / (count / fetch_s), 4),
        "poll_s": round(poll_s, 2),
        "raw_fetch_s": round(fetch_s, 2),
        "main_cpu_s": round(main_cpu_s, 2),
        "workers_cpu_s": round(workers_cpu_s, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "outcomes": result.outcomes,
        "database": "postgresql" if args.database_url.startswith("postgres") else "sqlite",
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **machine,
    }
    print(f"messages:            {count}")
    print(f"end-to-end intake:   {figures['messages_per_s']} messages/s ({poll_s:.2f} s)")
    print(f"bare imap-tools:     {figures['raw_fetch_per_s']} messages/s ({fetch_s:.2f} s)")
    print(f"ratio:               {figures['ratio']}")
    print(f"main process CPU:    {figures['main_cpu_s']} s (less load-sensitive than wall time)")
    print(f"workers' CPU:        {figures['workers_cpu_s']} s ({len(workers)} preparing processes)")
    print(f"peak memory (RSS):   {figures['peak_rss_mb']} MB")
    print(f"Python {machine['python']['version']}: 10^7 additions in {machine['python_loop_s']} s")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
