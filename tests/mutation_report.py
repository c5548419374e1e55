"""Mutation figures of the core, per module and in all, from the committed record of mutmut's verdicts
(docs/mutation-results/, written by `make mutation`; tests/mutation_record.py).

Mutants listed in docs/mutation.md as equivalent are counted apart. docs/mutation-decisions.toml holds the mutants
decided by hand (a test run with ``MUTANT_UNDER_TEST``, or an equivalence or a judgement with its reason); their
verdict stands for mutmut's when mutmut saw the mutant survive or did not run it.
Exits non-zero when the core has less than 90% of its non-equivalent mutants killed, when a survivor is left
unexplained, or when a mutant was not run (or has no record at all).
A decision, or an equivalence, counts only while its mutant's function is the one it was made on: the hash mutmut
gives that function then is kept in docs/mutation-stamps.json, and a decision without a stamp, or whose function's
hash is no longer today's, is listed and not counted (a decision names its mutant by number, and any change of the
function may give that number to another mutation).
Usage: ``.venv/bin/python -m tests.mutation_report`` (the report);
``.venv/bin/python -m tests.mutation_report stamp MUTANT...`` (the decisions of these mutants were checked against
today's code: stamp them with today's hashes).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

from tests.mutation_record import function_of, module_of, source_of

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = re.compile(r"`(mailservice\.\S+__mutmut_\d+)`")
DECISIONS = ROOT / "docs" / "mutation-decisions.toml"
STAMPS = ROOT / "docs" / "mutation-stamps.json"
RECORDS = ROOT / "docs" / "mutation-results"
# The share of non-equivalent mutants the core must kill (the project's goal for `make mutation`).
GOAL = 0.90
# A verdict reached by hand, as the report counts it.
VERDICTS = {"killed": "killed", "equivalent": "equivalent", "judgement": "judgement"}
# mutmut's statuses a hand verdict may replace: the mutant survived a run older than its test, or was not run.
OPEN = ("survived", "not run", "no tests", "suspicious")
# A mutant of a function changed since the record: not run, and no decision by hand counts for it either (a
# decision names the mutant by its number, which a change of its function shifts).
CHANGED = "changed"
# mutmut 3.8.1's exit codes (mutmut/stats.py `status_by_exit_code`) as the report counts them: a timeout is a
# mutant that made the tests hang, detected like a kill; anything else not listed is "suspicious".
STATUS = {None: "not run", 0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests", 34: "skipped"}
STATUS.update(dict.fromkeys((24, -24, 36, 152, 255), "killed"))


def status_of(exit_code: int | None) -> str:
    return STATUS.get(exit_code, "suspicious")


def core_modules(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The mutated modules, from `[tool.mutmut] only_mutate` (``mailservice/a/b.py`` -> ``mailservice.a.b``)."""
    paths = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["mutmut"]["only_mutate"]
    return sorted(p.removesuffix(".py").replace("/", ".") for p in paths)


def rows_of(records: dict[str, dict], current: dict[str, dict[str, str]] | None = None) -> list[tuple[str, str, str]]:
    """(module, mutant, status) of every mutant of the records (module name -> record). With ``current`` (module
    -> mutmut's hash of each function of today's source), a verdict on a function whose source changed since the
    record, or is gone, is ``CHANGED`` (counted as not run): it was reached on other code."""
    rows = []
    for module, record in sorted(records.items()):
        stale = changed_functions(record, current[module]) if current and module in current else set()
        for mutant, code in sorted(record["exit_code_by_key"].items()):
            rows.append((module, mutant, CHANGED if function_of(mutant) in stale else status_of(code)))
    return rows


def changed_functions(record: dict, current: dict[str, str]) -> set[str]:
    """Functions of the record whose hash is not today's: changed or gone."""
    recorded: dict[str, str] = record.get("hash_by_function_name", {})
    return {f for f, h in recorded.items() if current.get(f) != h}


def new_functions(record: dict, current: dict[str, str]) -> set[str]:
    """Functions of today's source the record does not know: new, or without a mutant (mutmut records only
    functions it mutates), so told, not counted."""
    return set(current) - set(record.get("hash_by_function_name", {}))


def current_hashes(modules: list[str]) -> dict[str, dict[str, str]] | None:
    """mutmut's function hashes of today's source of each module; None without mutmut installed (the report then
    says it could not tell whether the record is still the code's)."""
    try:
        from mutmut.mutation.file_mutation import compute_function_hashes
    except ImportError:
        return None
    return {m: compute_function_hashes((ROOT / source_of(m)).read_text(encoding="utf-8")) for m in modules}


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


def equivalents() -> set[str]:
    doc = ROOT / "docs" / "mutation.md"
    return set(EQUIVALENT.findall(doc.read_text(encoding="utf-8"))) if doc.exists() else set()


def hand_verdicts() -> dict[str, str]:
    return decisions(DECISIONS.read_text(encoding="utf-8")) if DECISIONS.exists() else {}


def stamps(path: Path = STAMPS) -> dict[str, str]:
    """Mutant -> mutmut's hash of its function when its decision or equivalence was written (or last checked)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def unfounded(mutants: set[str], stamped: dict[str, str], current: dict[str, dict[str, str]]) -> dict[str, str]:
    """The decided ``mutants`` whose decision cannot stand for today's code, with why: never stamped, or made on
    another version of the function (changed or gone since)."""
    found = {}
    for mutant in sorted(mutants):
        today = current.get(module_of(mutant), {}).get(function_of(mutant))
        if mutant not in stamped:
            found[mutant] = "not stamped"
        elif stamped[mutant] != today:
            found[mutant] = "its function changed since the decision"
    return found


def standing(
    equivalent: set[str], by_hand: dict[str, str], current: dict[str, dict[str, str]] | None, stamped: dict[str, str]
) -> tuple[set[str], dict[str, str], dict[str, str]]:
    """The equivalences and hand verdicts that stand for today's code, and those that do not (mutant -> why).
    Without today's hashes (mutmut not installed) nothing can be checked: all stand, and the report says so."""
    if current is None:
        return equivalent, by_hand, {}
    dropped = unfounded(equivalent | set(by_hand), stamped, current)
    return (
        equivalent - set(dropped),
        {m: v for m, v in by_hand.items() if m not in dropped},
        dropped,
    )


def explained() -> set[str]:
    """Survivors that need no new run: equivalent, by judgement, or killed by a test checked by hand, each on the
    code it was decided on."""
    equivalent, by_hand, _dropped = standing(equivalents(), hand_verdicts(), current_hashes(core_modules()), stamps())
    return equivalent | set(by_hand)


def stamp(
    mutants: list[str],
    path: Path = STAMPS,
    current: dict[str, dict[str, str]] | None = None,
    decided: set[str] | None = None,
) -> list[str]:
    """Stamp the decisions of ``mutants`` with today's hashes of their functions; returns why it refused (a mutant
    that is not decided, or whose function is not in today's source), stamping nothing then."""
    if current is None:
        current = current_hashes(core_modules())
        if current is None:
            return ["mutmut is not installed: no hash to stamp with"]
    if decided is None:
        decided = equivalents() | set(hand_verdicts())
    refused = [f"{m}: no decision or equivalence names it" for m in mutants if m not in decided]
    refused += [
        f"{m}: its function is not in today's source"
        for m in mutants
        if function_of(m) not in current.get(module_of(m), {})
    ]
    if refused:
        return refused
    stamped = stamps(path)
    stamped.update({m: current[module_of(m)][function_of(m)] for m in mutants})
    text = json.dumps(dict(sorted(stamped.items())), indent=0, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return []


def classify(
    rows: list[tuple[str, str, str]], equivalent: set[str], by_hand: dict[str, str]
) -> tuple[dict[str, Counter[str]], list[str]]:
    """Counts per module (killed, equivalent, judgement, survived, not run, and mutmut's other statuses) and the
    mutants left open: survivors not explained, mutants not run, no tests or suspicious."""
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    unexplained = []
    for module, mutant, status in rows:
        if status in OPEN and mutant in by_hand:
            status = VERDICTS[by_hand[mutant]]
        elif status == "survived" and mutant in equivalent:
            status = "equivalent"
        elif status == CHANGED:
            status = "not run"
        by_module[module][status] += 1
        if status not in ("killed", "equivalent", "judgement", "skipped"):
            unexplained.append(f"{mutant}: {status}")
    return by_module, unexplained


def share(c: Counter[str]) -> float:
    """Killed (timeouts included) of the mutants that are not equivalent or set apart by judgement."""
    return c["killed"] / max(1, sum(c.values()) - c["equivalent"] - c["judgement"])


def problems(by_module: dict[str, Counter[str]], modules: list[str], unexplained: list[str]) -> list[str]:
    """Why the core does not pass, in plain words; empty when it does."""
    total: Counter[str] = Counter()
    for c in by_module.values():
        total.update(c)
    found = [f"{m}: no record, not run at all" for m in modules if m not in by_module]
    if total["not run"]:
        found.append(f"{total['not run']} mutants not run")
    left = sum(1 for u in unexplained if not u.endswith(": not run"))
    if left:
        found.append(f"{left} mutants survived or were not decided, unexplained")
    if share(total) < GOAL:
        found.append(f"the core kills {share(total):.1%} of its non-equivalent mutants, under {GOAL:.0%}")
    return found


def table(by_module: dict[str, Counter[str]], modules: list[str]) -> list[str]:
    lines = [
        "| module | mutants | killed (incl. timeouts) | equivalent | by judgement | survived, unexplained | not run "
        "| other | killed of non-equivalent |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    total: Counter[str] = Counter()
    for module in sorted(set(modules) | set(by_module)):
        if module not in by_module:
            lines.append(f"| {module} | no record | | | | | not run | | |")
            continue
        total.update(by_module[module])
        lines.append(_row(module, by_module[module]))
    lines.append(_row("**core**", total))
    return lines


def _row(name: str, c: Counter[str]) -> str:
    n = sum(c.values())
    named = ("killed", "equivalent", "judgement", "survived", "not run")
    other = n - sum(c[k] for k in named)
    return (
        f"| {name} | {n} | {c['killed']} | {c['equivalent']} | {c['judgement']} | {c['survived']} | {c['not run']} "
        f"| {other} | {share(c):.1%} |"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["stamp"] and argv[1:]:
        found = stamp(argv[1:])
        print("\n".join(found) if found else f"{len(argv) - 1} stamped in {STAMPS.relative_to(ROOT)}")
        return 1 if found else 0
    if argv:
        print(__doc__)
        return 2
    records = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RECORDS.glob("*.json"))}
    modules = core_modules()
    current = current_hashes(modules)
    equivalent, by_hand, dropped = standing(equivalents(), hand_verdicts(), current, stamps())
    rows = rows_of(records, current)
    by_module, unexplained = classify(rows, equivalent, by_hand)
    # Listed only where the decision would count: mutmut's own kill needs none.
    open_mutants = {mutant for _module, mutant, status in rows if status in OPEN}
    dropped = {m: why for m, why in dropped.items() if m in open_mutants}
    print("\n".join(table(by_module, modules)))
    if current is None:
        print("\nmutmut is not installed: whether each record is still today's code was not checked.")
    else:
        for module, record in sorted(records.items()):
            changed = sorted(changed_functions(record, current.get(module, {})))
            if changed:
                print(f"\n{module}: changed since its record, their mutants counted as not run: {', '.join(changed)}")
            new = sorted(new_functions(record, current.get(module, {})))
            if new:
                print(f"\n{module}: not in its record (new, or with no mutant): {', '.join(new)}")
    if dropped:
        print(
            f"\nDecisions not counted ({len(dropped)}; check each against today's mutant, `mutmut show NAME`, then"
            " `python -m tests.mutation_report stamp NAME...`):"
        )
        print("\n".join(f"- `{m}`: {why}" for m, why in dropped.items()))
    print("\nRecords (last change):")
    for module, record in sorted(records.items()):
        print(f"- {module}: {record.get('date')}, commit {record.get('commit')}, mutmut {record.get('mutmut')}")
    listed = [u for u in unexplained if not u.endswith(": not run")]
    if listed:
        print("\nSurvivors not explained in docs/mutation.md or docs/mutation-decisions.toml (or not decided):")
        print("\n".join(f"- `{u}`" for u in listed))
    found = problems(by_module, modules, unexplained)
    if found:
        print("\nFAILED: " + "; ".join(found) + ".")
        return 1
    print(f"\nPassed: at least {GOAL:.0%} killed, every survivor explained, every mutant run.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
