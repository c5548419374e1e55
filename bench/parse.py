"""Parser throughput on one core: `parse_message` on N generated citizen messages against a bare stdlib parse.

The baseline, measured in the same run on the same bytes, is `email.message_from_bytes(raw, policy=compat32)`:
the cheapest parse the standard library offers (raw header strings, no decoding at all), so the ratio says how
many times dearer the full, defensive parse is (headers decoded, addresses normalised, body and quotes split).

    .venv/bin/python bench/parse.py            # N = 5000
    .venv/bin/python bench/parse.py --quick    # N = 1000, a few seconds

Each figure is the best of --repeat passes over all N messages. The last line of the output is one JSON object.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import sys
import time
from collections.abc import Callable
from email import policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailservice.mail.parse import parse_message
from tests.mailfactory import bench_messages


def pin_to_one_core() -> str:
    """Run on a single CPU where the OS allows it; returns what was done, for the output."""
    if hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "CPU pinning not available on this OS"


def measure(function: Callable[[bytes], object], messages: list[bytes], repeat: int) -> float:
    """Best rate in messages per second over ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in messages:
            function(raw)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best if best > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000, help="messages to parse (default 5000)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (N = 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per figure, the best counts (default 3)")
    args = parser.parse_args(argv)
    n = 1000 if args.quick else args.n
    if n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be positive")

    pinned = pin_to_one_core()
    messages = bench_messages(n)
    for raw in messages[:50]:  # warm up: imports, regular expressions, codec lookups
        parse_message(raw)
        email.message_from_bytes(raw, policy=policy.compat32)

    baseline = measure(lambda raw: email.message_from_bytes(raw, policy=policy.compat32), messages, args.repeat)
    full = measure(parse_message, messages, args.repeat)
    ratio = full / baseline

    size = sum(len(raw) for raw in messages) / n
    print(f"Parser: {n} citizen messages of {size:,.0f} bytes on average, {pinned}")
    print(f"  parse_message:                  {full:,.0f} messages/s ({1000 / full:.3f} ms each)")
    print(f"  baseline (bare compat32 parse): {baseline:,.0f} messages/s ({1000 / baseline:.3f} ms each)")
    print(f"  ratio to baseline: {ratio:.3f}")
    figures = {
        "messages_per_s": round(full, 1),
        "ms_per_message": round(1000 / full, 4),
        "baseline_per_s": round(baseline, 1),
        "ratio": round(ratio, 4),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
