"""Figures of the last `make mutation` run, per module, as a Markdown table and the list of surviving mutants.

Reads ``mutmut results --all true`` in the repository (the ``mutants/`` folder mutmut keeps). Mutants listed in
docs/mutation.md as equivalent are counted apart: a survivor is either killed by a test or explained there.
Usage: ``.venv/bin/python -m tests.mutation_report``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = re.compile(r"`(mailservice\.\S+__mutmut_\d+)`")


def results() -> list[tuple[str, str, str]]:
    """(module, mutant, status) of every mutant mutmut has checked."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        mutant, _, status = line.strip().partition(": ")
        if mutant.startswith("mailservice.") and status and status != "not checked":
            rows.append((mutant.rsplit(".", 1)[0], mutant, status))
    return rows


def main() -> int:
    doc = ROOT / "docs" / "mutation.md"
    equivalent = set(EQUIVALENT.findall(doc.read_text(encoding="utf-8"))) if doc.exists() else set()
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    unexplained = []
    for module, mutant, status in results():
        if status == "survived" and mutant in equivalent:
            status = "equivalent"
        by_module[module][status] += 1
        if status in ("survived", "no tests", "suspicious"):
            unexplained.append(f"{mutant}: {status}")
    print("| module | mutants | killed | timeout | equivalent | survived | other | detected of non-equivalent |")
    print("|---|---|---|---|---|---|---|---|")
    total: Counter[str] = Counter()
    for module in sorted(by_module):
        c = by_module[module]
        total.update(c)
        print(_row(module, c))
    print(_row("**all**", total))
    if unexplained:
        print("\nSurvivors not yet explained in docs/mutation.md:")
        print("\n".join(f"- `{u}`" for u in unexplained))
    return 0


def _row(name: str, c: Counter[str]) -> str:
    n = sum(c.values())
    # A mutant that makes the tests hang (an endless loop) is detected: the run is stopped and counted a timeout.
    detected = c["killed"] + c["timeout"]
    other = n - detected - c["equivalent"] - c["survived"]
    share = detected / max(1, n - c["equivalent"])
    return (
        f"| {name} | {n} | {c['killed']} | {c['timeout']} | {c['equivalent']} | {c['survived']} | {other} "
        f"| {share:.0%} |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
