"""Quorum and adoption per RULES.md "Working-group decisions": a table straight from the rules, the CLI's JSON,
and properties (hypothesis) that hold for every input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailservice.cli import main
from mailservice.workgroup.tally import (
    RULE_MAJORITY,
    RULE_NO_MAJORITY,
    RULE_NO_QUORUM,
    RULE_PRESIDING,
    Choice,
    Votes,
    has_quorum,
    tally,
)

F, A, AB = Choice.for_, Choice.against, Choice.abstain

# members, taking part, for, against, abstain, presiding vote -> quorum, adopted, rule
# Rows from RULES.md "Working-group decisions" and issue 18 (the literal rule: a tie is for == against only).
TABLE = [
    # Quorum: taking part × 2 ≥ members.
    (10, 5, 5, 0, 0, F, True, True, RULE_MAJORITY),  # exactly half is a quorum
    (10, 4, 4, 0, 0, F, False, False, RULE_NO_QUORUM),  # unanimous but no quorum: not adopted
    (9, 5, 3, 2, 0, F, True, True, RULE_MAJORITY),  # 5 × 2 ≥ 9
    (9, 4, 4, 0, 0, F, False, False, RULE_NO_QUORUM),  # 4 × 2 < 9
    # Simple majority of those taking part: for > half.
    (10, 7, 4, 3, 0, F, True, True, RULE_MAJORITY),
    (10, 7, 4, 0, 3, AB, True, True, RULE_MAJORITY),  # the presiding member's abstention does not matter
    (10, 7, 3, 4, 0, F, True, False, RULE_NO_MAJORITY),
    (10, 6, 2, 3, 1, F, True, False, RULE_NO_MAJORITY),
    # Tie (for == against): the presiding member's vote decides (for adopts, anything else rejects).
    (10, 6, 3, 3, 0, F, True, True, RULE_PRESIDING),
    (10, 6, 3, 3, 0, A, True, False, RULE_PRESIDING),
    (10, 5, 1, 1, 3, F, True, True, RULE_PRESIDING),  # abstentions notwithstanding
    (10, 5, 1, 1, 3, AB, True, False, RULE_PRESIDING),
    (10, 5, 0, 0, 5, AB, True, False, RULE_PRESIDING),  # 0 to 0 is a tie; nobody voted for
    (10, 6, 3, 3, 0, None, True, False, RULE_PRESIDING),  # the presiding member cast no vote: rejected
    # The issue's rows: 1-1-1 passes on the presiding vote, 2-1-1 fails whatever it was.
    (3, 3, 1, 1, 1, F, True, True, RULE_PRESIDING),
    (3, 3, 1, 1, 1, A, True, False, RULE_PRESIDING),
    (4, 4, 2, 1, 1, F, True, False, RULE_NO_MAJORITY),
    (4, 4, 2, 1, 1, AB, True, False, RULE_NO_MAJORITY),
    # "For" leads but is not more than half because of abstentions: no tie, rejected whatever the presiding vote.
    (10, 10, 2, 0, 8, F, True, False, RULE_NO_MAJORITY),
    (10, 10, 2, 0, 8, AB, True, False, RULE_NO_MAJORITY),
    (10, 5, 2, 1, 2, F, True, False, RULE_NO_MAJORITY),
    # Those present who did not vote still count in "those taking part".
    (10, 8, 4, 0, 0, F, True, False, RULE_NO_MAJORITY),  # 4 of 8 is not > half, and 4 ≠ 0
    (10, 8, 4, 4, 0, F, True, True, RULE_PRESIDING),
    (10, 8, 5, 0, 1, AB, True, True, RULE_MAJORITY),
]


@pytest.mark.parametrize(("members", "present", "f", "a", "ab", "presiding", "quorum", "adopted", "rule"), TABLE)
def test_rules_md_table(
    members: int,
    present: int,
    f: int,
    a: int,
    ab: int,
    presiding: Choice | None,
    quorum: bool,
    adopted: bool,
    rule: str,
) -> None:
    result = tally(members, present, Votes(f, a, ab), presiding)
    assert (result.quorum, result.adopted, result.rule) == (quorum, adopted, rule)


def test_written_poll_counts_ballots_returned() -> None:
    # RULES.md: quorum is ballots returned × 2 ≥ members; adopted when for > half of the ballots returned.
    assert tally(12, 6, Votes(4, 2, 0), A).as_dict() == {"quorum": True, "adopted": True, "rule": RULE_MAJORITY}
    assert tally(12, 5, Votes(5, 0, 0), F).quorum is False
    # A tie in a poll: the chair's ballot decides.
    assert tally(12, 6, Votes(3, 3, 0), F).adopted is True
    assert tally(12, 6, Votes(3, 3, 0), None).adopted is False  # the chair returned no ballot


def test_quorum_fraction_is_a_setting() -> None:
    assert has_quorum(9, 6, 2, 3) is True  # two thirds
    assert has_quorum(9, 5, 2, 3) is False
    assert tally(9, 5, Votes(5, 0, 0), F, quorum_num=2, quorum_den=3).rule == RULE_NO_QUORUM


@pytest.mark.parametrize(
    ("members", "present", "votes", "presiding"),
    [
        (10, 5, Votes(3, 3, 0), F),  # more votes than those taking part
        (10, 11, Votes(1, 0, 0), F),  # more taking part than members
        (10, 5, Votes(0, 3, 0), F),  # the presiding "for" is not among the votes
        (10, 5, Votes(-1, 0, 0), None),
    ],
)
def test_impossible_input_is_refused(members: int, present: int, votes: Votes, presiding: Choice | None) -> None:
    with pytest.raises(ValueError):
        tally(members, present, votes, presiding)


# The CLI ---------------------------------------------------------------------------------------------------------


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["wg", "tally", "--members", "10", "--present", "6", "--for", "3", "--against", "3", "--abstain", "0"]
    assert main([*args, "--presiding", "for", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"quorum": True, "adopted": True, "rule": RULE_PRESIDING}
    assert main([*args, "--presiding", "against", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"quorum": True, "adopted": False, "rule": RULE_PRESIDING}
    poll = ["wg", "tally", "--members", "10", "--present", "4", "--for", "4", "--against", "0", "--abstain", "0"]
    assert main([*poll, "--presiding", "for", "--poll", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"quorum": False, "adopted": False, "rule": RULE_NO_QUORUM}


def test_cli_refuses_impossible_counts(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["wg", "tally", "--members", "10", "--present", "3", "--for", "3", "--against", "1", "--abstain", "0"]
    assert main([*args, "--presiding", "for", "--json"]) == 2
    err = capsys.readouterr().err
    assert "Ошибка" in err and "Traceback" not in err
    assert main([*args[:-6], "--for", "1", "--against", "0", "--abstain", "0", "--presiding", "maybe"]) == 2


# Properties ------------------------------------------------------------------------------------------------------


@st.composite
def meetings(draw: st.DrawFn) -> tuple[int, int, Votes, Choice | None]:
    """A consistent meeting: members, those taking part, their votes (some may not vote) and the presiding vote."""
    members = draw(st.integers(1, 40))
    present = draw(st.integers(0, members))
    f = draw(st.integers(0, present))
    a = draw(st.integers(0, present - f))
    ab = draw(st.integers(0, present - f - a))
    cast = [c for c, n in ((F, f), (A, a), (AB, ab)) if n > 0]
    presiding = draw(st.sampled_from([None, *cast]))
    return members, present, Votes(f, a, ab), presiding


def _turned(votes: Votes, presiding: Choice | None, source: Choice) -> Votes | None:
    """The votes after one member other than the presiding one turns ``source`` into "for" (None if nobody can)."""
    counts = {F: votes.for_, A: votes.against, AB: votes.abstain}
    if counts[source] - (1 if presiding is source else 0) < 1:
        return None
    counts[source] -= 1
    counts[F] += 1
    return Votes(counts[F], counts[A], counts[AB])


@given(meetings(), st.sampled_from([A, AB]))
def test_a_vote_turned_to_for_never_rejects_a_majority_decision(
    case: tuple[int, int, Votes, Choice | None], source: Choice
) -> None:
    """Issue 18's property, where the literal rule keeps it: a decision carried by a majority of those taking part
    stays adopted when one more of them votes for instead of against or abstaining."""
    members, present, votes, presiding = case
    after_votes = _turned(votes, presiding, source)
    before = tally(members, present, votes, presiding)
    if after_votes is None or before.rule != RULE_MAJORITY:
        return
    assert tally(members, present, after_votes, presiding).adopted, (case, source)


@given(meetings(), st.sampled_from([A, AB]))
def test_a_vote_turned_to_for_keeps_a_tie_decision_unless_two_stood_aside(
    case: tuple[int, int, Votes, Choice | None], source: Choice
) -> None:
    """A tie broken by the presiding vote survives one vote turned to "for" exactly when at most one of those
    taking part voted neither for nor against: otherwise "for" leads without a majority and nothing is tied."""
    members, present, votes, presiding = case
    after_votes = _turned(votes, presiding, source)
    before = tally(members, present, votes, presiding)
    if after_votes is None or not (before.adopted and before.rule == RULE_PRESIDING):
        return
    neither = present - votes.for_ - votes.against
    assert tally(members, present, after_votes, presiding).adopted == (neither <= 1), (case, source)


def test_the_monotone_property_of_the_issue_fails_on_a_broken_tie() -> None:
    """Counter-example to "turning one present vote into for never turns adopted into rejected" under the literal
    rule (issue 18 asked for that property; RULES.md's rule does not give it): 1 for, 1 against, 2 abstaining with
    the presiding member for is a tie and adopted; the member against turns to for, 2-0-2 is neither a majority
    of 4 nor a tie, and is rejected. Turning an abstention instead gives 2-1-1, rejected too."""
    assert tally(4, 4, Votes(1, 1, 2), F).adopted is True
    assert tally(4, 4, Votes(2, 0, 2), F).adopted is False
    assert tally(4, 4, Votes(2, 1, 1), F).adopted is False


def test_adding_an_abstaining_member_may_reject() -> None:
    """RULES.md: "adding a present member who abstains may" turn adopted into rejected: 2-1 of 3 is a majority,
    2-1-1 of 4 is not and is no tie."""
    assert tally(5, 3, Votes(2, 1, 0), F).adopted is True
    assert tally(5, 4, Votes(2, 1, 1), F).adopted is False


@given(meetings())
def test_a_new_member_voting_for_never_rejects_a_majority_decision(case: tuple[int, int, Votes, Choice | None]) -> None:
    members, present, votes, presiding = case
    before = tally(members, present, votes, presiding)
    if present < members and before.rule == RULE_MAJORITY:
        more = tally(members, present + 1, Votes(votes.for_ + 1, votes.against, votes.abstain), presiding)
        assert more.adopted, (case, before, more)


@given(meetings(), meetings())
def test_quorum_never_depends_on_how_people_voted(
    first: tuple[int, int, Votes, Choice | None], second: tuple[int, int, Votes, Choice | None]
) -> None:
    members, present, votes, presiding = first
    # Same members and attendance, the other case's proportions of votes squeezed into this attendance.
    other = second[2]
    f = min(other.for_, present)
    a = min(other.against, present - f)
    ab = min(other.abstain, present - f - a)
    other_presiding = next((c for c, n in ((F, f), (A, a), (AB, ab)) if n > 0), None)
    assert (
        tally(members, present, votes, presiding).quorum
        == tally(members, present, Votes(f, a, ab), other_presiding).quorum
        == has_quorum(members, present)
    )


@given(meetings())
def test_adopted_needs_quorum_and_no_more_against_than_for(case: tuple[int, int, Votes, Choice | None]) -> None:
    members, present, votes, presiding = case
    result = tally(members, present, votes, presiding)
    if result.adopted:
        assert result.quorum and votes.for_ > 0
        assert votes.for_ * 2 > present or (votes.for_ == votes.against and presiding is F)
    if result.quorum and votes.for_ * 2 <= present and votes.for_ != votes.against:
        assert not result.adopted  # no majority and no tie: rejected, whatever the presiding member voted
    if votes.for_ * 2 > present and result.quorum:
        assert result.adopted  # a majority of those taking part always carries
