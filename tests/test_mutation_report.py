"""The mutation report's reading of the mutants decided by hand (docs/mutation-decisions.toml)."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.mutation_report import DECISIONS, classify, decisions

SAMPLE = """
[[sender]]
verdict = "killed"
mutants = ["mailservice.mailings.sender.x_a__mutmut_1", "mailservice.mailings.sender.x_a__mutmut_2"]
by = "tests/test_x.py::test_a"

[[sender]]
verdict = "judgement"
mutants = ["mailservice.mailings.sender.x_a__mutmut_3"]
reason = "a log line"

[[pipeline]]
verdict = "equivalent"
mutants = ["mailservice.intake.pipeline.x_b__mutmut_1"]
reason = "the same codec"
"""


def test_hand_verdicts_replace_survivors_and_unrun_mutants() -> None:
    """A survivor killed by a later test counts as killed; a mutant not run but decided counts with its verdict; an
    undecided survivor is listed; a mutant neither run nor decided is counted and listed as not run; mutmut's own
    kill stands."""
    sender, pipeline = "mailservice.mailings.sender", "mailservice.intake.pipeline"
    rows = [
        (sender, f"{sender}.x_a__mutmut_1", "survived"),
        (sender, f"{sender}.x_a__mutmut_2", "not run"),
        (sender, f"{sender}.x_a__mutmut_3", "survived"),
        (sender, f"{sender}.x_a__mutmut_4", "survived"),
        (sender, f"{sender}.x_a__mutmut_5", "not run"),
        (sender, f"{sender}.x_a__mutmut_6", "killed"),
        (pipeline, f"{pipeline}.x_b__mutmut_1", "not run"),
        (pipeline, f"{pipeline}.x_b__mutmut_2", "survived"),
    ]
    by_module, unexplained = classify(rows, {f"{pipeline}.x_b__mutmut_2"}, decisions(SAMPLE))
    assert dict(by_module[sender]) == {"killed": 3, "judgement": 1, "survived": 1, "not run": 1}
    assert dict(by_module[pipeline]) == {"equivalent": 2}
    assert unexplained == [f"{sender}.x_a__mutmut_4: survived", f"{sender}.x_a__mutmut_5: not run"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[s]]\nverdict = "dead"\nmutants = ["m"]\nreason = "r"\n', "unknown verdict"),
        ('[[s]]\nverdict = "killed"\nmutants = ["m"]\n', "needs its test or reason"),
        ('[[s]]\nverdict = "equivalent"\nmutants = ["m"]\n', "needs its test or reason"),
        (
            '[[s]]\nverdict = "killed"\nmutants = ["m"]\nby = "t"\n[[s]]\nverdict = "judgement"\nmutants = ["m"]\n'
            'reason = "r"\n',
            "two verdicts",
        ),
    ],
)
def test_a_decision_without_its_ground_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decisions(text)


def test_the_recorded_decisions_are_well_formed() -> None:
    """Every decision in the repository reads, names a mutant of the module its section is for, and a kill names a
    test file that exists."""
    verdicts = decisions(DECISIONS.read_text(encoding="utf-8"))
    assert verdicts
    name = re.compile(r"^mailservice(\.\w+)+\.x\S*__mutmut_\d+$")
    assert [m for m in verdicts if not name.match(m)] == []
    for entries in tomllib.loads(DECISIONS.read_text(encoding="utf-8")).values():
        for entry in entries:
            if entry["verdict"] == "killed":
                path = DECISIONS.parents[1] / entry["by"].split("::")[0]
                assert path.exists(), entry["by"]
