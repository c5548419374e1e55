"""The test hooks of ``make mutation`` (tests/conftest.py): a mutant's tests run fastest first, and a test that hangs
fails on its own time limit, not on mutmut's limit for the whole set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import conftest


class _Item:
    """What the hook reads of a collected test: its id and its markers."""

    def __init__(self, nodeid: str, timeout: float | None = None) -> None:
        self.nodeid = nodeid
        self.markers: list[Any] = [pytest.mark.timeout(timeout).mark] if timeout is not None else []

    def get_closest_marker(self, name: str) -> Any:
        return next((m for m in self.markers if m.name == name), None)

    def add_marker(self, marker: Any) -> None:
        self.markers.append(marker.mark)

    def limit(self) -> float | None:
        found = self.get_closest_marker("timeout")
        return found.args[0] if found else None


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, items: list[_Item], mutant: str) -> None:
    (tmp_path / "mutmut-stats.json").write_text(
        json.dumps({"duration_by_test": {"t.py::slow": 6.5, "t.py::quick": 0.01, "t.py::own_limit": 1.0}}),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)  # mutmut runs the tests from mutants/, where its stats are
    monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
    conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]


def test_a_mutants_tests_run_fastest_first_each_with_its_own_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [_Item("t.py::slow"), _Item("t.py::untimed"), _Item("t.py::own_limit", 600), _Item("t.py::quick")]
    _run(tmp_path, monkeypatch, items, "mailservice.tokens.x_sign__mutmut_1")
    assert [i.nodeid for i in items] == ["t.py::quick", "t.py::own_limit", "t.py::slow", "t.py::untimed"]
    # Ten times the clean run's duration, at least 20 s; a test's own limit and an untimed test's are left alone.
    assert {i.nodeid: i.limit() for i in items} == {
        "t.py::quick": 20,
        "t.py::own_limit": 600,
        "t.py::slow": 65,
        "t.py::untimed": None,
    }


def test_outside_a_mutants_run_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [_Item("t.py::slow"), _Item("t.py::quick")]
    _run(tmp_path, monkeypatch, items, "")
    assert [(i.nodeid, i.limit()) for i in items] == [("t.py::slow", None), ("t.py::quick", None)]


def test_a_mutants_tests_prepare_intake_in_their_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mutmut forks each mutant's process from its fork server, where intake's worker pool cannot start: a test of a
    # ten-letter batch failed whatever the mutant (7 December), so under a mutant intake prepares in-process.
    db_url = f"sqlite:///{tmp_path / 'unused.sqlite3'}"
    monkeypatch.setenv("MUTANT_UNDER_TEST", "mailservice.intake.pipeline.x__decide__mutmut_1")
    assert conftest.make_env(monkeypatch, tmp_path, db_url).intake_workers == 0
    # A test that asks for workers gets them.
    assert conftest.make_env(monkeypatch, tmp_path, db_url, intake_workers="1").intake_workers == 1
    monkeypatch.setenv("MUTANT_UNDER_TEST", "")
    assert conftest.make_env(monkeypatch, tmp_path, db_url).intake_workers is None  # the product's default
    conftest.reset_caches()


class _Report:
    def __init__(self, nodeid: str, failed: bool) -> None:
        self.nodeid, self.failed, self.when, self.longreprtext = nodeid, failed, "call", "AssertionError: 1 != 2"


def test_the_test_that_killed_a_mutant_is_written_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUTATION_KILLS", str(tmp_path))
    monkeypatch.setenv("MUTANT_UNDER_TEST", "m__mutmut_3")
    conftest.pytest_runtest_logreport(_Report("t.py::passes", failed=False))  # type: ignore[arg-type]
    conftest.pytest_runtest_logreport(_Report("t.py::fails", failed=True))  # type: ignore[arg-type]
    assert (tmp_path / "m__mutmut_3.txt").read_text(encoding="utf-8") == "t.py::fails (call)\nAssertionError: 1 != 2\n"
    monkeypatch.delenv("MUTATION_KILLS")
    conftest.pytest_runtest_logreport(_Report("t.py::fails", failed=True))  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["m__mutmut_3.txt"]
