"""The committed record of mutmut's verdicts (docs/mutation-results/), so that `make mutation` re-tests only the
mutants of functions that changed or were never run (docs/mutation.md explains the limits).

One JSON file per mutated source file, ``docs/mutation-results/<module>.json``: mutmut's ``hash_by_function_name``
(a hash of each mutated function's syntax tree) and ``exit_code_by_key`` (one mutant per line; ``null``: not run),
plus the mutmut version, mutmut's fingerprint of the settings that can change a verdict, and the date and commit of
the run that last changed the file. mutmut 3.8.1 keeps, when it generates the mutants of a file again, the exit
codes its ``mutants/<path>.meta`` holds for every function whose hash did not change; seeding those files from the
record before ``mutmut run`` is all it takes.

Commands (``.venv/bin/python -m tests.mutation_record ...``, from the repository's root):

- ``prepare``: seed ``mutants/`` from the record and generate the mutants (what ``mutmut run`` does first);
- ``pending <module>``: the names of the module's mutants without a verdict, for ``mutmut run``;
- ``save <module>``: write the verdicts of the module's mutants in ``mutants/`` back into the record;
- ``import <dir-or-.meta>``: merge ``.meta`` files of a run made elsewhere, for the functions whose source is the
  same here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "docs" / "mutation-results"
# mutmut's exit codes (mutmut/stats.py) that are a verdict worth keeping: killed (1, 3: a pytest internal error is
# a kill), a timeout (the tests hung), survived (0; kept only when explained, see `seed`).
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
SURVIVED = 0
# A change in these groups of mutmut's settings fingerprint can flip any verdict: mutmut itself then resets all
# of them (`_apply_config_change_invalidation`), and so does the seeding.
GLOBAL_GROUPS = ("test_execution", "test_selection")

Record = dict[str, Any]


def module_of(key: str) -> str:
    """``mailservice.a.b`` of a mutant name ``mailservice.a.b.x_f__mutmut_1`` or ``...xǁClassǁm__mutmut_1``."""
    return key.partition("__mutmut_")[0].rpartition(".")[0]


def function_of(key: str) -> str:
    """The mangled function name (``x_f``, ``xǁClassǁm``) that mutmut's hashes are keyed by."""
    return key.partition("__mutmut_")[0].rpartition(".")[2]


def source_of(module: str) -> str:
    return module.replace(".", "/") + ".py"


def record_path(module: str, records: Path = RECORDS) -> Path:
    return records / f"{module}.json"


def dump(record: Record) -> str:
    """Sorted keys, one mutant per line: a run changes the lines of the mutants it decided, nothing else."""
    return json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def seed(
    record: Record, fingerprint: dict[str, str], explained: set[str], selection: list[str] | None = None
) -> tuple[dict[str, int | None], list[str]]:
    """The exit codes to put in ``mutants/<path>.meta`` before the mutants are generated, and why some were dropped.

    Dropped (run again): every verdict when the test settings changed since the record (as mutmut does with its own
    cache), except that test files only added to the selection (``selection``, now) keep the kills: a mutant some
    tests kill is killed by more tests; timeouts when the timeout settings changed; a survivor nobody explained (a
    test may have been added for it since), and anything that is not a verdict (no tests, suspicious, interrupted)."""
    codes: dict[str, int | None] = dict(record.get("exit_code_by_key", {}))
    old = record.get("config", {})
    notes = []
    changed = [g for g in fingerprint if g in old and old[g] != fingerprint[g]]
    widened = (
        changed == ["test_selection"]
        and selection is not None
        and "test_selection" in record
        and set(record["test_selection"]) <= set(selection)
    )
    if widened:
        notes.append("test files added to the selection: the kills are kept, the rest is run again")
    elif any(g in changed for g in GLOBAL_GROUPS):
        notes.append(f"test settings changed ({', '.join(changed)}): every verdict is dropped")
        return dict.fromkeys(codes), notes
    for key, code in codes.items():
        if code is None:
            continue
        keep = (
            code in KILLED or (code in TIMEOUT and "timeout" not in changed) or (code == SURVIVED and key in explained)
        )
        if not keep:
            codes[key] = None
            notes.append(f"{key}: run again (exit code {code})")
    return codes, notes


def meta_of(record: Record, codes: dict[str, int | None]) -> dict[str, Any]:
    """A ``.meta`` file as mutmut 3.8.1 reads it (`SourceFileMutationData.load` wants exactly these keys)."""
    return {
        "exit_code_by_key": codes,
        "hash_by_function_name": dict(record.get("hash_by_function_name", {})),
        "durations_by_key": {},
        "estimated_durations_by_key": {},
        "type_check_error_by_key": {},
    }


def updated(record: Record | None, meta: dict[str, Any], stamp: dict[str, Any]) -> Record | None:
    """The record after a run whose ``.meta`` is ``meta``; None when nothing changed (the file stays as it is, date
    and commit included). ``stamp``: mutmut's version and fingerprint, the test selection, the date and the commit."""
    fresh = {
        "exit_code_by_key": dict(meta["exit_code_by_key"]),
        "hash_by_function_name": dict(meta["hash_by_function_name"]),
    }
    # The settings count too: a record whose verdicts were dropped for a settings change and found the same again
    # must take the new settings, or the next run would drop them again.
    same = [*fresh, "config", "test_selection"]
    if record is not None and all(record.get(k) == {**fresh, **stamp}.get(k) for k in same):
        return None
    return {**fresh, **stamp}


def merge(
    record: Record | None, meta: dict[str, Any], current: dict[str, str], stamp: dict[str, Any]
) -> tuple[Record | None, list[str], list[str]]:
    """Merge the ``.meta`` of a run made elsewhere: only functions whose hash there is the hash of the source here
    (``current``) are taken, and of them only the mutants that were run. Returns the new record (None: unchanged),
    the functions taken and the functions left out with the reason."""
    codes: dict[str, int | None] = dict((record or {}).get("exit_code_by_key", {}))
    hashes: dict[str, str] = dict((record or {}).get("hash_by_function_name", {}))
    taken, left = [], []
    by_function: dict[str, dict[str, int | None]] = {}
    for key, code in meta["exit_code_by_key"].items():
        by_function.setdefault(function_of(key), {})[key] = code
    for function, theirs in sorted(by_function.items()):
        their_hash = meta["hash_by_function_name"].get(function)
        if their_hash is None or current.get(function) != their_hash:
            left.append(f"{function}: its source differs here")
            continue
        if not any(code is not None for code in theirs.values()):
            if function not in hashes:  # none run there, none known here: counted as not run
                hashes[function] = their_hash
                codes.update(theirs)
            continue
        if hashes.get(function) != their_hash:
            # The record's mutants of this function were of another version of it: replaced as a whole.
            codes = {k: v for k, v in codes.items() if function_of(k) != function}
            hashes[function] = their_hash
        for key, code in theirs.items():
            if code is not None or key not in codes:
                codes[key] = code
        taken.append(f"{function}: {sum(c is not None for c in theirs.values())} of {len(theirs)} run")
    if codes == dict((record or {}).get("exit_code_by_key", {})):
        return None, taken, left
    return {"exit_code_by_key": codes, "hash_by_function_name": hashes, **stamp}, taken, left


# Below: the commands, which need mutmut (`pip install -e '.[mutation]'`) and run from the repository's root.


def _config() -> Any:
    from mutmut.configuration import config

    return config()


def _stamp() -> dict[str, Any]:
    from importlib.metadata import version

    # The commit of the code mutmut copied into mutants/ (`make mutation` reads it before the first module).
    commit = (
        os.environ.get("MUTATION_COMMIT")
        or subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    stamp = {
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mutmut": version("mutmut"),
    }
    return stamp | _settings_of_the_run()


def _settings() -> dict[str, Any]:
    return {
        "config": _config().config_fingerprint(),
        "test_selection": sorted(_config().pytest_add_cli_args_test_selection),
    }


def _settings_of_the_run() -> dict[str, Any]:
    """The settings mutmut ran with: the fingerprint its stats hold (it resets every verdict and collects them again
    when its settings change), with the selection of `prepare` or of now when that fingerprint is theirs. A selection
    changed during the run and changed back is not told apart; the fingerprint alone is recorded when neither fits."""
    stats = ROOT / "mutants" / "mutmut-stats.json"
    if not stats.exists():
        return _settings()
    ran = json.loads(stats.read_text(encoding="utf-8"))["config_fingerprint"]
    snapshot = ROOT / "mutants" / "record-settings.json"
    for settings in ([json.loads(snapshot.read_text(encoding="utf-8"))] if snapshot.exists() else []) + [_settings()]:
        if settings["config"] == ran:
            return settings
    return {"config": ran}


def _records() -> dict[str, Record]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RECORDS.glob("*.json"))}


def _explained() -> set[str]:
    from tests.mutation_report import explained

    return explained()


def prepare() -> None:
    """Seed the ``.meta`` files, then generate the mutants as ``mutmut run`` would (it then finds them generated
    and keeps them, verdicts included)."""
    fingerprint = _config().config_fingerprint()
    selection = list(_config().pytest_add_cli_args_test_selection)
    explained = _explained()
    for module, record in _records().items():
        codes, notes = seed(record, fingerprint, explained, selection)
        for note in notes:  # on stderr: `make mutation` hides mutmut's list of the files it copies
            print(f"{module}: {note}", file=sys.stderr)
        meta = ROOT / "mutants" / (source_of(module) + ".meta")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(meta_of(record, codes)), encoding="utf-8")
    (ROOT / "mutants").mkdir(exist_ok=True)
    (ROOT / "mutants" / "record-settings.json").write_text(json.dumps(_settings()), encoding="utf-8")
    from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
    from mutmut.mutation.trampoline import set_mutant_under_test

    set_mutant_under_test("mutant_generation")
    copy_src_dir()
    copy_also_copy_files()
    setup_source_paths()
    create_mutants(1)


def _metas() -> Iterable[tuple[str, dict[str, Any]]]:
    for path in sorted((ROOT / "mutants").rglob("*.py.meta")):
        module = str(path.relative_to(ROOT / "mutants"))[: -len(".py.meta")].replace("/", ".")
        yield module, json.loads(path.read_text(encoding="utf-8"))


def pending(module: str) -> list[str]:
    for name, meta in _metas():
        if name == module:
            return sorted(k for k, v in meta["exit_code_by_key"].items() if v is None)
    raise SystemExit(f"{module}: no mutants generated (not in [tool.mutmut] only_mutate?)")


def save(module: str) -> None:
    """Write back the module's verdicts only: a run of some modules leaves the others' records as they are (a fresh
    run has no verdicts for the modules it did not run)."""
    RECORDS.mkdir(parents=True, exist_ok=True)
    stamp = _stamp()
    records = _records()
    for name, meta in _metas():
        if name != module:
            continue
        new = updated(records.get(module), meta, stamp)
        if new is not None:
            record_path(module).write_text(dump(new), encoding="utf-8")
            print(f"{record_path(module).relative_to(ROOT)}: written")
        return
    raise SystemExit(f"{module}: no mutants generated")


def import_metas(where: Path) -> None:
    from mutmut.mutation.file_mutation import compute_function_hashes

    files = sorted(where.rglob("*.meta")) if where.is_dir() else [where]
    # The settings of a run made elsewhere are not known here (a narrower selection, say): none is recorded, so the
    # kills stand (more tests would kill them too) and its survivors, unless explained, are run again here.
    stamp = {k: v for k, v in _stamp().items() if k not in ("config", "test_selection")}
    records = _records()
    for file in files:
        meta = json.loads(file.read_text(encoding="utf-8"))
        modules = {module_of(k) for k in meta["exit_code_by_key"]}
        if len(modules) != 1:
            print(f"{file}: not one module's mutants ({sorted(modules)}), skipped")
            continue
        (module,) = modules
        current = compute_function_hashes((ROOT / source_of(module)).read_text(encoding="utf-8"))
        new, taken, left = merge(records.get(module), meta, current, {**stamp, "imported": str(file)})
        for line in taken:
            print(f"{file}: {module} {line}")
        for line in left:
            print(f"{file}: {module} left out, {line}")
        if new is not None:
            records[module] = new
            record_path(module).write_text(dump(new), encoding="utf-8")


def main(argv: list[str]) -> int:
    match argv:
        case ["prepare"]:
            prepare()
        case ["pending", module]:
            print(" ".join(pending(module)))
        case ["save", module]:
            save(module)
        case ["import", where]:
            import_metas(Path(where))
        case _:
            print(__doc__)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
