"""Figures of the last `make mutation` run, per module, as a Markdown table and the list of surviving mutants.

Reads ``mutmut results --all true`` in the repository (the ``mutants/`` folder mutmut keeps). Mutants listed in
docs/mutation.md as equivalent are counted apart: a survivor is either killed by a test or explained there.
docs/mutation-decisions.toml holds the mutants decided by hand (a test run with ``MUTANT_UNDER_TEST``, or an
equivalence with its reason); their verdict stands for mutmut's when mutmut saw it survive or did not run it.
Usage: ``.venv/bin/python -m tests.mutation_report``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = re.compile(r"`(mailservice\.\S+__mutmut_\d+)`")
DECISIONS = ROOT / "docs" / "mutation-decisions.toml"
# A verdict reached by hand, as the report counts it: killed, or set apart with a reason.
VERDICTS = {"killed": "killed", "equivalent": "equivalent", "judgement": "equivalent"}
# mutmut's statuses a hand verdict may replace: the mutant survived a run older than its test, or was not run.
OPEN = ("survived", "not checked", "no tests", "suspicious")


def results() -> list[tuple[str, str, str]]:
    """(module, mutant, status) of every mutant mutmut lists, ``not checked`` included."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        mutant, _, status = line.strip().partition(": ")
        if mutant.startswith("mailservice.") and status:
            rows.append((mutant.rsplit(".", 1)[0], mutant, status))
    return rows


def decisions(text: str) -> dict[str, str]:
    """Mutant name -> verdict of every entry of the decisions file (one section per module, entries
    ``[[section]]`` with ``verdict`` and ``mutants``; ``by`` names the test of a kill, ``reason`` an equivalence)."""
    verdicts: dict[str, str] = {}
    for section, entries in tomllib.loads(text).items():
        for entry in entries:
            verdict = entry["verdict"]
            if verdict not in VERDICTS:
                raise ValueError(f"[{section}]: unknown verdict {verdict!r}")
            if not entry.get("by" if verdict == "killed" else "reason"):
                raise ValueError(f"[{section}] {entry['mutants'][:1]}: a {verdict} entry needs its test or reason")
            for mutant in entry["mutants"]:
                if verdicts.setdefault(mutant, verdict) != verdict:
                    raise ValueError(f"{mutant}: two verdicts")
    return verdicts


def classify(
    rows: list[tuple[str, str, str]], equivalent: set[str], by_hand: dict[str, str]
) -> tuple[dict[str, Counter[str]], list[str]]:
    """Counts per module and the survivors left unexplained; mutants neither run nor decided are not counted."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    unexplained = []
    for module, mutant, status in rows:
        if status in OPEN and mutant in by_hand:
            status = VERDICTS[by_hand[mutant]]
        elif status == "survived" and mutant in equivalent:
            status = "equivalent"
        if status == "not checked":
            continue
        by_module[module][status] += 1
        if status in ("survived", "no tests", "suspicious"):
            unexplained.append(f"{mutant}: {status}")
    return by_module, unexplained


def main() -> int:
    doc = ROOT / "docs" / "mutation.md"
    equivalent = set(EQUIVALENT.findall(doc.read_text(encoding="utf-8"))) if doc.exists() else set()
    by_hand = decisions(DECISIONS.read_text(encoding="utf-8")) if DECISIONS.exists() else {}
    by_module, unexplained = classify(results(), equivalent, by_hand)
    print("| module | mutants | killed | timeout | equivalent | survived | other | detected of non-equivalent |")
    print("|---|---|---|---|---|---|---|---|")
    total: Counter[str] = Counter()
    for module in sorted(by_module):
        c = by_module[module]
        total.update(c)
        print(_row(module, c))
    print(_row("**all**", total))
    if unexplained:
        print("\nSurvivors not yet explained in docs/mutation.md or docs/mutation-decisions.toml:")
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
