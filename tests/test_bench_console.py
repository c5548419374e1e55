"""bench/console.py runs end to end in its quick form and ends with its JSON line (figures are not asserted:
timings belong to the bench, never to a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import pg_unreachable_reason

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_console_bench_quick_prints_its_figures(database: str) -> None:
    if database == "postgres" and pg_unreachable_reason():
        pytest.skip(pg_unreachable_reason() or "")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "console.py"), "--quick", "--db", database, "--repeat", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["db"] == database
    assert summary["requests"] == 2000 and summary["clients"] == 600
    assert summary["export_rows"] > 0
    for name in ("queue", "queue_held", "queue_to_forward", "request", "client_heavy", "search_common", "search_phone"):
        assert set(summary["pages"][name]) >= {"p95_ms", "bare_sql_p95_ms"}
    assert {"export_s", "web_rss_growth_mb", "loadavg"} <= set(summary)
